"""`host_callback`: a call back into Python from a recorded tape, at every replay.

Hooks (a module's forward hook, a gradient hook on a traced value) must see each call's values, not
only the ones seen while tracing. Such a hook becomes one `host_callback` call on the tape: its
operands are the arrays the hook looks at, its `callback` parameter the Python object that calls the
hook, and the compiled replay runs it where it stands, like any other node. Flagged `effect`, it is
never removed, folded or merged, and its operands' buffers are never recycled (the hook may keep
them); it carries no gradient.

>>> host_callback(h, callback=lambda h: print(h.mean()))   # prints at every replay
"""
import numpy as np

from .primitive import primitive

DONE = np.zeros(0, np.bool_)  # what a callback node holds: nothing (it is there for its effect)
DONE.flags.writeable = False


@primitive("host_callback", effect=True, differentiable=False)
def host_callback(*arrays, callback):
    """Call `callback(*arrays)` (for its effect; what it returns is dropped) and return `DONE`."""
    callback(*arrays)
    return DONE
