"""An error raised while replaying compiled code names the node, its primitive and the user's line,
and a traceback through the replay shows the generated line (registered with linecache)."""
import inspect
import linecache
import traceback

import numpy as np
import pytest

import avalon


@avalon.primitive
def strict_log(x):
    """A user's primitive that refuses what numpy would turn into NaN (a value-dependent failure)."""
    if (x <= 0).any():
        raise ValueError("strict_log of a value <= 0")
    return np.log(x)


def log_sum(x):
    return strict_log(x).sum()  # the user's line


def test_a_replay_failing_on_this_calls_values_names_node_primitive_and_line():
    compiled = avalon.jit(log_sum)
    compiled(np.ones(3))  # traced with valid values
    with pytest.raises(avalon.ReplayError) as info:
        compiled(np.array([1.0, -1.0, 2.0]))  # replayed with one it refuses
    message = str(info.value)
    line = inspect.getsourcelines(log_sum)[1] + 1
    assert message.startswith("ValueError while replaying the compiled code of %")
    assert "(primitive strict_log" in message and "strict_log of a value <= 0" in message
    assert f"{__file__}:{line} in log_sum" in message and "# the user's line" in message
    assert isinstance(info.value.__cause__, ValueError) and "fix:" in message
    shown = "".join(traceback.format_exception(info.value.__cause__))
    assert "<avalon replay" in shown and "= strict_log(" in shown  # the generated line itself


def pick_sum(x, idx):
    return x[idx].sum()  # the user's line


def test_an_index_out_of_range_on_a_replay_is_the_same_error_as_while_tracing():
    x = np.arange(10.0)
    line = inspect.getsourcelines(pick_sum)[1] + 1
    with pytest.raises(avalon.IndexRangeError) as traced:
        avalon.grad(pick_sum, x, np.array([1, 12]))
    avalon.grad(pick_sum, x, np.array([1, 2]))  # traced with valid indices
    with pytest.raises(avalon.IndexRangeError) as replayed:
        avalon.grad(pick_sum, x, np.array([1, 12]))  # replayed with one out of range
    for info in traced, replayed:
        assert (info.value.value, info.value.position, info.value.low, info.value.high) == (12, (1,), -10, 10)
        assert (info.value.filename, info.value.lineno) == (__file__, line)
        assert "indexing: index 12 at position [1] is out of range: valid indices are [-10, 10)" in str(info.value)
    assert "on a cached replay (its node %" in str(replayed.value)


def test_generated_source_is_in_linecache_and_other_errors_pass_unchanged():
    compiled = avalon.trace(lambda x: np.tanh(x).sum(), np.ones(3)).compile()
    assert linecache.getline(compiled.lines.filename, 1).startswith("def replay(")
    assert "tanh" in linecache.getline(compiled.lines.filename, 2)
    with pytest.raises(TypeError):  # the wrong number of inputs is not a replay line's error
        compiled(np.ones(3), np.ones(3))
