"""Convolutions write into planned buffers (`out=`) and attention is flagged `fresh` (new memory, no
`out=`): either way the planner may keep the buffers they read in reuse and workspaces (a ReLU's result
read by the next convolution; `passes.TRUST_FRESH`): no path of them may return an operand's memory,
`out=` must give what a fresh result gives, the plan must use them, and replays must compute exactly
what the plain path does."""
import tracemalloc

import numpy as np
import pytest

import avalon
import avalon.nn.functional as F
from avalon.compile import passes
from avalon.ops import attention as att
from avalon.ops import conv as cv
from avalon.ops import index as ix
from avalon.ops.primitive import PRIMITIVES


def _conv_cases(rng):
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    for w_shape, stride, pad, groups in [((6, 4, 3, 3), (1, 1), ((1, 1), (1, 1)), 1),  # Winograd / GEMM
                                         ((6, 4, 1, 1), (1, 1), ((0, 0), (0, 0)), 1),  # 1x1: columns are x itself
                                         ((6, 2, 3, 3), (2, 2), ((0, 1), (1, 0)), 2),  # grouped, strided
                                         ((4, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), 4),  # depthwise
                                         ((6, 4, 5, 5), (3, 3), ((2, 2), (2, 2)), 1)]:
        w = rng.standard_normal(w_shape).astype(np.float32)
        y = cv.conv.impl(x, w, stride, pad, (1, 1), groups)
        yield cv.conv, (x, w), dict(stride=stride, padding=pad, dilation=(1, 1), groups=groups)
        yield cv.conv_transpose, (y, w), dict(shape=x.shape[2:], stride=stride, padding=pad, dilation=(1, 1),
                                              groups=groups)
        yield cv.conv_weight_grad, (x, y), dict(kernel=w_shape[2:], stride=stride, padding=pad, dilation=(1, 1),
                                                groups=groups)


def _attention_cases(rng):
    q, k, v = (rng.standard_normal((2, 5, 8)) for _ in range(3))
    for mask in [(), (np.tril(np.ones((5, 5), bool)),), (np.zeros((5, 5)),), (np.zeros((3, 1, 5, 5)),)]:
        yield att.attention_weights, (q, k, *mask), dict(scale=0.3)
        yield att.attention, (q, k, v, *mask), dict(scale=0.3, causal=True)
    p = att.attention_weights.impl(q, k, scale=0.3)
    yield att.attention_scores_grad, (rng.standard_normal(p.shape), p), {}


def test_every_fresh_primitive_returns_memory_of_its_own_on_each_path(rng):
    cases = [*_conv_cases(rng), *_attention_cases(rng)]
    assert {p.name for p in PRIMITIVES.values() if p.fresh} <= {prim.name for prim, _, _ in cases}
    for prim, args, params in cases:
        assert prim.fresh or prim.out, prim.name
        result = prim.impl(*args, **params)
        for a in args:
            assert not np.shares_memory(result, a), (prim.name, params)


def _scatter_cases(rng):
    values = rng.standard_normal((4, 3))
    yield ix.scatter_add, (values,), dict(key=(slice(None), 2, slice(None)), shape=(4, 5, 3))
    rows = np.array([0, 2, 0, 1])  # a repeated index accumulates
    yield ix.scatter_add, (values, rows), dict(key=(ix.Slot(0),), shape=(3, 3))


@pytest.mark.parametrize("order", ["C", "F"])  # an F-ordered out= (a ufunc's result may be) is copied into
def test_out_gets_what_a_fresh_result_gets(rng, order):
    cases = [c for c in [*_conv_cases(rng), *_attention_cases(rng), *_scatter_cases(rng)] if c[0].out]
    assert {prim.name for prim, _, _ in cases} == {"conv", "conv_transpose", "attention_weights",
                                                   "attention_scores_grad", "scatter_add"}
    for prim, args, params in cases:
        want = prim.impl(*args, **params)
        out = np.full(want.shape, np.nan, want.dtype, order=order)
        got = prim.impl(*args, **params, out=out)
        assert got is out, (prim.name, params)
        np.testing.assert_array_equal(out, want, err_msg=f"{prim.name} {params}")


def conv_step(rng, trust):
    """A small conv-bn-relu step's tape compiled with `TRUST_FRESH` on or off, and its inputs."""
    avalon.manual_seed(0)
    model = avalon.nn.Sequential(avalon.nn.Conv2d(3, 8, 3, padding=1), avalon.nn.BatchNorm2d(8), avalon.nn.ReLU(),
                                 avalon.nn.Conv2d(8, 8, 3, padding=1), avalon.nn.ReLU(), avalon.nn.Flatten(),
                                 avalon.nn.Linear(8 * 8 * 8, 10))
    x, y = rng.standard_normal((4, 3, 8, 8)).astype(np.float32), rng.integers(0, 10, 4)
    tape = avalon.grad_tape(lambda m, x, y: F.cross_entropy(m(x), y), model, x, y)
    return tape, [*model.parameters(), *model.buffers(), x, y]


@pytest.fixture
def trust(monkeypatch):
    def set_to(on):
        monkeypatch.setattr(passes, "TRUST_FRESH", on)
    return set_to


def _planned(tape):
    compiled = tape.compile()
    plan = passes.buffer_plan(compiled.tape)
    return compiled, plan, passes.workspace_slots(compiled.tape, plan)


def test_results_read_by_convolutions_are_planned_only_when_trusted(rng, trust):
    tape, _ = conv_step(rng, True)
    counts = {}
    for on in (False, True):
        trust(on)
        compiled, plan, slots = _planned(tape)
        read_by_conv = {a for n in compiled.tape.calls if n.prim.fresh for a in n.inputs}
        counts[on] = len([n for n in read_by_conv if n in plan or n in slots])
    assert counts[True] > counts[False], counts  # the ReLU's result, read by the second convolution


def test_convolutions_results_are_planned(rng):
    tape, _ = conv_step(rng, True)
    compiled, plan, slots = _planned(tape)
    convs = [n for n in compiled.tape.calls if n.prim in (cv.conv, cv.conv_transpose)]
    outputs = set(compiled.tape.outputs)  # (x's gradient, a conv_transpose, escapes to the caller: fresh)
    assert len(convs) == 4 and [n in plan or n in slots for n in convs] == [n not in outputs for n in convs]
    assert "out=" in next(line for line in compiled.source.splitlines() if "= conv(" in line)


@pytest.mark.parametrize("options", [{}, dict(workspace=False), dict(reuse=False)])
def test_a_trusted_plan_computes_what_the_untrusted_one_does_bit_for_bit(rng, trust, options):
    tape, inputs = conv_step(rng, True)
    trust(False)
    untrusted = tape.compile(**options)(*inputs)
    plain = tape.compile(workspace=False, reuse=False)(*inputs)
    trust(True)
    compiled = tape.compile(**options)
    for _ in range(3):  # later replays write the same workspace again
        got = compiled(*inputs)
        for g, u, p in zip(got, untrusted, plain):
            np.testing.assert_array_equal(g, u)
            # (float32 products in a workspace's aligned buffers may round differently in the last bit)
            np.testing.assert_allclose(g, p, rtol=1e-5, atol=1e-6)
    kept = [np.copy(g) for g in got]
    compiled(*[a * 2 if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in inputs])
    for g, k in zip(got, kept):
        np.testing.assert_array_equal(g, k)  # outputs stay the caller's


def test_the_trusted_step_agrees_with_finite_differences(rng, trust):
    trust(True)
    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))

    def f(w, x):
        return (F.relu(F.conv2d(F.relu(x), w, padding=1)) ** 2).sum()

    tape = avalon.grad_tape(f, w, x, argnums=0)
    gw = tape.compile()(w, x)[1]
    eps, k = 1e-6, (1, 2, 0, 1)
    up, down = w.copy(), w.copy()
    up[k] += eps
    down[k] -= eps
    numeric = (f(up, x) - f(down, x)) / (2 * eps)
    np.testing.assert_allclose(gw[k], numeric, rtol=1e-5)


def test_a_later_replay_allocates_nothing_for_a_relu_read_by_a_convolution(rng, trust):
    # relu(x) is large; the convolution (1x1, stride 4) reads a sixteenth of it, and its weight gradient
    # is the output: without trust the relu's result is fresh memory at every call
    x = rng.standard_normal((8, 16, 64, 64)).astype(np.float32)
    w = rng.standard_normal((4, 16, 1, 1)).astype(np.float32)

    def f(w, x):
        return F.conv2d(F.relu(x), w, stride=4).sum()

    tape = avalon.grad_tape(f, w, x, argnums=0)
    peaks = {}
    for on in (False, True):
        trust(on)
        compiled = tape.compile()
        compiled(w, x), compiled(w, x)
        tracemalloc.start()
        try:
            compiled(w, x)
            peaks[on] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peaks[False] > x.nbytes and peaks[True] < x.nbytes / 4, peaks
