"""F.normalize, F.cosine_similarity, CosineSimilarity, PairwiseDistance: PyTorch parity, zero vectors."""
import numpy as np
import pytest
from nnparity import check_layer

import avalon
import avalon.nn as nn
import avalon.nn.functional as F


@pytest.mark.parametrize("p, dim", [(2.0, 1), (1.0, 0), (3.0, -1)])
def test_normalize_matches_torch_including_zero_vectors(p, dim):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    x[1] = 0
    x[:, 2] = 0
    w = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    t = torch.from_numpy(x).requires_grad_(True)
    expected = torch.nn.functional.normalize(t, p=p, dim=dim)
    (expected * torch.from_numpy(w)).sum().backward()
    _, (g,) = avalon.grad(lambda x: (F.normalize(x, p=p, dim=dim) * w).sum(), x)
    np.testing.assert_allclose(F.normalize(x, p=p, dim=dim), expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_normalize_gradcheck():
    x = np.random.default_rng(2).standard_normal((3, 4))
    assert avalon.gradcheck(lambda x: (F.normalize(x) * np.arange(12.0).reshape(3, 4)).sum(), x)
    assert avalon.gradcheck(lambda x: (F.normalize(x, p=3.0, dim=0) ** 2 * x).sum(), x)


def _pair(shape):
    rng = np.random.default_rng(5)
    x1, x2 = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)
    x1[0] = 0  # a zero vector: the norm is floored at eps
    x1[1] = 1e-10
    return x1, x2


@pytest.mark.parametrize("dim", [1, -1, 0])
def test_cosine_similarity_matches_torch(dim):
    torch = pytest.importorskip("torch")
    x1, x2 = _pair((4, 3))
    t1, t2 = (torch.from_numpy(x).requires_grad_(True) for x in (x1, x2))
    expected = torch.nn.functional.cosine_similarity(t1, t2, dim=dim)
    w = np.arange(1, expected.numel() + 1, dtype=np.float32).reshape(expected.shape)
    (expected * torch.from_numpy(w)).sum().backward()
    _, (g1, g2) = avalon.grad(lambda a, b: (F.cosine_similarity(a, b, dim) * w).sum(), x1, x2)
    np.testing.assert_allclose(F.cosine_similarity(x1, x2, dim), expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g1, t1.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(g2, t2.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_cosine_similarity_gradcheck_and_broadcasting():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((1, 4))
    assert avalon.gradcheck(lambda a, b: (F.cosine_similarity(a, b) * np.arange(3.0)).sum(), a, b)
    assert F.cosine_similarity(a, b).shape == (3,)


def test_distance_layers_match_torch():
    torch = pytest.importorskip("torch")
    x1, x2 = _pair((4, 5))
    for make in (lambda nn: nn.CosineSimilarity(dim=1), lambda nn: nn.PairwiseDistance(p=1.0, keepdim=True),
                 lambda nn: nn.PairwiseDistance()):
        layer, torch_layer = make(nn), make(torch.nn)
        assert repr(layer) == repr(torch_layer)
        check_layer(layer, torch_layer, x1 + 2, x2)
