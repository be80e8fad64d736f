"""Compiled replay equals interpreting the tape, for many generated programs and every combination
of passes; and buffer reuse never writes over a value that is still needed."""
import itertools

import numpy as np
import pytest

import avalon
from avalon.compile import accumulate_slices, buffer_plan, common_subexpressions, constant_folding, dead_code, inplace
from avalon.ops import index as ix
from avalon.tape import Call, Const, Input
from compile_programs import evaluate_all, joint_tape, program, sliced_program

FLAGS = ("dce", "cse", "fold", "accumulate", "reuse")
PASSES = [dict(zip(FLAGS, flags)) for flags in itertools.product((False, True), repeat=len(FLAGS))]
SEEDS = range(24)


def check_equivalent(tape, inputs):
    expected = tape.interpret(*inputs)
    originals = [a.copy() for a in inputs]
    for options in PASSES:
        compiled = tape.compile(**options)
        for _ in range(2):  # twice: a replay must not depend on what the last one left behind
            got = compiled(*inputs)
            assert len(got) == len(expected)
            for k, (g, e) in enumerate(zip(got, expected)):
                np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12, err_msg=f"{options} output {k}\n{compiled.source}")
                assert np.shape(g) == np.shape(e) and np.asarray(g).dtype == np.asarray(e).dtype
        for a, before in zip(inputs, originals):
            np.testing.assert_array_equal(a, before, err_msg=f"{options} wrote into an input\n{compiled.source}")


@pytest.mark.parametrize("seed", SEEDS)
def test_forward_programs(seed):
    f, inputs = program(seed)
    check_equivalent(avalon.trace(f, *inputs), inputs)


@pytest.mark.parametrize("seed", SEEDS)
def test_forward_and_backward_programs(seed):
    f, inputs = program(seed)
    check_equivalent(joint_tape(f, inputs), inputs)


@pytest.mark.parametrize("seed", range(8))
def test_programs_taking_many_slices(seed):
    f, inputs = sliced_program(seed)
    tape = joint_tape(f, inputs)
    check_equivalent(tape, inputs)
    rewritten = dead_code(accumulate_slices(tape))
    assert any(n.prim is ix.scatter_sum for n in rewritten.calls)
    reuse_is_safe(rewritten, inputs)


def reuse_is_safe(tape, inputs):
    """The oracle: evaluated eagerly, no buffer a call writes into shares memory with any value read
    at or after that call, or returned (but the operand an elementwise call writes over in place:
    compile/inplace.py); and only fresh call results are written into."""
    plan = buffer_plan(tape)
    env = evaluate_all(tape, inputs)
    order = {n: i for i, n in enumerate(tape.nodes)}
    for n, buffer in plan.items():
        assert isinstance(buffer, Call) and buffer not in tape.outputs
        assert order[buffer] < order[n] and buffer.shape == n.shape and buffer.dtype == n.dtype
        later = tape.nodes[order[n] + 1:]
        still_needed = set(tape.outputs) | {a for m in later if isinstance(m, Call) for a in m.inputs}
        still_needed |= set(n.inputs) - ({buffer} if n.prim in inplace._ELEMENTWISE else set())
        for m in still_needed:
            if not isinstance(m, (Input, Const)) or m is not buffer:
                assert not np.shares_memory(env[m], env[buffer]), f"{n} writes into {buffer}, still seen by {m}"
    return plan


@pytest.mark.parametrize("seed", SEEDS)
def test_buffer_reuse_never_overwrites_a_needed_value(seed):
    f, inputs = program(seed)
    for tape in (avalon.trace(f, *inputs), joint_tape(f, inputs)):
        for optimised in (tape, dead_code(common_subexpressions(constant_folding(tape)))):
            reuse_is_safe(optimised, inputs)


def test_programs_do_reuse_buffers():
    planned = sum(len(buffer_plan(dead_code(joint_tape(*program(seed))))) for seed in SEEDS)
    assert planned > len(SEEDS)  # the oracle above is not vacuous
