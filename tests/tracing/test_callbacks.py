"""Hooks in traced code: host callbacks at every replay, gradient hooks on traced values (against
PyTorch's Tensor.register_hook), and how the compiler treats callback nodes."""
import numpy as np
import pytest

import avalon
from avalon.compile import passes
from avalon.ops.callback import host_callback
from avalon.tracing import current
from avalon.tracing.callbacks import HookError, call_hook
from avalon.tracing.context import suspended

torch = pytest.importorskip("torch")

CALLS = 3


def inputs(shape=(4, 3)):
    rng = np.random.default_rng(2)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(CALLS)]


W = np.random.default_rng(3).standard_normal((3, 2)).astype(np.float32)


def close(ours, theirs):
    np.testing.assert_allclose(np.asarray(ours), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)


def run_torch(x, *hooks):
    """torch's gradients of sum(tanh(x @ W)**2) with `hooks` on tanh's output; (gW, gx)."""
    tw, tx = torch.tensor(W, requires_grad=True), torch.tensor(x, requires_grad=True)
    h = torch.tanh(tx @ tw)
    for hook in hooks:
        h.register_hook(hook)
    (h ** 2).sum().backward()
    return tw.grad, tx.grad


def hooked(*hooks):
    def f(w, x):
        h = np.tanh(x @ w)
        for hook in hooks:
            h.register_hook(hook)
        return (h ** 2).sum()
    return f


# gradient hooks on traced values


def test_observing_hook_sees_each_calls_gradient_like_torch():
    seen, their_seen = [], []
    f = hooked(lambda g: seen.append(g.copy()))
    for i, x in enumerate(inputs()):
        avalon.grad(f, W, x)
        run_torch(x, lambda g: their_seen.append(g.clone()))
        assert len(seen) == len(their_seen) == i + 1
        assert isinstance(seen[-1], avalon.Tensor)
        close(seen[-1], their_seen[-1])


def test_hooks_chain_and_replace_the_gradient_like_torch():
    hooks = (lambda g: g * 3, lambda g: g.clamp(-0.5, 0.5))  # torch's method on tracers and tensors alike
    f = hooked(*hooks)
    for x in inputs():
        _, (gW, gx) = avalon.grad(f, W, x)
        their_gW, their_gx = run_torch(x, *hooks)
        close(gW, their_gW)
        close(gx, their_gx)


def test_removed_hook_is_not_called():
    seen = []

    def f(w, x):
        h = np.tanh(x @ w)
        h.register_hook(lambda g: seen.append("kept"))
        h.register_hook(lambda g: seen.append("removed")).remove()
        return (h ** 2).sum()

    for x in inputs():
        avalon.grad(f, W, x)
    assert seen == ["kept"] * CALLS


def test_hook_on_a_value_no_gradient_reaches_is_not_called():
    seen = []

    def f(w, x):
        unused = np.tanh(x @ w)
        unused.register_hook(lambda g: seen.append(g))
        return (x ** 2).sum()

    avalon.grad(f, W, inputs()[0])
    assert seen == []


def test_hook_returning_a_wrong_shape_is_refused():
    f = hooked(lambda g: g.sum())
    with pytest.raises(HookError, match=r"returned a gradient of shape \(\) for a value of shape \(4, 2\)"):
        avalon.grad(f, W, inputs()[0])


def test_register_hook_on_an_array_outside_traced_code_is_refused():
    with pytest.raises(avalon.AvalonError, match="register_hook"):
        avalon.ones(3).register_hook(print)


# host callbacks


def test_a_host_callback_runs_at_every_replay_with_that_calls_values():
    seen = []
    f = avalon.jit(lambda x: call_hook(seen.append, (), (np.tanh(x),), "<observer>") or x * 2)
    xs = inputs()
    for x in xs:
        np.testing.assert_allclose(f(x), x * 2)
    assert len(seen) == CALLS
    for x, value in zip(xs, seen):
        np.testing.assert_allclose(value, np.tanh(x), rtol=1e-6)


def test_a_hook_returning_a_value_is_traced_and_runs_once_per_replay():
    calls = []

    def double(x):
        calls.append(1)
        return x * 2

    f = avalon.jit(lambda x: call_hook(double, (), (x,), "<double>") + 1)
    for x in inputs():
        np.testing.assert_allclose(f(x), x * 2 + 1)
    assert len(calls) == CALLS  # once per call: its result, computed on a Standin, is recorded


def test_the_hook_sees_values_and_what_it_derives_reads_as_values():
    seen = []

    def look(x):
        assert current() is None and isinstance(x, avalon.Tensor)
        derived = avalon.exp(x)
        assert isinstance(derived, avalon.Tensor)
        seen.append(np.asarray(derived).copy())

    x = inputs()[0]
    compiled = avalon.trace(lambda x: call_hook(look, (), (x,), "<look>") or x.sum(), x).compile()
    np.testing.assert_allclose(seen[0], np.exp(x), rtol=1e-6)
    # what the hook derived was recorded, and is dead code: the replay calls the hook and sums
    assert [n.prim.name for n in compiled.tape.calls] == ["host_callback", "sum"]


def test_suspended_restores_the_trace():
    def f(x):
        trace = current()
        with suspended():
            assert current() is None
        assert current() is trace
        return x.sum()

    avalon.trace(f, inputs()[0])


def test_callbacks_are_never_removed_folded_or_merged():
    seen = []
    constant = np.ones(3, np.float32)

    def f(x):
        call_hook(seen.append, (), (constant,), "<a>")  # on a constant alone: not folded away
        call_hook(seen.append, (), (constant,), "<b>")  # the same call again: not merged
        return x.sum()

    compiled = avalon.trace(f, inputs()[0]).compile()
    assert compiled.source.count("host_callback(") == 2
    seen.clear()
    compiled(inputs()[0])
    assert len(seen) == 2


def test_buffers_handed_to_a_callback_are_never_recycled():
    def f(x, observe):
        a = np.exp(x)
        if observe:
            host_callback(a, callback=lambda a: None)
        return np.tanh(a * 3).sum()  # tanh could write into a's buffer, dead after the product

    def recycled(observe):
        tape = avalon.trace(f, inputs()[0], observe)
        exp = next(n for n in tape.calls if n.prim.name == "exp")
        return exp in passes.buffer_plan(tape).values()

    assert recycled(observe=False)
    assert not recycled(observe=True)
