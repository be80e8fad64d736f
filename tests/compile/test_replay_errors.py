"""An error raised while replaying compiled code names the node, its primitive and the user's line,
and a traceback through the replay shows the generated line (registered with linecache)."""
import inspect
import linecache
import traceback

import numpy as np
import pytest

import avalon


def pick_sum(x, idx):
    return x[idx].sum()  # the user's line


def test_a_replay_failing_on_this_calls_values_names_node_primitive_and_line():
    x = np.arange(10.0)
    avalon.grad(pick_sum, x, np.array([1, 2]))  # traced with valid indices
    with pytest.raises(avalon.ReplayError) as info:
        avalon.grad(pick_sum, x, np.array([1, 12]))  # replayed with one out of range
    message = str(info.value)
    line = inspect.getsourcelines(pick_sum)[1] + 1
    assert message.startswith("IndexError while replaying the compiled code of %")
    assert "(primitive getitem" in message and "index 12 is out of bounds" in message
    assert f"{__file__}:{line} in pick_sum" in message and "# the user's line" in message
    assert isinstance(info.value.__cause__, IndexError) and "fix:" in message
    shown = "".join(traceback.format_exception(info.value.__cause__))
    assert "<avalon replay" in shown and "= getitem(" in shown  # the generated line itself


def test_generated_source_is_in_linecache_and_other_errors_pass_unchanged():
    compiled = avalon.trace(lambda x: np.tanh(x).sum(), np.ones(3)).compile()
    assert linecache.getline(compiled.lines.filename, 1).startswith("def replay(")
    assert "tanh" in linecache.getline(compiled.lines.filename, 2)
    with pytest.raises(TypeError):  # the wrong number of inputs is not a replay line's error
        compiled(np.ones(3), np.ones(3))
