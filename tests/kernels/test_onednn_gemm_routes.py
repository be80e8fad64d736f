"""Which products run on oneDNN (avalon/kernels/onednn/gemm.py: dnnl_sgemm or, for single products,
the matmul primitive): the matmul primitive and its rules (every Linear), attention's products, im2col
convolutions' products; gradients through the public API against PyTorch and finite differences with
oneDNN on and off; the numpy path really running when off, in tapes compiled before the switch flipped
too."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
from avalon.kernels import onednn
from avalon.kernels.onednn import gemm
from avalon.kernels.onednn import matmul as batched

pytestmark = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")
torch = pytest.importorskip("torch")


@pytest.fixture
def sgemm_calls(monkeypatch):
    """The shapes of the first operand of every product oneDNN ran (a dnnl_sgemm call, or a single product
    on the matmul primitive), every product on oneDNN however small or narrow."""
    calls = []
    sgemm, matrix = gemm.sgemm, batched.matrix

    def spy(original):
        def call(*a, **k):
            done = original(*a, **k)
            if done:
                calls.append(a[0].shape)
            return done
        return call

    monkeypatch.setattr(gemm, "sgemm", spy(sgemm))
    monkeypatch.setattr(batched, "matrix", spy(matrix))
    monkeypatch.setattr(gemm, "SMALLEST", 0)
    monkeypatch.setattr(gemm, "NARROWEST", 0)
    monkeypatch.setattr(gemm, "MAX_THREADS", 64)  # whatever OMP_NUM_THREADS the run has
    monkeypatch.setattr(gemm, "OPENBLAS_WITHOUT_AVX512", False)  # whatever the CPU
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


def _attention_pair():
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(16, 2, batch_first=True)
    ours = nn.MultiheadAttention(16, 2, batch_first=True)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _self_attention(model, x):
    return model(x, x, x, need_weights=False)[0]


# (the two models, the input's shape, the model's call, how many products the step runs at least)
CASES = {
    "linear batch5": (_mlp_pair, (5, 7), lambda model, x: model(x), 2 + 3),  # two forward products; the
    "linear batch1": (_mlp_pair, (1, 7), lambda model, x: model(x), 2 + 3),  # weights' and the hidden
    "linear sequence": (_mlp_pair, (2, 4, 7), lambda model, x: model(x), 2 + 3),  # input's gradients
    "attention batch1": (_attention_pair, (1, 5, 16), _self_attention, 1),
    "attention batch3": (_attention_pair, (3, 5, 16), _self_attention, 1),
}


@pytest.mark.parametrize("case", CASES)
def test_products_run_on_sgemm_when_on_and_on_numpy_when_off_with_torchs_gradients(sgemm_calls, case):
    pair, shape, call, products = CASES[case]
    ours, theirs = pair()
    x = _seeded(shape, 1)
    out_shape = tuple(call(theirs, torch.from_numpy(x)).shape)
    weights = np.cos(np.arange(np.prod(out_shape), dtype=np.float32)).reshape(out_shape)

    def loss(model, x):
        return (call(model, x) * weights).sum()

    on = avalon.grad(loss, ours, x)
    count = len(sgemm_calls)
    assert count >= products
    previous = onednn.set_enabled(False)  # the same cached compiled step, now on numpy
    try:
        off = avalon.grad(loss, ours, x)
    finally:
        onednn.set_enabled(previous)
    assert len(sgemm_calls) == count
    xt = torch.tensor(x, requires_grad=True)
    expected = (call(theirs, xt) * torch.from_numpy(weights)).sum()
    expected.backward()
    for value, grads in (on, off):
        np.testing.assert_allclose(value, expected.item(), rtol=1e-4, atol=1e-5)
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


@pytest.mark.parametrize("groups, stride, padding, dilation", [(1, 1, 1, 1), (2, 2, 0, 1), (1, 1, 2, 2)])
def test_im2col_convolution_products_run_on_sgemm_with_torchs_values(sgemm_calls, groups, stride, padding, dilation):
    """conv_gemm's three products (forward, weight gradient, input gradient) through linalg.product."""
    from avalon.ops import conv_gemm
    x, w = _seeded((3, 32, 9, 8), 6), _seeded((16, 32 // groups, 3, 3), 7)
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    expected = torch.nn.functional.conv2d(tx, tw, stride=stride, padding=padding, dilation=dilation, groups=groups)
    g = _seeded(tuple(expected.shape), 8)
    pads, strides, dilations = ((padding, padding),) * 2, (stride,) * 2, (dilation,) * 2
    results = {}
    for flag in (True, False):
        previous, before = onednn.set_enabled(flag), len(sgemm_calls)
        try:
            results[flag] = (
                conv_gemm.conv(np, x, w, tuple(expected.shape[2:]), strides, pads, dilations, groups),
                conv_gemm.conv_weight_grad(np, x, g, (3, 3), strides, pads, dilations, groups),
                conv_gemm.conv_transpose(np, g, w, x.shape[2:], strides, pads, dilations, groups))
        finally:
            onednn.set_enabled(previous)
        assert (len(sgemm_calls) > before) == flag
    gw = torch.nn.grad.conv2d_weight(tx, w.shape, torch.from_numpy(g), stride, padding, dilation, groups)
    gx = torch.nn.grad.conv2d_input(x.shape, tw, torch.from_numpy(g), stride, padding, dilation, groups)
    for y, dw, dx in results.values():
        np.testing.assert_allclose(y, expected.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dw, gw.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dx, gx.numpy(), rtol=1e-4, atol=1e-4)
