"""Names a tracer's method table (`TorchMethods`) lacks: torch's in-place methods, which exist but are
refused when called, and numpy's array attributes — answered (`itemsize`, `nbytes`, `real`, `imag`,
`flat`) or refused with a rewrite (writes, memory, bytes). A Tensor never gets here: it is an ndarray,
with numpy's own attributes, and has in-place methods of its own.
"""
import math

import numpy as np

from .. import numpy_api as npa

# torch's in-place methods whose out-of-place forms are not methods here (the rest are `name_` of one)
_INPLACE_ONLY = {"zero_", "fill_", "copy_", "uniform_", "normal_", "bernoulli_", "exponential_",
                 "random_", "set_", "resize_",
                 "requires_grad_", "fill_diagonal_", "masked_scatter_"}

WRITES = ("the array is an input of the traced function or shares memory with another array still in "
          "use (a view of it, or the array it views): the write would also have to change that one (or "
          "the caller's array), which a recorded tape cannot follow")
_MEMORY = ("a traced array has no memory of its own (a compiled replay may lay its values out "
           "differently), and bytes have no gradient")
_VALUES = ("the values exist only while tracing: a compiled replay runs no Python code, so it would "
           "not write them again")
_OUTSIDE = "ask the concrete array, outside the traced function"

# numpy's methods and attributes that tracers refuse: name -> (why, fix). Tensors have ndarray's own.
_NUMPY_REFUSED = {
    "fill": (WRITES, "make a new array: `x = np.full_like(x, value)`"),
    "partition": (WRITES, "partition a copy: `x = np.partition(x, kth, axis=...)`"),
    "resize": (WRITES, "make a new array: `x = np.resize(x, shape)` (repeats the values) or "
                       "`x = x.reshape(shape)`"),
    "setfield": (WRITES, "build the new array functionally (np.where, np.concatenate)"),
    "setflags": (WRITES, "leave it out: traced arrays are never written"),
    "byteswap": (_MEMORY, "convert the values instead: `x.astype(dtype)`"),
    "getfield": (_MEMORY, "convert the values instead: `x.astype(dtype)`"),
    "tobytes": (_VALUES, "return the array from the traced function and convert it outside"),
    "tofile": (_VALUES, "return the array from the traced function and save it outside (np.save)"),
    "dump": (_VALUES, "return the array from the traced function and save it outside (np.save)"),
    "dumps": (_VALUES, "return the array from the traced function and convert it outside"),
    "to_device": ("a traced array stays on the device of the values it was computed from",
                  "move the inputs before the call (`x.to('cuda')` outside the traced function)"),
    "base": (_MEMORY, _OUTSIDE),
    "ctypes": (_MEMORY, _OUTSIDE),
    "flags": (_MEMORY, _OUTSIDE),
    "strides": (_MEMORY, _OUTSIDE),
}
_NUMPY_REFUSED_ATTRIBUTES = {"base", "ctypes", "flags", "strides"}  # refused when read, not called

# numpy's attributes that tracers answer (Tensors have ndarray's own)
_NUMPY_ATTRIBUTES = {
    "itemsize": lambda x: np.dtype(x.dtype).itemsize,
    "nbytes": lambda x: np.dtype(x.dtype).itemsize * math.prod(x.shape),
    "real": npa.real,
    "imag": npa.imag,
    "flat": npa.ravel,  # reading `x.flat[i]` works; writing is refused, as every write into a tracer
}


def missing_attribute(x, name):
    """What tracer `x` answers for `name` when its class has no such attribute: torch's in-place
    methods (refused when called, so `hasattr` sees them), numpy's attributes that tracers answer,
    numpy's refused ones, or an AttributeError."""
    stem = name[:-1]
    if name in _INPLACE_ONLY or (name.endswith("_") and not name.startswith("_") and
                                 callable(getattr(type(x), stem, None))):
        return lambda *args, **kwargs: x._trace.refuse(
            f"in-place method .{name}() on a traced array", WRITES,
            f"use the out-of-place form and bind the result: `x = x.{stem}(...)`" if stem.isidentifier()
            and hasattr(type(x), stem) else
            "build a new array instead (avalon.zeros_like, np.where, masked_fill, avalon.index_add)",
            lambda: x)
    if name in _NUMPY_ATTRIBUTES:
        return _NUMPY_ATTRIBUTES[name](x)
    if name in _NUMPY_REFUSED:
        why, fix = _NUMPY_REFUSED[name]
        if name in _NUMPY_REFUSED_ATTRIBUTES:
            return x._trace.refuse(f"numpy's .{name} of a traced array", why, fix, lambda: None)
        return lambda *args, **kwargs: x._trace.refuse(f"numpy's .{name}() on a traced array", why, fix,
                                                       lambda: None)
    raise AttributeError(f"traced arrays have no attribute {name!r} (they follow numpy functions and "
                         "torch.Tensor methods; see avalon.tracing.methods)")
