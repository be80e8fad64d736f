"""Random numbers from numpy's or Python's own generators inside traced code would be drawn once and
frozen into every cached replay: such a trace is refused at the traced function's line, with the
generator's state given back (issue #10). Avalon's own draws stay fresh at every call."""
import random

import numpy as np
import pytest

import avalon
import avalon.nn as nn

noise = np.random.default_rng(0)
legacy = np.random.RandomState(0)


@pytest.fixture(autouse=True)
def fresh_cache():
    avalon.clear_cache()
    yield


def numpy_global(x):
    return (x * np.random.rand(3)).sum()


def python_random(x):
    return (x * random.random()).sum()


def global_generator(x):
    return (x * noise.standard_normal(3)).sum()


def global_random_state(x):
    return (x * legacy.normal(size=3)).sum()


def closure_generator():
    rng = np.random.default_rng(1)
    return lambda x: (x * rng.uniform(size=3)).sum()


CASES = [(numpy_global, lambda: np.random.mtrand._rand, "numpy's global generator"),
         (python_random, lambda: random._inst, "Python's random module"),
         (global_generator, lambda: noise, "`noise` (global of"),
         (global_random_state, lambda: legacy, "`legacy` (global of")]


def state(generator):
    if isinstance(generator, np.random.Generator):
        return repr(generator.bit_generator.state)
    if isinstance(generator, np.random.RandomState):
        return repr(generator.get_state(legacy=False))
    return repr(generator.getstate())


@pytest.mark.parametrize("f, generator, named", CASES, ids=[c[0].__name__ for c in CASES])
@pytest.mark.parametrize("how", ["grad", "jit"])
def test_a_host_draw_in_traced_code_is_refused_and_changes_nothing(f, generator, named, how):
    x = np.ones(3, np.float32)
    before = state(generator())
    call = (lambda: avalon.grad(f, x)) if how == "grad" else (lambda: avalon.jit(f)(x))
    with pytest.raises(avalon.UnsupportedConstruct) as caught:
        call()
    error = caught.value
    assert named in str(error) and "avalon.rand" in str(error)
    assert error.filename == __file__ and error.lineno == f.__code__.co_firstlineno
    assert state(generator()) == before  # the draw made while tracing is undone


def test_a_generator_in_the_closure_is_refused():
    f = closure_generator()
    with pytest.raises(avalon.UnsupportedConstruct, match="`rng` \\(closure of"):
        avalon.grad(f, np.ones(3, np.float32))


class Jitter(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.rng = np.random.default_rng(2)

    def forward(self, x):
        return self.fc(x) + self.rng.normal()


def test_a_generator_held_by_a_model_is_refused_at_its_forward():
    model, x = Jitter(), np.ones((2, 3), np.float32)
    with pytest.raises(avalon.UnsupportedConstruct) as caught:
        model(x)
    assert "`rng` (attribute of model)" in str(caught.value)
    assert caught.value.lineno == Jitter.forward.__code__.co_firstlineno
    with pytest.raises(avalon.UnsupportedConstruct):
        avalon.grad(lambda m, x: m(x).sum(), model, x)


def test_avalons_own_draws_are_fresh_at_every_call():
    f = avalon.jit(lambda x: x * avalon.rand(3))
    x = np.ones(3, np.float32)
    first, second = f(x), f(x)
    assert not np.array_equal(first, second)


def test_drawing_outside_and_passing_the_numbers_works():
    f = avalon.jit(lambda x, eps: x * eps)
    x = np.ones(3, np.float32)
    a, b = f(x, np.random.rand(3)), f(x, np.random.rand(3))
    assert not np.array_equal(a, b)
