"""avalon.onnx.export primitive by primitive: functions using each family export, pass the checker
and give Avalon's values in onnxruntime, at the default opset, the oldest (9), each opset where a
form changed up to 13, the one before LayerNormalization (16) and the newest; where a family's
primitive needs an opset newer than the one asked, the refusal names it."""
import io

import numpy as np
import onnx
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
import avalon.onnx
from avalon.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from tests.onnx.test_export_models import repeated, run

rng = np.random.default_rng(0)
V = rng.standard_normal((3, 5)).astype(np.float32)
X = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
S = rng.standard_normal((2, 4, 6)).astype(np.float32)
ONES = np.ones


def activations(x):
    return [F.gelu(x), F.gelu(x, approximate="tanh"), F.silu(x), F.leaky_relu(x, 0.1), F.elu(x), F.selu(x),
            F.softplus(x), F.mish(x), F.hardtanh(x), F.relu6(x), F.hardsigmoid(x), F.hardswish(x), F.logsigmoid(x),
            F.softsign(x), F.celu(x), F.sigmoid(x), F.tanh(x), F.relu(x), F.softmax(x, dim=0), F.log_softmax(x, -1),
            F.glu(avalon.cat([x, x * 2], 1))]


def elementwise(x):
    return [x * 2 - 1, 3 / (x + 5), x ** 2, abs(x) ** 0.5, np.floor_divide(x, 0.7), np.remainder(x, 0.7), x > 0.2,
            (x < 0) | (x > 1), ~(x > 0), np.where(x > 0, x, 0.0), np.clip(x, -0.5, 0.5), np.sign(x), np.trunc(x * 3),
            np.rint(x * 3), np.floor(x), np.ceil(x), np.log1p(abs(x)), np.expm1(x), np.exp2(x), np.log2(abs(x) + 1),
            np.log10(abs(x) + 1), np.isfinite(x), np.isnan(x), x.astype(np.float64), np.maximum(x, 0.1),
            np.minimum(x, V), avalon.rsqrt(abs(x) + 1), np.sin(x), np.cos(x), np.arctan(x), np.sinh(x), np.square(x),
            (x > 0) + (x < -1), (x > 0) * (x < 1), np.maximum(x > 0, x < -1), np.arctan2(x, V),
            np.arctan2(np.maximum(x, 0), np.minimum(V, 0)), np.arctan2(-x, np.zeros_like(x))]


def integers(i):
    return [i // 2, i % 3, i * 2 + 1, i % -3, i // -2, -7 // (i * 0 + 2) + i % (i * 0 - 4), i / 2, -i, abs(i), i.astype(np.float32) * 0.5, i == 2, i != 1, np.maximum(i, 0),
            i >= 1, (i > 0) & (i < 3), (i > 0) | (i < -2), ~(i > 0)]


def reductions(x):
    return [x.sum(), x.mean(axis=1), x.max(axis=0, keepdims=True), x.min(), x.prod(axis=1), (x > 0).any(axis=1),
            (x > 0).all(), x.argmax(axis=1), x.argmin(), np.argmax(x, axis=0, keepdims=True), x.var(axis=1, ddof=1),
            x.std(axis=0), avalon.logsumexp(x, 1), np.cumsum(x, axis=1), avalon.amax(x, dim=1), x.sum(axis=(0, 1)),
            np.argsort(x, 1), np.sort(x, 0), avalon.topk(x, 2, dim=1)[0], avalon.topk(x, 2, dim=0, largest=False)[1]]


def shapes(x):
    return [x.reshape(2, -1), x.transpose(1, 0, 2, 3), avalon.cat([x, x], 2), avalon.stack([x, x], 1),
            F.pad(x, (1, 2, 0, 1)), F.pad(x, (1, 1), value=2.0), np.flip(x, axis=(2, 3)), np.tile(x, (1, 2, 1, 1)),
            np.tile(x[0, 0], (2, 1, 1)), avalon.repeat_interleave(x, 2, dim=1), x[:, None, 1], x[..., ::2, -1],
            x[0, :, 1:4:2], x[:, :, ::-1], avalon.split(x, 2, dim=1)[1], avalon.squeeze(x[:, :1], 1),
            avalon.unsqueeze(x, 0), avalon.flatten(x, 1), avalon.chunk(x, 3, dim=2)[2], avalon.narrow(x, 3, 1, 2),
            avalon.roll(x, 1, 3), avalon.permute(x, (0, 2, 3, 1)), avalon.movedim(x, 1, 3), avalon.tril(x),
            avalon.triu(x, 1), np.broadcast_to(x[:, :1], (2, 3, 6, 6)) + 0]


def indexing(x, i):
    return [x[i], x[:, i], x[i, 1], np.take(x, i, axis=1), F.embedding(i, x), avalon.index_select(x, 1, i),
            avalon.gather(x, 1, np.stack([i, i[::-1]], 1)), avalon.take_along_dim(x, np.stack([i, i], 1), 1)]


W = rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.1


def convolutions(x, w=W):
    return [F.conv2d(x, w, stride=2, padding=(1, 0), dilation=(1, 2)),
            F.conv2d(x, np.ones((3, 1, 3, 3), np.float32), groups=3, padding="same"),
            F.conv1d(x[:, :, 0], np.ones((6, 1, 2), np.float32), groups=3, padding=1),
            F.conv1d(x[0, :, 0], np.ones((2, 3, 2), np.float32)),
            F.conv_transpose2d(x, w.transpose(1, 0, 2, 3)[:, :2], stride=2, padding=1, output_padding=1),
            F.conv_transpose2d(x, np.ones((3, 1, 2, 2), np.float32) * 0.1, groups=3, dilation=2),
            F.conv3d(x[:, :, None], np.ones((2, 3, 1, 2, 2), np.float32)),
            F.unfold(x, 2, padding=1, stride=(1, 2)), F.unfold(x, (3, 2), dilation=(1, 2))]


def pools(x):
    return [F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True), F.max_pool2d(x, 2, dilation=2),
            F.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False), F.avg_pool2d(x, 3, 2, ceil_mode=True),
            F.avg_pool2d(x, 2, divisor_override=3), F.adaptive_avg_pool2d(x, (4, 3)), F.adaptive_max_pool2d(x, 3),
            F.max_pool1d(x[:, :, 0], 2), F.avg_pool1d(x[:, :, 0], 3, 1, 1), F.max_pool2d(x[0], 2),
            F.avg_pool3d(x[:, :, None], (1, 2, 2))]


def resampling(x):
    return [F.interpolate(x, scale_factor=2, mode="nearest"), F.interpolate(x, size=(9, 4), mode="bilinear"),
            F.interpolate(x, size=(5, 7), mode="bilinear", align_corners=True),
            F.interpolate(x, size=(4, 5), mode="nearest-exact"), F.interpolate(x[:, :, 0], size=9, mode="linear"),
            F.pixel_shuffle(avalon.cat([x, x, x, x], 1)[:, :4], 2), F.pixel_unshuffle(x, 2)]


def normalisation(x):
    return [F.layer_norm(x, (6,)), F.layer_norm(x, (6, 6), np.full((6, 6), 2, np.float32), None),
            F.group_norm(x, 3, ONES(3, np.float32), np.zeros(3, np.float32)), F.instance_norm(x),
            F.batch_norm(x, None, None, training=True), F.rms_norm(x, (6, 6)), F.normalize(x, dim=1),
            F.local_response_norm(x, 2)]


def attention(q):
    return [F.scaled_dot_product_attention(q, q * 0.5, q + 1), F.scaled_dot_product_attention(q, q, q, is_causal=True),
            F.scaled_dot_product_attention(q, q, q, attn_mask=np.tril(ONES((4, 4), bool))),
            F.scaled_dot_product_attention(q, q, q, attn_mask=ONES((4, 4), np.float32) * 0.3)]


def losses(x, t):
    w = np.array([1, 2, 0.5, 1, 3], np.float32)
    return [F.cross_entropy(x, t), F.mse_loss(x, x * 0.5), F.nll_loss(F.log_softmax(x, 1), t),
            F.binary_cross_entropy_with_logits(x, (x > 0).astype(np.float32)),
            F.binary_cross_entropy_with_logits(x, (x > 0).astype(np.float32), pos_weight=w),
            F.cross_entropy(x, t, reduction="none", label_smoothing=0.1, weight=w),
            F.cross_entropy(x, np.array([1, -100, 4]), ignore_index=-100, reduction="sum"),
            F.cross_entropy(x, F.softmax(x * 2, 1)), F.smooth_l1_loss(x, x * 0.3), F.l1_loss(x, -x),
            F.binary_cross_entropy(F.sigmoid(x), (x > 0).astype(np.float32))]


SORTED = np.array([-1.5, -0.5, -0.5, 0.0, 0.25, 1.0, np.nan], np.float32)


def scans(x):
    """Running products, searches in a sorted array (ties on both sides, NaN last as numpy sorts it)
    and col2im."""
    v = avalon.cat([x[0, 0], SORTED[None, :6].repeat(6, 0), np.full((6, 1), np.nan, np.float32)], 1)
    return [np.cumprod(x, axis=1), np.cumprod(x[0, 0]), np.cumprod(x[:, 0], axis=-1),
            np.searchsorted(SORTED, v), np.searchsorted(SORTED, v, side="right"), np.searchsorted(SORTED[:6], 0.3),
            F.fold(F.unfold(x, 2, padding=1, stride=(1, 2)), (6, 6), 2, padding=1, stride=(1, 2)),
            F.fold(x.reshape(2, 18, 6), (7, 8), (2, 3), dilation=(2, 1), stride=(2, 3)),
            F.fold(x[0].reshape(3, 36)[:, :20], (4, 9), (1, 3), stride=(1, 2), padding=(0, 1))]


CASES = {
    "activations": (activations, (V,)), "elementwise": (elementwise, (V,)),
    "integers": (integers, (rng.integers(-3, 5, (3, 5)),)), "reductions": (reductions, (V,)),
    "shapes": (shapes, (X,)), "indexing": (indexing, (V, np.array([2, 0, 1]))), "convolutions": (convolutions, (X,)),
    "pools": (pools, (X,)), "resampling": (resampling, (X,)), "normalisation": (normalisation, (X,)),
    "attention": (attention, (S,)), "losses": (losses, (V, np.array([1, 0, 4]))), "scans": (scans, (X,)),
}


def check(fn, args, opset=None, **options):
    def f(*a):
        return tuple(fn(*a))
    buffer = io.BytesIO()
    avalon.onnx.export(f, args, buffer, opset_version=opset, **options)
    onnx.checker.check_model(onnx.load_from_string(buffer.getvalue()), full_check=True)
    return buffer.getvalue(), f


# (family, opset) -> {primitive: the ONNX form it needs, and from which opset}
TOO_NEW = {
    ("elementwise", 9): {"rint": "Round needs opset 11"}, ("elementwise", 10): {"rint": "Round needs opset 11"},
    ("pools", 9): {"max_pool": "MaxPool with attribute dilations needs opset 10"},
}
for _opset in (9, 10):
    TOO_NEW["reductions", _opset] = {"cumsum": "CumSum needs opset 11",
                                     "argsort": "TopK with attribute largest, sorted needs opset 11"}


@pytest.mark.parametrize("opset", [None, 9, 10, 11, 12, 13, 16, 17, onnx.defs.onnx_opset_version()])
@pytest.mark.parametrize("name", CASES)
def test_family_matches_onnxruntime(name, opset):
    fn, args = CASES[name]
    if (name, opset) in TOO_NEW:
        with pytest.raises(avalon.onnx.UnexportablePrimitive) as caught:
            check(fn, args, opset)
        reasons = {k: why for k, (_, why, _) in caught.value.primitives.items()}
        assert reasons == {k: f"its ONNX form {v} or newer (opset_version={opset})"
                           for k, v in TOO_NEW[name, opset].items()}
        return
    data, f = check(fn, args, opset)
    for k, (got, want) in enumerate(zip(run(data, *args), f(*args))):
        want = np.asarray(want)
        assert got.dtype == want.dtype and got.shape == want.shape, k
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"{name} result {k}")


RECURRENCES = {
    "gru": (lambda: nn.GRU(6, 5, batch_first=True), "GRU", 1),
    "rnn_relu": (lambda: nn.RNN(6, 5, nonlinearity="relu"), "RNN", 1),
    "rnn_bidirectional_no_bias": (lambda: nn.RNN(6, 4, bidirectional=True, bias=False), "RNN", 2),
    "lstm_2_layers_bidirectional": (lambda: nn.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True),
                                    "LSTM", 4),
    "lstm_no_bias": (lambda: nn.LSTM(6, 4, bias=False), "LSTM", 1),
    "gru_2_layers_bidirectional": (lambda: nn.GRU(6, 4, num_layers=2, bidirectional=True), "GRU", 4),
}


@pytest.mark.parametrize("opset", [9, None])
@pytest.mark.parametrize("name", RECURRENCES)
def test_recurrences_are_onnx_operators_with_a_dynamic_sequence_length(name, opset):
    """Exported at 5 steps and a batch of 3, run at 9 steps and a batch of 4: output and final
    states (h_n, c_n) as Avalon's; the file holds one ONNX operator per layer and direction, with
    the layer's weights as X's and R's sources, and imports back to the same values."""
    make, op_type, count = RECURRENCES[name]
    avalon.manual_seed(0)
    model = make().eval()
    seq, batch = (1, 0) if model.batch_first else (0, 1)
    x = np.moveaxis(rng.standard_normal((5, 3, 6)).astype(np.float32), 0, seq)
    data, f = check(lambda m, x: _flat(m(x)), (model, x), opset, input_names=["x"],
                    dynamic_axes={"x": {seq: "seq", batch: "batch"}})
    ops = [n.op_type for n in onnx.load_from_string(data).graph.node]
    assert ops.count(op_type) == count and "MatMul" not in ops  # the input projections are the operators' W
    x9 = np.moveaxis(rng.standard_normal((9, 4, 6)).astype(np.float32), 0, seq)
    want = f(model, x9)
    for got, w in zip(run(data, x9), want):
        np.testing.assert_allclose(got, np.asarray(w), rtol=1e-4, atol=1e-5)
    for got, w in zip(avalon.onnx.load(data)(x9), want):
        np.testing.assert_allclose(np.asarray(got), np.asarray(w), rtol=1e-4, atol=1e-5)


def packed(m, x):
    out, state = m(pack_padded_sequence(x, [5, 3, 2]))
    return [pad_packed_sequence(out)[0]] + (list(state) if isinstance(state, tuple) else [state])


@pytest.mark.parametrize("make", [lambda: nn.GRU(6, 5), lambda: nn.LSTM(6, 4, bidirectional=True)])
def test_packed_sequences_unroll_and_their_length_stays_fixed(make):
    """A PackedSequence's masked recurrence has no ONNX operator (their outputs past a sequence's end
    differ): it is unrolled over the traced steps, and a dynamic sequence axis is refused."""
    avalon.manual_seed(0)
    model = make().eval()
    x = rng.standard_normal((5, 3, 6)).astype(np.float32)
    data, f = check(packed, (model, x), input_names=["x"])
    assert not {"LSTM", "GRU"} & {n.op_type for n in onnx.load_from_string(data).graph.node}
    for got, want in zip(run(data, x), f(model, x)):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-4, atol=1e-5)
    with pytest.raises(avalon.onnx.OnnxError, match="cannot follow the dynamic axes") as caught:
        check(packed, (model, x), input_names=["x"], dynamic_axes={"x": {0: "seq"}})
    assert "m(pack_padded_sequence(x, [5, 3, 2]))" in str(caught.value)


def test_float64_recurrences_unroll_as_onnxruntime_runs_its_recurrent_operators_in_float32_only():
    avalon.manual_seed(0)
    model = nn.GRU(6, 5, dtype=np.float64).eval()
    x = rng.standard_normal((5, 3, 6))
    data, f = check(lambda m, x: _flat(m(x)), (model, x), input_names=["x"], dynamic_axes={"x": {1: "batch"}})
    assert "GRU" not in {n.op_type for n in onnx.load_from_string(data).graph.node}
    x4 = rng.standard_normal((5, 4, 6))
    for got, want in zip(run(data, x4), f(model, x4)):
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-12)


def _flat(result):
    out, state = result
    return [out] + (list(state) if isinstance(state, tuple) else [state])


def bitwise(i):
    return [i & 6, i | 1, i ^ 5, ~i]


def test_integer_bitwise_operators_from_opset_18_and_refused_before():
    i = rng.integers(-3, 5, (3, 5))
    data, f = check(bitwise, (i,), 18)
    for got, want in zip(run(data, i), f(i)):
        np.testing.assert_array_equal(got, np.asarray(want))
    with pytest.raises(avalon.onnx.UnexportablePrimitive, match="need opset 18 or newer") as caught:
        check(bitwise, (i,), 17)
    assert set(caught.value.primitives) == {"bitwise_and", "bitwise_or", "bitwise_xor", "invert"}


def scatters(x):
    return [avalon.index_add(x, 1, np.array([0, 2, 0]), x[:, :3]),
            avalon.scatter(x, 1, np.array([[0], [1], [2]]), x[:, :1]),
            avalon.scatter_add(x, 0, np.array([[0, 1, 2, 0, 1]]), x[:1]),
            avalon.index_add(x, 0, np.array([2, 2]), x[:2] * 3), F.one_hot(np.array([1, 0, 3]), 4),
            avalon.index_add(x > 0, 1, np.array([0, 2, 0]), x[:, :3] > 1)]  # booleans add as logical or


@pytest.mark.parametrize("opset", [9, 11, 15, 16])
def test_scatters_accumulate_repeated_positions_at_every_opset(opset):
    """ScatterND's reduction from opset 16, a one-hot product before it (repeated indices add up)."""
    data, f = check(scatters, (V,), opset)
    ops = {n.op_type for n in onnx.load_from_string(data).graph.node}
    assert ("ScatterND" in ops) == (opset >= 16)
    for got, want in zip(run(data, V), f(V)):
        assert got.dtype == np.asarray(want).dtype
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6, atol=1e-6)


K = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
A, B = np.array([0, 1, 1, 0, 1, 0, 1]), np.array([[1], [0], [1]])


def mixed_indices(x):
    """Index arrays mixed with integers, new axes and slices: numpy puts the indexed axes in place
    of the first where the arrays and integers are adjacent (a new axis parts them), else first."""
    return [x[A, None, A], x[A, 0, A], x[:, A, None, A], x[:, A, 0, None], x[:, 0, :, A], x[:, A, 0],
            x[B, A, 1:3], x[None, A, B], x[..., A, -1], x[1, A, :, A], x[A, :, B, ::2], x[-1, :, A]]


@pytest.mark.parametrize("opset", [9, 11, None])
def test_several_index_arrays_with_integers_and_new_axes_follow_numpy(opset):
    """GatherND from opset 11; before it a Gather of the flat positions."""
    data, f = check(mixed_indices, (K,), opset)
    for k, (got, want) in enumerate(zip(run(data, K), f(K))):
        np.testing.assert_array_equal(got, np.asarray(want), err_msg=f"result {k}")


def test_multihead_attention_and_float64():
    avalon.manual_seed(0)
    attn = nn.MultiheadAttention(6, 2, batch_first=True).eval()
    data, _ = check(lambda m, q: m(q, q * 0.5, q, need_weights=True), (attn, S[:, :, :6]), input_names=["q"],
                    dynamic_axes={"q": [0]})
    q = repeated(S[:, :, :6], 3)
    for got, want in zip(run(data, q), attn(q, q * 0.5, q, need_weights=True)):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-4, atol=1e-5)
    x64 = V.astype(np.float64)
    data, f = check(lambda x: [np.tanh(x @ x.T), F.softmax(x, 1)], (x64,))
    for got, want in zip(run(data, x64), f(x64)):
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-12)


def test_dropout_in_eval_mode_is_identity_and_buffers_stay_named():
    model = nn.Sequential(nn.Linear(5, 5), nn.Dropout(0.5), nn.BatchNorm1d(5)).eval()
    data, _ = check(lambda m, x: [m(x)], (model, V))
    graph = onnx.load_from_string(data).graph
    assert "RandomUniform" not in {n.op_type for n in graph.node}
    assert {"2.running_mean", "2.running_var"} <= {t.name for t in graph.initializer}
    np.testing.assert_allclose(run(data, V)[0], np.asarray(model(V)), rtol=1e-5, atol=1e-6)
