"""LSTM, GRU and RNN nodes with the attributes onnx's node tests leave out (sequence_lens, initial states,
layout, clip, input_forget, peepholes, activations with alpha/beta, linear_before_reset) against
onnxruntime, on the fused path and the unrolled one; gradients of both against finite differences."""
import numpy as np
import onnxruntime
import pytest
from onnx import helper, numpy_helper

import avalon
import avalon.onnx

rng = np.random.default_rng(0)
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
SLOTS = ["x", "w", "r", "b", "sequence_lens", "initial_h", "initial_c", "p"]


def recurrent_model(op, attrs, inputs, outputs=2):
    """One `op` node whose inputs are the graph inputs in `inputs` (slot name -> array; a missing slot
    is left empty); every output is a graph output."""
    last = max(SLOTS.index(k) for k in inputs)
    names = [k if k in inputs else "" for k in SLOTS[:last + 1]]
    out = [f"y{i}" for i in range(outputs)]
    graph = helper.make_graph(
        [helper.make_node(op, names, out, name=f"the_{op}", **attrs)], "g",
        [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
         for k, v in inputs.items()],
        [helper.make_empty_tensor_value_info(o) for o in out])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8).SerializeToString()


def operands(op, directions=1, steps=4, batch=3, features=2, size=3, dtype=np.float32, batch_first=False,
             lengths=None, states=False, peepholes=False):
    gates = GATES[op]
    x_shape = (batch, steps, features) if batch_first else (steps, batch, features)
    state_shape = (batch, directions, size) if batch_first else (directions, batch, size)
    inputs = {"x": rng.standard_normal(x_shape), "w": rng.standard_normal((directions, gates * size, features)),
              "r": rng.standard_normal((directions, gates * size, size)) * 0.5,
              "b": rng.standard_normal((directions, 2 * gates * size)) * 0.3}
    if lengths is not None:
        inputs["sequence_lens"] = np.int32(lengths)
    if states:
        inputs["initial_h"] = rng.standard_normal(state_shape)
        if op == "LSTM":
            inputs["initial_c"] = rng.standard_normal(state_shape)
    if peepholes:
        inputs["p"] = rng.standard_normal((directions, 3 * size))
    return {k: v.astype(dtype) if k != "sequence_lens" else v for k, v in inputs.items()}


CASES = [  # op, attrs, operand options
    ("LSTM", {}, {"states": True}),
    ("LSTM", {"direction": "bidirectional"}, {"directions": 2, "states": True, "lengths": [4, 2, 3]}),
    ("LSTM", {"direction": "reverse"}, {"lengths": [1, 4, 3]}),
    ("LSTM", {"layout": 1, "direction": "bidirectional"}, {"directions": 2, "batch_first": True, "states": True}),
    ("LSTM", {"clip": 0.7}, {"states": True}),
    ("LSTM", {"input_forget": 1}, {}),
    ("LSTM", {}, {"peepholes": True, "states": True}),
    ("LSTM", {"clip": 0.5, "direction": "bidirectional"}, {"directions": 2, "peepholes": True, "lengths": [3, 4, 1]}),
    ("LSTM", {"activations": ["HardSigmoid", "LeakyRelu", "Softsign"], "activation_alpha": [0.3, 0.2],
              "activation_beta": [0.4]}, {}),
    ("GRU", {"linear_before_reset": 1}, {"states": True}),
    ("GRU", {"linear_before_reset": 1, "direction": "bidirectional"}, {"directions": 2, "lengths": [2, 4, 1]}),
    ("GRU", {"direction": "reverse"}, {"states": True, "lengths": [3, 3, 4]}),
    ("GRU", {"layout": 1, "clip": 0.5}, {"batch_first": True}),
    ("GRU", {"activations": ["Sigmoid", "Elu", "Sigmoid", "Affine"], "direction": "bidirectional",
             "activation_alpha": [0.5, 2.0], "activation_beta": [0.1]}, {"directions": 2}),
    ("RNN", {"activations": ["Relu"]}, {"states": True, "lengths": [4, 1, 2]}),
    ("RNN", {"direction": "bidirectional", "layout": 1}, {"directions": 2, "batch_first": True}),
    ("RNN", {"activations": ["ScaledTanh"], "activation_alpha": [0.8], "activation_beta": [1.5], "clip": 1.0}, {}),
]
IDS = ["-".join([op] + [k if k == "activations" else f"{k}={v}" for k, v in attrs.items()
                         if not k.startswith("activation_")] + list(options)) for op, attrs, options in CASES]


def _runtime(data, inputs):
    return onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, inputs)


@pytest.mark.parametrize("op, attrs, options", CASES, ids=IDS)
def test_outputs_match_onnxruntime(op, attrs, options):
    inputs = operands(op, **options)
    outputs = 3 if op == "LSTM" else 2
    data = recurrent_model(op, {"hidden_size": 3, **attrs}, inputs, outputs)
    ours = avalon.onnx.load(data)(**inputs)
    if attrs.get("layout") == 1:  # onnxruntime has no batch-first form: run it time first, transposed
        seq_first = {k: np.swapaxes(v, 0, 1) if k in ("x", "initial_h", "initial_c") else v
                     for k, v in inputs.items()}
        data = recurrent_model(op, {"hidden_size": 3, **attrs, "layout": 0}, seq_first, outputs)
        y, *finals = _runtime(data, seq_first)
        expected = [np.transpose(y, (2, 0, 1, 3))] + [np.swapaxes(s, 0, 1) for s in finals]
    else:
        expected = _runtime(data, inputs)
    for y, e in zip(ours, expected, strict=True):
        assert y.shape == e.shape and y.dtype == e.dtype
        np.testing.assert_allclose(y, e, rtol=1e-4, atol=1e-5)


GRADIENT_CASES = [CASES[i] for i in (1, 4, 7, 10, 12, 14, 16)]  # fused and unrolled, each op


@pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")  # one lambda per case, by design
@pytest.mark.parametrize("op, attrs, options", GRADIENT_CASES, ids=[IDS[CASES.index(c)] for c in GRADIENT_CASES])
def test_gradients_match_finite_differences(op, attrs, options):
    inputs = operands(op, dtype=np.float64, steps=3, batch=2, **{**options, "lengths": None})
    if options.get("lengths"):
        inputs["sequence_lens"] = np.int32(options["lengths"][:2]).clip(max=3)
    outputs = 3 if op == "LSTM" else 2
    model = avalon.onnx.load(recurrent_model(op, {"hidden_size": 3, **attrs}, inputs, outputs))
    lengths = {"sequence_lens": inputs.pop("sequence_lens")} if "sequence_lens" in inputs else {}
    names = list(inputs)
    weights = [rng.standard_normal(y.shape) for y in model(**inputs, **lengths)]

    def loss(*values):
        return sum((y * w).sum() for y, w in zip(model(**dict(zip(names, values)), **lengths), weights))

    assert avalon.gradcheck(loss, *inputs.values())


def test_fused_and_unrolled_lstm_agree():
    """A PyTorch-form LSTM (the fused scan) gives the same values as the same gates unrolled (a clip too
    wide to bite forces the unrolled path), so both paths compute one function."""
    inputs = operands("LSTM", directions=2, states=True, lengths=[4, 3, 2])
    fused = avalon.onnx.load(recurrent_model("LSTM", {"hidden_size": 3, "direction": "bidirectional"}, inputs, 3))
    unrolled = avalon.onnx.load(recurrent_model("LSTM", {"hidden_size": 3, "direction": "bidirectional",
                                                         "clip": 1e6}, inputs, 3))
    for a, b in zip(fused(**inputs), unrolled(**inputs), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_unknown_activation_is_refused_with_the_node_name():
    inputs = operands("RNN")
    model = avalon.onnx.load(recurrent_model("RNN", {"hidden_size": 3, "activations": ["Swish"]}, inputs))
    with pytest.raises(avalon.onnx.OnnxError, match=r"'the_RNN' \(RNN.*unknown activation 'Swish'"):
        model(**inputs)


@pytest.mark.parametrize("lengths", [[4, 2], [4, 5, 1], [-1, 2, 3]])
def test_sequence_lengths_that_do_not_fit_are_refused(lengths):
    inputs = operands("GRU", lengths=[4, 4, 4])
    model = avalon.onnx.load(recurrent_model("GRU", {"hidden_size": 3}, inputs))
    with pytest.raises(avalon.onnx.OnnxError, match=r"'the_GRU' \(GRU.*sequence_lens .* from 0 to 4 .* each of the 3"):
        model(**{**inputs, "sequence_lens": np.int32(lengths)})


def test_weights_of_the_wrong_shape_are_refused():
    inputs = operands("LSTM")
    inputs["b"] = inputs["b"][:, :-1]
    model = avalon.onnx.load(recurrent_model("LSTM", {"hidden_size": 3}, inputs, 3))
    with pytest.raises(avalon.onnx.OnnxError, match=r"B has the shape \(1, 23\); .* must be \(1, 24\)"):
        model(**inputs)
