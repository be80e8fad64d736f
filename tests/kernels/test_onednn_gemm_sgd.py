"""SGD's momentum and parameter updates in one pass each on oneDNN (gemm.axpby) for float32 parameters:
the same trajectory as torch.optim.SGD and as the numpy path, which runs when oneDNN is off."""
import numpy as np
import pytest

import avalon
from avalon.kernels import onednn
from avalon.kernels.onednn import gemm

pytestmark = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")
torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _onednn_on(monkeypatch):
    """On even under AVALON_ONEDNN=0 and on however many threads: these tests compare the two paths."""
    monkeypatch.setattr(gemm, "MAX_THREADS", 64)
    previous = onednn.set_enabled(True)
    yield
    onednn.set_enabled(previous)


def test_axpby_is_one_update_in_place_and_refuses_what_it_cannot_do(monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 5), dtype=np.float32), rng.standard_normal((3, 5), dtype=np.float32)
    assert not gemm.axpby(1.0, x, 1.0, y)  # small: numpy's passes run in cache
    monkeypatch.setattr(gemm, "AXPBY_SMALLEST", 1)
    expected = np.float32(-0.25) * x + np.float32(0.9) * y
    before = y.ctypes.data
    assert gemm.axpby(np.float32(-0.25), x, 0.9, y)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-7)
    assert y.ctypes.data == before
    assert not gemm.axpby(1.0, x, 1.0, y[:, ::2].copy())        # sizes differ
    assert not gemm.axpby(1.0, x[:, :2], 1.0, y[:, :2])         # not contiguous
    assert not gemm.axpby(1.0, x.astype(np.float64), 1.0, y)    # not float32
    assert not gemm.axpby(1.0, y, 1.0, y)                       # the same memory
    assert gemm.axpby(1.0, x, 1.0, y.view(avalon.Tensor))          # ndarray subclasses (parameters) too
    y[0, 0] = np.nan
    assert gemm.axpby(1.0, x, 0.5, y) and np.isnan(y[0, 0])      # NaN propagates, as in PyTorch


@pytest.mark.parametrize("options", [dict(momentum=0.9), dict(momentum=0.9, nesterov=True),
                                     dict(momentum=0.5, dampening=0.3), dict()],
                         ids=["momentum", "nesterov", "dampening", "plain"])
def test_sgd_on_onednn_follows_torch_and_the_numpy_path(options, monkeypatch):
    calls = []
    original = gemm.axpby
    monkeypatch.setattr(gemm, "AXPBY_SMALLEST", 1)
    monkeypatch.setattr(gemm, "axpby", lambda *a, **k: calls.append(original(*a, **k)) or calls[-1])
    rng = np.random.default_rng(1)
    start = [rng.standard_normal((4, 6), dtype=np.float32), rng.standard_normal(6, dtype=np.float32)]
    grads = [[rng.standard_normal(p.shape, dtype=np.float32) for p in start] for _ in range(4)]
    trajectories = {}
    for flag in (True, False):
        previous = onednn.set_enabled(flag)
        try:
            params = [p.copy().view(avalon.Tensor) for p in start]  # as a model's parameters are
            opt = avalon.optim.SGD(params, lr=0.1, **options)
            for g in grads:
                opt.step(g)
        finally:
            onednn.set_enabled(previous)
        trajectories[flag] = params
        if flag:
            on_calls, calls[:] = list(calls), []
    assert on_calls and all(on_calls)  # every update in one pass on oneDNN
    assert calls and not any(calls)  # off: asked, and it declines (the numpy path runs)
    theirs = [torch.tensor(p, requires_grad=True) for p in start]
    opt = torch.optim.SGD(theirs, lr=0.1, **options)
    for g in grads:
        for t, gi in zip(theirs, g):
            t.grad = torch.from_numpy(gi)
        opt.step()
    for on, off, t in zip(trajectories[True], trajectories[False], theirs):
        np.testing.assert_allclose(on, t.detach().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(off, t.detach().numpy(), rtol=1e-6, atol=1e-6)
