"""Which ONNX values become parameters, buffers or constants, and that `import avalon` stays free of onnx."""
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import avalon
import avalon.onnx

W = np.arange(6, dtype=np.float32).reshape(3, 2) / 10


def _model(nodes, initializers=()):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in initializers])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_weights_stored_as_constant_nodes_become_parameters():
    model = avalon.onnx.load(_model([
        helper.make_node("Constant", [], ["head.w"], value=numpy_helper.from_array(W)),
        helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.float32(2))),
        helper.make_node("MatMul", ["x", "head.w"], ["h"]),
        helper.make_node("Mul", ["h", "two"], ["y"])]))
    assert [name for name, _ in model.named_parameters()] == ["head.w"]
    x = np.ones((4, 3), np.float32)
    np.testing.assert_allclose(model(x), x @ W * 2, rtol=1e-6)
    _, grads = avalon.grad(lambda m, v: m(v).sum(), model, x)
    np.testing.assert_allclose(grads[0]["head.w"], np.full((3, 2), 8.0), rtol=1e-6)


def test_integer_and_setting_initializers_stay_constants():
    model = avalon.onnx.load(_model([
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("Clip", ["r", "low"], ["c"]),
        helper.make_node("Add", ["c", "bias"], ["y"])],
        [("shape", np.int64([-1, 3])), ("low", np.float32(0)), ("bias", np.float32([1, 2, 3]))]))
    assert [name for name, _ in model.named_parameters()] == ["bias"]
    assert list(model.state_dict()) == ["bias"]
    np.testing.assert_allclose(model(-np.ones((2, 3), np.float32)), [[1, 2, 3]] * 2)


def test_import_avalon_does_not_import_onnx():
    code = "import sys, avalon; assert 'onnx' not in sys.modules and 'onnxruntime' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_recorded_nodes_carry_the_exporters_module_scopes():
    import torch
    from tests.onnx.exports import cnn, export, images

    x = images()
    model = avalon.onnx.load(export(cnn(), torch.from_numpy(x)))
    scopes = {node.scope for node in avalon.trace(lambda m, v: m(v), model, x).nodes}
    assert {"0", "1", "4", "10"} <= scopes


def test_inputs_that_set_axes_are_static():
    """Axes given as a graph input are read while tracing: as a list or an array (a new value
    retraces); inside traced code (a tracer) they cannot set a shape, and the error says what to pass."""
    graph = helper.make_graph([helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("axes", TensorProto.INT64, None)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = avalon.onnx.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString())
    assert model.static_inputs == ["axes"]
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(model(x, [1]), [3, 12])
    np.testing.assert_array_equal(model(x, axes=np.int64([0])), [3, 5, 7])
    with pytest.raises(avalon.onnx.OnnxError, match="axes must be computable .* given as a Python list"):
        avalon.grad(lambda v, axes: model(v, axes).sum(), x, np.int64([0]))
