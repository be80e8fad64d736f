"""Layer norm as fused primitives (avalon/ops/layer_norm.py, rules/layer_norm.py): values and gradients
of nn.functional.layer_norm against PyTorch with oneDNN on and off (the kernels counted), second
derivatives against finite differences and against the decomposed recording (FUSED_LAYER_NORM = False),
compiled replays, the switch in a replay compiled before it, the split over threads, non-contiguous
inputs, another array module (array-api-strict) and ONNX export of both recordings."""
import io
import math

import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
from avalon.kernels import onednn
from avalon.nn.functional import normalization
from avalon.ops import conv_gemm, threads_split
from avalon.ops import layer_norm as ln

torch = pytest.importorskip("torch")

# (input shape, normalized_shape): a Transformer's (batch, tokens, width), rows of one and two axes
CASES = [((7, 5), (5,)), ((4, 6, 10), (10,)), ((3, 4, 5), (4, 5)), ((16, 128, 256), (256,)), ((9,), (9,))]


def _x(*shape, seed=0, dtype=np.float32, scale=1.0, shift=0.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale + shift).astype(dtype)


@pytest.fixture(params=[True, False], ids=["onednn", "numpy"])
def onednn_switch(request):
    """oneDNN on (skipped where it is not installed) or off for the test, as it was after."""
    if request.param and not onednn.available():
        pytest.skip("oneDNN (avalon[fast]) is not installed")
    previous = onednn.set_enabled(request.param)
    yield request.param
    onednn.set_enabled(previous)


@pytest.fixture
def counted(count_calls):
    """Counts the oneDNN layer-norm kernels' calls: {'forward': n, 'backward': n}."""
    if not onednn.available():
        return {"forward": 0, "backward": 0}
    from avalon.kernels.onednn import layer_norm as kernel
    return count_calls(kernel, "forward", "backward")


def _torch_layer_norm(x, shape, g, w, b, eps=1e-5):
    xt = torch.tensor(x, requires_grad=True)
    wt = None if w is None else torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    y = torch.nn.functional.layer_norm(xt, shape, wt, bt, eps)
    y.backward(torch.tensor(g))
    return [y.detach().numpy(), xt.grad.numpy(), None if w is None else wt.grad.numpy(),
            None if b is None else bt.grad.numpy()]


def _loss(x, w, b, g, shape):
    return (F.layer_norm(x, shape, w, b) * g).sum()


def _ours(x, shape, g, w, b):
    y = F.layer_norm(x, shape, w, b)
    _, (gx, gw, gb, _, _) = avalon.grad(_loss, x, w, b, g, shape, argnums=(0, 1, 2))
    return [np.asarray(y), gx, gw, gb]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
@pytest.mark.parametrize("shape,normalized", CASES, ids=str)
def test_values_and_gradients_match_torch(shape, normalized, affine, dtype, onednn_switch, counted):
    x, g = _x(*shape, scale=2.0, shift=0.7, dtype=dtype), _x(*shape, seed=1, dtype=dtype)
    w = _x(*normalized, seed=2, scale=0.5, shift=1.0, dtype=dtype) if affine != "none" else None
    b = _x(*normalized, seed=3, dtype=dtype) if affine == "both" else None
    ours, theirs = _ours(x, normalized, g, w, b), _torch_layer_norm(x, normalized, g, w, b)
    rows = x.size // math.prod(normalized)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for name, a, t in zip(["y", "x's gradient", "weight's", "bias's"], ours, theirs):
        if t is None:
            assert a is None, name
            continue
        assert a.dtype == dtype and a.shape == t.shape, name
        # weight's and bias's gradients are sums over the rows: their rounding grows with the count
        atol = tol * (math.sqrt(rows) if name in ("weight's", "bias's") else 1.0)
        np.testing.assert_allclose(a, t, rtol=tol, atol=atol, err_msg=name)
    on_onednn = onednn_switch and dtype == np.float32
    assert counted == ({"forward": 2, "backward": 1} if on_onednn else {"forward": 0, "backward": 0})


def test_layer_norm_records_the_fused_primitives_and_the_switch_records_the_steps(monkeypatch):
    x, w = _x(4, 6), _x(6, seed=1)
    names = [n.prim.name for n in avalon.trace(lambda x, w: F.layer_norm(x, (6,), w), x, w).calls]
    assert names == ["layer_norm_stats", "layer_norm_apply"]
    monkeypatch.setattr(normalization, "FUSED_LAYER_NORM", False)
    names = {n.prim.name for n in avalon.trace(lambda x, w: F.layer_norm(x, (6,), w), x, w).calls}
    assert {"center", "normalize"} <= names and not any(n.startswith("layer_norm") for n in names)


def _penalty(x, w, b):
    """A function of layer norm's gradients (all three): differentiating it runs layer_norm_backward's rule."""
    c = np.cos(np.arange(x.size)).reshape(x.shape)

    def loss(x, w, b):
        return (F.layer_norm(x, x.shape[-2:], w, b) ** 3 * c).sum()

    _, (gx, gw, gb) = avalon.grad(loss, x, w, b)
    return (gx ** 2).sum() + (gw * gw * 0.5).sum() + (gb * np.arange(gb.size).reshape(gb.shape)).sum()


def test_second_derivatives_match_finite_differences():
    x = _x(3, 4, 5, dtype=np.float64, scale=2.0, shift=0.5)
    w, b = _x(4, 5, seed=1, dtype=np.float64, shift=1.0), _x(4, 5, seed=2, dtype=np.float64)
    result = avalon.gradcheck(_penalty, x, w, b)
    assert result, result


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_second_derivatives_match_the_decomposed_recording(dtype, onednn_switch, counted, monkeypatch):
    x = _x(6, 4, 5, dtype=dtype, scale=2.0, shift=0.5)
    w, b = _x(4, 5, seed=1, dtype=dtype, shift=1.0), _x(4, 5, seed=2, dtype=dtype)
    value, grads = avalon.grad(_penalty, x, w, b, argnums=(0, 1, 2))
    if onednn_switch and dtype == np.float32:
        assert counted["backward"] >= 1  # the inner gradient on oneDNN
    monkeypatch.setattr(normalization, "FUSED_LAYER_NORM", False)
    value_steps, grads_steps = avalon.grad(lambda x, w, b: _penalty(x, w, b), x, w, b, argnums=(0, 1, 2))
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(value, value_steps, rtol=tol)
    for got, expected in zip(grads, grads_steps):
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * np.abs(expected).max())


def _step(m, x, g):
    return (m(x) * g).sum()


def test_a_compiled_replay_matches_the_first_call(onednn_switch, counted):
    layer = nn.LayerNorm((4, 8))
    layer.weight[...] = _x(4, 8, seed=1, shift=1.0)
    layer.bias[...] = _x(4, 8, seed=2)
    x, g = _x(5, 3, 4, 8, scale=3.0, shift=-1.0), _x(5, 3, 4, 8, seed=4)
    traced = []

    def step(m, x, g):
        traced.append(1)  # Python runs only while tracing
        return _step(m, x, g)

    first = avalon.grad(step, layer, x, g)
    calls = dict(counted)
    second = avalon.grad(step, layer, x, g)
    assert len(traced) == 1  # the second call replayed the compiled tape
    if onednn_switch:
        assert calls["forward"] >= 1 and calls["backward"] >= 1
        assert counted == {name: 2 * n for name, n in calls.items()}  # the replay ran the kernels again
    else:
        assert counted == {"forward": 0, "backward": 0}
    np.testing.assert_array_equal(second[0], first[0])
    for key in ("weight", "bias"):
        np.testing.assert_array_equal(second[1][0][key], first[1][0][key])
    np.testing.assert_array_equal(second[1][1], first[1][1])
    theirs = _torch_layer_norm(x, (4, 8), g, layer.weight, layer.bias)
    np.testing.assert_allclose(second[1][1], theirs[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(second[1][0]["weight"], theirs[2], rtol=1e-5, atol=1e-4)


@pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")
def test_switching_off_takes_effect_in_a_replay_compiled_before(counted):
    layer = nn.LayerNorm(16)
    x, g = _x(32, 16, scale=2.0), _x(32, 16, seed=1)
    previous = onednn.set_enabled(True)
    try:
        first = avalon.grad(_step, layer, x, g)
        calls = dict(counted)
        assert calls["forward"] >= 1 and calls["backward"] >= 1
        onednn.set_enabled(False)
        second = avalon.grad(_step, layer, x, g)  # the cached replay
    finally:
        onednn.set_enabled(previous)
    assert counted == calls  # no oneDNN call: the numpy path ran
    np.testing.assert_allclose(second[0], first[0], rtol=1e-5)
    np.testing.assert_allclose(second[1][1], first[1][1], rtol=1e-5, atol=1e-6)
    for key in ("weight", "bias"):
        np.testing.assert_allclose(second[1][0][key], first[1][0][key], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_the_split_over_threads_matches_the_whole_pass(dtype, tol, monkeypatch):
    # numpy's path in row blocks on two threads (every pass split, however small) against whole passes
    previous = onednn.set_enabled(False)
    try:
        x, g = _x(37, 3, 12, dtype=dtype, shift=0.3), _x(37, 3, 12, seed=1, dtype=dtype)
        w, b = _x(3, 12, seed=2, dtype=dtype), _x(3, 12, seed=3, dtype=dtype)
        monkeypatch.setattr(conv_gemm, "blas_threads", lambda: 2)
        monkeypatch.setattr(threads_split, "MIN_BYTES", 1)
        monkeypatch.setattr(ln, "PART_BYTES", 64)  # several parts per block
        seen = []
        original = threads_split._single
        monkeypatch.setattr(threads_split, "_single", lambda part, piece: seen.append(piece) or original(part, piece))
        stats = ln.layer_norm_stats(x, k=2)
        split = [stats, ln.layer_norm_apply(x, stats, w, b, eps=1e-5, k=2),
                 ln.layer_norm_backward(g, x, stats, w, eps=1e-5, k=2)]
        assert len(seen) == 6  # three passes, two blocks each
        monkeypatch.setattr(threads_split, "SPLIT", False)
        whole = [ln.layer_norm_stats(x, k=2)]
        whole += [ln.layer_norm_apply(x, whole[0], w, b, eps=1e-5, k=2),
                  ln.layer_norm_backward(g, x, whole[0], w, eps=1e-5, k=2)]
    finally:
        onednn.set_enabled(previous)
    assert len(seen) == 6
    for a, e in zip(split, whole):
        np.testing.assert_allclose(a, e, rtol=tol, atol=tol)
    theirs = _torch_layer_norm(x, (3, 12), g, w, b)
    np.testing.assert_allclose(split[1], theirs[0], rtol=tol, atol=tol)
    np.testing.assert_allclose(split[2][:x.size].reshape(x.shape), theirs[1], rtol=tol, atol=tol)


def test_non_contiguous_inputs_match_torch(onednn_switch, counted):
    x = _x(6, 8, 5, scale=2.0, shift=1.0).transpose(0, 2, 1)  # (6, 5, 8), strided
    g = _x(5, 8, 6, seed=1).transpose(2, 0, 1)
    w, b = _x(8, seed=2, shift=1.0), _x(8, seed=3)
    ours = _ours(x, (8,), g, w, b)
    theirs = _torch_layer_norm(np.ascontiguousarray(x), (8,), np.ascontiguousarray(g), w, b)
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a, t, rtol=1e-5, atol=1e-5)


def test_another_array_module_takes_the_plain_path():
    xps = pytest.importorskip("array_api_strict")
    x, g = _x(4, 3, 5, dtype=np.float64, shift=2.0), _x(4, 3, 5, seed=1, dtype=np.float64)
    w, b = _x(3, 5, seed=2, dtype=np.float64), _x(3, 5, seed=3, dtype=np.float64)
    stats = ln.layer_norm_stats(xps.asarray(x), k=2)
    y = ln.layer_norm_apply(xps.asarray(x), stats, xps.asarray(w), xps.asarray(b), eps=1e-5, k=2)
    flat = ln.layer_norm_backward(xps.asarray(g), xps.asarray(x), stats, xps.asarray(w), eps=1e-5, k=2)
    expected = ln.layer_norm_stats(x, k=2)
    for strict, plain in [(stats, expected), (y, ln.layer_norm_apply(x, expected, w, b, eps=1e-5, k=2)),
                          (flat, ln.layer_norm_backward(g, x, expected, w, eps=1e-5, k=2))]:
        assert type(strict).__module__.startswith("array_api_strict")
        np.testing.assert_allclose(np.from_dlpack(strict), plain, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "decomposed"])
@pytest.mark.parametrize("opset", [13, 17])
def test_onnx_export_of_either_recording_matches_onnxruntime(fused, opset, monkeypatch):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import avalon.onnx
    monkeypatch.setattr(normalization, "FUSED_LAYER_NORM", fused)
    layer = nn.LayerNorm((3, 4), eps=1e-3)
    layer.weight[...] = _x(3, 4, seed=1, shift=1.0)
    layer.bias[...] = _x(3, 4, seed=2)
    x = _x(2, 5, 3, 4, scale=2.0, shift=0.5)
    f = io.BytesIO()
    avalon.onnx.export(layer, x, f, opset_version=opset)
    ops = {n.op_type for n in onnx.load_from_string(f.getvalue()).graph.node}
    assert ("LayerNormalization" in ops) == (opset >= 17)
    session = ort.InferenceSession(f.getvalue(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(y, np.asarray(layer(x)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(avalon.onnx.load(f.getvalue())(x)), y, rtol=1e-5, atol=1e-5)
