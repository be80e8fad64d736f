"""Embedding (padding_idx), F.embedding, F.one_hot: PyTorch parity and errors."""
import numpy as np
import pytest
from nnparity import check_layer

import avalon
import avalon.nn as nn
import avalon.nn.functional as F

INDICES = np.array([[1, 0, 3, 3], [4, 1, 0, 2]])


@pytest.mark.parametrize("padding_idx", [None, 0, -2])
def test_embedding_matches_torch(padding_idx):
    torch = pytest.importorskip("torch")
    layer = nn.Embedding(5, 3, padding_idx=padding_idx)
    torch_layer = torch.nn.Embedding(5, 3, padding_idx=padding_idx)
    assert repr(layer) == repr(torch_layer)
    check_layer(layer, torch_layer, INDICES)
    if padding_idx is not None:
        _, grads = avalon.grad(lambda m, i: (m(i) ** 2).sum(), layer, INDICES)
        assert not grads[0].weight[padding_idx % 5].any()


def test_padding_row_starts_at_zero_and_gets_no_gradient():
    layer = nn.Embedding(6, 4, padding_idx=2)
    assert not layer.weight[2].any() and layer.weight[3].any()
    indices = np.array([2, 2, 1])
    _, grads = avalon.grad(lambda m, i: m(i).sum(), layer, indices)
    np.testing.assert_array_equal(grads[0].weight[2], 0)
    np.testing.assert_array_equal(grads[0].weight[1], 1)


def test_from_pretrained_and_freeze():
    weights = np.arange(12, dtype=np.float32).reshape(4, 3)
    frozen = nn.Embedding.from_pretrained(weights)
    np.testing.assert_array_equal(frozen(np.array([3])), weights[[3]])
    _, grads = avalon.grad(lambda m, i: m(i).sum(), frozen, np.array([1]))
    assert len(grads[0]) == 0 and "weight" in frozen.state_dict()
    trainable = nn.Embedding.from_pretrained(weights, freeze=False)
    _, grads = avalon.grad(lambda m, i: m(i).sum(), trainable, np.array([1, 1]))
    np.testing.assert_array_equal(grads[0].weight[1], 2)


def test_traced_indices_into_an_untraced_table():
    layer = nn.Embedding(5, 2)
    lookup = avalon.jit(lambda i: layer(i) * 2)  # the layer is a constant of the traced function
    np.testing.assert_allclose(lookup(INDICES), layer.weight[INDICES] * 2)
    np.testing.assert_allclose(lookup(INDICES[::-1].copy()), layer.weight[INDICES[::-1]] * 2)


def test_embedding_errors():
    with pytest.raises(avalon.AvalonError, match="integer indices"):
        nn.Embedding(3, 2)(np.array([0.0, 1.0]))
    with pytest.raises(avalon.AvalonError, match="padding_idx"):
        nn.Embedding(3, 2, padding_idx=3)
    with pytest.raises(avalon.AvalonError, match="max_norm"):
        nn.Embedding(3, 2, max_norm=1.0)


def test_one_hot_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.array([[0, 2], [1, 3]])
    for classes in (-1, 6):
        got = F.one_hot(x, classes)
        expected = torch.nn.functional.one_hot(torch.from_numpy(x), classes).numpy()
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected)
    traced = avalon.jit(lambda x: F.one_hot(x, 4))
    np.testing.assert_array_equal(traced(x), F.one_hot(x, 4))
    with pytest.raises(avalon.AvalonError, match="num_classes"):
        avalon.jit(lambda x: F.one_hot(x))(x)
    with pytest.raises(avalon.IndexRangeError, match=r"one_hot: index 3 at position \[1, 1\] .* \[0, 3\)"):
        F.one_hot(x, 3)
