"""Each operator at the opsets where its form changed (attributes that became inputs, changed defaults),
against onnxruntime, on one-node models; and its gradient against finite differences where it has one."""
import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

import avalon
import avalon.onnx

rng = np.random.default_rng(0)
X = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
M = rng.standard_normal((3, 4)).astype(np.float32)


def one_node(op, opset, inputs, constants=(), attrs=None, outputs=1):
    """A model of one `op` node: `inputs` (name -> array) are graph inputs, `constants` initializers."""
    constants = dict(constants)
    names = list(inputs) + list(constants)
    out = [f"y{i}" for i in range(outputs)]
    graph = helper.make_graph(
        [helper.make_node(op, names, out, name=f"the_{op}", **(attrs or {}))], "g",
        [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
         for k, v in inputs.items()],
        [helper.make_empty_tensor_value_info(o) for o in out],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in constants.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    return model.SerializeToString()


CASES = [
    ("Add", 7, {"a": X, "b": X[0, 0]}, {}, {}),
    ("Div", 13, {"a": X, "b": np.abs(X) + 1}, {}, {}),
    ("Pow", 12, {"a": np.abs(X) + 0.5}, {"p": np.float32(1.7)}, {}),
    ("Sqrt", 13, {"a": np.abs(X)}, {}, {}),
    ("Erf", 13, {"a": X}, {}, {}),
    ("LeakyRelu", 16, {"a": X}, {}, {"alpha": 0.2}),
    ("Elu", 6, {"a": X}, {}, {"alpha": 0.7}),
    ("Gelu", 20, {"a": X}, {}, {"approximate": "tanh"}),
    ("HardSigmoid", 6, {"a": X}, {}, {"alpha": 0.3, "beta": 0.4}),
    ("HardSwish", 14, {"a": X}, {}, {}),
    ("Softplus", 7, {"a": X}, {}, {}),
    ("Softmax", 11, {"a": X}, {}, {}),                      # default axis 1, over the flattened tail
    ("Softmax", 11, {"a": X}, {}, {"axis": 2}),
    ("Softmax", 13, {"a": X}, {}, {}),                      # default axis -1
    ("LogSoftmax", 9, {"a": X}, {}, {"axis": -1}),
    ("LogSoftmax", 13, {"a": X}, {}, {"axis": 1}),
    ("MatMul", 13, {"a": X}, {"w": rng.standard_normal((5, 2)).astype(np.float32)}, {}),
    ("Gemm", 7, {"a": M}, {"b": M, "c": np.float32([1, 2, 3])}, {"transB": 1, "alpha": 0.5, "beta": 2.0}),
    ("Gemm", 13, {"a": M.T.copy()}, {"b": M.T.copy()}, {"transA": 1}),
    ("Conv", 11, {"x": X}, {"w": rng.standard_normal((6, 3, 3, 2)).astype(np.float32)},
     {"pads": [1, 0, 2, 1], "strides": [2, 1], "dilations": [1, 2]}),
    ("Conv", 11, {"x": X}, {"w": rng.standard_normal((6, 1, 3, 3)).astype(np.float32)},
     {"group": 3, "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ("Conv", 11, {"x": X}, {"w": rng.standard_normal((2, 3, 2, 2)).astype(np.float32)},
     {"auto_pad": "SAME_LOWER"}),
    ("Conv", 22, {"x": X}, {"w": rng.standard_normal((2, 3, 3, 3)).astype(np.float32),
                            "b": np.float32([0.5, -1])}, {"auto_pad": "VALID"}),
    ("MaxPool", 12, {"x": X}, {}, {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
    ("MaxPool", 8, {"x": X}, {}, {"kernel_shape": [3, 3], "pads": [1, 0, 0, 1]}),
    ("AveragePool", 11, {"x": X}, {}, {"kernel_shape": [2, 3], "pads": [1, 1, 1, 1], "strides": [1, 2]}),
    ("AveragePool", 19, {"x": X}, {}, {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    ("AveragePool", 19, {"x": X}, {}, {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"}),
    ("AveragePool", 19, {"x": X}, {}, {"kernel_shape": [2, 3], "dilations": [2, 1], "pads": [1, 0, 0, 2],
                                       "ceil_mode": 1, "strides": [2, 2]}),
    ("AveragePool", 19, {"x": X}, {}, {"kernel_shape": [3, 3], "pads": [2, 2, 2, 2], "count_include_pad": 1}),
    ("MaxPool", 12, {"x": X}, {}, {"kernel_shape": [2, 2], "dilations": [1, 2], "pads": [0, 1, 1, 0],
                                   "ceil_mode": 1, "strides": [2, 3]}),
    ("MaxPool", 12, {"x": (X * 40 + 100).astype(np.uint8)}, {}, {"kernel_shape": [2, 2]}),
    ("GlobalAveragePool", 1, {"x": X}, {}, {}),
    ("BatchNormalization", 15, {"x": X}, {"s": np.float32([1, 2, 3]), "b": np.float32([0, 1, -1]),
                                          "m": np.float32([0.1, 0, -0.2]), "v": np.float32([1, 0.5, 2])},
     {"epsilon": 1e-3}),
    ("LayerNormalization", 17, {"x": X}, {"s": rng.standard_normal((4, 5)).astype(np.float32)}, {"axis": -2}),
    ("Flatten", 9, {"x": X}, {}, {"axis": 2}),
    ("Flatten", 13, {"x": X}, {}, {"axis": -1}),
    ("Reshape", 13, {"x": X}, {"s": np.int64([0, -1, 5])}, {}),
    ("Transpose", 13, {"x": X}, {}, {"perm": [0, 2, 3, 1]}),
    ("Transpose", 13, {"x": X}, {}, {}),
    ("Concat", 13, {"x": X, "z": X[:, :1]}, {}, {"axis": 1}),
    ("Squeeze", 11, {"x": X[:, :1]}, {}, {"axes": [1]}),
    ("Squeeze", 13, {"x": X[:, :1]}, {"axes": np.int64([-3])}, {}),
    ("Unsqueeze", 11, {"x": X}, {}, {"axes": [0, -1]}),
    ("Unsqueeze", 13, {"x": X}, {"axes": np.int64([1, 4])}, {}),
    ("Slice", 9, {"x": X}, {}, {"starts": [1, -3], "ends": [1000, -1], "axes": [2, 3]}),
    ("Slice", 13, {"x": X}, {"s": np.int64([-1, 0]), "e": np.int64([-(2 ** 63), 5]), "a": np.int64([2, 3]),
                             "t": np.int64([-1, 2])}, {}),
    ("Gather", 13, {"x": X}, {"i": np.int64([[0, -1], [2, 1]])}, {"axis": 2}),
    ("Expand", 13, {"x": X[:1, :, :1]}, {"s": np.int64([3, 1, 1, 1, 5])}, {}),
    ("Clip", 6, {"x": X}, {}, {"min": -0.5, "max": 0.7}),
    ("Clip", 13, {"x": X}, {"lo": np.float32(-0.3)}, {}),
    ("ReduceMean", 13, {"x": X}, {}, {"axes": [1, -1], "keepdims": 0}),
    ("ReduceMean", 18, {"x": X}, {"a": np.int64([2])}, {}),
    ("ReduceSum", 11, {"x": X}, {}, {"axes": [0]}),
    ("ReduceSum", 13, {"x": X}, {"a": np.int64([1, 2])}, {"keepdims": 0}),
    ("ReduceSum", 13, {"x": X}, {}, {}),
    ("Pad", 2, {"x": X}, {}, {"pads": [0, 0, 1, 2, 0, 0, 3, 0], "value": 1.5}),
    ("Pad", 13, {"x": X}, {"p": np.int64([0, 1, 0, 1, 0, 2, 0, 0]), "v": np.float32(-2)}, {}),
    ("Pad", 13, {"x": X}, {"p": np.int64([0, 0, 1, 2, 0, 0, 2, 1])}, {"mode": "reflect"}),
    ("Pad", 18, {"x": X}, {"p": np.int64([1, 2, 2, 1]), "v": np.float32(0), "a": np.int64([-1, 2])},
     {"mode": "edge"}),
    ("Split", 11, {"x": X}, {}, {"axis": 3, "split": [2, 3]}),
    ("Split", 13, {"x": X}, {"s": np.int64([1, 3])}, {"axis": 2}),
    ("Split", 13, {"x": X[:, :, :4]}, {}, {"axis": -2}),
    ("Split", 18, {"x": X}, {}, {"axis": 3, "num_outputs": 2}),
    ("Sub", 14, {"a": X, "b": X[:, :1]}, {}, {}),
    ("Mul", 7, {"a": X}, {"b": np.float32(3)}, {}),
    ("Div", 14, {"a": np.int64([7, -7, 6])}, {"b": np.int64([2, 2, -4])}, {}),
    ("Neg", 13, {"a": X}, {}, {}),
    ("Abs", 13, {"a": X}, {}, {}),
    ("Exp", 13, {"a": X}, {}, {}),
    ("Log", 13, {"a": np.abs(X) + 0.1}, {}, {}),
    ("Tanh", 13, {"a": X}, {}, {}),
    ("Sigmoid", 13, {"a": X}, {}, {}),
    ("Relu", 14, {"a": X}, {}, {}),
    ("Identity", 16, {"a": X}, {}, {}),
    ("Dropout", 7, {"a": X}, {}, {"ratio": 0.3}),
    ("Dropout", 13, {"a": X}, {"r": np.float32(0.3)}, {}),
    ("Cast", 13, {"a": X * 3}, {}, {"to": TensorProto.INT32}),
    ("Cast", 6, {"a": X}, {}, {"to": TensorProto.DOUBLE}),
    ("Equal", 13, {"a": np.int64([1, 2, 3])}, {"b": np.int64([1, 0, 3])}, {}),
    ("Shape", 13, {"a": X}, {}, {}),
    ("Shape", 15, {"a": X}, {}, {"start": 1, "end": -1}),
    ("ConstantOfShape", 9, {}, {"s": np.int64([2, 3])}, {"value": numpy_helper.from_array(np.float32([1.5]))}),
    ("ConstantOfShape", 20, {}, {"s": np.int64([4])}, {}),
    ("Range", 11, {}, {"a": np.float32(1), "b": np.float32(4), "d": np.float32(0.5)}, {}),
    ("Range", 11, {}, {"a": np.int64(10), "b": np.int64(2), "d": np.int64(-3)}, {}),
    ("Constant", 13, {}, {}, {"value_floats": [1.0, 2.5]}),
    ("Constant", 13, {}, {}, {"value": numpy_helper.from_array(M)}),
    ("Max", 13, {"a": X, "b": X[0, 0], "c": -X}, {}, {}),
    ("Min", 8, {"a": X, "b": X[:, :, :1]}, {}, {}),
    ("Sum", 13, {"a": X, "b": X[0]}, {}, {}),
    ("Mean", 13, {"a": X, "b": X * 3, "c": X[0, 0, 0]}, {}, {}),
    ("Less", 13, {"a": X, "b": X[:, :1]}, {}, {}),
    ("GreaterOrEqual", 16, {"a": X, "b": X[:, :1]}, {}, {}),
    ("And", 7, {"a": X > 0, "b": X < 1}, {}, {}),
    ("Not", 1, {"a": X > 0}, {}, {}),
    ("Sign", 13, {"a": X}, {}, {}),
    ("PRelu", 16, {"a": X}, {"s": np.float32([0.1, 0.2, 0.3]).reshape(3, 1, 1)}, {}),
    ("Selu", 6, {"a": X}, {}, {}),
    ("Celu", 12, {"a": X}, {}, {"alpha": 0.5}),
    ("Mish", 18, {"a": X}, {}, {}),
    ("ThresholdedRelu", 10, {"a": X}, {}, {"alpha": 0.3}),
    ("Tile", 13, {"x": X}, {"r": np.int64([1, 2, 1, 3])}, {}),
    ("GatherElements", 13, {"x": X}, {"i": rng.integers(-4, 4, (2, 3, 2, 5))}, {"axis": 2}),
    ("Trilu", 14, {"x": X}, {"k": np.int64(1)}, {}),
    ("Trilu", 14, {"x": X}, {}, {"upper": 0}),
    ("ArgMax", 13, {"x": X}, {}, {"axis": 1}),
    ("ArgMin", 13, {"x": np.round(X)}, {}, {"axis": -1, "keepdims": 0, "select_last_index": 1}),
    ("TopK", 1, {"x": X}, {}, {"k": 2}),
    ("TopK", 11, {"x": X}, {"k": np.int64([3])}, {"axis": 1, "largest": 0}),
    ("Einsum", 12, {"a": X, "b": M}, {}, {"equation": "nchw,cd->ndhw"}),
    ("ConvTranspose", 11, {"x": X}, {"w": rng.standard_normal((3, 4, 3, 2)).astype(np.float32),
                                     "b": np.float32([1, 2, 3, 4])},
     {"strides": [2, 1], "pads": [1, 0, 0, 1], "output_padding": [1, 0]}),
    ("ConvTranspose", 11, {"x": X}, {"w": rng.standard_normal((3, 2, 2, 2)).astype(np.float32)},
     {"strides": [2, 2], "group": 1, "dilations": [2, 1], "output_shape": [9, 9]}),
    ("ConvTranspose", 11, {"x": X}, {"w": rng.standard_normal((3, 2, 3, 3)).astype(np.float32)},
     {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ("ConvTranspose", 11, {"x": X}, {"w": rng.standard_normal((3, 2, 3, 3)).astype(np.float32)},
     {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    ("ConvTranspose", 22, {"x": X}, {"w": rng.standard_normal((3, 1, 3, 3)).astype(np.float32)},
     {"group": 3}),
    ("InstanceNormalization", 6, {"x": X}, {"s": np.float32([1, 2, 3]), "b": np.float32([0, 1, -1])}, {}),
    ("GroupNormalization", 21, {"x": rng.standard_normal((2, 4, 3)).astype(np.float32)},
     {"s": np.float32([1, 2, 3, 4]), "b": np.float32([0, 1, -1, 2])}, {"num_groups": 2}),
    ("GroupNormalization", 18, {"x": rng.standard_normal((2, 4, 3)).astype(np.float32)},
     {"s": np.float32([1, 2]), "b": np.float32([0, 1])}, {"num_groups": 2}),
    ("RMSNormalization", 23, {"x": X}, {"s": rng.standard_normal((4, 5)).astype(np.float32)}, {"axis": 2}),
    ("Resize", 10, {"x": X}, {"s": np.float32([1, 1, 2, 1.5])}, {}),
    ("Resize", 10, {"x": X}, {"s": np.float32([1, 1, 2, 1.5])}, {"mode": "linear"}),
    ("Resize", 13, {"x": X}, {"r": np.float32([]), "s": np.float32([1, 1, 1.5, 2])}, {"mode": "linear"}),
    ("Resize", 13, {"x": X}, {"r": np.float32([]), "s": np.float32([1, 1, 2, 0.6])}, {}),
    ("Resize", 11, {"x": X}, {"r": np.float32([]), "s": np.float32([]), "z": np.int64([2, 3, 7, 9])},
     {"mode": "linear", "coordinate_transformation_mode": "align_corners"}),
    ("Resize", 19, {"x": X}, {"r": np.float32([]), "s": np.float32([]), "z": np.int64([2, 3, 1, 9])},
     {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}),
    ("Resize", 13, {"x": X}, {"r": np.float32([]), "s": np.float32([1, 1, 2.5, 3])},
     {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "ceil"}),
    ("Resize", 13, {"x": X}, {"r": np.float32([]), "s": np.float32([1, 1, 0.5, 1.5])},
     {"nearest_mode": "round_prefer_ceil"}),
    ("Resize", 13, {"x": X}, {"r": np.float32([]), "s": np.float32([1, 1, 1.7, 0.8])},
     {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1}),
    ("Resize", 19, {"x": X}, {"r": np.float32([]), "s": np.float32([]), "z": np.int64([7, 7])},
     {"axes": [3, 2], "keep_aspect_ratio_policy": "not_larger"}),
    ("Resize", 13, {"x": X}, {"r": np.float32([0, 0, 0.2, 0.1, 1, 1, 0.9, 1.2]), "s": np.float32([]),
                              "z": np.int64([2, 3, 3, 6])},
     {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": 9.0}),
    ("Upsample", 9, {"x": X}, {"s": np.float32([1, 1, 2, 2])}, {}),
    ("Where", 16, {"c": X > 0, "x": X, "z": -X}, {}, {}),
]


def _id(case):
    op, opset, _, _, attrs = case
    return f"{op}-{opset}-" + "-".join(f"{k}" for k in attrs)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_matches_onnxruntime(case):
    op, opset, inputs, constants, attrs = case
    outputs = 2 if op in ("Split", "TopK") else 1
    data = one_node(op, opset, inputs, constants, attrs, outputs)
    expected = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, inputs)
    ours = avalon.onnx.load(data)(**inputs)
    for y, e in zip(ours if outputs > 1 else [ours], expected, strict=True):
        assert y.shape == e.shape
        np.testing.assert_allclose(y, e, rtol=1e-5, atol=1e-5)


GRADIENT_CASES = [
    ("Softmax", 11, {}, {}),
    ("Conv", 11, {"pads": [1, 0, 2, 1]}, {"w": rng.standard_normal((2, 2, 2, 2))}),
    ("ConvTranspose", 11, {"strides": [2, 1], "pads": [1, 0, 0, 1]}, {"w": rng.standard_normal((2, 3, 2, 2))}),
    ("MaxPool", 12, {"kernel_shape": [2, 2]}, {}),
    ("AveragePool", 19, {"kernel_shape": [2, 2], "auto_pad": "SAME_LOWER", "dilations": [1, 2]}, {}),
    ("LayerNormalization", 17, {}, {"s": np.ones(3) * 1.5}),
    ("InstanceNormalization", 6, {}, {"s": np.float64([1, 2]), "b": np.float64([0, 1])}),
    ("GatherElements", 13, {"axis": 3}, {"i": np.int64([[[[2, 0, 0]] * 3] * 2])}),
    ("Pad", 13, {"mode": "reflect"}, {"p": np.int64([0, 0, 1, 2, 0, 0, 2, 1])}),
    ("Resize", 13, {"mode": "linear"}, {"r": np.float64([]), "s": np.float32([1, 1, 1.5, 2])}),
    ("RMSNormalization", 23, {}, {"s": np.float64([1, 2, 3])}),
    ("ReduceLogSumExp", 18, {"keepdims": 0}, {"a": np.int64([1, 3])}),
    ("ReduceL2", 13, {"axes": [2]}, {}),
    ("CumSum", 14, {"exclusive": 1, "reverse": 1}, {"a": np.int64(2)}),
    ("Mod", 13, {"fmod": 1}, {"b": np.float64(-0.7)}),
    ("SoftmaxCrossEntropyLoss", 13, {"ignore_index": 1}, {"t": np.int64([[[0, 1, 1], [0, 0, 1], [1, 0, 0]]]),
                                                          "w": np.float64([0.3, 2.0])}),
    ("Attention", 23, {"is_causal": 1, "softcap": 2.0}, {"k": rng.standard_normal((1, 2, 4, 3)),
                                                        "v": rng.standard_normal((1, 2, 4, 5))}),
    ("ScatterElements", 18, {"axis": 3, "reduction": "add"}, {"i": np.int64([[[[2, 0], [1, 1], [0, -1]]] * 2]),
                                                             "u": rng.standard_normal((1, 2, 3, 2))}),
    ("ScatterND", 16, {}, {"i": np.int64([[0, 1, 2], [0, 0, -1]]), "u": rng.standard_normal((2, 3))}),
    ("NegativeLogLikelihoodLoss", 13, {"reduction": "sum"}, {"t": np.int64([[[0, 1, 1], [0, 0, 1], [1, 0, 0]]])}),
    ("Resize", 13, {"mode": "cubic"}, {"r": np.float64([]), "s": np.float32([1, 1, 1.5, 2])}),
]


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")  # one lambda per case, by design
@pytest.mark.parametrize("op, opset, attrs, constants", GRADIENT_CASES, ids=[c[0] for c in GRADIENT_CASES])
def test_gradients_match_finite_differences(op, opset, attrs, constants):
    x = rng.standard_normal((1, 2, 3, 3)).astype(np.float64)
    model = avalon.onnx.load(one_node(op, opset, {"x": x}, constants, attrs))
    weights = rng.standard_normal(model(x).shape)
    result = avalon.gradcheck(lambda v: (model(v) * weights).sum(), x)
    assert result


@pytest.mark.parametrize("op, opset, inputs, constants, attrs, outputs", [
    ("Attention", 24, {"q": X[:, :2, :, :4], "k": X[:, :2, :2, :4], "v": X[:, :2, :2, 1:],
                       "m": np.array([[True, False], [True, True], [False, True], [True, True]])},
     {"pk": X[:, :2, :3, :4], "pv": X[:, :2, 1:, 1:]}, {}, 3),
    ("LayerNormalization", 17, {"x": X}, {"s": rng.standard_normal(5).astype(np.float32)}, {}, 3),
    ("BatchNormalization", 15, {"x": X}, {"s": np.float32([1, 2, 3]), "b": np.float32([0, 1, -1]),
                                          "m": np.float32([0.1, 0, -0.2]), "v": np.float32([1, 0.5, 2])},
     {"training_mode": 1, "momentum": 0.8}, 3),
])
def test_every_output_matches_the_reference(op, opset, inputs, constants, attrs, outputs):
    """Optional outputs (LayerNormalization's Mean and InvStdDev, a training-mode BatchNormalization's
    running statistics, which onnxruntime's CPU build does not give) against onnx's reference."""
    from onnx.reference import ReferenceEvaluator

    data = one_node(op, opset, inputs, constants, attrs, outputs)
    expected = ReferenceEvaluator(onnx.load_from_string(data)).run(None, inputs)
    ours = avalon.onnx.load(data)(**inputs)
    for y, e in zip(ours if outputs > 1 else [ours], expected, strict=True):
        assert y.shape == e.shape
        np.testing.assert_allclose(y, e, rtol=1e-5, atol=1e-5)
