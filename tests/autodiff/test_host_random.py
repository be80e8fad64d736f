"""Random numbers from numpy's or Python's own generators inside traced code would be drawn once and
frozen into every cached replay. A function whose trace drew from one is traced again at every call
instead, so its draws are fresh as if its Python ran again (a seq2seq model's teacher forcing), with
one warning that says how to have it compiled once (issue #10). Avalon's own draws are compiled once
and fresh at every call."""
import random
import warnings

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
    return x * np.random.rand(3)


def python_random(x):
    return x * random.random()


def global_generator(x):
    return x * noise.standard_normal(3)


def global_random_state(x):
    return x * legacy.normal(size=3)


def closure_generator():
    rng = np.random.default_rng(1)
    return lambda x: x * rng.uniform(size=3)


CASES = [(numpy_global, "numpy's global generator"), (python_random, "Python's random module"),
         (global_generator, "`noise` (global of"), (global_random_state, "`legacy` (global of"),
         (closure_generator(), "`rng` (closure of")]


@pytest.mark.parametrize("f, named", CASES, ids=["numpy", "python", "generator", "random-state", "closure"])
@pytest.mark.parametrize("how", ["grad", "jit"])
def test_host_draws_are_fresh_at_every_call_with_one_warning(f, named, how):
    x = np.ones(3, np.float32)
    loss, jitted = (lambda x: f(x).sum()), avalon.jit(f)
    run = (lambda: avalon.grad(loss, x)[1][0]) if how == "grad" else (lambda: jitted(x))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = [np.array(run()) for _ in range(10)]
    assert all(not np.array_equal(results[0], r) for r in results[1:])  # never a replay of frozen numbers
    messages = [str(w.message) for w in caught if issubclass(w.category, avalon.RetraceWarning)]
    assert len(messages) == 1 and named in messages[0] and "avalon.rand" in messages[0]
    assert "drew random numbers" in avalon.explain_cache().events[-1].reason


def test_the_values_are_those_of_running_the_code_again():
    x = np.ones(3, np.float32)
    random.seed(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = [float(avalon.jit(python_random)(x)[0]) for _ in range(3)]
    random.seed(5)
    assert traced == [float(np.float32(random.random())) for _ in range(3)]


class TeacherForcing(nn.Module):
    """A seq2seq decoder's step choice: feed the target or the prediction, by a coin flip."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x, target, ratio=0.5):
        return self.fc(target if random.random() < ratio else x)


def test_a_model_flipping_a_coin_in_forward_follows_each_flip():
    model, x, target = TeacherForcing(), np.zeros((1, 3), np.float32), np.ones((1, 3), np.float32)
    random.seed(0)
    with pytest.warns(avalon.RetraceWarning, match="forward draws random numbers from Python's random"):
        outputs = [np.array(model(x, target)) for _ in range(12)]
    random.seed(0)
    expected = [model.fc(target if random.random() < 0.5 else x) for _ in range(12)]
    assert all(np.allclose(o, e) for o, e in zip(outputs, expected))


def test_avalons_own_draws_are_compiled_once_and_fresh():
    traces = []

    def f(x):
        traces.append(1)
        return x * avalon.rand(3)

    f = avalon.jit(f)
    x = np.ones(3, np.float32)
    first, second = f(x), f(x)
    assert not np.array_equal(first, second) and len(traces) == 1
