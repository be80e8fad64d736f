"""Convolutions on oneDNN (avalon/kernels/onednn/conv.py, dispatched from avalon/ops/conv.py): against
the numpy path and PyTorch (outputs and gradients) over strides, paddings, dilations, groups, kernel
sizes and 1-3 spatial axes, finite differences through avalon.nn.Conv2d, the primitive cache, `out=`,
and the switch."""
import numpy as np
import pytest
from forked_child import exit_code_of_forked

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
from avalon import threads
from avalon.kernels import onednn

pytestmark = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")
if onednn.available():
    from avalon.kernels.onednn import conv as dnnl_conv
    from avalon.kernels.onednn import primitive as P
from avalon.ops import conv as cv


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _numpy(fn, *args, **kwargs):
    previous = onednn.set_enabled(False)
    try:
        return fn(*args, **kwargs)
    finally:
        onednn.set_enabled(previous)


# (spatial, C_in, C_out, kernel, stride, padding, dilation, groups, N)
CASES = [
    ((9, 11), 16, 32, 3, 1, 1, 1, 1, 2),       # odd sizes, blocked layout
    ((13, 13), 32, 64, 3, 1, 0, 1, 1, 3),      # LeNet's second layer
    ((10, 9), 8, 16, 3, 2, 1, 1, 1, 2),        # stride 2
    ((12, 12), 6, 4, 3, 1, 2, 2, 1, 1),        # dilation 2, padding 2, batch 1
    ((8, 8), 8, 12, 3, 1, 1, 1, 2, 2),         # groups 2
    ((11, 11), 16, 16, 3, 1, 1, 1, 16, 2),     # depthwise
    ((11, 11), 8, 16, 3, 2, 1, 1, 8, 2),       # depthwise, multiplier 2, stride 2
    ((8, 8), 24, 40, 1, 1, 0, 1, 1, 2),        # 1x1
    ((8, 8), 16, 8, 1, 2, 0, 1, 1, 2),         # 1x1 stride 2
    ((15, 15), 3, 16, 7, 2, 3, 1, 1, 2),       # a ResNet stem
    ((14, 14), 1, 8, 5, 1, 0, 1, 1, 2),        # a single input channel (numpy forward, oneDNN data)
    ((17,), 4, 6, 3, 2, 1, 1, 2, 2),           # 1-d
    ((5, 6, 7), 4, 8, 3, 1, 1, 1, 1, 2),       # 3-d
    ((6, 5, 6), 4, 4, 3, 2, 1, 2, 4, 1),       # 3-d depthwise, stride and dilation
]


def _ids(case):
    spatial, cin, cout, k, s, p, d, g, n = case
    return f"{len(spatial)}d-{cin}to{cout}-k{k}-s{s}-p{p}-d{d}-g{g}-n{n}"


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_the_three_primitives_match_the_numpy_path(case, onednn_on):
    spatial, cin, cout, k, s, p, d, g, n = case
    dims = len(spatial)
    x, w = _x(n, cin, *spatial), _x(cout, cin // g, *(k,) * dims, seed=1)
    stride, padding, dilation = (s,) * dims, ((p, p),) * dims, (d,) * dims
    y = cv.conv(x, w, stride, padding, dilation, g)
    np.testing.assert_allclose(y, _numpy(cv.conv, x, w, stride, padding, dilation, g), rtol=1e-4, atol=1e-4)
    gy = _x(*y.shape, seed=2)
    gx = cv.conv_transpose(gy, w, spatial, stride, padding, dilation, g)
    np.testing.assert_allclose(gx, _numpy(cv.conv_transpose, gy, w, spatial, stride, padding, dilation, g),
                               rtol=1e-4, atol=1e-4)
    gw = cv.conv_weight_grad(x, gy, w.shape[2:], stride, padding, dilation, g)
    np.testing.assert_allclose(gw, _numpy(cv.conv_weight_grad, x, gy, w.shape[2:], stride, padding, dilation, g),
                               rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_outputs_and_gradients_match_pytorch(case, onednn_on):
    torch = pytest.importorskip("torch")
    spatial, cin, cout, k, s, p, d, g, n = case
    dims = len(spatial)
    x, w, b = _x(n, cin, *spatial), _x(cout, cin // g, *(k,) * dims, seed=1), _x(cout, seed=3)
    ours, theirs = getattr(F, f"conv{dims}d"), getattr(torch.nn.functional, f"conv{dims}d")
    out = ours(x, w, b, stride=s, padding=p, dilation=d, groups=g)
    seed = _x(*out.shape, seed=2)
    _, grads = avalon.grad(lambda x, w, b: (ours(x, w, b, stride=s, padding=p, dilation=d, groups=g) * seed).sum(),
                           x, w, b)
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    t_out = theirs(*ts, stride=s, padding=p, dilation=d, groups=g)
    (t_out * torch.tensor(seed)).sum().backward()
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-4, atol=1e-4)
    for name, mine, t in zip("xwb", grads, ts):
        np.testing.assert_allclose(mine, t.grad.numpy(), rtol=1e-4, atol=1e-3, err_msg=f"gradient of {name}")


@pytest.mark.parametrize("stride, padding, output_padding, groups", [(2, 1, 1, 1), (2, 0, 0, 2), (1, 1, 0, 1)])
def test_conv_transpose2d_matches_pytorch(stride, padding, output_padding, groups, onednn_on):
    torch = pytest.importorskip("torch")
    x, w = _x(2, 16, 7, 6), _x(16, 32 // groups, 3, 3, seed=1)
    out = F.conv_transpose2d(x, w, stride=stride, padding=padding, output_padding=output_padding, groups=groups)
    seed = _x(*out.shape, seed=2)
    _, (gx, gw) = avalon.grad(lambda x, w: (F.conv_transpose2d(
        x, w, stride=stride, padding=padding, output_padding=output_padding, groups=groups) * seed).sum(), x, w)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    t_out = torch.nn.functional.conv_transpose2d(tx, tw, stride=stride, padding=padding,
                                                 output_padding=output_padding, groups=groups)
    (t_out * torch.tensor(seed)).sum().backward()
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-4, atol=1e-3)


def test_conv2d_gradients_agree_with_finite_differences(onednn_on):
    # the loss is linear in each parameter, so a central difference with a large step is exact but for
    # float32 rounding
    avalon.manual_seed(0)
    layer = nn.Conv2d(16, 16, 3, stride=2, padding=1)
    x = _x(2, 16, 9, 9)
    seed = _x(*layer(x).shape, seed=2)

    def loss(m, x):
        return (m(x) * seed).sum()

    _, (grads, gx) = avalon.grad(loss, layer, x)
    rng = np.random.default_rng(5)
    for name, array, grad in [("weight", layer.weight, grads["weight"]), ("bias", layer.bias, grads["bias"]),
                              ("x", x, gx)]:
        for _ in range(4):
            k = tuple(int(rng.integers(0, n)) for n in array.shape)
            keep = array[k]
            array[k] = keep + 0.5
            up = float(loss(layer, x))
            array[k] = keep - 0.5
            down = float(loss(layer, x))
            array[k] = keep
            np.testing.assert_allclose(grad[k], up - down, rtol=2e-3, atol=2e-3, err_msg=f"{name}{k}")


def test_non_contiguous_inputs_and_out(onednn_on):
    x = _x(2, 9, 16, 7).transpose(0, 2, 3, 1)  # (2, 16, 7, 9) seen through strides
    w = _x(3, 3, 24, 16, seed=1).transpose(2, 3, 0, 1)
    stride, padding, dilation = (1, 2), ((1, 1), (0, 2)), (1, 1)
    want = _numpy(cv.conv, np.ascontiguousarray(x), np.ascontiguousarray(w), stride, padding, dilation, 1)
    np.testing.assert_allclose(cv.conv.impl(x, w, stride, padding, dilation, 1), want, rtol=1e-4, atol=1e-4)
    for out in (np.full(want.shape, np.nan, np.float32), np.full(want.shape, np.nan, np.float32, order="F"),
                np.full(want.shape[::-1], np.nan, np.float32)[::-1].transpose(3, 2, 1, 0)[::-1]):
        got = cv.conv.impl(x, w, stride, padding, dilation, 1, out=out)
        assert got is out
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
    gy = _x(*want.shape, seed=3)
    out = np.full(x.shape, np.nan, np.float32)
    assert cv.conv_transpose.impl(gy, w, x.shape[2:], stride, padding, dilation, 1, out=out) is out
    np.testing.assert_allclose(out, _numpy(cv.conv_transpose, gy, np.ascontiguousarray(w), x.shape[2:], stride,
                                           padding, dilation, 1), rtol=1e-4, atol=1e-4)


def test_a_repeated_call_reuses_its_primitives(onednn_on):
    x, w = _x(2, 16, 10, 10), _x(16, 16, 3, 3, seed=1)
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    cv.conv(x, w, *args)
    made = dnnl_conv.CACHE.created
    for _ in range(3):
        cv.conv(x + 1, w, *args)
    assert dnnl_conv.CACHE.created == made
    cv.conv(_x(3, 16, 10, 10), w, *args)  # a new batch size: a new signature
    assert dnnl_conv.CACHE.created > made


def test_each_thread_count_gets_primitives_made_for_it(onednn_on, monkeypatch):
    # a primitive runs on the OpenMP count it was made at, so a new count makes new primitives
    x, w = _x(4, 16, 10, 10), _x(16, 16, 3, 3, seed=1)
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    monkeypatch.setitem(threads._state, "threads", 2)  # avalon.set_num_threads's count, read per call
    with onednn.library.keeping_threads():
        two = cv.conv(x, w, *args)
        made = dnnl_conv.CACHE.created
        monkeypatch.setitem(threads._state, "threads", 1)
        one = cv.conv(x, w, *args)
        assert dnnl_conv.CACHE.created == made + 1
        assert {count for (key, count) in dnnl_conv.CACHE._items if key[1] == x.shape and key[0] == "forward"} \
            == {1, 2}
        cv.conv(x, w, *args)
        assert dnnl_conv.CACHE.created == made + 1
    np.testing.assert_array_equal(one, two)


def test_a_forked_child_runs_a_convolution_the_parent_ran_on_two_threads(onednn_on, monkeypatch):
    # the parent's two-thread primitive would wait forever in the child, where GNU OpenMP's team is gone
    x, w = _x(8, 16, 12, 12), _x(16, 16, 3, 3, seed=1)
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    monkeypatch.setitem(threads._state, "threads", 2)
    with onednn.library.keeping_threads():
        parent = cv.conv(x, w, *args)
    code = exit_code_of_forked(lambda: np.array_equal(cv.conv(x, w, *args), parent),
                               "a convolution hung in a forked child")
    assert code == 0


def test_the_blocked_kernels_run_and_argument_values_are_the_librarys(onednn_on):
    x, w = _x(4, 32, 12, 12), _x(48, 32, 3, 3, seed=1)
    cv.conv(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    gy = _x(4, 48, 12, 12, seed=2)
    cv.conv_weight_grad(x, gy, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    calls = {key[0]: call for (key, _), call in dnnl_conv.CACHE._items.items() if key[1] == x.shape}
    forward, weights = calls["forward"].prim, calls["weights"].prim
    assert "ref" not in forward.implementation() and "gemm" not in forward.implementation()
    # the descriptor reported per execute argument is the one reported per query: the ARG_* are right
    for prim, pairs in [(forward, [(P.ARG_SRC, P.QUERY_SRC_MD), (P.ARG_WEIGHTS, P.QUERY_WEIGHTS_MD),
                                   (P.ARG_DST, P.QUERY_DST_MD)]),
                        (weights, [(P.ARG_SRC, P.QUERY_SRC_MD), (P.ARG_DIFF_DST, P.QUERY_DIFF_DST_MD),
                                   (P.ARG_DIFF_WEIGHTS, P.QUERY_DIFF_WEIGHTS_MD)])]:
        for arg, query in pairs:
            assert prim.arg_md(arg) == prim.md(query), (arg, query)
        assert not prim.arg_md(P.ARG_SRC) == prim.arg_md(pairs[-1][0])  # (a check that can fail)
    if weights.scratchpad_size:
        assert weights.arg_md(P.ARG_SCRATCHPAD) == weights.md(P.QUERY_SCRATCHPAD_MD)


def test_a_single_input_channel_takes_onednn_into_out_or_on_two_threads(onednn_on, monkeypatch):
    calls = []
    for name in ("conv", "conv_weight_grad"):
        monkeypatch.setattr(dnnl_conv, name, lambda *a, _f=getattr(dnnl_conv, name), _n=name, **k:
                            calls.append(_n) or _f(*a, **k))
    x, w, g = _x(3, 1, 9, 9), _x(4, 1, 3, 3, seed=1), _x(3, 4, 7, 7, seed=2)
    args = ((1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    expected, expected_w = _numpy(cv.conv, x, w, *args), _numpy(cv.conv_weight_grad, x, g, (3, 3), *args)
    monkeypatch.setitem(threads._state, "threads", 1)
    with onednn.library.keeping_threads():
        np.testing.assert_allclose(cv.conv(x, w, *args), expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(cv.conv_weight_grad(x, g, (3, 3), *args), expected_w, rtol=1e-4, atol=1e-4)
        assert calls == []  # one thread, a new result: numpy's products
        out = np.full_like(expected, np.nan)
        assert cv.conv(x, w, *args, out=out) is out and calls == ["conv"]
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
        monkeypatch.setitem(threads._state, "threads", 2)
        np.testing.assert_allclose(cv.conv(x, w, *args), expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(cv.conv_weight_grad(x, g, (3, 3), *args), expected_w, rtol=1e-4, atol=1e-4)
    assert calls == ["conv", "conv", "conv_weight_grad"]


def test_switched_off_the_numpy_path_runs(monkeypatch):
    calls = []
    for name in ("conv", "conv_transpose", "conv_weight_grad"):
        monkeypatch.setattr(dnnl_conv, name, lambda *a, _f=getattr(dnnl_conv, name), **k: calls.append(1) or _f(*a, **k))
    x, w = _x(2, 16, 8, 8), _x(16, 16, 3, 3, seed=1)

    def loss(x, w):
        return (F.conv2d(x, w, padding=1) ** 2).sum()

    previous = onednn.set_enabled(False)
    try:
        off = avalon.grad(loss, x, w)
        assert calls == []
    finally:
        onednn.set_enabled(previous)
    onednn.set_enabled(True)
    try:
        on = avalon.grad(loss, x, w)  # the same compiled tape follows the switch at its next call
        assert len(calls) == 3
    finally:
        onednn.set_enabled(previous)
    for a, b in zip(on[1], off[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def test_float64_keeps_the_numpy_path(onednn_on, monkeypatch):
    calls = []
    monkeypatch.setattr(dnnl_conv, "conv", lambda *a, **k: calls.append(1))
    x, w = np.ones((1, 16, 5, 5)), np.ones((16, 16, 3, 3))
    y = cv.conv(x, w, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    assert calls == [] and y.dtype == np.float64 and y[0, 0, 0, 0] == 16 * 9


@pytest.mark.parametrize("kernel", [3, 1])  # the blocked layout (summed in it) and the plain one
def test_a_batch_run_in_parts_gives_the_whole_batchs_results(kernel, onednn_on, monkeypatch):
    x, w = _x(6, 16, 9, 9), _x(32, 16, kernel, kernel, seed=1)
    args = ((1, 1), ((kernel // 2,) * 2,) * 2, (1, 1), 1)
    gy = _x(6, 32, 9, 9, seed=2)
    whole = [cv.conv.impl(x, w, *args), cv.conv_transpose.impl(gy, w, (9, 9), *args),
             cv.conv_weight_grad.impl(x, gy, (kernel, kernel), *args)]
    per_sample = (x[0].nbytes + gy[0].nbytes)
    monkeypatch.setattr(dnnl_conv, "CHUNK_BYTES", 2 * per_sample)  # parts of 2 samples
    assert dnnl_conv.part_size(6, per_sample) == 2
    made = dnnl_conv.CACHE.created
    parts = [cv.conv.impl(x, w, *args), cv.conv_transpose.impl(gy, w, (9, 9), *args),
             cv.conv_weight_grad.impl(x, gy, (kernel, kernel), *args)]
    assert dnnl_conv.CACHE.created == made + 3  # one primitive per kind serves every part
    for a, b in zip(parts, whole):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_part_sizes_divide_the_batch(monkeypatch):
    monkeypatch.setattr(dnnl_conv, "CHUNK_BYTES", 1000)
    assert dnnl_conv.part_size(64, 100) == 8  # 10 fit; 8 divides 64
    assert dnnl_conv.part_size(8, 100) == 8  # all fit
    assert dnnl_conv.part_size(13, 100) == 13  # a prime: parts of 1 would be too small, so whole
    assert dnnl_conv.part_size(5, 5000) == 1  # not even one sample fits: one at a time
