"""Each pass does its job, and can be switched off on its own."""
import numpy as np
import pytest

import avalon
from avalon.compile import buffer_plan, common_subexpressions, constant_folding, dead_code
from avalon.compile.passes import memory_roots
from avalon.tape import Const, Input
from test_compile_equivalence import check_equivalent, reuse_is_safe


def names(tape):
    return [n.prim.name for n in tape.calls]


def test_dead_code_removes_unused_calls_keeps_inputs_and_random_draws(rng):
    x, y = rng.standard_normal(3), rng.standard_normal(3)

    def f(x, y):
        np.exp(x) * 2  # unused
        avalon.rand(3)  # unused, but a draw: it advances the generator
        return np.sin(x)

    tape = avalon.trace(f, x, y)
    assert names(tape) == ["exp", "multiply", "uniform", "sin"]
    pruned = dead_code(tape)
    assert names(pruned) == ["uniform", "sin"]
    assert [n.name for n in pruned.inputs] == ["x", "y"]
    assert names(tape) == ["exp", "multiply", "uniform", "sin"]  # passes copy, never change their input
    assert "exp(" in tape.source(dce=False) and "exp(" not in tape.source()


def test_common_subexpressions_merge_repeated_work(rng):
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    tape = avalon.trace(lambda x, y: x * y + x * y, x, y)
    assert names(tape) == ["multiply", "multiply", "add"]
    merged = common_subexpressions(tape)
    assert names(merged) == ["multiply", "add"]
    add = merged.calls[-1]
    assert add.args[0] is add.args[1]
    assert tape.source().count("multiply(") == 1 and tape.source(cse=False).count("multiply(") == 2
    out, = tape.compile()(x, y)
    np.testing.assert_allclose(out, 2 * x * y)


def test_common_subexpressions_keep_different_literals_and_draws_apart(rng):
    x = np.arange(3)
    tape = avalon.trace(lambda x: (x * 2, x * 2.0, x * True, avalon.rand(3), avalon.rand(3)), x)
    merged = common_subexpressions(tape)
    assert names(merged) == names(tape)
    a, b, c, u, v = merged.compile(fold=False)(x)
    assert a.dtype.kind == "i" and b.dtype.kind == "f" and not np.array_equal(u, v)


def test_common_subexpressions_see_through_merged_operands(rng):
    x = rng.standard_normal(3)
    tape = avalon.trace(lambda x: np.tanh(np.sin(x)) - np.tanh(np.sin(x)), x)
    assert names(common_subexpressions(tape)) == ["sin", "tanh", "subtract"]


def test_constant_folding_evaluates_calls_on_constants_once(rng):
    x = rng.standard_normal((3, 3))
    tape = avalon.trace(lambda x: x * avalon.tril(avalon.ones(3, 3)) + avalon.exp(avalon.zeros(3)), x)
    assert "where" in names(tape) and "exp" in names(tape)
    folded = constant_folding(tape)
    assert names(folded) == ["multiply", "add"]
    assert "where(" not in tape.source() and "where(" in tape.source(fold=False)
    out, = tape.compile()(x)
    np.testing.assert_allclose(out, x * np.tril(np.ones((3, 3))) + 1)


def test_constant_folding_leaves_random_draws_alone(rng):
    tape = avalon.trace(lambda x: x + avalon.rand(3) * 2.0, rng.standard_normal(3))
    assert names(constant_folding(tape)) == names(tape)


def test_buffer_reuse_writes_into_dead_buffers(rng):
    x = rng.standard_normal((2, 3))
    tape = avalon.trace(lambda x: np.cos(np.sin(np.tanh(x) * 2) + 1), x)
    plan = buffer_plan(tape)
    assert plan, "a chain of same-shaped elementwise calls reuses buffers"
    assert all(isinstance(buffer, type(n)) for n, buffer in plan.items())
    assert "out=v" in tape.source() and "out=" not in tape.source(reuse=False, workspace=False)
    reuse_is_safe(tape, [x])
    check_equivalent(tape, [x])


def test_buffer_reuse_waits_for_views_of_a_buffer(rng):
    # t dies as an operand at the reshape, but lives on through its views until the very end
    x = rng.standard_normal((2, 3))
    for view in (lambda t: t.reshape(3, 2).reshape(2, 3), lambda t: t.T.T, lambda t: t[:, ::-1][:, ::-1],
                 lambda t: t[0:2]):
        def f(x, view=view):
            t = np.tanh(x)
            v = view(t)
            u = np.sin(x) * 2.0  # same shape and dtype as t: a candidate for t's buffer
            w = np.cos(u) + 1.0
            return v + w

        tape = avalon.trace(f, x)
        plan = reuse_is_safe(tape, [x])
        tanh = next(n for n in tape.calls if n.prim.name == "tanh")
        assert tanh not in plan.values()
        check_equivalent(tape, [x])


def test_buffer_reuse_never_recycles_inputs_constants_or_outputs(rng):
    x, c = rng.standard_normal(4), rng.standard_normal(4)
    tape = avalon.trace(lambda x: (np.tanh(x), np.sin(np.tanh(x) + c) * 2.0 + 1.0), x)
    plan = buffer_plan(tape)
    recycled = set(plan.values())
    assert not any(isinstance(b, (Input, Const)) for b in recycled)
    assert not recycled & set(tape.outputs)
    check_equivalent(tape, [x])


@avalon.primitive
def passthrough(x):
    """A user primitive returning its argument itself: its result aliases its operand."""
    return x


@avalon.rule(passthrough)
def _passthrough_vjp(g, out, x):
    return (g,)


@avalon.primitive
def first_row(x):
    """A user primitive returning a view."""
    return x[0]


@avalon.rule(first_row)
def _first_row_vjp(g, out, x):
    return (avalon.ops.index.scatter_add(g, key=(0,), shape=x.shape),)


def test_buffer_reuse_assumes_user_primitives_may_alias(rng):
    x = rng.standard_normal((2, 3))

    def f(x):
        a = passthrough(x)  # the input's memory: must never be written into
        b = first_row(np.tanh(x) + 0.0)  # a view into the sum
        c = np.sin(a) * 2.0
        d = np.cos(c) - 1.0
        return d + 3.0, b * 1.0 + 0.0

    tape = avalon.trace(f, x)
    roots = memory_roots(tape)
    call = next(n for n in tape.calls if n.prim.name == "passthrough")
    assert tape.inputs[0] in roots[call]
    reuse_is_safe(tape, [x])
    check_equivalent(tape, [x])
    check_equivalent(avalon.grad_tape(lambda x: sum(o.sum() for o in f(x)), x), [x])


def test_einsum_transposition_is_treated_as_a_possible_view(rng):
    x = rng.standard_normal((3, 3))

    def f(x):
        t = np.tanh(x)
        v = np.einsum("ij->ji", t)  # numpy returns a view here
        u = np.sin(x) + 1.0
        return np.cos(u) * 2.0 + v

    tape = avalon.trace(f, x)
    reuse_is_safe(tape, [x])
    check_equivalent(tape, [x])


def test_outputs_sharing_memory_are_returned_as_separate_arrays(rng):
    x = rng.standard_normal(3)
    tape = avalon.trace(lambda x: (np.tanh(x), np.tanh(x), x[::-1], np.ones(3)), x)
    outs = tape.compile()(x)
    for i, a in enumerate(outs):
        assert not np.shares_memory(a, x)
        assert not any(np.shares_memory(a, b) for b in outs[i + 1:])
    outs[3][:] = 7  # a constant handed out must not be the cache's own
    np.testing.assert_array_equal(tape.compile()(x)[3], np.ones(3))


def test_source_is_one_assignment_per_call(rng):
    x = rng.standard_normal(3)
    tape = avalon.trace(lambda x: np.tanh(x) * 2.0 + np.sin(x), x)
    source = tape.source(dce=False, cse=False, fold=False, reuse=False, release=False, workspace=False)
    body = source.splitlines()[1:-1]
    assert len(body) == len(tape.calls)
    assert body[0].strip().startswith(f"v{tape.calls[0].id} = tanh(i{tape.inputs[0].id})")
    assert source.splitlines()[-1].strip().startswith("return (")
    released = tape.source(dce=False, cse=False, fold=False, reuse=False, workspace=False).splitlines()[1:-1]
    assert [line for line in released if not line.strip().startswith("del ")] == body


def test_primitive_names_that_clash_with_generated_names_are_renamed(rng):
    @avalon.primitive(name="v1")
    def clash(x):
        return x + 1

    @avalon.primitive(name="copy")
    def clash2(x):
        return x * 2

    x = rng.standard_normal(3)
    tape = avalon.trace(lambda x: clash2(clash(np.tanh(x))), x)
    out, = tape.compile()(x)
    np.testing.assert_allclose(out, (np.tanh(x) + 1) * 2)


def test_interpret_checks_the_number_of_inputs(rng):
    tape = avalon.trace(lambda x, y: x + y, rng.standard_normal(2), rng.standard_normal(2))
    with pytest.raises(TypeError, match=r"takes 2 inputs \(x, y\), got 1"):
        tape.interpret(np.ones(2))


def test_an_einsum_that_multiplies_or_sums_owns_its_memory(rng):
    # numpy may hand back a view of a lone operand whose indices all stay (a transposition, a diagonal);
    # a product of operands or a sum over an index is a new array, whose buffer can then be planned
    a, b = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    for subscripts, operands, owns in [("ij,ij->i", (a, b), True), ("ij->i", (a,), True),
                                       ("ij->ji", (a,), False), ("ii->i", (a,), False)]:
        tape = avalon.trace(lambda *xs: avalon.ops.linalg.einsum(*xs, subscripts=subscripts), *operands)
        (call,) = tape.calls
        assert memory_roots(tape)[call] == ({call} if owns else {call, tape.inputs[0]}), subscripts
        assert np.shares_memory(np.einsum(subscripts, *operands), operands[0]) is not owns
