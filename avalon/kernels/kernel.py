"""`Kernel`: one fused elementwise expression, run by the selected backend into a planned buffer."""
import functools
import threading

import numpy as np

from ..backend import is_numpy_like, namespace
from ..ops import threads_split
from . import cupy_backend, numexpr_backend, numpy_backend
from .program import KernelError, Program

CPU_BACKENDS = ("numexpr", "numpy")
_selected = {"cpu": "auto"}
_lock = threading.Lock()


def set_backend(name):
    """Choose the CPU backend of every kernel: "numexpr", "numpy" (ufuncs into planned buffers) or
    "auto" (numpy: measured faster here, see `get_backend`). GPU arrays always run on cupy. Returns
    the previous choice. Tapes compiled earlier keep running their kernels on the backend chosen at
    each call.

    >>> previous = avalon.kernels.set_backend("numpy")
    """
    if name not in ("auto", *CPU_BACKENDS):
        raise KernelError(f"no kernel backend {name!r}: choose 'auto', 'numexpr' or 'numpy'")
    if name == "numexpr" and not numexpr_backend.available():
        raise KernelError("the numexpr backend needs numexpr, which is not installed: "
                          "pip install 'avalon[fast]', or choose 'numpy'")
    previous, _selected["cpu"] = _selected["cpu"], name
    return previous


def get_backend():
    """The CPU backend kernels run on now: "numexpr" or "numpy".

    "auto" is numpy: numpy 2's ufuncs are vectorised loops, and over arrays of a training step's sizes
    (float32, 0.25–4 M elements, 1 thread, AVX-512) numpy's chain of in-place ufuncs measured faster
    than numexpr's one blocked pass: 0.7× numexpr's time for an SGD-momentum update, 0.07× for a
    tanh chain (numexpr computes float32 tanh slowly), and numexpr's `where` branches per element
    where the numpy backend selects with bit masks (5× faster on random signs)."""
    choice = _selected["cpu"]
    return "numpy" if choice == "auto" else choice


_RUNNERS = {"numpy": numpy_backend.runner, "numexpr": numexpr_backend.runner, "cupy": cupy_backend.runner}


class Kernel:
    """A fused elementwise expression over named arrays, compiled once per backend and signature.

    Call it with the arrays (in `names` order): broadcasting and dtypes are numpy's (float32 stays
    float32), and `out=` writes the result into an existing array of the result's shape.

    >>> k = avalon.kernels.Kernel("where(x > 0, g, 0)", ["x", "g"])
    >>> k(x, g)                 # relu's backward, one pass
    >>> k(x, g, out=buffer)
    """

    def __init__(self, text, names):
        self.program = Program(text, names)
        self.text = text
        self.names = self.program.names
        self._runners = {}

    def __call__(self, *arrays, out=None):
        if len(arrays) != len(self.names):
            raise KernelError(f"kernel {self.text!r} takes {len(self.names)} arrays "
                              f"({', '.join(self.names)}), got {len(arrays)}")
        xp = namespace(*arrays) if arrays else np
        backend = get_backend() if is_numpy_like(xp) else "cupy"
        arrays = [xp.asarray(a) for a in arrays]
        signature = tuple((a.shape, a.dtype) for a in arrays)
        shape, dtype = self.program.dtypes(signature)[-1]
        if out is None:
            out = xp.empty(shape, dtype)
        elif out.shape != shape:
            raise KernelError(f"kernel {self.text!r}: out= has shape {out.shape}, the result {shape}")
        if backend == "numpy":  # large passes run in row blocks on both cores (numexpr has threads)
            return threads_split.elementwise(out, functools.partial(self._run, backend), *arrays)
        return self._run(backend, *arrays, out=out)

    def _run(self, backend, *arrays, out):
        """The kernel on `arrays` (numpy's or cupy's, of one module) into `out`, of the result's shape."""
        signature = tuple((a.shape, a.dtype) for a in arrays)
        shape, dtype = self.program.dtypes(signature)[-1]
        same = tuple(k for k, a in enumerate(arrays) if _is(out, a))  # an in-place call: out is an input
        scratch_out = out.dtype == dtype and not any(_overlaps(out, a) for k, a in enumerate(arrays) if k not in same)
        if scratch_out and same:
            scratch_out = same  # out holds intermediates once those inputs are read (numpy_backend.plan)
        key = (backend, signature, out.dtype, scratch_out)
        run = self._runners.get(key)
        if run is None:
            with _lock:
                run = self._runners[key] = _RUNNERS[backend](self.program, signature, shape, out.dtype,
                                                             scratch_out)
        return run(arrays, out)

    def __repr__(self):
        return f"<Kernel {self.text} over {', '.join(self.names)}>"


def _is(out, a):
    """Whether numpy array `a` is the memory of `out` element for element (same start, shape, strides)."""
    return type(a) is np.ndarray and type(out) is np.ndarray and a.shape == out.shape and \
        a.dtype == out.dtype and a.strides == out.strides and a.ctypes.data == out.ctypes.data


def _overlaps(out, a):
    may_share = getattr(namespace(a), "may_share_memory", None)
    return may_share(out, a) if may_share is not None else True
