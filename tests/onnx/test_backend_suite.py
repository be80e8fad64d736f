"""onnx's own backend test suite run against `avalon.onnx.backend` by onnx's runner
(`onnx.backend.test.BackendTest`): the node tests of the installed onnx (generated in memory) and the
model suites shipped in its wheel (pytorch-converted, pytorch-operator, simple, and real: nine CNNs in
their 'light' form). Test ids are onnx's test names. Out-of-scope cases are not collected: `avalon.onnx.coverage.OUT_OF_SCOPE` says which and why
(`python -m avalon.onnx.coverage` prints the counts). In-scope cases that do not pass yet are listed in
NOT_YET with the reason, and run as strict xfails, so one that starts passing is noticed."""
import re
import unittest

import numpy as np
import pytest

from avalon.onnx import coverage

# some cases check inf and nan results; and every case is a new model, traced once
pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning"),
              pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")]

# in-scope case-name pattern (re.fullmatch) -> why it does not pass yet
NOT_YET = {}  # every in-scope case of onnx 1.23.2 passes; a newer onnx's new cases go here until they do

CASES = [case for case in coverage.cases() if coverage.out_of_scope(case.name, case.model) is None]


def _not_yet(name):
    return next((why for pattern, why in NOT_YET.items() if re.fullmatch(pattern, name)), None)


def _params(suite):
    params = []
    for case in CASES:
        if case.suite == suite:
            why = _not_yet(case.name)
            marks = [pytest.mark.xfail(reason=why, strict=True, raises=Exception)] if why else []
            params.append(pytest.param(case, id=case.name, marks=marks))
    return params


def _run(case):
    try:
        with np.errstate(all="ignore"):
            case.run()
    except unittest.SkipTest as skipped:  # the runner skips what is_compatible refuses: a failure here
        raise AssertionError(f"onnx's runner skipped {case.name}: {skipped}") from None


@pytest.mark.parametrize("case", _params("node"))
def test_node(case):
    _run(case)


@pytest.mark.parametrize("case", _params("pytorch-converted"))
def test_pytorch_converted(case):
    _run(case)


@pytest.mark.parametrize("case", _params("pytorch-operator"))
def test_pytorch_operator(case):
    _run(case)


@pytest.mark.parametrize("case", _params("simple"))
def test_simple(case):
    _run(case)


# real cases whose output is ill-conditioned (real-case name -> why): checked on the logits instead
ILL_CONDITIONED = {
    "test_squeezenet": "its output is the softmax of 1000 logits near 9.5e9 that agree to within a float32 ulp "
                       "(1024): whether exp underflows for all but one class depends on how the convolutions "
                       "round (it passes on AVX-512 CPUs, not on AVX2 ones)",
}


@pytest.mark.parametrize("case", _params("real"))
def test_real(case):
    if case.name in ILL_CONDITIONED:
        _check_the_logits(case)
    else:
        _run(case)


def _check_the_logits(case):
    """For a model ending in a Softmax (opset < 13: over the axes from 1 on): its input against onnx's
    reference evaluator on the runner's input (float32 rounding apart), its output against the softmax
    of our own logits in float64."""
    import onnx
    from onnx.backend.test.runner import Runner
    from onnx.reference import ReferenceEvaluator

    from avalon.onnx import backend

    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    last = model.graph.node[-1]
    assert last.op_type == "Softmax" and model.opset_import[0].version < 13
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(last.input[0]))
    initialized = {i.name for i in model.graph.initializer}
    inputs = {value.name: Runner.generate_dummy_data(value) for value in model.graph.input  # the runner's own
              if value.name not in initialized}
    probabilities, logits = [np.asarray(v) for v in backend.prepare(model).run(list(inputs.values()))]
    np.testing.assert_allclose(logits, ReferenceEvaluator(model).run(None, inputs)[-1], rtol=1e-5)
    rows = logits.reshape(len(logits), -1).astype(np.float64)
    e = np.exp(rows - rows.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probabilities.reshape(rows.shape), e / e.sum(axis=1, keepdims=True), atol=1e-6)


def test_the_acceptance_counts_hold():
    """Issue #11: at least 90% of the in-scope node tests pass, and every pytorch-converted and
    pytorch-operator case does (none of them may be in NOT_YET or out of scope)."""
    node = [case for case in CASES if case.suite == "node"]
    failing = [case.name for case in node if _not_yet(case.name)]
    assert len(node) > 1400 and len(failing) <= 0.10 * len(node), (len(failing), len(node))
    for suite, total in (("pytorch-converted", 82), ("pytorch-operator", 35)):
        names = [case.name for case in CASES if case.suite == suite]
        assert len(names) == total and not [n for n in names if _not_yet(n)]


def test_not_yet_names_only_in_scope_cases():
    """Every NOT_YET pattern matches a collected case (a stale entry would hide nothing but mislead)."""
    for pattern in NOT_YET:
        assert any(re.fullmatch(pattern, case.name) for case in CASES), pattern
