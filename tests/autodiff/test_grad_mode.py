"""Grad-mode scopes (no_grad, enable_grad, inference_mode, set_grad_enabled) have torch's meaning:
in traced code what is recorded under a disabled mode carries no gradient."""
import numpy as np
import pytest
import torch

import avalon
from avalon import nn


def _torch(*arrays):
    return [torch.tensor(a, requires_grad=True) for a in arrays]


def _torch_grads(loss, *tensors):
    loss.backward()
    return [t.grad.numpy() for t in tensors]


def partly_frozen(lib, no_grad):
    """A loss whose target is computed under no_grad, written once for both libraries."""
    def loss(W, V, x):
        h = lib.tanh(x @ W)
        with no_grad():
            target = lib.tanh(h @ V) * 2.0  # a constant to differentiation: no gradient flows through it
        return ((h @ V - target) ** 2).sum() + (h * target).sum()
    return loss


@pytest.fixture
def arrays(rng):
    return rng.standard_normal((3, 4)), rng.standard_normal((4, 4)), rng.standard_normal((5, 3))


def test_part_under_no_grad_gets_torchs_gradients(arrays):
    loss = partly_frozen(np, avalon.no_grad)
    tW, tV, tx = _torch(*arrays)
    t_loss = partly_frozen(torch, torch.no_grad)(tW, tV, tx)
    expected = _torch_grads(t_loss, tW, tV, tx)
    for _ in range(2):  # traced, then replayed
        value, grads = avalon.grad(loss, *arrays)
        np.testing.assert_allclose(value, t_loss.item(), rtol=1e-12)
        for g, e in zip(grads, expected):
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


def test_no_grad_part_differs_from_the_plain_gradient(arrays):
    plain = partly_frozen(np, lambda: avalon.enable_grad())  # the same code with gradients on
    _, cut = avalon.grad(partly_frozen(np, avalon.no_grad), *arrays)
    _, full = avalon.grad(plain, *arrays)
    assert not np.allclose(cut[1], full[1])


def test_grad_of_a_function_entirely_under_no_grad_is_zero_as_in_torch_func(rng):
    x = rng.standard_normal(3)

    @avalon.no_grad()
    def f(x):
        return (np.sin(x) * 2).sum()

    expected = torch.func.grad(torch.no_grad()(lambda t: (torch.sin(t) * 2).sum()))(torch.tensor(x))
    value, (gx,) = avalon.grad(f, x)
    np.testing.assert_allclose(value, (np.sin(x) * 2).sum())
    np.testing.assert_array_equal(gx, expected.numpy())
    np.testing.assert_array_equal(gx, np.zeros(3))


def test_enable_grad_inside_no_grad_turns_gradients_back_on(arrays):
    def loss(lib, no_grad, enable_grad, W, V, x):
        with no_grad():
            frozen = lib.tanh(x @ W)
            with enable_grad():
                live = lib.tanh(x @ W) @ V + frozen @ V
            frozen_again = live * 3.0
        return (live * frozen + frozen_again).sum()

    tW, tV, tx = _torch(*arrays)
    expected = _torch_grads(loss(torch, torch.no_grad, torch.enable_grad, tW, tV, tx), tW, tV, tx)
    _, grads = avalon.grad(lambda *a: loss(np, avalon.no_grad, avalon.enable_grad, *a), *arrays)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("scope", ["inference_mode", "set_grad_enabled"])
def test_inference_mode_and_set_grad_enabled_false_cut_like_no_grad(arrays, scope):
    avalon_scope = (lambda: avalon.inference_mode()) if scope == "inference_mode" else \
        (lambda: avalon.set_grad_enabled(False))
    _, expected = avalon.grad(partly_frozen(np, avalon.no_grad), *arrays)
    _, grads = avalon.grad(partly_frozen(np, avalon_scope), *arrays)
    for g, e in zip(grads, expected):
        np.testing.assert_array_equal(g, e)


def test_inference_mode_false_enables_gradients_as_in_torch(rng):
    x = rng.standard_normal(3)

    def loss(lib, no_grad, inference_mode, x):
        with no_grad():
            with inference_mode(False):
                kept = lib.sin(x) * x
            cut = lib.cos(x)
        return (kept * cut).sum()

    tx, = _torch(x)
    expected, = _torch_grads(loss(torch, torch.no_grad, torch.inference_mode, tx), tx)
    _, (gx,) = avalon.grad(lambda x: loss(np, avalon.no_grad, avalon.inference_mode, x), x)
    np.testing.assert_allclose(gx, expected, rtol=1e-12)


def test_set_grad_enabled_called_as_a_function_switches_for_the_rest_of_the_trace(rng):
    x = rng.standard_normal(3)

    def loss(lib, set_grad_enabled, x):
        a = lib.sin(x)
        set_grad_enabled(False)
        b = lib.exp(x)
        set_grad_enabled(True)
        return (a * b).sum()

    tx, = _torch(x)
    expected, = _torch_grads(loss(torch, torch.set_grad_enabled, tx), tx)
    _, (gx,) = avalon.grad(lambda x: loss(np, avalon.set_grad_enabled, x), x)
    np.testing.assert_allclose(gx, expected, rtol=1e-12)
    np.testing.assert_allclose(gx, np.cos(x) * np.exp(x), rtol=1e-12)


def test_a_mode_left_off_in_traced_code_does_not_leak_out_of_the_trace(rng):
    x = rng.standard_normal(3)

    def leaves_it_off(x):
        avalon.set_grad_enabled(False)
        assert not avalon.is_grad_enabled()
        return np.sin(x).sum()

    assert avalon.grad(leaves_it_off, x)[1][0].tolist() == [0.0] * 3  # everything after the switch is cut
    assert avalon.is_grad_enabled()
    _, (gx,) = avalon.grad(lambda x: np.sin(x).sum(), x)  # a new trace starts with gradients on
    np.testing.assert_allclose(gx, np.cos(x))


def test_is_grad_enabled_follows_the_scopes_outside_and_inside_traced_code(rng):
    seen = []

    def f(x):
        seen.append(avalon.is_grad_enabled())
        with avalon.no_grad():
            seen.append(avalon.is_grad_enabled())
            with avalon.enable_grad():
                seen.append(avalon.is_grad_enabled())
        return (x * x).sum()

    assert avalon.is_grad_enabled()
    with avalon.no_grad():
        assert not avalon.is_grad_enabled()
        with avalon.enable_grad():
            assert avalon.is_grad_enabled()
        assert not avalon.is_grad_enabled()
        # grad is a function transform: a scope around the call does not reach into it (torch.func's rule)
        _, (gx,) = avalon.grad(f, np.arange(3.0))
        assert not avalon.is_grad_enabled()
    np.testing.assert_array_equal(gx, [0.0, 2.0, 4.0])
    assert seen == [True, False, True]
    assert avalon.is_grad_enabled()


def test_torch_func_grad_also_ignores_a_no_grad_around_the_call():
    with torch.no_grad():
        g = torch.func.grad(lambda t: (t * t).sum())(torch.arange(3.0))
    np.testing.assert_array_equal(g.numpy(), [0.0, 2.0, 4.0])


def test_an_error_inside_a_scope_restores_the_mode(rng):
    def f(x):
        with avalon.no_grad():
            raise KeyError("boom")

    with pytest.raises(KeyError):
        avalon.grad(f, rng.standard_normal(2))
    with pytest.raises(KeyError), avalon.no_grad():
        raise KeyError("boom")
    assert avalon.is_grad_enabled()


class Teacher(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)

    @avalon.no_grad()
    def generate(self, x):
        """Greedy targets."""
        return self.forward(x).tanh()

    @avalon.no_grad
    def bare(self, x):
        return self.forward(x) * 2


class TorchTeacher(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)

    @torch.no_grad()
    def generate(self, x):
        return self.forward(x).tanh()


def test_a_decorated_model_method_inside_and_outside_traced_code(rng):
    theirs = TorchTeacher()
    model = Teacher()
    model.load_state_dict(theirs.state_dict())
    x = rng.standard_normal((5, 4)).astype(np.float32)
    assert Teacher.generate.__name__ == "generate" and Teacher.generate.__doc__ == "Greedy targets."

    outside = model.generate(x)  # eagerly: just the values
    np.testing.assert_allclose(outside, theirs.generate(torch.tensor(x)).numpy(), rtol=1e-5, atol=1e-6)
    assert avalon.is_grad_enabled()

    def loss(m, x):
        return ((m(x) - m.generate(x)) ** 2).sum()

    t_loss = ((theirs(torch.tensor(x)) - theirs.generate(torch.tensor(x))) ** 2).sum()
    t_loss.backward()
    for _ in range(2):
        value, (g, _) = avalon.grad(loss, model, x)
        np.testing.assert_allclose(value, t_loss.item(), rtol=1e-5)
        np.testing.assert_allclose(g.fc.weight, theirs.fc.weight.grad.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g.fc.bias, theirs.fc.bias.grad.numpy(), rtol=1e-5, atol=1e-6)

    # bare @avalon.no_grad: the doubled output is a constant factor, as if computed beforehand
    _, (g, _) = avalon.grad(lambda m, x: (m.bare(x) * m(x)).sum(), model, x)
    factor = model.bare(x)
    _, (expected, _) = avalon.grad(lambda m, x: (factor * m(x)).sum(), model, x)
    np.testing.assert_allclose(g.fc.weight, expected.fc.weight, rtol=1e-6)


def test_decorated_generator_runs_each_step_in_the_scope():
    @avalon.no_grad()
    def steps():
        received = yield avalon.is_grad_enabled()
        yield (received, avalon.is_grad_enabled())
        return "done"

    it = steps()
    assert next(it) is False
    assert avalon.is_grad_enabled()  # the caller's code between steps is outside the scope
    assert it.send("hi") == ("hi", False)
    with pytest.raises(StopIteration) as done:
        next(it)
    assert done.value.value == "done"

    it = steps()
    next(it)
    with pytest.raises(ValueError):
        it.throw(ValueError("into the generator"))
    assert avalon.is_grad_enabled()


def test_set_grad_enabled_as_a_decorator_switches_only_during_calls():
    @avalon.set_grad_enabled(False)
    def off():
        return avalon.is_grad_enabled()

    assert avalon.is_grad_enabled()
    assert off() is False
    assert avalon.is_grad_enabled()
    switch = avalon.set_grad_enabled(False)
    assert not avalon.is_grad_enabled()
    with switch:
        assert not avalon.is_grad_enabled()
    assert avalon.is_grad_enabled()


def test_bad_arguments_are_refused_with_what_to_do():
    with pytest.raises(avalon.AvalonError, match="mode must be True or False, got 1"):
        avalon.set_grad_enabled(1)
    with pytest.raises(avalon.AvalonError, match="no_grad\\(\\) takes no arguments"):
        avalon.no_grad(5)
    assert avalon.is_grad_enabled()


def test_one_scope_object_may_be_entered_again_inside_itself():
    frozen = avalon.no_grad()
    with frozen:
        with avalon.enable_grad():
            with frozen:
                assert not avalon.is_grad_enabled()
            assert avalon.is_grad_enabled()
        assert not avalon.is_grad_enabled()
    assert avalon.is_grad_enabled()


def test_grad_inside_no_grad_in_traced_code_is_torch_funcs():
    """A no_grad around an inner grad does not reach into it (torch.func's rule); its result is then
    a constant to the outer grad."""
    from torch.func import grad as torch_grad

    def ours(x):
        with avalon.no_grad():
            _, (g,) = avalon.grad(lambda x: (x ** 3).sum(), x)
        return (g * x).sum()

    def theirs(x):
        with torch.no_grad():
            g = torch_grad(lambda x: (x ** 3).sum())(x)
        return (g * x).sum()

    x = np.array([1.0, 2.0, -0.5])
    value, (g,) = avalon.grad(ours, x)
    tx = torch.tensor(x, requires_grad=True)
    expected = theirs(tx)
    expected.backward()
    np.testing.assert_allclose(value, expected.item())
    np.testing.assert_allclose(g, tx.grad.numpy())
