"""Which products run on oneDNN's sgemm (avalon/kernels/onednn/gemm.py): the matmul primitive and its
rules (every Linear), attention's products, im2col convolutions' products; gradients through the public
API against PyTorch and finite differences with oneDNN on and off; the numpy path really running when
off, in tapes compiled before the switch flipped too."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
from avalon.kernels import onednn
from avalon.kernels.onednn import gemm

pytestmark = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")
torch = pytest.importorskip("torch")


@pytest.fixture
def sgemm_calls(monkeypatch):
    """The shapes of the first operand of every dnnl_sgemm call, every product on oneDNN however small."""
    calls = []
    original = gemm.sgemm
    monkeypatch.setattr(gemm, "sgemm", lambda *a, **k: (calls.append(a[0].shape), original(*a, **k))[1])
    monkeypatch.setattr(gemm, "SMALLEST", 0)
    previous = onednn.set_enabled(True)
    yield calls
    onednn.set_enabled(previous)


def _seeded(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _mlp_pair():
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(7, 11), torch.nn.ReLU(), torch.nn.Linear(11, 3))
    ours = nn.Sequential(nn.Linear(7, 11), nn.ReLU(), nn.Linear(11, 3))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _loss(model, x, y):
    return F.cross_entropy(model(x), y)


@pytest.mark.parametrize("shape", [(5, 7), (1, 7), (2, 4, 7)], ids=["batch5", "batch1", "sequence"])
def test_linear_layers_run_on_sgemm_when_on_and_on_numpy_when_off_with_torchs_gradients(sgemm_calls, shape):
    ours, theirs = _mlp_pair()
    x = _seeded(shape, 1)
    target = np.random.default_rng(2).standard_normal(shape[:-1] + (3,)).astype(np.float32)

    def loss(model, x):
        return ((model(x) - target) ** 2).sum()

    on = avalon.grad(loss, ours, x)
    forward_and_back = len(sgemm_calls)
    assert forward_and_back >= 2 + 3  # two forward products; the weights' and the hidden input's gradients
    previous = onednn.set_enabled(False)  # the same cached compiled step, now on numpy
    try:
        off = avalon.grad(loss, ours, x)
    finally:
        onednn.set_enabled(previous)
    assert len(sgemm_calls) == forward_and_back
    xt = torch.tensor(x, requires_grad=True)
    expected = ((theirs(xt) - torch.from_numpy(target)) ** 2).sum()
    expected.backward()
    for value, grads in (on, off):
        np.testing.assert_allclose(value, expected.item(), rtol=1e-5)
        for name, p in theirs.named_parameters():
            np.testing.assert_allclose(grads[0][name], p.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(grads[1], xt.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_linear_gradient_agrees_with_finite_differences_on_onednn(sgemm_calls):
    """float32 on oneDNN: the gradient's directional derivative against central differences of the loss."""
    ours, _ = _mlp_pair()
    x, y = _seeded((6, 7), 3), np.array([0, 2, 1, 1, 0, 2])
    _, grads = avalon.grad(_loss, ours, x, y)
    assert sgemm_calls
    rng = np.random.default_rng(4)
    for name, p in ours.named_parameters():
        direction = rng.standard_normal(p.shape).astype(np.float32)
        original = p.copy()
        eps = 1e-3  # small enough that no ReLU input crosses zero
        p[...] = original + eps * direction
        plus = float(_loss(ours, x, y))
        p[...] = original - eps * direction
        minus = float(_loss(ours, x, y))
        p[...] = original
        numeric = (plus - minus) / (2 * eps)
        assert abs(numeric - float((grads[0][name] * direction).sum())) < 1e-3 * max(1.0, abs(numeric)), name


def test_float64_and_small_products_stay_on_numpy(sgemm_calls, monkeypatch):
    ours, _ = _mlp_pair()
    x, y = _seeded((5, 7), 5), np.array([0, 1, 2, 1, 0])
    avalon.grad(_loss, ours.double(), x.astype(np.float64), y)
    assert ours[0].weight.dtype == np.float64
    float64_calls = len(sgemm_calls)
    assert float64_calls == 0
    monkeypatch.setattr(gemm, "SMALLEST", 10 ** 9)
    ours32, _ = _mlp_pair()
    avalon.grad(_loss, ours32, x, y)
    assert len(sgemm_calls) == 0
    monkeypatch.setattr(gemm, "SMALLEST", 0)
    avalon.grad(_loss, ours32, x, y)
    assert len(sgemm_calls) > 0
