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


def _graph(nodes, inputs=("x",), outputs=("y",), opset=17):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(i, TensorProto.FLOAT, [2]) for i in inputs],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def test_every_unsupported_operator_is_listed_at_once():
    data = _graph([helper.make_node("Relu", ["x"], ["a"], name="ok"),
                   helper.make_node("Einsum", ["a", "a"], ["b"], name="mix1", equation="i,i->i"),
                   helper.make_node("Einsum", ["b", "b"], ["c"], name="mix2", equation="i,i->i"),
                   helper.make_node("TopK", ["c", "c"], ["y", "idx"], name="best")])
    with pytest.raises(UnsupportedOperator) as info:
        avalon.onnx.load(data)
    message = str(info.value)
    assert isinstance(info.value, avalon.AvalonError)
    assert "Einsum (ai.onnx opset 17): node(s) 'mix1', 'mix2'" in message
    assert "TopK (ai.onnx opset 17): node(s) 'best'" in message
    assert "Relu" not in message
    assert set(info.value.operators) == {("", "Einsum"), ("", "TopK")}


def test_an_operator_of_another_domain_is_unsupported():
    data = _graph([helper.make_node("FusedGemm", ["x", "x"], ["y"], name="fused", domain="com.microsoft")])
    with pytest.raises(UnsupportedOperator, match=r"FusedGemm \(com.microsoft opset 17\): node\(s\) 'fused'"):
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
