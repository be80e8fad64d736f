"""What every case of the robustness catalogue asserts about a refusal (imported by its test files).

A refusal is an `AvalonError` subclass whose message names the user's file and line (the line of the
bad call), says what to do ("fix:"), and contains the fragments the case expects; torch, given the
same mistake, refuses it too (or the case says how we differ).
"""
import numpy as np
import pytest

import avalon


def _line_of(call):
    """file:line of a one-line lambda, the bad call's own line."""
    return f"{call.__code__.co_filename}:{call.__code__.co_firstlineno}"


def assert_refused(call, kind, *fragments):
    """`call()` raises `kind` (an AvalonError), naming the call's line, with a fix and `fragments`."""
    assert issubclass(kind, avalon.AvalonError)
    with pytest.raises(kind) as info:
        call()
    message = str(info.value)
    assert _line_of(call) in message, f"the message does not name the user's line {_line_of(call)}:\n{message}"
    assert "fix:" in message, f"the message says no fix:\n{message}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    return info.value


def assert_refuses_non_array_first(fn, bad):
    """`fn(bad, <arrays for its other required arguments>)` is a DtypeError at this call's line, with a
    fix, naming the type it got (the sweeps over every function of an API)."""
    import inspect

    required = [p for p in inspect.signature(fn).parameters.values()
                if p.default is p.empty and p.kind == p.POSITIONAL_OR_KEYWORD]
    rest = [np.ones((2, 2), np.float32)] * (len(required) - 1)
    call = lambda: fn(bad, *rest)  # noqa: E731 - its own line is the bad call's
    assert_refused(call, avalon.DtypeError, f"got {type(bad).__name__}")


def assert_torch_refuses(call, kind=Exception):
    """torch, given the same mistake, raises too (the catalogue's PyTorch column)."""
    if call is None:
        return
    with pytest.raises(kind):
        call()


def arrays_of(module):
    """Copies of every parameter and buffer, by name (to check a refusal changed nothing)."""
    return {name: np.array(value, copy=True) for name, value in module.state_dict().items()}


def assert_unchanged(before, module):
    after = arrays_of(module)
    assert before.keys() == after.keys()
    for name, value in before.items():
        np.testing.assert_array_equal(value, after[name], strict=True, err_msg=name)
