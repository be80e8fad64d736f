"""onnx's own backend node tests (generated in memory by the installed onnx) for every operator
avalon.onnx supports: each case's model loads and gives the expected outputs, shapes and dtypes.

Cases outside this slice's scope are skipped, each with its reason (listed below); cases using an
operator not supported yet are not collected (`avalon.onnx.supported_operators()` says which are)."""
import re
import warnings

import numpy as np
import pytest
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases

import avalon.onnx

# some cases check inf and nan results (the log of an empty sum, a division by zero)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# case-name pattern (re.fullmatch) -> why it is skipped
KNOWN = {
    r"test_cast(like)?_FLOAT(16)?_to_FLOAT8\w*": "float8 rounding and saturation (not a numpy dtype; out of scope)",
    r"test_cast_e8m0_FLOAT(16)?_to_FLOAT8E8M0": "float8 e8m0 rounding (not a numpy dtype; out of scope)",
    r"test_(celu_bfloat16(_expanded)?|einsum_batch_matmul_bfloat16|einsum_sum_bfloat16|attention_\w+_bf16"
    r"(_expanded)?)": "bfloat16 arithmetic (not a numpy dtype; out of scope)",
    r"test_training_dropout(_default)?(_mask)?": "the expected output uses numpy's random mask; Avalon draws its own",
    r"test_maxpool_with_argmax\w*": "MaxPool's Indices output is not supported yet",
    r"test_resize_\w+_antialias": "antialiased Resize is not supported yet",
    r"test_scatter(_elements_with_reduction|nd)_(mul|multiply|max|min)\w*": "scatter reductions mul, max and min "
                                                                             "are not supported yet",
    r"test_(blackman|hamming|hann)window\w*": "a Range whose limits are computed from an input's values "
                                              "(a data-dependent shape)",
    r"test_center_crop_pad_\w*": "Pad amounts computed from an input's values (a data-dependent shape)",
}


def _array(value):
    return numpy_helper.to_array(value) if hasattr(value, "dims") else np.asarray(value)


def _in_scope(case):
    graph = case.model.graph
    if any(node.domain not in ("", "ai.onnx") for node in graph.node):
        return False
    if any(not value.type.HasField("tensor_type") for value in list(graph.input) + list(graph.output)):
        return False  # sequences, optionals, maps: outside the deep-learning scope of this importer
    return {node.op_type for node in graph.node} <= set(avalon.onnx.supported_operators())


with warnings.catch_warnings():  # onnx's generators cast out-of-range values on purpose
    warnings.simplefilter("ignore", RuntimeWarning)
    CASES = [case for case in collect_testcases() if _in_scope(case)]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_node_case(case):
    reason = next((why for pattern, why in KNOWN.items() if re.fullmatch(pattern, case.name)), None)
    if reason:
        pytest.skip(reason)
    model = avalon.onnx.load(case.model.SerializeToString())
    for inputs, outputs in case.data_sets:
        got = model(*[_array(v) for v in inputs])
        got = got if isinstance(got, tuple) else (got,)
        for ours, expected in zip(got, [_array(v) for v in outputs], strict=True):
            ours = np.asarray(ours)
            assert ours.shape == expected.shape and ours.dtype == expected.dtype
            np.testing.assert_allclose(ours, expected, rtol=max(case.rtol, 1e-4), atol=max(case.atol, 1e-5))
