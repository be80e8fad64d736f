"""avalon.onnx.backend as an onnx.backend.base.Backend: prepare/run, run_model, run_node, devices,
is_compatible, and onnx's own runner driving it the documented way."""
import unittest

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import avalon
import avalon.onnx
import avalon.onnx.backend as backend


def _linear_model():
    """y = x @ W + b, and z = relu(y), with W and b initializers."""
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(3, 2) / 6, "fc.weight")
    b = numpy_helper.from_array(np.array([0.5, -2.0], np.float32), "fc.bias")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "fc.weight"], ["h"], name="/fc/MatMul"),
         helper.make_node("Add", ["h", "fc.bias"], ["y"], name="/fc/Add"),
         helper.make_node("Relu", ["y"], ["z"], name="/Relu")],
        "linear", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 2])], initializer=[w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _expected(x):
    y = x @ (np.arange(6, dtype=np.float32).reshape(3, 2) / 6) + np.array([0.5, -2.0], np.float32)
    return y, np.maximum(y, 0)


def test_prepare_runs_a_list_or_a_dict_and_names_the_outputs():
    rep = backend.prepare(_linear_model(), "CPU")
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    y, z = _expected(x)
    for outputs in (rep.run([x]), rep.run({"x": x}), rep.run(x)):
        np.testing.assert_allclose(outputs[0], y, rtol=1e-6)
        np.testing.assert_allclose(outputs["z"], z, rtol=1e-6)
        assert isinstance(outputs[1], np.ndarray) and outputs[1].dtype == np.float32
    other = np.ones((7, 3), np.float32)  # the batch size stays dynamic
    np.testing.assert_allclose(rep.run([other])["y"], _expected(other)[0], rtol=1e-6)
    with pytest.raises(avalon.onnx.OnnxError, match=r"takes 1 input\(s\) \['x'\], got 2 positional"):
        rep.run([x, x])


def test_the_prepared_module_is_trainable_under_the_onnx_names():
    rep = backend.prepare(_linear_model())
    assert isinstance(rep.module, avalon.onnx.OnnxModule)
    assert sorted(name for name, _ in rep.module.named_parameters()) == ["fc.bias", "fc.weight"]
    x = np.ones((2, 3), np.float32)
    _, grads = avalon.grad(lambda m, v: m(v)[0].sum(), rep.module, x)
    np.testing.assert_allclose(grads[0].fc.weight, np.full((3, 2), 2.0), rtol=1e-6)


def test_run_model_is_prepare_then_run():
    x = np.full((1, 3), 2.0, np.float32)
    np.testing.assert_allclose(backend.run_model(_linear_model(), [x])[1], _expected(x)[1], rtol=1e-6)


def test_run_node_builds_a_one_node_model_at_the_given_opset():
    a = np.array([[1, -2], [3, 4]], np.float32)
    (y,) = backend.run_node(helper.make_node("Add", ["a", "b"], ["y"]), [a, np.float32(1.5)])
    np.testing.assert_array_equal(y, a + 1.5)
    # Clip's bounds were attributes before opset 11
    clip = helper.make_node("Clip", ["x"], ["y"], min=-1.0, max=2.0)
    (y,) = backend.run_node(clip, [a], opset_version=6)
    np.testing.assert_array_equal(y, np.clip(a, -1, 2))
    with pytest.raises(avalon.onnx.OnnxError, match="names 2 input"):
        backend.run_node(helper.make_node("Add", ["a", "b"], ["y"]), [a])


def test_devices():
    assert backend.supports_device("CPU")
    assert backend.supports_device("CUDA") == avalon.cuda.is_available()
    assert not backend.supports_device("TPU")
    with pytest.raises(avalon.onnx.OnnxError, match="unknown device 'TPU'"):
        backend.prepare(_linear_model(), "TPU")
    if not avalon.cuda.is_available():
        with pytest.raises(avalon.onnx.OnnxError, match="'CUDA' is not available.*use 'CPU'"):
            backend.prepare(_linear_model(), "CUDA")


def test_prepare_takes_the_runners_tolerances_and_refuses_other_options():
    assert backend.prepare(_linear_model(), "CPU", rtol=1e-3, atol=1e-7) is not None
    with pytest.raises(TypeError, match=r"\['optimize'\]"):
        backend.prepare(_linear_model(), "CPU", optimize=True)


def test_is_compatible_and_every_unsupported_operator_named_at_once():
    model = _linear_model()
    assert backend.is_compatible(model)
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("StringNormalizer", ["r"], ["s"], name="norm"),
         helper.make_node("LabelEncoder", ["s"], ["y"], name="enc", domain="ai.onnx.ml")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    bad = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    assert not backend.is_compatible(bad)
    with pytest.raises(avalon.onnx.UnsupportedOperator) as error:
        backend.prepare(bad)
    assert "StringNormalizer" in str(error.value) and "LabelEncoder" in str(error.value)


def test_onnx_runner_drives_avalon_as_documented():
    """`onnx.backend.test.BackendTest(avalon.onnx.backend, __name__)` with `.include` runs through
    unittest: a node case, a pytorch-converted and a pytorch-operator model pass; CUDA ones skip here."""
    import warnings

    from onnx.backend.test import BackendTest
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        runner = BackendTest(backend, __name__)
    runner.include(r"^test_(relu|PReLU_1d_multiparam|operator_conv)_(cpu|cuda)$")
    result = unittest.TestResult()
    runner.test_suite.run(result)
    assert not result.failures and not result.errors, result.failures + result.errors
    ran = result.testsRun - len(result.skipped)
    assert ran == 3 + 3 * avalon.cuda.is_available()
