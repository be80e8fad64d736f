"""Exported files at every supported opset, and imported back: avalon.onnx.load of an exported model
gives the same outputs, the same parameter names and the same module scopes."""
import numpy as np
import onnx
import pytest

import avalon.onnx
from avalon.onnx.export_opset import MIN_OPSET, max_opset
from tests.onnx.test_export_models import MODELS, exported, repeated, run


@pytest.mark.parametrize("opset", range(MIN_OPSET, max_opset() + 1))
@pytest.mark.parametrize("name", list(MODELS))
def test_every_opset_passes_the_checker_and_matches(name, opset):
    """Opset 9 to the newest the installed onnx knows (onnxruntime runs them all), each with a
    dynamic batch run at another size."""
    make, x = MODELS[name]
    model = make()
    data = exported(model, x, opset_version=opset, dynamic_axes={next(iter(_inputs(model, x))): [0]})
    file = onnx.load_from_string(data)
    assert [(o.domain, o.version) for o in file.opset_import] == [("", opset)]
    ops = {n.op_type for n in file.graph.node}
    if name == "transformer":
        assert ("LayerNormalization" in ops) == (opset >= 17)  # decomposed before opset 17
        assert ("ReduceMean" in ops) == (opset < 17)  # layer norm's statistics
    x7 = repeated(x, 7)
    (y,) = run(data, x7)
    np.testing.assert_allclose(y, np.asarray(model(x7)), rtol=1e-4, atol=1e-5)


def _inputs(model, x):
    import avalon
    return [n.name for n in avalon.trace(model, x).inputs if n.role == "data"]


@pytest.mark.parametrize("name", list(MODELS))
def test_load_gives_the_same_outputs_and_parameter_names(name):
    make, x = MODELS[name]
    model = make()
    loaded = avalon.onnx.load(exported(model, x))
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-4, atol=1e-5)
    assert sorted(n for n, _ in loaded.named_parameters()) == sorted(n for n, _ in model.named_parameters())
    buffers = {n for n, _ in model.named_buffers() if not n.endswith("num_batches_tracked")}
    assert {n for n, _ in loaded.named_buffers()} == buffers
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(np.asarray(dict(loaded.named_parameters())[n]), np.asarray(p))


def test_load_rebuilds_the_module_scopes():
    import avalon
    make, x = MODELS["resnet"]
    loaded = avalon.onnx.load(exported(make(), x))
    scopes = {n.scope for n in avalon.trace(loaded, x).calls}
    assert {"layer1.0.conv1", "layer1.1.downsample.0", "fc"} <= scopes


@pytest.mark.parametrize("opset", [17, 18])
def test_reduction_axes_are_an_attribute_until_17_and_an_input_from_18(opset):
    make, x = MODELS["resnet"]
    model = make()
    data = exported(model, x, opset_version=opset)
    (mean,) = [n for n in onnx.load_from_string(data).graph.node if n.op_type == "ReduceMean"]
    assert (len(mean.input), [a.name for a in mean.attribute if a.name == "axes"]) == \
        ((1, ["axes"]) if opset == 17 else (2, []))
    np.testing.assert_allclose(run(data, x)[0], np.asarray(model(x)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("opset", [9, 14, None])
def test_the_lstm_classifier_runs_at_other_lengths_in_onnxruntime_and_after_load(opset):
    """Its LSTM is one ONNX LSTM operator, so the token sequence's length is a dynamic axis too."""
    make, tokens = MODELS["lstm"]
    model = make()
    data = exported(model, tokens, input_names=["tokens"], dynamic_axes={"tokens": {0: "batch", 1: "length"}},
                    opset_version=opset)
    assert [n.op_type for n in onnx.load_from_string(data).graph.node].count("LSTM") == 1
    longer = np.random.default_rng(5).integers(0, 10, (3, 9))
    want = np.asarray(model(longer))
    np.testing.assert_allclose(run(data, longer)[0], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(avalon.onnx.load(data)(longer)), want, rtol=1e-4, atol=1e-5)
