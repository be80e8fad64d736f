"""The compile cache's watch of the user's code (a Python trace hook) is off while a built-in primitive
is recorded, on for everything else: the user's functions between primitives, a user primitive, a
hook's callback; and it is never switched off when it chains another hook (a debugger, coverage)."""
import sys

import numpy as np

import avalon
import avalon.nn as nn
from avalon.ops import PRIMITIVES

SCALE = 2.0


def helper():
    """A user function that records nothing: only the watch sees that it read SCALE."""
    return SCALE


def watched_impls(monkeypatch, names):
    """{primitive name: [whether a trace hook was set, at each run of its implementation]}."""
    seen = {name: [] for name in names}
    for name in names:
        prim = PRIMITIVES[name]
        impl = prim.impl

        def spy(*args, _impl=impl, _name=name, **kwargs):
            seen[_name].append(sys.gettrace() is not None)
            return _impl(*args, **kwargs)

        monkeypatch.setattr(prim, "impl", spy)
    return seen


def test_built_in_primitives_run_unwatched_and_the_users_code_stays_watched(monkeypatch):
    seen = watched_impls(monkeypatch, ["matmul", "tanh"])
    helper_calls = []

    @avalon.primitive
    def my_cube(x):
        helper_calls.append(sys.gettrace() is not None)
        return x ** 3

    avalon.rule(my_cube)(lambda g, out, x: (3 * x ** 2 * g,))

    def loss(W, x):
        return my_cube(np.tanh(x @ W) * helper()).sum()

    W, x = np.ones((3, 2), np.float32), np.ones((4, 3), np.float32)
    before = sys.gettrace()
    avalon.grad(loss, W, x)
    assert seen["matmul"] and not any(seen["matmul"]) and not any(seen["tanh"])
    assert helper_calls == [True]  # a user primitive runs the user's code: watched
    assert sys.gettrace() is before  # and the hook is gone after the trace
    global SCALE
    SCALE = 3.0  # read by helper() alone: the watch saw it, so the entry is stale
    try:
        value, _ = avalon.grad(loss, W, x)
        expected = ((np.tanh(x @ W) * 3.0) ** 3).sum()
        assert np.isclose(float(value), expected)
    finally:
        SCALE = 2.0


def test_a_forward_hook_still_runs_watched(monkeypatch):
    layer = nn.Linear(3, 2)
    inside = []
    layer.register_forward_hook(lambda module, args, out: inside.append(sys.gettrace() is not None))
    avalon.grad(lambda m, x: m(x).sum(), layer, np.ones((4, 3), np.float32))
    assert inside and all(inside)


def test_a_chained_hook_is_never_switched_off(monkeypatch):
    seen = watched_impls(monkeypatch, ["matmul"])
    events = []

    def debugger(frame, event, arg):
        events.append(frame.f_code.co_name)

    W, x = np.ones((3, 2), np.float32), np.ones((4, 3), np.float32)
    sys.settrace(debugger)
    try:
        avalon.grad(lambda W, x: (x @ W).sum(), W, x)
    finally:
        sys.settrace(None)
    assert seen["matmul"] and all(seen["matmul"])  # the debugger saw Avalon's code too
    assert "matmul" in events
