"""Malformed and hostile ONNX files: each raises an AvalonError promptly, reads nothing outside the
model's folder and never crashes the process.

Each case runs in a child process (forked from this one, so it costs no second import) with a time
limit and an address-space limit; the child loads the model (and calls it on a sample input), and
reports the error's class and message and every file it opened outside the model's folder (an audit
hook sees each `open`). The test asserts the child's exit code, the error and that list."""
import json
import multiprocessing
import os
import re
import resource
import sys
import time

import numpy as np
import pytest
from onnx import AttributeProto, TensorProto, helper, numpy_helper

import avalon
import avalon.onnx  # imported here, so the children start with it loaded

LIMIT_S = 20
RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 3)).astype(np.float32)


def _address_space():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))


def _child(path, folder, report):
    """Load and run the model at `path`; send (error class, message, opened outside) and exit 0 on an
    AvalonError, 1 when it loads and runs, 2 on any other exception."""
    limit = _address_space() + (2 << 30)  # 2 GiB beyond what the parent already holds
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    root = os.path.realpath(folder)
    # modules imported on first use come from the import path: those reads are not the model's
    modules = [os.path.realpath(p or os.getcwd()) for p in sys.path if os.path.isdir(p or os.getcwd())]
    outside = []

    def audit(event, args):
        if event == "open" and isinstance(args[0], (str, bytes)):
            opened = os.path.realpath(os.fsdecode(args[0]))
            module = opened.endswith((".py", ".pyc", ".so")) and \
                any(os.path.commonpath([place, opened]) == place for place in modules)
            if os.path.commonpath([root, opened]) != root and not module:
                outside.append(opened)
    sys.addaudithook(audit)
    code, kind, message = 1, None, ""
    try:
        model = avalon.onnx.load(path)
        model(np.ones((2, 4), np.float32))
    except avalon.AvalonError as error:
        code, kind, message = 0, type(error).__name__, str(error)
    except BaseException as error:  # noqa: BLE001 (what escapes is what the test reports)
        code, kind, message = 2, type(error).__name__, str(error)
    report.send(json.dumps({"error": kind, "message": message, "outside": outside}))
    os._exit(code)


def run_hostile(path):
    """(exit code, report dict, seconds) of loading `path` in a child process."""
    context = multiprocessing.get_context("fork")  # ~0.1 s a case; a fresh interpreter would take 2 s
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(str(path), str(path.parent), send))
    start = time.monotonic()
    child.start()
    send.close()
    child.join(LIMIT_S)
    seconds = time.monotonic() - start
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail(f"loading {path.name} ran past {LIMIT_S} s")
    report = json.loads(receive.recv()) if receive.poll() else {"error": None, "message": "", "outside": []}
    return child.exitcode, report, seconds


def model_bytes(nodes=None, initializers=None, opsets=(("", 17),), inputs=("x",), outputs=("y",)):
    """A small graph: by default y = relu(x @ w + b)."""
    if nodes is None:
        nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
                 helper.make_node("Add", ["h", "b"], ["a"], name="add"),
                 helper.make_node("Relu", ["a"], ["y"], name="relu")]
    if initializers is None:
        initializers = [numpy_helper.from_array(W, "w"), numpy_helper.from_array(np.ones(3, np.float32), "b")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(i, TensorProto.FLOAT, [2, 4]) for i in inputs],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], ir_version=8)
    return model.SerializeToString()


def tensor(name, dims, raw=None, floats=None, data_type=TensorProto.FLOAT):
    """A TensorProto with whatever dims and data it is given (onnx's helpers refuse inconsistent ones)."""
    t = TensorProto(name=name, data_type=data_type, dims=dims)
    if raw is not None:
        t.raw_data = raw
    if floats is not None:
        t.float_data.extend(floats)
    return t


def external(name, location, offset=None, length=None, dims=(4, 3)):
    t = tensor(name, list(dims))
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        if value is not None:
            t.external_data.add(key=key, value=str(value))
    return t


def with_weights(w):
    return model_bytes(initializers=[w, numpy_helper.from_array(np.ones(3, np.float32), "b")])


def nested_subgraphs(depth):
    """A model whose If node holds an If node … `depth` deep, written as protobuf wire bytes (onnx's
    own classes refuse to build it)."""
    def varint(n):
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n >> 7 else 0))
            n >>= 7
            if not n:
                return bytes(out)

    def field(number, payload):  # length-delimited
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    graph = field(1, field(4, b"Identity"))
    for _ in range(depth):  # graph.node[0] = If(then_branch=graph)
        attribute = field(1, b"then_branch") + field(6, graph) + varint(20 << 3) + varint(AttributeProto.GRAPH)
        graph = field(1, field(4, b"If") + field(5, attribute))
    opset = field(1, b"") + varint(2 << 3) + varint(17)
    return varint(1 << 3) + varint(8) + field(8, opset) + field(7, graph + field(12, field(1, b"y")))


@pytest.fixture
def layout(tmp_path):
    """model/ (the model's folder, with weights.bin) and secret/ beside it (secret.bin, which no case
    may read)."""
    (tmp_path / "model").mkdir()
    (tmp_path / "secret").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(W.tobytes())
    (tmp_path / "secret" / "secret.bin").write_bytes(W.tobytes() * 4)
    return tmp_path


def _case(layout, build):
    path = layout / "model" / "model.onnx"
    data = build(layout)
    path.write_bytes(data)
    return path


GOOD = model_bytes(initializers=[external("w", "weights.bin"), numpy_helper.from_array(np.ones(3, np.float32), "b")])

CASES = {  # name -> (build(layout) -> model bytes, error class, message pattern)
    "empty file": (lambda d: b"", "OnnxError", "holds no ONNX graph"),
    "truncated 40%": (lambda d: GOOD[:len(GOOD) * 2 // 5], "OnnxError", "not a valid ONNX model|holds no ONNX graph"),
    "truncated 90%": (lambda d: GOOD[:len(GOOD) * 9 // 10], "OnnxError", "not a valid ONNX model|holds no ONNX graph"),
    "random bytes": (lambda d: RNG.bytes(4096), "OnnxError", "not a valid ONNX model|holds no ONNX graph"),
    "subgraphs nested 5000 deep": (lambda d: nested_subgraphs(5000), "OnnxError", "not a valid ONNX model"),
    "dims 2^40": (lambda d: with_weights(tensor("w", [2 ** 40, 3], raw=W.tobytes())), "OnnxError",
                  r"initializer \('w'\) is malformed: it declares the shape \[1099511627776, 3\]"),
    "dims overflowing int64": (lambda d: with_weights(tensor("w", [2 ** 32, 2 ** 32], raw=W.tobytes())), "OnnxError",
                               r"initializer \('w'\) is malformed"),
    "negative dims": (lambda d: with_weights(tensor("w", [-4, -3], raw=W.tobytes())), "OnnxError",
                      "negative dimension"),
    "raw_data shorter than declared": (lambda d: with_weights(tensor("w", [4, 3], raw=W.tobytes()[:40])),
                                       "OnnxError", r"\[4, 3\] \(12 elements\) but holds 40 bytes"),
    "float_data shorter than declared": (lambda d: with_weights(tensor("w", [4, 3], floats=[1.0] * 5)),
                                         "OnnxError", r"initializer \('w'\) is malformed"),
    "unknown element type": (lambda d: with_weights(tensor("w", [4, 3], raw=W.tobytes(), data_type=999)),
                             "OnnxError", "element type 999"),
    "external ..": (lambda d: with_weights(external("w", "../secret/secret.bin")), "OnnxError",
                    "outside the model's folder"),
    "external absolute": (lambda d: with_weights(external("w", str(d / "secret" / "secret.bin"))), "OnnxError",
                          "outside the model's folder"),
    "external absolute /etc/passwd": (lambda d: with_weights(external("w", "/etc/passwd")), "OnnxError",
                                      "outside the model's folder"),
    "external symlink out": (lambda d: (os.symlink(d / "secret" / "secret.bin", d / "model" / "link.bin"),
                                        with_weights(external("w", "link.bin")))[1], "OnnxError", "a symlink"),
    "external symlinked folder": (lambda d: (os.symlink(d / "secret", d / "model" / "sub"),
                                             with_weights(external("w", "sub/secret.bin")))[1], "OnnxError",
                                  "a symlink"),
    "external offset past the end": (lambda d: with_weights(external("w", "weights.bin", offset=1000, length=48)),
                                     "OnnxError", "truncated or not this model's"),
    "external length past the end": (lambda d: with_weights(external("w", "weights.bin", offset=8, length=48)),
                                     "OnnxError", "truncated or not this model's"),
    "external length 2^62": (lambda d: with_weights(external("w", "weights.bin", length=2 ** 62)), "OnnxError",
                             "truncated or not this model's"),
    "external negative offset": (lambda d: with_weights(external("w", "weights.bin", offset=-8, length=48)),
                                 "OnnxError", "truncated or not this model's"),
    "external offset not a number": (lambda d: with_weights(external("w", "weights.bin", offset="12abc")),
                                     "OnnxError", "the offset '12abc', not an integer"),
    "external dims 2^40": (lambda d: with_weights(external("w", "weights.bin", length=48, dims=(2 ** 40, 3))),
                           "OnnxError", "are 48 bytes of 'weights.bin', but its declared shape needs 13194139533312"),
    "external dims 2^40 without a length": (lambda d: with_weights(external("w", "weights.bin", dims=(2 ** 40, 3))),
                                            "OnnxError", r"declare bytes 0\.\.13194139533312 of 'weights.bin', "
                                                         "which has 48"),
    "external data shorter than declared": (lambda d: with_weights(external("w", "weights.bin", length=40)),
                                            "OnnxError", "are 40 bytes of 'weights.bin', but its declared shape"),
    "external missing file": (lambda d: with_weights(external("w", "absent.bin")), "OnnxError",
                              "cannot read the external weights"),
    "external folder": (lambda d: ((d / "model" / "folder").mkdir(), with_weights(external("w", "folder")))[1],
                        "OnnxError", "not in a regular file"),
    "external fifo": (lambda d: (os.mkfifo(d / "model" / "pipe"), with_weights(external("w", "pipe", length=0,
                                                                                          dims=(0, 3))))[1],
                      "OnnxError", "not in a regular file"),
    "external NUL in the path": (lambda d: with_weights(external("w", "weights.bin\0../../secret/secret.bin")),
                                 "OnnxError", "outside the model's folder"),
    "cycle": (lambda d: model_bytes([helper.make_node("Relu", ["b2"], ["a2"], name="one"),
                                     helper.make_node("Relu", ["a2"], ["b2"], name="two"),
                                     helper.make_node("Add", ["x", "a2"], ["y"], name="out")]), "OnnxError",
              r"node 'one' \(Relu\) reads \['b2'\].*cycle"),
    "node reading its own output": (lambda d: model_bytes([helper.make_node("Add", ["x", "y"], ["y"], name="me")]),
                                    "OnnxError", r"node 'me' \(Add\) reads \['y'\]"),
    "undefined input": (lambda d: model_bytes([helper.make_node("Add", ["x", "nowhere"], ["y"], name="add")]),
                        "OnnxError", r"reads \['nowhere'\], which no earlier node"),
    "unknown domain": (lambda d: model_bytes([helper.make_node("Steal", ["x"], ["y"], name="evil", domain="evil.org")],
                                             opsets=(("", 17), ("evil.org", 1))), "UnsupportedOperator",
                       r"Steal \(evil.org opset 1\): node\(s\) 'evil'"),
    "default opset from the future": (lambda d: model_bytes(opsets=(("", 10 ** 6),)), "OnnxError",
                                      "ai.onnx opset 1000000, which does not exist"),
    "no default opset": (lambda d: model_bytes(opsets=(("evil.org", 1),)), "OnnxError", "imports no version"),
    "node output defined twice": (lambda d: model_bytes([helper.make_node("Relu", ["x"], ["y"], name="first"),
                                                         helper.make_node("Neg", ["x"], ["y"], name="second")]),
                                  "OnnxError", r"node 'second' \(Neg\) writes 'y'.*already defines"),
    "node overwriting an initializer": (lambda d: model_bytes([helper.make_node("Relu", ["x"], ["w"], name="r"),
                                                               helper.make_node("Add", ["x", "w"], ["y"])]),
                                        "OnnxError", r"writes 'w'"),
    "initializer defined twice": (lambda d: model_bytes(initializers=[numpy_helper.from_array(W, "w"),
                                                                      numpy_helper.from_array(W * 2, "w"),
                                                                      numpy_helper.from_array(np.ones(3, np.float32),
                                                                                              "b")]),
                                  "OnnxError", "'w' is defined twice"),
    "huge attribute tensor": (lambda d: model_bytes([helper.make_node(
        "Constant", [], ["c"], name="big", value=tensor("v", [2 ** 40], raw=b"\0" * 8)),
        helper.make_node("Add", ["x", "c"], ["y"])]), "OnnxError",
        r"attribute 'value' of node 'big' \('v'\) is malformed: it declares the shape \[1099511627776\]"),
    "ConstantOfShape of 16 TiB": (lambda d: model_bytes(
        [helper.make_node("ConstantOfShape", ["s"], ["c"], name="big"), helper.make_node("Add", ["x", "c"], ["y"])],
        initializers=[numpy_helper.from_array(np.int64([2 ** 20, 2 ** 20, 4]), "s")]), "OnnxError",
        r"node 'big' \(ConstantOfShape, opset 17\): its result does not fit in memory"),
    "Expand to 32 TiB": (lambda d: model_bytes(
        [helper.make_node("Expand", ["x", "s"], ["y"], name="big")],
        initializers=[numpy_helper.from_array(np.int64([2 ** 20, 2 ** 20, 2, 4]), "s")]), "OnnxError",
        "results do not fit in memory"),
    "Reshape to 2^40 rows": (lambda d: model_bytes(
        [helper.make_node("Reshape", ["x", "s"], ["y"], name="r")],
        initializers=[numpy_helper.from_array(np.int64([2 ** 40, 2]), "s")]), "ShapeError",
        r"shape \(1099511627776, 2\) is invalid for an array of shape \(2, 4\)"),
    "attribute tensor with external data outside": (lambda d: model_bytes([helper.make_node(
        "Constant", [], ["c"], name="big", value=external("v", "../secret/secret.bin")),
        helper.make_node("Add", ["x", "c"], ["y"])]), "OnnxError", "outside the model's folder"),
}


def test_the_intact_model_loads_and_runs_in_the_child(layout):
    """The harness itself: the unharmed model exits 1 (loaded and ran), having opened nothing outside."""
    code, report, _ = run_hostile(_case(layout, lambda d: GOOD))
    assert (code, report["error"], report["outside"]) == (1, None, [])


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_file_raises_an_avalon_error_promptly(layout, name):
    build, kind, pattern = CASES[name]
    code, report, seconds = run_hostile(_case(layout, build))
    assert code == 0, f"exit code {code}: {report['error']}: {report['message']}"
    assert report["error"] == kind
    assert re.search(pattern, report["message"], re.S), report["message"]
    assert report["outside"] == []
    assert seconds < LIMIT_S / 2
