"""In-place elementwise results (compile/inplace.py): which calls write over an operand, which never do,
that replays compute bit for bit what the tape does without it, and the memory a step keeps."""
import tracemalloc

import numpy as np
import pytest

import avalon
from avalon.compile import inplace
from avalon.compile.passes import buffer_plan, workspace_slots
from avalon.compile.fuse import fused
from avalon.ops import linalg
from avalon.tape import Call


@pytest.fixture(params=[True, False], ids=["in place", "not in place"])
def in_place(request, monkeypatch):
    monkeypatch.setattr(inplace, "IN_PLACE", request.param)
    return request.param


def _planned(f, *args):
    """(the compiled tape, its buffer plan, the compiled function)."""
    compiled = avalon.trace(f, *args).compile()
    return compiled.tape, buffer_plan(compiled.tape), compiled


def _over_product(plan):
    """The calls planned over the buffer of a matrix product they read."""
    return [n for n, b in plan.items() if b.prim is linalg.matmul and b in n.inputs]


@pytest.mark.parametrize("f", [
    lambda a, b: np.tanh(a @ b) * 2.0 + 1.0,  # a fused chain
    lambda a, b: np.tanh(a @ b) * 2.0 + (a @ b),  # the product read twice by the chain, at its last use
    lambda a, b: np.maximum(a @ b, 0.0) + 1.0,
], ids=["chain", "read twice", "relu"])
def test_an_elementwise_call_writes_over_the_product_it_reads_last(f, rng, in_place):
    a, b = rng.standard_normal((128, 48)), rng.standard_normal((48, 160))  # large enough to fuse
    tape, plan, compiled = _planned(f, a, b)
    assert any(n.prim is fused for n in tape.calls)
    assert bool(_over_product(plan)) == in_place, compiled.source
    got = compiled(a, b)[0]
    np.testing.assert_array_equal(got, avalon.trace(f, a, b).interpret(a, b)[0])
    np.testing.assert_array_equal(compiled(a, b)[0], got)  # the workspace written again


@pytest.mark.parametrize("f", [
    lambda a, b: (np.tanh(a @ b) + 1.0, (a @ b) @ b.T),  # read later
    lambda a, b: np.tanh(a @ b) + (a @ b).T,  # another operand is a view of it
    lambda a, b: (a @ b) > 0.5,  # another dtype
    lambda a, b: np.tanh(a) + 1.0,  # an input
], ids=["read later", "a view beside it", "bool result", "input"])
def test_never_over_an_operand_still_needed_viewed_elsewhere_of_another_dtype_or_an_input(f, rng):
    a = rng.standard_normal((48, 48))
    tape, plan, compiled = _planned(f, a, a.copy())
    assert not _over_product(plan) and all(isinstance(b, Call) for b in plan.values()), compiled.source
    before = a.copy()
    for got, want in zip(compiled(a, a.copy()), avalon.trace(f, a, a.copy()).interpret(a, a.copy())):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(a, before)


def test_never_over_what_a_fused_where_selects(rng, monkeypatch):
    """ReLU's backward where(h > 0, g, 0) over g would lose the kernel's bit-mask selection: the product
    it selects dies there, the activation it compares lives on (an output), so nothing is in place."""
    a, b = rng.standard_normal((128, 48)), rng.standard_normal((48, 160))

    def f(a, b):
        return np.where(np.sin(a @ b) > 0.1, a @ (b * 2.0), 0.0), np.sin(a @ b)

    tape, plan, compiled = _planned(f, a, b)
    where = next(n for n in tape.calls if n.prim is fused)
    assert where.params["kernel"].text.startswith("where") and where not in plan, compiled.source
    monkeypatch.setattr(inplace, "_selected", lambda call: ())
    tape, plan, _ = _planned(f, a, b)
    assert next(n for n in tape.calls if n.prim is fused) in plan  # the test can fail


def test_a_call_over_its_operand_halves_the_peak_of_a_chain(rng, monkeypatch):
    """tanh over a product it reads last: a call holds one product's memory at its peak, not two."""
    a, b = rng.standard_normal((256, 64)), rng.standard_normal((64, 512))
    product = 256 * 512 * 8
    peak = {}
    for flag in (True, False):
        monkeypatch.setattr(inplace, "IN_PLACE", flag)
        compiled = avalon.trace(lambda a, b: np.tanh(a @ b).sum(), a, b).compile()
        tracemalloc.start()
        try:
            for _ in range(2):  # the first call makes the workspace, the second reuses it
                compiled(a, b)
            peak[flag] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak[True] < 1.2 * product and peak[False] > 1.9 * product, peak


def _mlp_loss(w1, b1, w2, x, y):
    h = avalon.nn.functional.relu(x @ w1 + b1)
    return ((h @ w2 - y) ** 2).mean()


def test_a_relu_layers_gradients_are_bit_for_bit_the_same_and_torchs(rng, monkeypatch):
    x, y = rng.standard_normal((256, 128)).astype(np.float32), rng.standard_normal((256, 32)).astype(np.float32)
    w1, b1, w2 = (0.1 * rng.standard_normal(s).astype(np.float32) for s in ((128, 512), (512,), (512, 32)))
    grads, over = {}, {}
    for flag in (True, False):
        monkeypatch.setattr(inplace, "IN_PLACE", flag)
        compiled = avalon.grad_tape(_mlp_loss, w1, b1, w2, x, y).compile()
        plan = buffer_plan(compiled.tape)
        over[flag] = [n for n, b in plan.items() if b in n.inputs]
        grads[flag] = compiled(w1, b1, w2, x, y)
    assert over[True] and not over[False]
    for on, off in zip(grads[True], grads[False]):
        np.testing.assert_array_equal(on, off)
    torch = pytest.importorskip("torch")
    t1, tb, t2 = (torch.tensor(w, requires_grad=True) for w in (w1, b1, w2))
    (((torch.relu(torch.tensor(x) @ t1 + tb) @ t2 - torch.tensor(y)) ** 2).mean()).backward()
    for got, want in zip(grads[True][1:4], (t1, tb, t2)):
        np.testing.assert_allclose(got, want.grad.numpy(), rtol=1e-4, atol=1e-6)
