"""How much of onnx's own backend test suite Avalon passes: `python -m avalon.onnx.coverage` prints a
Markdown table of the counts per suite, and the list of what is out of scope and why (`-v` also lists
each failing case with its error).

The suites are the ones onnx's runner (`onnx.backend.test.BackendTest`) builds from the installed
onnx wheel: the node tests (one operator each, generated in memory), the shipped model suites
pytorch-converted, pytorch-operator and simple, and 'real': nine classic CNNs (AlexNet … VGG-19) as the
wheel's 'light' copies, whose weights are ConstantOfShape nodes, run on onnx's dummy input against the
outputs the wheel ships (the runner writes that input under $ONNX_HOME: a temporary folder here).

A case is *in scope* unless it needs something outside a deep-learning library's reach; OUT_OF_SCOPE
says what and why, one group per reason. tests/onnx/test_backend_suite.py runs the in-scope cases.
"""
import json
import os
import tempfile
import warnings

from onnx import AttributeProto, TensorProto

SUITES = {"NodeModel": "node", "PyTorchConvertedModel": "pytorch-converted",
          "PyTorchOperatorModel": "pytorch-operator", "SimpleModel": "simple", "RealModel": "real"}

_CONTROL_FLOW = {"If", "Loop", "Scan"}
_SEQUENCES = {"SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert",
              "SequenceLength", "SequenceMap", "SplitToSequence", "ConcatFromSequence", "Optional",
              "OptionalHasElement", "OptionalGetElement"}
_STRINGS = {"StringSplit", "StringNormalizer", "StringConcat", "RegexFullMatch", "TfIdfVectorizer"}
_QUANTISATION = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul",
                 "ConvInteger", "MatMulInteger"}
_RANDOM = {"RandomUniform", "RandomUniformLike", "RandomNormal", "RandomNormalLike", "Bernoulli", "Multinomial"}
# element types numpy has no dtype for (bfloat16, the float8s, float4, int4/uint4, int2/uint2) and strings
_NON_NUMPY = {TensorProto.STRING, TensorProto.BFLOAT16, TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E4M3FNUZ,
              TensorProto.FLOAT8E5M2, TensorProto.FLOAT8E5M2FNUZ, TensorProto.FLOAT8E8M0, TensorProto.FLOAT4E2M1,
              TensorProto.UINT4, TensorProto.INT4, TensorProto.UINT2, TensorProto.INT2}
# the training cases of Dropout whose expected output is drawn from numpy's own random generator
_RANDOM_DROPOUT = {"test_training_dropout", "test_training_dropout_default", "test_training_dropout_mask",
                   "test_training_dropout_default_mask"}

# group -> why it is out of scope (the README quotes this table)
OUT_OF_SCOPE = {
    "non-default domain": "ai.onnx.ml (classical machine learning: trees, label encoders …) and "
                          "ai.onnx.preview.training (optimiser steps, Gradient) are not deep-learning "
                          "layers",
    "control flow": "If, Loop, Scan and other graph-valued attributes: a traced tape has no branches or "
                    "loops (data-dependent control flow is refused by design)",
    "sequences and optionals": "sequence, optional and map values are not arrays",
    "strings": "string tensors and text operators (StringSplit, RegexFullMatch, TfIdfVectorizer …)",
    "quantisation": "QuantizeLinear, QLinearConv, MatMulInteger …: integer-quantised inference",
    "non-numpy dtypes": "bfloat16, float8, float4, int4 and int2 element types have no numpy dtype",
    "random": "RandomUniform, RandomNormal, Bernoulli, Multinomial and Dropout in training mode: the "
              "expected outputs come from numpy's generator, Avalon draws its own",
    "image decoding": "ImageDecoder decodes encoded image bytes (a file-format library's job)",
}


def _element_types(model):
    graph = model.graph
    values = list(graph.input) + list(graph.output)
    types = {v.type.tensor_type.elem_type for v in values if v.type.HasField("tensor_type")}
    types |= {t.data_type for t in graph.initializer}
    for node in graph.node:
        for a in node.attribute:
            if a.type == AttributeProto.TENSOR:
                types.add(a.t.data_type)
            elif a.type == AttributeProto.INT and a.name in ("to", "dtype", "output_dtype"):
                types.add(a.i)
    return types


def out_of_scope(name, model):
    """The OUT_OF_SCOPE group of a test case (its name without the device suffix, and its model), or
    None when it is in scope."""
    graph = model.graph
    ops = {node.op_type for node in graph.node}
    if any(node.domain not in ("", "ai.onnx") for node in graph.node):
        return "non-default domain"
    if ops & _CONTROL_FLOW or any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS)
                                  for node in graph.node for a in node.attribute):
        return "control flow"
    if ops & _SEQUENCES or any(not v.type.HasField("tensor_type") for v in list(graph.input) + list(graph.output)):
        return "sequences and optionals"
    types = _element_types(model)
    if ops & _STRINGS or TensorProto.STRING in types:
        return "strings"
    if ops & _QUANTISATION:
        return "quantisation"
    if types & _NON_NUMPY:
        return "non-numpy dtypes"
    if ops & _RANDOM or name in _RANDOM_DROPOUT:
        return "random"
    if "ImageDecoder" in ops:
        return "image decoding"
    return None


# cases whose expected values carry the reference's own float32 rounding: onnx's runner takes these
# tolerances in place of the case's (test_kwargs)
TOLERANCES = {
    # an exact 0 appears as the reference FFT's rounding, 1.9e-7 (the case's atol is 1e-7)
    "test_dft_inverse": {"atol": 1e-6}, "test_dft_inverse_opset19": {"atol": 1e-6},
}


class Case:
    """One CPU test of onnx's runner: `suite` (a SUITES value), `name` (onnx's, without '_cpu'), `model`
    (its ModelProto) and `run()`, which raises on failure."""

    def __init__(self, suite, name, model, item):
        self.suite, self.name, self.model, self._item = suite, name, model, item

    def run(self):
        if self.suite != "real":
            self._item.func(None)  # the runner's test function ignores its unittest `self`
            return
        before = os.environ.get("ONNX_HOME")
        with tempfile.TemporaryDirectory() as home:  # where the runner writes the dummy input it makes
            os.environ["ONNX_HOME"] = home
            try:
                self._item.func(None)
            finally:
                if before is None:
                    del os.environ["ONNX_HOME"]
                else:
                    os.environ["ONNX_HOME"] = before


def _model_file(data_dir, suite, name):
    if suite != "real":
        return os.path.join(data_dir, suite, name, "model.onnx")
    with open(os.path.join(data_dir, suite, name, "data.json")) as f:
        return os.path.join(data_dir, "light", f"light_{json.load(f)['model_name']}.onnx")


def cases():
    """Every CPU case of onnx's runner driving `avalon.onnx.backend` in the SUITES, by suite and name."""
    import onnx
    from onnx.backend.test import BackendTest
    from onnx.backend.test.loader import DATA_DIR, load_model_tests

    from . import backend
    with warnings.catch_warnings():  # onnx's node-test generators cast out-of-range values on purpose
        warnings.simplefilter("ignore", RuntimeWarning)
        runner = BackendTest(backend, __name__, test_kwargs=TOLERANCES)
        node_models = {case.name: case.model for case in load_model_tests(kind="node")}  # made once, shared
    found = []
    for category, suite in SUITES.items():
        items = runner._test_items[category]  # onnx's runner has no public per-item view
        for name in sorted(n for n in items if n.endswith("_cpu")):
            short = name[:-len("_cpu")]
            model = node_models[short] if suite == "node" else onnx.load(_model_file(DATA_DIR, suite, short))
            found.append(Case(suite, short, model, items[name]))
    return found


def run_all():
    """{suite: {"in scope": n, "pass": n, "fail": [names]}, ...} and {group: [case names]}."""
    import numpy as np
    counts = {suite: {"in scope": 0, "pass": 0, "fail": []} for suite in SUITES.values()}
    excluded = {group: [] for group in OUT_OF_SCOPE}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # the cases check inf and nan results on purpose
        for case in cases():
            group = out_of_scope(case.name, case.model)
            if group:
                excluded[group].append(f"{case.suite}/{case.name}")
                continue
            row = counts[case.suite]
            row["in scope"] += 1
            try:
                case.run()
                row["pass"] += 1
            except Exception as error:  # a failed case, whatever it raised (a runner's SkipTest too)
                first = (str(error).splitlines() or [""])[0][:160]
                row["fail"].append(f"{case.name}: {type(error).__name__}: {first}")
    return counts, excluded


def table(counts, excluded):
    lines = ["| suite | in scope | pass | % | out of scope |", "|---|---:|---:|---:|---:|"]
    outside = {suite: sum(1 for names in excluded.values() for n in names if n.startswith(suite + "/"))
               for suite in SUITES.values()}
    for suite, row in counts.items():
        share = 100.0 * row["pass"] / row["in scope"] if row["in scope"] else 100.0
        lines.append(f"| {suite} | {row['in scope']} | {row['pass']} | {share:.1f} | {outside[suite]} |")
    lines += ["", "| out of scope | cases | why |", "|---|---:|---|"]
    lines += [f"| {group} | {len(excluded[group])} | {why} |" for group, why in OUT_OF_SCOPE.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys
    results = run_all()
    print(table(*results))
    if "-v" in sys.argv:
        for suite, row in results[0].items():
            for line in row["fail"]:
                print(f"FAIL {suite}/{line}")
