"""The elementwise fusion pass (`compile(fuse=...)`): fused replays compute what unfused ones do (bit
for bit on the numpy backend) on generated programs and on the five benchmark workloads' training
steps, on every CPU backend; chains are fused only where their intermediates are private; the
differentiable tape never changes; the source and the profiler show what a fused call is made of."""
from pathlib import Path

import numpy as np
import pytest

import avalon
import avalon.kernels as kernels
from avalon.profile import profile_tape
from avalon.compile import fuse
from avalon.compile.fuse import fuse_elementwise, fused
from compile_programs import joint_tape, program

BACKENDS = ["numpy", pytest.param("numexpr", marks=pytest.mark.skipif(
    not __import__("avalon.kernels.numexpr_backend", fromlist=["x"]).available(), reason="numexpr not installed"))]
MODELS = Path(__file__).resolve().parents[2] / "bench" / "models.py"


@pytest.fixture(params=BACKENDS)
def backend(request):
    previous = kernels.set_backend(request.param)
    yield request.param
    kernels.set_backend(previous)


@pytest.fixture
def fuse_small(monkeypatch):
    """Fuse chains of any size (the default leaves small results unfused)."""
    monkeypatch.setattr(fuse, "MIN_SIZE", 0)


def fused_calls(compiled):
    return [n for n in compiled.tape.calls if n.prim is fused]


def assert_same(got, expected, exact, where=""):
    for k, (g, e) in enumerate(zip(got, expected)):
        g, e = np.asarray(g), np.asarray(e)
        assert g.dtype == e.dtype and g.shape == e.shape, where
        if exact:
            np.testing.assert_array_equal(g, e, err_msg=f"output {k} {where}")
        else:
            np.testing.assert_allclose(g, e, rtol=2e-5, atol=1e-6 * max(1.0, float(np.abs(e).max(initial=0))),
                                       err_msg=f"output {k} {where}")


@pytest.mark.parametrize("seed", range(24))
def test_generated_programs(backend, fuse_small, seed):
    f, inputs = program(seed)
    for tape in (avalon.trace(f, *inputs), joint_tape(f, inputs)):
        expected = tape.compile(fuse=False)(*inputs)
        for options in ({}, {"reuse": False}, {"workspace": True}, {"release": False}):
            compiled = tape.compile(**options)
            for _ in range(2):  # a replay must not depend on what the last one left in its buffers
                assert_same(compiled(*inputs), expected, backend == "numpy", f"{options}\n{compiled.source}")


def test_generated_programs_do_fuse(fuse_small):
    counts = [len(fused_calls(joint_tape(*program(seed)).compile())) for seed in range(24)]
    assert sum(counts) >= 24  # the equivalence above is not vacuous


def relu_net(w1, w2, x):
    h = avalon.relu(x @ w1)
    return (avalon.relu(h @ w2 + h) ** 2).sum()


def relu_inputs(rng, n=256):
    return [rng.standard_normal((64, 64)).astype(np.float32) * 0.2,
            rng.standard_normal((64, 64)).astype(np.float32) * 0.2, rng.standard_normal((n, 64)).astype(np.float32)]


def test_relu_backward_is_one_fused_call_shown_readably(rng):
    inputs = relu_inputs(rng)
    tape = avalon.grad_tape(relu_net, *inputs)
    compiled = tape.compile()
    parts = [n.params["parts"] for n in fused_calls(compiled)]
    # each relu's backward, the mask (of relu's result) and the select, is one pass with the gradient's own
    # last steps; the second relu's input, read by no rule, is made in the same pass as the relu
    assert parts == [("add", "relu"), ("greater", "power", "multiply", "where"), ("greater", "add", "where")]
    line = next(ln for ln in compiled.source.splitlines() if "fused_greater_add_where(" in ln)
    assert "# where(x0 > 0, x1 + x2, x3)" in line and "test_fuse.py:" in line  # what it computes, whose line
    assert not any(n.prim is fused for n in tape.calls)  # the differentiable tape itself stays unfused
    assert_same(compiled(*inputs), tape.compile(fuse=False)(*inputs), exact=True)
    assert_same(compiled(*inputs), tape.interpret(*inputs), exact=True)
    assert "fused_add_relu(" in compiled.source


def test_small_results_stay_unfused(rng):
    inputs = relu_inputs(rng, n=16)  # 16 × 64 results: below MIN_SIZE
    assert not fused_calls(avalon.grad_tape(relu_net, *inputs).compile())


def test_profile_names_the_parts_of_a_fused_call(rng):
    tape = avalon.grad_tape(relu_net, *relu_inputs(rng))
    ops = {row["op"] for row in profile_tape(tape, repeat=1).rows}
    assert "fused(greater+add+where)" in ops
    plain = {row["op"] for row in profile_tape(tape, repeat=1, optimize=False).rows}
    assert not any(op.startswith("fused") for op in plain) and "where" in plain


def test_values_read_elsewhere_or_returned_stay_their_own(fuse_small):
    x = np.linspace(-1, 1, 12).reshape(3, 4)

    def f(x):
        a = np.exp(x) + 1  # returned: cannot be absorbed
        b = a * 2
        c = np.tanh(x) * 3  # read twice: cannot be absorbed
        return a, b - c, c + 1

    tape = avalon.trace(f, x)
    compiled = tape.compile()
    for n in fused_calls(compiled):
        assert "exp" not in n.params["parts"] or "multiply" not in n.params["parts"]
    assert_same(compiled(x), tape.compile(fuse=False)(x), exact=True)


def test_fuse_pass_leaves_its_tape_untouched(fuse_small):
    f, inputs = program(3)
    tape = joint_tape(f, inputs)
    before = str(tape)
    assert any(n.prim is fused for n in fuse_elementwise(tape).calls)
    assert str(tape) == before


def load_workloads():
    """bench/models.py with every "torch" renamed "avalon", as a user ports it."""
    text = MODELS.read_text().replace("torch", "avalon")
    namespace = {"__name__": "bench_models_avalon"}
    exec(compile(text, str(MODELS), "exec"), namespace)
    return namespace


@pytest.mark.parametrize("name, batch", [("MLP", 32), ("LeNet", 8), ("ResNet-ish", 4), ("LSTM", 8),
                                         ("Transformer", 2)])
def test_workload_steps(backend, name, batch):
    """Each benchmark workload's forward+backward tape: fused and unfused replays agree."""
    import avalon.nn.functional as F

    models = load_workloads()
    model_class, shape, _ = models["WORKLOADS"][name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *shape), dtype=np.float32)
    y = rng.integers(0, models["CLASSES"], batch)
    model = model_class()
    tape = avalon.grad_tape(lambda m, x, y: F.cross_entropy(m(x), y), model, x, y)
    inputs = [n.value for n in tape.inputs]
    expected = tape.compile(fuse=False)(*inputs)
    compiled = tape.compile()
    # not bit for bit: a fused call's values are, but the BLAS products after it may round
    # differently in buffers at other addresses (seen in conv_weight_grad, 1 ulp, from run to run)
    assert_same(compiled(*inputs), expected, False, compiled.source)
    assert_same(compiled(*inputs), expected, False, "second call")
    if name in ("MLP", "ResNet-ish"):
        assert fused_calls(compiled)  # relu's backward at these sizes


def test_a_where_alone_runs_as_a_kernel(fuse_small):
    c = np.arange(12).reshape(3, 4) % 3 == 0
    g = np.linspace(-1, 1, 12).reshape(3, 4)

    def f(g):
        return (np.where(c, np.tanh(g).sum(0), 0),)

    tape = avalon.trace(f, g)
    compiled = tape.compile()
    assert [n.params["parts"] for n in fused_calls(compiled)] == [("where",)]
    assert_same(compiled(g), tape.interpret(g), exact=True)


def test_chains_with_infinite_numbers_or_other_dtypes_stay_exact(fuse_small):
    x = np.linspace(-2, 2, 12).reshape(3, 4).astype(np.float32)
    i = np.arange(12).reshape(3, 4)

    def f(x, i):
        a = np.minimum(x * 2, np.inf) + 1  # inf cannot be written into a kernel's text: left unfused
        b = (i * 3 + 1) * 0.5 + x  # integers, then float64, then float64 + float32
        return a, b

    tape = avalon.trace(f, x, i)
    compiled = tape.compile()
    assert_same(compiled(x, i), tape.interpret(x, i), exact=True)
    assert all("minimum" not in n.params["parts"] for n in fused_calls(compiled))
    assert any("add" in n.params["parts"] for n in fused_calls(compiled))
