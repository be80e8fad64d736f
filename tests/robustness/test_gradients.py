"""The catalogue, gradients: `avalon.grad` asked for something that has no gradient, or called the wrong
way. Each refusal is a GradientError (or UnsupportedConstruct inside traced code) naming the user's line
and the fix; torch refuses the same; a model's parameters and running statistics are left as they were."""
import numpy as np
import pytest
import torch

import avalon
import avalon.nn as nn
from avalon import GradientError, UnsupportedConstruct
from refusals import arrays_of, assert_refused, assert_torch_refuses, assert_unchanged

W = np.array([0.5, -1.5, 2.0], np.float32)
TW = torch.tensor(W, requires_grad=True)


def two(w, v):
    return (w * v).sum()


# (avalon call, torch call, words)
CASES = {
    "a Python float": (lambda: avalon.grad(lambda w: 1.0, W), lambda: torch.autograd.grad(1.0, [TW]),
                       "does not depend on the arguments"),
    "None": (lambda: avalon.grad(lambda w: None, W), lambda: torch.autograd.grad(None, [TW]), "returned None"),
    "a string": (lambda: avalon.grad(lambda w: "loss", W), lambda: torch.autograd.grad("loss", [TW]), "a str"),
    # torch's autograd.grad takes a tuple of outputs and adds their gradients; grad's f returns one loss
    "a tuple (loss, extra)": (lambda: avalon.grad(lambda w: (w.sum(), w.max()), W), None, "a tuple of 2 arrays"),
    "a tuple (loss, a float)": (lambda: avalon.grad(lambda w: (w.sum(), 0.5), W), None, "a tuple of 1 arrays"),
    "a dict of the loss": (lambda: avalon.grad(lambda w: {"loss": w.sum()}, W), None, "a dict of 1 arrays"),
    "an integer array": (lambda: avalon.grad(lambda w: (w > 0).sum(), W),
                         lambda: torch.autograd.grad((TW > 0).sum(), [TW]), "dtype int64"),
    "a complex value": (lambda: avalon.grad(lambda w: (w * 1j).sum(), W),
                        lambda: torch.autograd.grad((TW * 1j).sum(), [TW]), "complex"),
    "a vector without a seed": (lambda: avalon.grad(lambda w: w * 2, W), lambda: torch.autograd.grad(TW * 2, [TW]),
                                "not a scalar"),
    "a seed of the wrong shape": (lambda: avalon.grad(lambda w: w * 2, W, seed=np.ones(2, np.float32)),
                                  lambda: torch.autograd.grad(TW * 2, [TW], torch.ones(2)), "seed has shape (2,)"),
    "argnums past the arguments": (lambda: avalon.grad(lambda w: w.sum(), W, argnums=3), None, "argnums=3"),
    "argnums negative past the arguments": (lambda: avalon.grad(lambda w: w.sum(), W, argnums=-5), None,
                                            "argnums=-5"),
    "argnums a name": (lambda: avalon.grad(lambda w: w.sum(), W, argnums="w"), None, "argnums='w'"),
    "a number instead of a function": (lambda: avalon.grad(3, W), None, "got a int"),
    "the arguments swapped with the function": (lambda: avalon.grad(W, lambda w: w.sum()), None, "got a ndarray"),
    "too few arguments": (lambda: avalon.grad(two, W), None, "cannot take the 1 argument"),
    "too many arguments": (lambda: avalon.grad(lambda w: w.sum(), W, W), None, "cannot take the 2 argument"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_gradient_with_no_answer_is_refused_at_the_grad_line(case):
    ours, theirs, fragment = CASES[case]
    assert_refused(ours, GradientError, fragment)
    assert_torch_refuses(theirs)


def test_a_refused_gradient_of_a_model_leaves_its_weights_and_running_statistics_alone():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    before = arrays_of(model)
    for loss in (lambda m, x: m(x), lambda m, x: (m(x).sum(), 0.0), lambda m, x: None):
        with pytest.raises(GradientError):
            avalon.grad(loss, model, x)
        assert_unchanged(before, model)
    avalon.grad(lambda m, x: m(x).sum(), model, x)  # a good call still runs, and updates the statistics
    assert not np.array_equal(before["1.running_mean"], arrays_of(model)["1.running_mean"])


def test_backward_on_a_tensor_says_how_gradients_work_here():
    loss = avalon.tensor([1.0, 2.0]).sum()
    error = assert_refused(lambda: loss.backward(), avalon.AvalonError, "functional", "avalon.grad(")
    assert "opt.step(grads[0])" in str(error)


def test_reading_a_traced_value_as_a_python_number_is_refused_at_the_traced_line():
    def loss(w):
        if float(w.sum()) > 0:  # data-dependent control flow
            return w.sum()
        return -w.sum()

    with pytest.raises(UnsupportedConstruct) as info:
        avalon.grad(loss, W)
    assert (info.value.filename, info.value.lineno) == (__file__, loss.__code__.co_firstlineno + 1)
    assert "fix:" in str(info.value)


def test_writing_into_an_argument_acts_as_running_the_function_on_every_call_cached_or_not():
    def loss(w):
        w[0] = 0.0  # as plain numpy code would, the caller's array is written
        return (w * w).sum()

    for _ in range(3):  # traced, then replayed
        w = W.copy()
        value, (g,) = avalon.grad(loss, w)
        np.testing.assert_array_equal(w, [0.0, W[1], W[2]])
        np.testing.assert_allclose(g, [0.0, 2 * W[1], 2 * W[2]])
        assert value == pytest.approx(W[1] ** 2 + W[2] ** 2)


@pytest.mark.parametrize("ours, theirs", [
    (lambda w: (np.round(w) * w).sum(), lambda w: (torch.round(w) * w).sum()),
    (lambda w: (np.sign(w) * w).sum(), lambda w: (torch.sign(w) * w).sum()),
    (lambda w: (np.floor(w) + w * w).sum(), lambda w: (torch.floor(w) + w * w).sum()),
    (lambda w: w[np.argmax(w)] * 3.0, lambda w: w[torch.argmax(w)] * 3.0),
])
def test_piecewise_constant_functions_have_torchs_zero_gradient_not_an_error(ours, theirs):
    _, (g,) = avalon.grad(ours, W)
    w = torch.tensor(W, requires_grad=True)
    (expected,) = torch.autograd.grad(theirs(w), [w])
    np.testing.assert_allclose(g, expected.numpy(), rtol=1e-6)


def test_a_cached_gradient_still_refuses_a_bad_second_call():
    f = lambda w, v: (w * v).sum()  # noqa: E731 - one function object, so the second call hits the cache
    avalon.grad(f, W, W)
    assert_refused(lambda: avalon.grad(f, W), GradientError, "cannot take the 1 argument")
