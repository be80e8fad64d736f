"""Every model of the zoo (tests/zoo/models: real-style PyTorch files ported by renaming `torch` to
`avalon`) exported in evaluation mode from Avalon, at the default opset and at 11 (the legacy one
users often ask for): the file passes the full checker and onnxruntime gives Avalon's outputs on the
zoo's example inputs."""
import io

import numpy as np
import onnx
import pytest

import avalon
import avalon.onnx
from avalon import tree
from tests.onnx.test_export_models import run

Z = pytest.importorskip("tests.zoo.test_zoo")


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("opset", [None, 11])
@pytest.mark.parametrize("name", Z.NAMES)
def test_zoo_model_exports_and_matches_onnxruntime(name, opset):
    model, _ = Z.pair(name)
    model.eval()
    inputs, _ = Z._examples(name, "example_inputs")
    module = Z.avalon_module(name)
    custom = getattr(module, "forward", None)
    f = io.BytesIO()
    if custom is None:
        avalon.onnx.export(model, tuple(inputs), f, opset_version=opset)
    else:
        avalon.onnx.export(custom, (model, *inputs), f, opset_version=opset)
    onnx.checker.check_model(onnx.load_from_string(f.getvalue()), full_check=True)
    want = tree.flatten(Z._forward(module, model, tuple(inputs)))[0]
    got = run(f.getvalue(), *[np.asarray(a) for a in tree.flatten(tuple(inputs))[0]])
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
