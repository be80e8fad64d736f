"""Bad models raise AvalonErrors that say what and where: every unsupported operator at once, truncated
or non-ONNX bytes, dangling names, wrong inputs."""
import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

import avalon
import avalon.onnx
from avalon.onnx import OnnxError, UnsupportedOperator
from tests.onnx.exports import export, mlp, rows


def _graph(nodes, inputs=("x",), outputs=("y",), opset=17, domains=()):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(i, TensorProto.FLOAT, [2]) for i in inputs],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs])
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in domains]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def test_every_unsupported_operator_is_listed_at_once():
    data = _graph([helper.make_node("Relu", ["x"], ["a"], name="ok"),
                   helper.make_node("TfIdfVectorizer", ["a", "w", "r"], ["b"], name="text1"),
                   helper.make_node("TfIdfVectorizer", ["b", "w", "r"], ["c"], name="text2"),
                   helper.make_node("StringNormalizer", ["c"], ["y"], name="where")], inputs=("x", "w", "r"))
    with pytest.raises(UnsupportedOperator) as info:
        avalon.onnx.load(data)
    message = str(info.value)
    assert isinstance(info.value, avalon.AvalonError)
    assert "TfIdfVectorizer (ai.onnx opset 17): node(s) 'text1', 'text2'" in message
    assert "StringNormalizer (ai.onnx opset 17): node(s) 'where'" in message
    assert "Relu" not in message
    assert set(info.value.operators) == {("", "TfIdfVectorizer"), ("", "StringNormalizer")}


def test_an_operator_of_another_domain_is_unsupported():
    data = _graph([helper.make_node("FusedGemm", ["x", "x"], ["y"], name="fused", domain="com.microsoft")],
                  domains=[("com.microsoft", 1)])
    with pytest.raises(UnsupportedOperator, match=r"FusedGemm \(com.microsoft opset 1\): node\(s\) 'fused'"):
        avalon.onnx.load(data)


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_a_truncated_file_raises(tmp_path, cut):
    data = export(mlp(), torch.from_numpy(rows()))
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(OnnxError, match="cut.onnx"):
        avalon.onnx.load(path)


def test_bytes_that_are_not_onnx_raise():
    with pytest.raises(OnnxError, match="not a valid ONNX model|holds no ONNX graph"):
        avalon.onnx.load(b"\x89PNG\r\n\x1a\n not a model at all")


def test_a_missing_file_raises(tmp_path):
    with pytest.raises(OnnxError, match="cannot read the ONNX file"):
        avalon.onnx.load(tmp_path / "absent.onnx")


def test_a_graph_without_nodes_passes_its_input_through():
    model = avalon.onnx.load(_graph([], outputs=("x",)))
    np.testing.assert_array_equal(model(np.float32([1, 2])), [1, 2])


def test_a_node_reading_an_undefined_name_raises():
    data = _graph([helper.make_node("Relu", ["later"], ["y"], name="early"),
                   helper.make_node("Relu", ["x"], ["later"], name="late")])
    with pytest.raises(OnnxError, match=r"node 'early' \(Relu\) reads \['later'\]"):
        avalon.onnx.load(data)


def test_wrong_inputs_name_the_expected_ones():
    model = avalon.onnx.load(_graph([helper.make_node("Relu", ["x"], ["y"])]))
    x = np.ones(2, np.float32)
    with pytest.raises(OnnxError, match=r"no input 'z'; its inputs are \['x'\]"):
        model(z=x)
    with pytest.raises(OnnxError, match=r"missing input\(s\) \['x'\]"):
        model()
    with pytest.raises(OnnxError, match="takes 1 input"):
        model(x, x)


def test_declared_sizes_beyond_the_data_raise_promptly():
    from onnx import numpy_helper

    tensor = numpy_helper.from_array(np.ones(4, np.float32), "w")
    tensor.dims[:] = [10 ** 6, 10 ** 6]
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [tensor])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    with pytest.raises(OnnxError, match="initializer \\('w'\\) is malformed"):
        avalon.onnx.load(data)


def test_an_output_the_operator_does_not_make_is_named():
    data = _graph([helper.make_node("Relu", ["x"], ["y", "extra"], name="two")], outputs=("y", "extra"))
    model = avalon.onnx.load(data)
    with pytest.raises(OnnxError, match=r"node 'two' \(Relu, opset 17\): its output\(s\) \['extra'\]"):
        model(np.ones(2, np.float32))


def test_training_dropout_drops_and_scales():
    data = _graph([helper.make_node("Dropout", ["x"], ["y"], ratio=0.5)], opset=7)
    model = avalon.onnx.load(data)
    x = np.ones(2, np.float32)
    np.testing.assert_array_equal(model(x), x)
    model.train()
    draws = [tuple(model(np.ones(8, np.float32))) for _ in range(20)]
    assert set(np.unique(draws)) == {0.0, 2.0}
    assert len(set(draws)) > 1  # a new mask at every call, not one baked into the compiled replay
