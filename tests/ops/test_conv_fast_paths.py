"""The convolution primitives' chunked channels-last path (avalon/ops/conv_gemm.py) and its Winograd
F(2, 3) rows (avalon/ops/winograd.py) against the plain whole-batch im2col path
(`avalon.ops.conv.FAST_PATHS = False`, `WINOGRAD = False`), against PyTorch and against finite
differences: every dimension count, groups, strides, dilations and asymmetric paddings, the batch in one
chunk or a chunk per sample."""
import numpy as np
import pytest

import avalon
import avalon.nn.functional as F
from avalon.ops import conv as cv
from avalon.ops import conv_gemm, conv_split, winograd

pytestmark = pytest.mark.usefixtures("numpy_kernels")  # these test the numpy paths


def _x(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.fixture
def every_layer_fast(monkeypatch):
    """The fast path for any channel count (the tests' layers are narrow)."""
    monkeypatch.setattr(conv_gemm, "CHANNELS_LAST_MIN", 1)
    monkeypatch.setattr(winograd, "MIN_ROWS", 1)


def _column_bytes(monkeypatch, size):
    """Chunks of `size` bytes of columns, whatever the number of BLAS threads."""
    monkeypatch.setattr(conv_gemm, "COLUMN_BYTES", size)
    monkeypatch.setattr(conv_gemm, "COLUMN_BYTES_THREADED", size)


def test_chunks_hold_the_column_budget_of_the_blas_threads(monkeypatch):
    # one BLAS thread: COLUMN_BYTES of columns a chunk; several: the larger COLUMN_BYTES_THREADED
    monkeypatch.setattr(conv_gemm, "COLUMN_BYTES", 1000)
    monkeypatch.setattr(conv_gemm, "COLUMN_BYTES_THREADED", 4000)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert conv_gemm.blas_threads() == 1
    assert conv_gemm.chunks(np, 7, 10, 30) == [slice(i, min(i + 3, 7)) for i in range(0, 7, 3)]
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    assert conv_gemm.chunks(np, 7, 10, 30) == [slice(0, 7)]
    assert conv_gemm.chunks(np, 7, 10, 3000) == [slice(i, i + 1) for i in range(7)]  # at least a sample


CASES = [  # (C_in, C_out, kernel, stride, padding pairs, dilation, groups, spatial)
    (4, 6, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, (6, 7)),
    (4, 6, (3, 2), (2, 1), ((1, 0), (2, 1)), (1, 2), 2, (7, 8)),
    (3, 2, (3, 3), (3, 3), ((0, 0), (0, 0)), (1, 1), 1, (8, 9)),
    (6, 12, (4, 4), (2, 2), ((1, 1), (1, 1)), (1, 1), 3, (8, 8)),
    (4, 6, (3,), (2,), ((1, 2),), (2,), 2, (11,)),
    (2, 4, (2, 3, 2), (1, 2, 1), ((1, 1), (0, 1), (1, 0)), (2, 1, 1), 2, (4, 5, 6)),
]


def _ids(case):
    return f"{len(case[2])}d-k{case[2]}-s{case[3]}-g{case[6]}"


def _three(x, w, g, stride, padding, dilation, groups):
    same = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return (cv.conv(x, w, **same), cv.conv_transpose(g, w, shape=tuple(x.shape[2:]), **same),
            cv.conv_weight_grad(x, g, kernel=tuple(w.shape[2:]), **same))


@pytest.mark.parametrize("column_bytes", [conv_gemm.COLUMN_BYTES, 1], ids=["one-chunk", "a-chunk-per-sample"])
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_fast_path_matches_the_plain_path(case, column_bytes, every_layer_fast, monkeypatch):
    _column_bytes(monkeypatch, column_bytes)
    cin, cout, kernel, stride, padding, dilation, groups, spatial = case
    x, w = _x(5, cin, *spatial), _x(cout, cin // groups, *kernel, seed=1)
    out = cv.conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    g = _x(*out.shape, seed=2)
    fast = _three(x, w, g, stride, padding, dilation, groups)
    monkeypatch.setattr(cv, "FAST_PATHS", False)
    plain = _three(x, w, g, stride, padding, dilation, groups)
    for name, a, b in zip(("conv", "conv_transpose", "conv_weight_grad"), fast, plain):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)


WINOGRAD_CASES = [  # 3 taps at unit stride along the first axis; anything along the others
    (4, 6, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1, (6, 7)),      # an even number of output rows
    (4, 6, (3, 2), (1, 2), ((1, 0), (2, 1)), (1, 2), 2, (6, 8)),      # odd, asymmetric padding
    (3, 5, (3, 3), (1, 3), ((0, 2), (0, 0)), (1, 1), 1, (8, 9)),
    (6, 12, (3, 4), (1, 2), ((2, 2), (1, 1)), (1, 1), 3, (5, 8)),
    (4, 6, (3,), (1,), ((1, 2),), (1,), 2, (11,)),
    (4, 6, (3, 2, 2), (1, 2, 1), ((1, 1), (0, 1), (1, 0)), (1, 1, 2), 2, (5, 5, 6)),
]


@pytest.mark.parametrize("column_bytes", [conv_gemm.COLUMN_BYTES, 1], ids=["one-chunk", "a-chunk-per-sample"])
@pytest.mark.parametrize("case", WINOGRAD_CASES, ids=_ids)
def test_winograd_rows_match_the_direct_products(case, column_bytes, every_layer_fast, monkeypatch):
    _column_bytes(monkeypatch, column_bytes)
    monkeypatch.setattr(conv_split, "SPLIT", False)  # a call per primitive, whatever BLAS's threads
    calls = []
    for name in ("conv", "conv_weight_grad"):
        monkeypatch.setattr(winograd, name, lambda *a, _f=getattr(winograd, name): calls.append(1) or _f(*a))
    cin, cout, kernel, stride, padding, dilation, groups, spatial = case
    x, w = _x(5, cin, *spatial), _x(cout, cin // groups, *kernel, seed=1)
    out = cv.conv(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    g = _x(*out.shape, seed=2)
    calls.clear()
    fast = _three(x, w, g, stride, padding, dilation, groups)
    # conv_transpose at unit stride is a convolution and comes through conv (else it adds columns back)
    assert len(calls) == (3 if all(s == 1 for s in stride) else 2)
    monkeypatch.setattr(cv, "WINOGRAD", False)
    direct = _three(x, w, g, stride, padding, dilation, groups)
    for name, a, b in zip(("conv", "conv_transpose", "conv_weight_grad"), fast, direct):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)


def test_winograd_primitives_pass_gradcheck(every_layer_fast):
    params = dict(stride=(1, 2), padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2)
    x, w = _x(2, 4, 6, 7), _x(6, 2, 3, 2, seed=1)
    g = _x(*cv.conv(x, w, **params).shape, seed=2)
    assert avalon.gradcheck(lambda x, w: (cv.conv(x, w, **params) ** 2).sum(), x, w)
    assert avalon.gradcheck(lambda g, w: (cv.conv_transpose(g, w, shape=(6, 7), **params) ** 2).sum(), g, w)
    assert avalon.gradcheck(lambda x, g: (cv.conv_weight_grad(x, g, kernel=(3, 2), **params) ** 2).sum(), x, g)


def test_a_layer_with_winograd_rows_matches_torch_in_float32():
    # at the default settings: 24 output rows and 16 channels take the Winograd rows
    torch = pytest.importorskip("torch")
    x, w = _x(3, 16, 24, 7, dtype=np.float32), _x(16, 16, 3, 3, seed=1, dtype=np.float32) * 0.1
    seed = _x(3, 16, 24, 7, seed=2, dtype=np.float32)
    loss, (gx, gw) = avalon.grad(lambda x, w: (F.conv2d(x, w, padding=1) * seed).sum(), x, w)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    t_loss = (torch.nn.functional.conv2d(tx, tw, padding=1) * torch.tensor(seed)).sum()
    t_loss.backward()
    np.testing.assert_allclose(loss, t_loss.item(), rtol=1e-4)
    for ours, theirs in ((gx, tx), (gw, tw)):
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_the_strided_transpose_takes_the_chunked_col2im(every_layer_fast, monkeypatch):
    # stride 2: conv_transpose adds the columns back (at unit stride it is a convolution instead)
    calls = []
    monkeypatch.setattr(conv_gemm, "conv_transpose", lambda *a, _f=conv_gemm.conv_transpose: calls.append(1) or _f(*a))
    g, w = _x(3, 6, 4, 4), _x(6, 2, 3, 3, seed=1)
    params = dict(stride=(2, 2), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=2)
    fast = cv.conv_transpose(g, w, shape=(8, 8), **params)
    monkeypatch.setattr(cv, "FAST_PATHS", False)
    np.testing.assert_allclose(fast, cv.conv_transpose(g, w, shape=(8, 8), **params), rtol=1e-12, atol=1e-12)
    assert calls == [1]


@pytest.mark.parametrize("channels,kernel,fast", [(16, 3, True), (8, 3, False), (32, 1, False)],
                         ids=["16-channels-3x3", "8-channels", "1x1"])
def test_which_layers_take_the_fast_path(channels, kernel, fast, monkeypatch):
    # wide enough rows (CHANNELS_LAST_MIN channels per group) and a kernel larger than 1x1
    calls = []
    for name in ("conv", "conv_weight_grad"):
        monkeypatch.setattr(conv_gemm, name, lambda *a, _f=getattr(conv_gemm, name): calls.append(1) or _f(*a))
    x, w = _x(2, channels, 6, 6, dtype=np.float32), _x(4, channels, kernel, kernel, seed=1, dtype=np.float32)
    avalon.grad(lambda x, w: (F.conv2d(x, w, padding=kernel // 2) ** 2).sum(), x, w)
    assert len(calls) == (2 if fast else 0)


def test_a_resnet_layer_matches_torch_and_stays_float32():
    # the fast path at its default settings, on the kind of layer it is for: 3x3, 32 channels, BN-less
    torch = pytest.importorskip("torch")
    x, w, b = _x(6, 32, 10, 9, dtype=np.float32), _x(32, 32, 3, 3, seed=1, dtype=np.float32) * 0.1, \
        _x(32, seed=2, dtype=np.float32)
    seed = _x(6, 32, 5, 5, seed=3, dtype=np.float32)

    def ours(x, w, b):
        return (F.conv2d(F.relu(F.conv2d(x, w, b, padding=1)), w, b, stride=2, padding=1) * seed).sum()

    loss, grads = avalon.grad(ours, x, w, b)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tf = torch.nn.functional
    t_out = tf.conv2d(tf.relu(tf.conv2d(tx, tw, tb, padding=1)), tw, tb, stride=2, padding=1)
    t_loss = (t_out * torch.tensor(seed)).sum()
    t_loss.backward()
    np.testing.assert_allclose(loss, t_loss.item(), rtol=1e-4)
    for g, t in zip(grads, (tx, tw, tb)):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_a_strided_transposed_layer_matches_torch():
    torch = pytest.importorskip("torch")
    x, w = _x(3, 16, 5, 6, dtype=np.float32), _x(16, 8, 4, 4, seed=1, dtype=np.float32) * 0.1
    seed = _x(3, 16, 10, 12, seed=2, dtype=np.float32)
    params = dict(stride=2, padding=1, groups=2)
    loss, (gx, gw) = avalon.grad(lambda x, w: (F.conv_transpose2d(x, w, **params) * seed).sum(), x, w)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (torch.nn.functional.conv_transpose2d(tx, tw, **params) * torch.tensor(seed)).sum().backward()
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_primitives_and_second_derivatives_pass_gradcheck_on_the_fast_path(every_layer_fast):
    params = dict(stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2)
    x, w = _x(2, 4, 5, 6), _x(6, 2, 3, 2, seed=1)
    g = _x(*cv.conv(x, w, **params).shape, seed=2)
    assert avalon.gradcheck(lambda x, w: (cv.conv(x, w, **params) ** 2).sum(), x, w)
    assert avalon.gradcheck(lambda g, w: (cv.conv_transpose(g, w, shape=(5, 6), **params) ** 2).sum(), g, w)
    assert avalon.gradcheck(lambda x, g: (cv.conv_weight_grad(x, g, kernel=(3, 2), **params) ** 2).sum(), x, g)

    def loss(x, w):
        return (cv.conv(x, w, **params) ** 2).sum()

    def penalty(x, w):  # differentiating it differentiates the rules, whose primitives take the fast path
        _, (gx, gw) = avalon.grad(loss, x, w)
        return (gx ** 2).sum() + (gw * w).sum()

    assert avalon.gradcheck(penalty, x, w)
