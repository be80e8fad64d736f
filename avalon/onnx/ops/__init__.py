"""The ONNX operators Avalon imports: one function per op type, registered by `@operator`.

A handler is called as `handler(node, *inputs)` with the node's values (None for an omitted optional
input) and returns one value or a tuple of values, one per output. It uses ordinary Avalon ops and numpy
on tracers, so the imported graph differentiates and compiles like any model; values computed only from
constants and shapes (numpy arrays) are computed at trace time, which keeps every dimension dynamic.
"""
HANDLERS = {}


def operator(*op_types):
    """Register the decorated function as the handler of `op_types` (default domain)."""
    def register(fn):
        for op_type in op_types:
            HANDLERS[op_type] = fn
        return fn
    return register


# importing the families registers their handlers
from . import (attention, loss, math, nn, norm, pool, recurrent, reduce, resize, sampling,  # noqa: E402,F401
               selection, shape, signal)
