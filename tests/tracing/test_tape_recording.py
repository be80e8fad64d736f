"""avalon.trace: inputs for every array argument (containers, holders), what each node records
(shape, dtype, value, the user's line, module scope, dotted names), the printed tape and DOT text,
shape errors at the user's line, and plain arrays (never tracers) outside traced code."""
import re
import shutil
import subprocess

import numpy as np
import pytest

import avalon
from avalon.tape import Const, Input
from avalon.tracing import Tracer, scope

HERE = __file__


def line_of(marker):
    """The line of this file carrying the comment `# <marker>`."""
    with open(HERE) as source:
        return next(i for i, text in enumerate(source, 1) if text.rstrip().endswith(f"# {marker}"))


# A user's holder class: arrays and sub-parts as attributes, lists of parts allowed. Registered with
# its own named_arrays / assign / named_parts, as a library's module class would be.

class Part:
    def _children(self):
        for key, value in vars(self).items():
            if isinstance(value, Part):
                yield key, value
            elif isinstance(value, list):
                yield from ((f"{key}.{i}", v) for i, v in enumerate(value) if isinstance(v, Part))

    def named_parts(self, prefix=""):
        for name, part in self._children():
            yield prefix + name, part
            yield from part.named_parts(prefix + name + ".")

    def named_arrays(self, prefix=""):
        for key, value in vars(self).items():
            if isinstance(value, (np.ndarray, Tracer)):
                yield prefix + key, value, "buffer" if key.startswith("running") else "param"
        for name, part in self._children():
            yield from part.named_arrays(prefix + name + ".")


def _assign(obj, values):
    for dotted, value in values.items():
        *path, last = dotted.split(".")
        target = obj
        for step in path:
            target = target[int(step)] if step.isdigit() else getattr(target, step)
        setattr(target, last, value)


avalon.register_holder(Part, named_arrays=lambda p: list(p.named_arrays()), assign=_assign,
                       named_parts=lambda p: list(p.named_parts()))


class Dense(Part):
    def __init__(self, n_in, n_out, rng):
        self.weight = rng.standard_normal((n_in, n_out)).astype(np.float32)
        self.bias = rng.standard_normal(n_out).astype(np.float32)

    def __call__(self, x):
        with scope(self):
            return x @ self.weight + self.bias  # dense


class Layer(Part):
    def __init__(self, rng):
        self.attn = Dense(4, 4, rng)
        self.mlp = Dense(4, 4, rng)
        self.running_scale = np.full(4, 0.5, np.float32)

    def __call__(self, x):
        with scope(self):
            return self.mlp(np.tanh(self.attn(x))) * self.running_scale  # layer


class Encoder(Part):
    def __init__(self, rng):
        self.layers = [Layer(rng), Layer(rng)]

    def __call__(self, x):
        with scope(self):
            for layer in self.layers:
                x = layer(x)
            return x


class Model(Part):
    def __init__(self, rng):
        self.encoder = Encoder(rng)
        self.head = Dense(4, 1, rng)

    def __call__(self, x):
        with scope(self):
            return self.head(self.encoder(x)).sum()  # model


@pytest.fixture
def model():
    return Model(np.random.default_rng(0))


X = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)

PARAMS = [f"encoder.layers.{i}.{part}.{name}" for i in range(2) for part in ("attn", "mlp")
          for name in ("weight", "bias")] + ["head.weight", "head.bias"]


def _numpy_forward(m, x):
    for layer in m.encoder.layers:
        h = np.tanh(x @ layer.attn.weight + layer.attn.bias)
        x = (h @ layer.mlp.weight + layer.mlp.bias) * layer.running_scale
    return (x @ m.head.weight + m.head.bias).sum()


@pytest.mark.parametrize("how", ["model as the function", "model as an argument"])
def test_holder_arrays_become_named_inputs_with_roles_and_scopes(model, how):
    tape = avalon.trace(model, X) if how == "model as the function" else avalon.trace(lambda m, x: m(x), model, X)
    inputs = {n.name: n for n in tape.inputs}
    buffers = [f"encoder.layers.{i}.running_scale" for i in range(2)]
    assert sorted(inputs) == sorted(PARAMS + buffers + ["x"])
    assert all(inputs[name].role == "param" for name in PARAMS)
    assert all(inputs[name].role == "buffer" for name in buffers)
    assert inputs["x"].role == "data"
    assert inputs["encoder.layers.1.mlp.weight"].scope == "encoder.layers.1.mlp"
    assert inputs["encoder.layers.0.attn.weight"].value is model.encoder.layers[0].attn.weight
    assert len(tape.inputs) == len(inputs)  # one input per array

    matmuls = [n for n in tape.calls if n.prim.name == "matmul"]
    assert [m.scope for m in matmuls] == ["encoder.layers.0.attn", "encoder.layers.0.mlp",
                                          "encoder.layers.1.attn", "encoder.layers.1.mlp", "head"]
    assert matmuls[0].args[1] is inputs["encoder.layers.0.attn.weight"]
    assert {n.scope for n in tape.calls if n.prim.name == "tanh"} == {"encoder.layers.0", "encoder.layers.1"}
    assert [n.scope for n in tape.calls if n.prim.name == "sum"] == [""]
    # tracing leaves the model's own arrays in place
    assert isinstance(model.head.weight, np.ndarray)
    np.testing.assert_allclose(tape.outputs[0].value, _numpy_forward(model, X), rtol=1e-5)


def test_numpy_code_traces_unchanged():
    rng = np.random.default_rng(3)
    x, W, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    tape = avalon.trace(lambda x, W, b: np.tanh(x @ W + b).sum(), x, W, b)
    assert [n.prim.name for n in tape.calls] == ["matmul", "add", "tanh", "sum"]
    assert tape.outputs[0].value == np.tanh(x @ W + b).sum()


def test_every_node_records_shape_dtype_value_and_the_users_line(model):
    tape = avalon.trace(model, X)  # trace-call
    for node in tape.nodes:
        assert node.shape == np.shape(node.value) and node.dtype == node.value.dtype
        assert node.location is not None and node.location.filename == HERE
    dense, layer, top = line_of("dense"), line_of("layer"), line_of("model")
    lines = {(n.prim.name, n.location.lineno, n.location.function) for n in tape.calls}
    assert lines == {("matmul", dense, "__call__"), ("add", dense, "__call__"), ("tanh", layer, "__call__"),
                     ("multiply", layer, "__call__"), ("sum", top, "__call__")}
    first = tape.calls[0]
    assert first.location.code == "return x @ self.weight + self.bias  # dense"
    assert {n.location.lineno for n in tape.inputs} == {line_of("trace-call")}
    np.testing.assert_array_equal(first.value, X @ model.encoder.layers[0].attn.weight)


def test_an_nn_module_traces_with_parameter_names_and_scopes():
    nn = avalon.nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.fc2(avalon.relu(self.fc1(x))).sum()  # mlp

    tape = avalon.trace(MLP(), np.ones((5, 3), np.float32))
    assert [(n.name, n.role, n.scope) for n in tape.inputs] == [
        ("fc1.weight", "param", "fc1"), ("fc1.bias", "param", "fc1"), ("fc2.weight", "param", "fc2"),
        ("fc2.bias", "param", "fc2"), ("x", "data", "")]
    assert [n.scope for n in tape.calls if n.prim.name == "matmul"] == ["fc1", "fc2"]
    assert {n.location.lineno for n in tape.calls} == {line_of("mlp")}


def test_arrays_inside_lists_tuples_and_dicts_are_named_inputs():
    a, b, c = (np.full((2,), v, np.float32) for v in (1.0, 2.0, 3.0))

    def f(batch, pair, *rest, scale=1.0, extra=None):
        return (batch["x"] * pair[0] + pair[1][0] + rest[1] + extra["w"]) * scale

    tape = avalon.trace(f, {"x": a}, (b, [c]), 7, a, scale=2.0, extra={"w": c})
    assert [n.name for n in tape.inputs] == ["batch['x']", "pair[0]", "pair[1][0]", "rest[1]", "extra['w']"]
    assert all(isinstance(n, Input) and n.role == "data" for n in tape.inputs)
    np.testing.assert_array_equal(tape.outputs[0].value, (a * b + c + a + c) * 2.0)


def test_static_arguments_are_not_inputs():
    tape = avalon.trace(lambda x, dtype, n, name: (x.astype(dtype) * n), np.ones(2, np.float32), np.float64, 3, "s")
    assert [n.name for n in tape.inputs] == ["x"]
    assert tape.outputs[0].dtype == np.float64 and tape.outputs[0].value.tolist() == [3.0, 3.0]


def test_captured_arrays_are_consts_and_python_numbers_stay_literals():
    W = np.eye(3, dtype=np.float32)
    tape = avalon.trace(lambda x: (x @ W) * 3.0, np.ones((2, 3), np.float32))
    const = next(n for n in tape.nodes if isinstance(n, Const))
    assert const.value is W and const.location.filename == HERE
    mul = tape.calls[-1]
    assert mul.prim.name == "multiply" and mul.args[1] == 3.0


def test_string_scopes_nest_under_the_current_scope():
    def f(x):
        with scope("block"):
            with scope("inner"):
                y = np.exp(x)
            z = y + 1
        return z * 2

    tape = avalon.trace(f, np.ones(2, np.float32))
    assert [n.scope for n in tape.calls] == ["block.inner", "block", ""]


def test_printed_tape_is_one_line_per_node(model):
    W = np.ones((3, 2), np.float32)

    def f(x, W):
        with scope("fc1"):
            return np.tanh(x @ W)  # printed

    tape = avalon.trace(f, np.ones((4, 3), np.float32), W)
    x, w, mm, th = tape.nodes
    lines = str(tape).splitlines()
    assert len(lines) == len(tape.nodes) + 1
    here = f"test_tape_recording.py:{line_of('printed')}"
    assert lines[2] == f"{mm.label} = matmul({x.label}, {w.label})  f32[4,2]  {here}  fc1"
    assert lines[3] == f"{th.label} = tanh({mm.label})  f32[4,2]  {here}  fc1"
    assert re.fullmatch(rf"{x.label} = input 'x'  f32\[4,3\]  test_tape_recording\.py:\d+", lines[0])
    assert lines[-1] == f"return {th.label}"
    params = str(avalon.trace(model, X)).splitlines()
    assert any(re.match(r"%\d+ = input 'head\.weight' \(param\)  f32\[4,1\]", line) for line in params)


def test_to_dot_is_graphviz_text(model):
    dot = avalon.trace(model, X).to_dot()
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    assert 'subgraph "cluster_encoder.layers.0.attn"' in dot
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    done = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    svg = done.stdout.decode()
    # a node's label is two lines of text (name, then type), not one line with a literal "\n"
    assert ">head.weight</text>" in svg and ">f32[4,1]</text>" in svg and "\\n" not in svg


def test_shape_error_names_primitive_shapes_and_users_line():
    with pytest.raises(avalon.ShapeError) as info:
        avalon.trace(lambda a, b: a @ b, avalon.ones((2, 3)), avalon.ones((4, 5)))  # bad-matmul
    error = info.value
    message = str(error)
    assert "matmul" in message and "(2, 3)" in message and "(4, 5)" in message
    assert f"{HERE}:{line_of('bad-matmul')}" in message
    assert error.primitive == "matmul" and error.shapes == [(2, 3), (4, 5)]
    assert (error.filename, error.lineno) == (HERE, line_of("bad-matmul"))


def test_shape_error_outside_tracing_too():
    with pytest.raises(avalon.ShapeError, match=r"(?s)add cannot combine.*\(2, 3\).*\(4,\)"):
        avalon.add(np.ones((2, 3)), np.ones(4))


def test_len_of_a_tracer_is_its_first_axis():
    seen = []

    def f(x):
        seen.append(len(x))
        return x.sum() / len(x)

    tape = avalon.trace(f, np.ones((5, 3), np.float32))
    assert seen == [5]
    assert tape.outputs[0].value == 3.0


def test_a_tracer_kept_after_tracing_is_refused():
    kept = []
    avalon.trace(lambda x: kept.append(x) or x * 2, np.ones(2, np.float32))
    with pytest.raises(avalon.AvalonError, match="outside the traced function"):
        kept[0] + 1


def _is_plain(x):
    return isinstance(x, (np.ndarray, np.generic)) and not isinstance(x, Tracer)


def test_plain_arrays_in_and_out(model):
    W = np.ones((3, 2), np.float32)

    @avalon.jit
    def predict(x, W):
        return np.tanh(x @ W), {"sum": (x @ W).sum()}

    for _ in range(2):  # the tracing call and the compiled replay
        y, extra = predict(np.ones((4, 3), np.float32), W)
        assert _is_plain(y) and _is_plain(extra["sum"]) and y.shape == (4, 2)

    loss, (gW, gx) = avalon.grad(lambda W, x: np.tanh(x @ W).sum(), W, np.ones((4, 3), np.float32))
    assert _is_plain(loss) and _is_plain(gW) and _is_plain(gx)
    loss, (grads, _) = avalon.grad(lambda m, x: m(x), model, X)
    assert _is_plain(loss) and all(_is_plain(g) for _, g in grads)
    assert sorted(name for name, _ in grads) == sorted(PARAMS)
    assert isinstance(model.head.weight, np.ndarray)

    a = np.random.default_rng(2).standard_normal((2, 3)).astype(np.float32)
    values, indices = avalon.max(a, dim=1)
    outputs = [avalon.cat([a, a], dim=1), avalon.softmax(a, dim=-1), avalon.relu(a), values, indices,
               avalon.zeros(2, 3), avalon.randn(2), avalon.tanh(a).sum(), avalon.matmul(a, a.T)]
    assert all(_is_plain(o) for o in outputs)
