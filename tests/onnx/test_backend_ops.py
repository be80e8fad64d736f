"""The operators added for onnx's backend suite differentiate: gradients of one-node models against
finite differences (their values are checked by the suite itself, tests/onnx/test_backend_suite.py)."""
import numpy as np
import pytest

import avalon
import avalon.onnx
from tests.onnx.test_operators import one_node

rng = np.random.default_rng(3)

CASES = [  # op, opset, attributes, further inputs (initializers), input shape
    ("LRN", 13, {"size": 3, "alpha": 0.3, "beta": 0.6, "bias": 1.5}, {}, (1, 4, 2, 3)),
    ("MeanVarianceNormalization", 13, {}, {}, (2, 3, 2, 2)),
    ("LpPool", 18, {"kernel_shape": [2, 2], "p": 3, "pads": [0, 1, 1, 0]}, {}, (1, 2, 3, 3)),
    ("CumProd", 26, {"exclusive": 1, "reverse": 1}, {"axis": np.int64(1)}, (1, 4, 3)),
    ("Shrink", 9, {"lambd": 0.3, "bias": 0.2}, {}, (2, 3, 4)),
    ("SwiGLU", 28, {"alpha": 1.3}, {"value": rng.standard_normal((2, 3, 4))}, (2, 3, 4)),
    ("RotaryEmbedding", 23, {"interleaved": 1, "rotary_embedding_dim": 4},
     {"cos": rng.standard_normal((5, 2)), "sin": rng.standard_normal((5, 2)),
      "positions": np.int64([[0, 3, 4]])}, (1, 2, 3, 6)),
    ("CausalConvWithState", 27, {"activation": "silu"},
     {"weight": rng.standard_normal((3, 1, 3)), "bias": rng.standard_normal(3),
      "past": rng.standard_normal((2, 3, 2))}, (2, 3, 4)),
    ("CenterCropPad", 18, {"axes": [1, 2]}, {"shape": np.int64([5, 2])}, (2, 3, 4)),
    ("ReverseSequence", 10, {"time_axis": 1, "batch_axis": 0}, {"lengths": np.int64([2, 4])}, (2, 4, 3)),
]


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")  # one lambda per case, by design
@pytest.mark.parametrize("op, opset, attrs, constants, shape", CASES, ids=[c[0] for c in CASES])
def test_gradients_match_finite_differences(op, opset, attrs, constants, shape):
    x = rng.standard_normal(shape) + (0.5 if op == "LpPool" else 0.0)
    model = avalon.onnx.load(one_node(op, opset, {"x": x}, constants, attrs, outputs=1))
    weights = rng.standard_normal(np.shape(model(x)))
    assert avalon.gradcheck(lambda v: (model(v) * weights).sum(), x)


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")
@pytest.mark.parametrize("mode, padding", [("linear", "zeros"), ("cubic", "border"), ("linear", "reflection")])
def test_grid_sample_gradients_reach_the_input_and_the_grid(mode, padding):
    """A spatial transformer trains both: the gradient with respect to the sampled input and to the
    positions (through the interpolation weights) match finite differences."""
    x = rng.standard_normal((1, 2, 4, 5))
    grid = rng.uniform(-1.2, 1.2, (1, 3, 2, 2))
    model = avalon.onnx.load(one_node("GridSample", 22, {"x": x, "grid": grid}, {},
                                      {"mode": mode, "padding_mode": padding}))
    weights = rng.standard_normal((1, 2, 3, 2))
    assert avalon.gradcheck(lambda v, g: (model(v, g) * weights).sum(), x, grid)


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")
def test_affine_grid_gradient_reaches_theta():
    theta = rng.standard_normal((2, 2, 3))
    model = avalon.onnx.load(one_node("AffineGrid", 20, {"theta": theta}, {"size": np.int64([2, 1, 3, 4])}, {}))
    weights = rng.standard_normal((2, 3, 4, 2))
    assert avalon.gradcheck(lambda t: (model(t) * weights).sum(), theta)


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")
def test_linear_attention_gradients_reach_every_input():
    """gated_delta with grouped heads: query, key, value, decay, beta and the past state all get
    finite-difference gradients (the recurrence is unrolled into ordinary ops)."""
    b, t, hq, hkv, d = 1, 3, 4, 2, 2
    inputs = {"q": rng.standard_normal((b, t, hq * d)), "k": rng.standard_normal((b, t, hkv * d)) / 2,
              "v": rng.standard_normal((b, t, hkv * d)), "past": rng.standard_normal((b, hkv, d, d)),
              "decay": -rng.uniform(0.1, 1, (b, t, hkv * d)), "beta": rng.uniform(0.2, 0.9, (b, t, hkv))}
    model = avalon.onnx.load(one_node("LinearAttention", 27, inputs, {},
                                      {"q_num_heads": hq, "kv_num_heads": hkv}, outputs=2))
    w_out, w_state = rng.standard_normal((b, t, hq * d)), rng.standard_normal((b, hkv, d, d))

    def loss(*values):
        y, state = model(*values)
        return (y * w_out).sum() + (state * w_state).sum()
    assert avalon.gradcheck(loss, *inputs.values())


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")
@pytest.mark.parametrize("attrs, last", [({}, 1), ({"inverse": 1}, 2), ({"onesided": 1}, 2),
                                         ({"inverse": 1, "onesided": 1}, 2)])
def test_dft_matches_numpy_and_differentiates(attrs, last):
    """DFT at opset 20 (axis as an input, dft_length padding) against numpy's FFT, and its gradient."""
    x = rng.standard_normal((2, 5, 3, last))
    model = avalon.onnx.load(one_node("DFT", 20, {"x": x}, {"length": np.int64(6), "axis": np.int64(1)}, attrs))
    signal = x[..., 0] + (1j * x[..., 1] if last == 2 else 0)
    inverse, onesided = attrs.get("inverse"), attrs.get("onesided")
    expected = (np.fft.irfft if onesided else np.fft.ifft)(signal, 6, axis=1) if inverse else \
        np.fft.fft(signal, 6, axis=1)[:, :4 if onesided else 6]
    got = model(x)
    np.testing.assert_allclose(got[..., 0], expected.real, atol=1e-12)
    if not (inverse and onesided):
        np.testing.assert_allclose(got[..., 1], expected.imag, atol=1e-12)
    weights = rng.standard_normal(got.shape)
    assert avalon.gradcheck(lambda v: (model(v) * weights).sum(), x)


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")
def test_stft_gradient():
    x, window = rng.standard_normal((1, 20, 1)), np.hanning(8)
    model = avalon.onnx.load(one_node("STFT", 17, {"x": x}, {"step": np.int64(3), "window": window}, {}))
    weights = rng.standard_normal(model(x).shape)
    assert avalon.gradcheck(lambda v: (model(v) * weights).sum(), x)


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")
@pytest.mark.parametrize("op, reduction", [("ScatterElements", "mul"), ("ScatterElements", "max"),
                                           ("ScatterND", "min"), ("ScatterND", "mul")])
def test_scatter_reductions_with_repeated_indices(op, reduction):
    """Repeated indices combine every update (against a plain loop), and the gradients with respect to
    the data and the updates match finite differences."""
    data = rng.standard_normal((3, 4))
    if op == "ScatterElements":
        indices, updates = np.int64([[1, 1, 0, 2], [1, 0, 0, 2]]), rng.standard_normal((2, 4))
        expected = data.copy()
        for (i, j), u in zip(np.ndindex(indices.shape), updates.ravel()):
            target = (indices[i, j], j)
            expected[target] = {"mul": np.multiply, "max": np.maximum}[reduction](expected[target], u)
        attrs = {"reduction": reduction, "axis": 0}
    else:
        indices, updates = np.int64([[2], [0], [2]]), rng.standard_normal((3, 4))
        expected = data.copy()
        for (row,), u in zip(indices, updates):
            expected[row] = {"mul": np.multiply, "min": np.minimum}[reduction](expected[row], u)
        attrs = {"reduction": reduction}
    model = avalon.onnx.load(one_node(op, 18, {"data": data, "indices": indices, "updates": updates}, {}, attrs))
    np.testing.assert_allclose(model(data, indices, updates), expected, rtol=1e-12)
    weights = rng.standard_normal(data.shape)
    assert avalon.gradcheck(lambda d, u: (model(d, indices, u) * weights).sum(), data, updates)


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")
def test_tensor_scatter_gradient():
    cache, update = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 2, 3))
    model = avalon.onnx.load(one_node("TensorScatter", 24, {"cache": cache, "update": update},
                                      {"at": np.int64([1, 4])}, {"mode": "circular"}))
    weights = rng.standard_normal(cache.shape)
    assert avalon.gradcheck(lambda c, u: (model(c, u) * weights).sum(), cache, update)


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")
def test_col2im_is_torch_fold_and_differentiates():
    import torch
    x = rng.standard_normal((2, 3 * 2 * 2, 20))
    attrs = {"strides": [1, 2], "dilations": [2, 1], "pads": [1, 1, 1, 1]}
    model = avalon.onnx.load(one_node("Col2Im", 18, {"x": x}, {"image": np.int64([5, 6]),
                                                                "block": np.int64([2, 2])}, attrs))
    expected = torch.nn.functional.fold(torch.from_numpy(x), (5, 6), (2, 2), dilation=(2, 1), padding=(1, 1),
                                        stride=(1, 2)).numpy()
    np.testing.assert_allclose(model(x), expected, rtol=1e-12)
    weights = rng.standard_normal((2, 3, 5, 6))
    assert avalon.gradcheck(lambda v: (model(v) * weights).sum(), x)
    with pytest.raises(avalon.onnx.OnnxError, match=r"\(2, 12, 19\) does not hold 20 block positions"):
        model(x[:, :, :19])


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")
def test_compress_differentiates_and_its_condition_input_is_static():
    data, condition = rng.standard_normal((3, 4)), np.array([True, False, True, True])
    model = avalon.onnx.load(one_node("Compress", 11, {"data": data, "condition": condition}, {}, {"axis": 1}))
    assert model.static_inputs == ["condition"]
    np.testing.assert_array_equal(model(data, condition), data[:, condition])
    np.testing.assert_array_equal(model(data, ~condition), data[:, ~condition])  # a new value traces again
    weights = rng.standard_normal((3, 3))
    assert avalon.gradcheck(lambda d: (model(d, condition) * weights).sum(), data)


def test_a_shape_decided_inside_the_model_is_refused_with_the_node_named():
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Greater", ["x", "zero"], ["mask"]),
         helper.make_node("NonZero", ["mask"], ["where"], name="find_positive")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("where", TensorProto.INT64, [1, None])],
        [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    model = avalon.onnx.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
    with pytest.raises(avalon.onnx.OnnxError, match=r"'find_positive' \(NonZero.*depends on the model's inputs"):
        model(np.float32([1, -1, 2, 0]))


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1], "storage_order": 1},
    {"kernel_shape": [2, 2], "dilations": [2, 1], "ceil_mode": 1},
])
def test_max_pool_indices_match_onnxruntime(attrs):
    import onnxruntime
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    model = one_node("MaxPool", 12, {"x": x}, {}, attrs, outputs=2)
    expected = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    values, indices = avalon.onnx.load(model)(x)
    np.testing.assert_array_equal(values, expected[0])
    np.testing.assert_array_equal(indices, expected[1])


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")
def test_max_unpool_puts_values_back_and_differentiates():
    x = rng.standard_normal((1, 2, 4, 4))
    pooled, indices = avalon.onnx.load(one_node("MaxPool", 12, {"x": x}, {}, {"kernel_shape": [2, 2],
                                                                               "strides": [2, 2]}, outputs=2))(x)
    unpool = avalon.onnx.load(one_node("MaxUnpool", 11, {"y": pooled, "i": indices}, {"shape": np.int64([1, 2, 5, 4])},
                                       {"kernel_shape": [2, 2], "strides": [2, 2]}))
    restored = unpool(pooled, indices)
    assert restored.shape == (1, 2, 5, 4)
    kept = np.zeros(x.size, bool)
    kept[indices.ravel()] = True
    np.testing.assert_array_equal(restored[:, :, :4], np.where(kept.reshape(x.shape), x, 0))
    weights = rng.standard_normal(restored.shape)
    assert avalon.gradcheck(lambda y: (unpool(y, indices) * weights).sum(), pooled)


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")
def test_det_matches_numpy_pivots_and_differentiates():
    a = rng.standard_normal((2, 3, 4, 4))
    a[0, 1, 0, 0] = 0.0  # a zero in the first pivot's place: the rows must swap
    singular = np.float64([[1, 2], [2, 4]])
    model = avalon.onnx.load(one_node("Det", 11, {"a": a}, {}, {}))
    np.testing.assert_allclose(model(a), np.linalg.det(a), rtol=1e-12)
    assert avalon.onnx.load(one_node("Det", 11, {"a": singular}, {}, {}))(singular) == 0
    weights = rng.standard_normal((2, 3))
    assert avalon.gradcheck(lambda v: (model(v) * weights).sum(), a)


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")
@pytest.mark.parametrize("opset, attrs", [(10, {"output_height": 2, "output_width": 3, "spatial_scale": 0.5}),
                                          (16, {"output_height": 3, "output_width": 2, "sampling_ratio": 2})])
def test_roi_align_matches_onnxruntime_and_differentiates(opset, attrs):
    import onnxruntime
    x = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    rois, where = np.float32([[0.5, 1, 5, 4.5], [-1, 0, 3, 7], [2, 2, 2.5, 2.5]]), np.int64([1, 0, 1])
    model = one_node("RoiAlign", opset, {"x": x, "rois": rois, "where": where}, {}, attrs)
    expected = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(
        None, {"x": x, "rois": rois, "where": where})[0]
    imported = avalon.onnx.load(model)
    np.testing.assert_allclose(imported(x, rois, where), expected, rtol=1e-5, atol=1e-6)
    weights = rng.standard_normal(expected.shape)
    assert avalon.gradcheck(lambda v: (imported(v, rois, where) * weights).sum(), x.astype(np.float64))


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")
def test_deform_conv_gradients_reach_input_weights_offsets_and_mask():
    """Two groups, two offset groups, a stride and padding; offsets move taps off the image too."""
    x, w = rng.standard_normal((1, 4, 4, 5)), rng.standard_normal((2, 2, 2, 2))
    offset, mask = rng.uniform(-1.5, 1.5, (1, 2 * 2 * 2 * 2, 4, 3)), rng.uniform(0, 1, (1, 2 * 2 * 2, 4, 3))
    attrs = {"group": 2, "offset_group": 2, "strides": [1, 2], "pads": [1, 1, 0, 1], "kernel_shape": [2, 2]}
    model = avalon.onnx.load(one_node("DeformConv", 19, {"x": x, "w": w, "offset": offset, "b": np.ones(2),
                                                         "mask": mask}, {}, attrs))
    weights = rng.standard_normal((1, 2, 4, 3))
    assert avalon.gradcheck(lambda *v: (model(*v) * weights).sum(), x, w, offset, np.ones(2), mask)
    with pytest.raises(avalon.onnx.OnnxError, match=r"offsets' positions \(3, 3\) are not the output's \(4, 3\)"):
        model(x, w, offset[:, :, :3], np.ones(2), mask[:, :, :3])


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")
@pytest.mark.parametrize("mode, scales", [("linear", [1, 1, 0.4, 0.7]), ("cubic", [1, 1, 0.3, 0.55]),
                                          ("linear", [1, 1, 0.5, 1.5])])
def test_antialiased_resize_matches_onnxruntime_and_differentiates(mode, scales):
    import onnxruntime
    x = rng.standard_normal((1, 2, 9, 8)).astype(np.float32)
    model = one_node("Resize", 18, {"x": x}, {"roi": np.float32([]), "scales": np.float32(scales)},
                     {"mode": mode, "antialias": 1})
    expected = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    imported = avalon.onnx.load(model)
    np.testing.assert_allclose(imported(x), expected, rtol=1e-4, atol=1e-5)
    weights = rng.standard_normal(expected.shape)
    assert avalon.gradcheck(lambda v: (imported(v) * weights).sum(), x.astype(np.float64))


def test_bitcast_keeps_the_bits_and_refuses_another_width():
    x = np.float32([1.0, -2.5, np.inf])
    model = avalon.onnx.load(one_node("BitCast", 26, {"x": x}, {}, {"to": 6}))  # INT32
    np.testing.assert_array_equal(model(x), x.view(np.int32))
    wider = avalon.onnx.load(one_node("BitCast", 26, {"x": x}, {}, {"to": 7}))  # INT64
    with pytest.raises(avalon.onnx.OnnxError, match="changes the width .32 to 64 bits"):
        wider(x)


@pytest.mark.parametrize("op, opset, inputs, constants, attrs", [
    ("GridSample", 16, {"x": rng.standard_normal((1, 2, 4, 5)).astype(np.float32),
                        "g": rng.uniform(-1.3, 1.3, (1, 3, 3, 2)).astype(np.float32)}, {},
     {"mode": "bicubic", "padding_mode": "border", "align_corners": 1}),
    ("GridSample", 16, {"x": rng.standard_normal((1, 2, 4, 5)).astype(np.float32),
                        "g": rng.uniform(-1.3, 1.3, (1, 3, 3, 2)).astype(np.float32)}, {}, {}),
    ("LpPool", 11, {"x": rng.standard_normal((1, 2, 5, 5)).astype(np.float32)}, {},
     {"kernel_shape": [3, 2], "p": 1, "strides": [2, 1], "auto_pad": "SAME_UPPER"}),
    ("MeanVarianceNormalization", 9, {"x": rng.standard_normal((2, 3, 2, 2)).astype(np.float32)}, {},
     {"axes": [1, 2]}),
    ("NonMaxSuppression", 11, {"boxes": np.float32([[[0.5, 0.5, 1, 1], [0.55, 0.5, 1, 1], [2, 2, 1, 1]]]),
                               "scores": np.float32([[[0.9, 0.8, 0.7], [0.1, 0.95, 0.2]]])},
     {"most": np.int64([2]), "iou": np.float32([0.5]), "least": np.float32([0.15])}, {"center_point_box": 1}),
    ("Unique", 11, {"x": np.float32([[1, 3], [2, 0], [1, 3], [0, 5]])}, {}, {"axis": 0, "sorted": 0}),
    ("ReverseSequence", 10, {"x": rng.standard_normal((4, 3, 2)).astype(np.float32),
                             "lengths": np.int64([1, 4, 2])}, {}, {}),
])
def test_older_forms_match_onnxruntime(op, opset, inputs, constants, attrs):
    import onnxruntime
    outputs = 4 if op == "Unique" else 1
    model = one_node(op, opset, inputs, constants, attrs, outputs=outputs)
    expected = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, inputs)
    got = avalon.onnx.load(model)(*inputs.values())
    for ours, theirs in zip(got if isinstance(got, tuple) else (got,), expected, strict=True):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def _f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


ORT_CASES = [  # op, opset, graph inputs, initializers, attributes
    ("DeformConv", 19, {"x": _f32(1, 4, 5, 5), "w": _f32(2, 2, 3, 3),
                        "off": rng.uniform(-2, 2, (1, 2 * 2 * 9, 3, 3)).astype(np.float32)}, {},
     {"group": 2, "offset_group": 2}),
    ("AffineGrid", 20, {"t": _f32(2, 2, 3)}, {"size": np.int64([2, 1, 3, 4])}, {"align_corners": 0}),
    ("AffineGrid", 20, {"t": _f32(1, 3, 4)}, {"size": np.int64([1, 1, 2, 3, 4])}, {"align_corners": 1}),
    ("STFT", 17, {"x": _f32(2, 40, 1)}, {"step": np.int64(5), "w": np.hanning(10).astype(np.float32)},
     {"onesided": 0}),
    ("STFT", 17, {"x": _f32(1, 30, 2)}, {"step": np.int64(4), "w": np.hamming(8).astype(np.float32)},
     {"onesided": 0}),
    ("MelWeightMatrix", 17, {}, {"b": np.int64(10), "l": np.int64(64), "r": np.int64(16000),
                                 "lo": np.float32(20), "hi": np.float32(7000)}, {}),
    ("DFT", 20, {"x": _f32(2, 7, 3, 2)}, {"len": np.int64(9), "axis": np.int64(-2)}, {}),
    ("DFT", 20, {"x": _f32(2, 7, 3, 2)}, {"len": np.int64(5), "axis": np.int64(1)}, {"inverse": 1}),
    ("LRN", 13, {"x": _f32(2, 5, 3, 3)}, {}, {"size": 5, "alpha": 0.01, "beta": 0.5, "bias": 2.0}),
    ("LpPool", 18, {"x": _f32(1, 2, 6, 7)}, {},
     {"kernel_shape": [3, 3], "p": 3, "ceil_mode": 1, "strides": [2, 2], "dilations": [1, 2]}),
    ("CenterCropPad", 18, {"x": _f32(3, 5, 4)}, {"s": np.int64([6, 3])}, {"axes": [-2, -1]}),
    ("HannWindow", 17, {}, {"n": np.int64(9)}, {"periodic": 0, "output_datatype": 11}),
    ("BlackmanWindow", 17, {}, {"n": np.int64(7)}, {}),
    ("Shrink", 9, {"x": _f32(3, 4)}, {}, {"lambd": 0.7, "bias": 0.3}),
    ("CumProd", 26, {"x": _f32(3, 4)}, {"a": np.int64(-1)}, {"exclusive": 1}),
    ("BitShift", 11, {"x": np.uint32([1, 255, 1 << 31]), "y": np.uint32([3, 33, 1])}, {}, {"direction": "RIGHT"}),
    ("BitShift", 11, {"x": np.uint8([1, 255, 3]), "y": np.uint8([7, 1, 9])}, {}, {"direction": "LEFT"}),
    ("Det", 22, {"x": _f32(3, 5, 5)}, {}, {}),
    ("ScatterElements", 18, {"d": _f32(3, 4), "i": np.int64([[0, 2, 1, 0], [0, 2, 2, 1]]), "u": _f32(2, 4)}, {},
     {"reduction": "max"}),
    ("ScatterND", 18, {"d": _f32(3, 4), "i": np.int64([[0, 1], [0, 1], [2, 3]]), "u": _f32(3)}, {},
     {"reduction": "mul"}),
    ("RotaryEmbedding", 23, {"x": _f32(2, 3, 4, 8), "cos": _f32(6, 4), "sin": _f32(6, 4),
                             "pos": np.int64([[0, 1, 2, 3], [2, 3, 4, 5]])}, {}, {}),
    ("TensorScatter", 24, {"c": _f32(2, 3, 6, 4), "u": _f32(2, 3, 2, 4), "w": np.int64([1, 5])}, {},
     {"mode": "circular"}),
    ("Col2Im", 18, {"x": _f32(1, 2 * 2 * 3, 3 * 4)}, {"img": np.int64([3, 5]), "blk": np.int64([2, 3])},
     {"pads": [0, 1, 1, 0]}),
    ("NonZero", 13, {"x": np.float32([[0, 1], [2, 0]])}, {}, {}),
    ("Compress", 11, {"x": _f32(3, 4), "c": np.bool_([True, False, True])}, {}, {"axis": -2}),
    ("LinearAttention", 27, {"q": _f32(1, 3, 8), "k": _f32(1, 3, 4), "v": _f32(1, 3, 4)}, {},
     {"q_num_heads": 4, "kv_num_heads": 2, "update_rule": "linear"}),
    ("CausalConvWithState", 27, {"x": _f32(2, 3, 5), "w": _f32(3, 1, 3)}, {}, {}),
    ("MaxUnpool", 11, {"x": _f32(1, 1, 2, 2), "i": np.int64([[[[0, 3], [10, 15]]]])}, {},
     {"kernel_shape": [2, 2], "strides": [2, 2]}),
]


@pytest.mark.parametrize("op, opset, inputs, constants, attrs", ORT_CASES,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(ORT_CASES)])
def test_matches_onnxruntime(op, opset, inputs, constants, attrs):
    """The operators added for the backend suite against onnxruntime, an implementation independent of
    onnx's reference (which the node tests compare with), on shapes and attributes the node tests skip."""
    import onnxruntime
    outputs = 2 if op in ("CausalConvWithState", "LinearAttention") else 1
    model = one_node(op, opset, inputs, constants, attrs, outputs=outputs)
    expected = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, inputs)
    got = avalon.onnx.load(model)(*inputs.values())
    for ours, theirs in zip(got if isinstance(got, tuple) else (got,), expected, strict=True):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
