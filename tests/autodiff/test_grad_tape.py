"""The reverse-mode tape transform, read off the joint forward+backward tape."""
import inspect

import numpy as np

import avalon


def backward_calls(tape):
    return [n for n in tape.calls if n.phase == "backward"]


def forward_by_id(tape):
    return {n.id: n for n in tape.calls if n.phase == "forward"}


def test_joint_tape_prints_draws_and_compiles(rng):
    W, x = rng.standard_normal((3, 2)), rng.standard_normal((4, 3))
    f = lambda W, x: np.tanh(x @ W).sum()
    tape = avalon.grad_tape(f, W, x)
    text = str(tape)
    assert "[backward]" in text and "matmul" in text and text.splitlines()[-1].startswith("return")
    assert "#fde68a" in tape.to_dot()  # backward nodes are coloured
    assert len(tape.outputs) == 3  # value, gW, gx
    compiled = tape.compile()
    assert compiled.source.startswith("def replay(")
    value, gW, gx = compiled(W, x)
    expected_value, (eW, ex) = avalon.grad(f, W, x)
    np.testing.assert_allclose(value, expected_value)
    np.testing.assert_allclose(gW, eW)
    np.testing.assert_allclose(gx, ex)
    for got, want in zip(tape.interpret(W, x), (value, gW, gx)):
        np.testing.assert_allclose(got, want)


def test_unused_branch_gets_no_backward_nodes(rng):
    x, y = rng.standard_normal(3), rng.standard_normal(3)
    unused_line = inspect.currentframe().f_lineno + 3

    def f(x, y):
        unused = np.exp(y) * np.cos(x)  # noqa: F841 - never reaches the output
        return np.sin(x).sum()

    tape = avalon.grad_tape(f, x, y)
    differentiated = {fid for fid in tape.meta["rule_of"].values()}
    assert differentiated, "some rule ran"
    lines = {n.location.lineno for n in backward_calls(tape)}
    assert unused_line not in lines
    assert not [n for n in tape.calls if n.prim.name in ("exp",)]  # and its forward is dead code
    value, (gx, gy) = avalon.grad(f, x, y)
    np.testing.assert_allclose(gx, np.cos(x))
    assert not gy.any()


def test_a_value_used_twice_accumulates_with_an_add_node(rng):
    x = rng.standard_normal(3)
    tape = avalon.grad_tape(lambda x: (np.sin(x) * np.sin(x)).sum(), x)
    adds = [n for n in backward_calls(tape) if n.prim.name == "add"]
    assert len(adds) == 1
    # the two gradients into sin(x): both products of the incoming gradient, summed by the add
    assert all(a.prim.name == "multiply" for a in adds[0].inputs)
    once = avalon.grad_tape(lambda x: (np.sin(x) * 2.0).sum(), x)
    assert not [n for n in backward_calls(once) if n.prim.name == "add"]


def test_broadcast_operand_gets_a_sum_to_node(rng):
    x, b = rng.standard_normal((2, 3)), rng.standard_normal(3)
    tape = avalon.grad_tape(lambda x, b: np.tanh(x + b).sum(), x, b)
    sum_tos = [n for n in backward_calls(tape) if n.prim.name == "sum_to"]
    assert len(sum_tos) == 1 and sum_tos[0].shape == (3,)
    assert tape.outputs[2] is sum_tos[0]  # b's gradient
    _, (gx, gb) = avalon.grad(lambda x, b: np.tanh(x + b).sum(), x, b)
    np.testing.assert_allclose(gb, gx.sum(0))


def test_symbolic_zeros_are_skipped(rng):
    x, y = rng.standard_normal(3), rng.standard_normal(3) * 3
    floor_line = inspect.currentframe().f_lineno + 4

    def f(x, y):
        return np.sin(x).sum() + \
            (np.floor(y) ** 2 * 3.0).sum()

    tape = avalon.grad_tape(f, x, y)
    forward = forward_by_id(tape)
    ruled = {forward[i].prim.name for i in tape.meta["rule_of"].values() if i in forward}
    assert ruled <= {"sin", "sum", "add"}, ruled
    assert floor_line not in {n.location.lineno for n in backward_calls(tape)}
    assert len(tape.outputs) == 2  # the value and x's gradient: y's is a symbolic zero
    _, (gx, gy) = avalon.grad(f, x, y)
    np.testing.assert_array_equal(gy, np.zeros(3))


def test_backward_nodes_point_at_the_forward_line(rng):
    x = rng.standard_normal(3)
    line = inspect.currentframe().f_lineno + 1
    tape = avalon.grad_tape(lambda x: np.tanh(x).sum(), x)
    tanh_backward = [n for n in backward_calls(tape) if n.location.lineno == line]
    assert tanh_backward and all(n.location.filename == __file__ for n in tanh_backward)


def test_stop_gradient_blocks_the_gradient(rng):
    x = rng.standard_normal(3)
    _, (gx,) = avalon.grad(lambda x: (x * avalon.detach(x)).sum(), x)
    np.testing.assert_allclose(gx, x)
