"""Where arrays live: the array module (numpy, cupy, or any array-API namespace) of a set of arrays.

Primitives never import numpy for computation; they ask `namespace(*arrays)` for the module that owns
their operands, so the same code runs on numpy, on cupy and on a strict array-API implementation.
"""
import numpy as np

_FLOAT_DEFAULT = np.float32


def namespace(*arrays):
    """The array module of the first array among `arrays` (numpy for Python scalars)."""
    for a in arrays:
        if isinstance(a, np.ndarray) or isinstance(a, np.generic):
            return np
        if hasattr(a, "__array_namespace__"):
            mod = type(a).__module__
            if mod.startswith("cupy"):
                import cupy

                return cupy
            return a.__array_namespace__()
    return np


def is_array(x):
    """True for numpy arrays and scalars, cupy arrays and any array-API array (not Python scalars, and
    not scalar types such as `np.float32`, whose class carries `__array_namespace__` too)."""
    return isinstance(x, (np.ndarray, np.generic)) or hasattr(x, "__array_namespace__") and \
        not isinstance(x, type) and not _is_tracer(x)


def _is_tracer(x):
    return getattr(type(x), "_avalon_tracer", False)


def first_marked(mask, values):
    """(the entry of `values` at the first True of `mask`, its position as a tuple): where a check
    found a bad value, for its message. `mask` has at least one True."""
    xp = namespace(values)
    flat = int(xp.argmax(xp.reshape(mask, (-1,))))
    position = tuple(int(p) for p in np.unravel_index(flat, tuple(values.shape)))  # flat is a Python int
    return xp.reshape(values, (-1,))[flat], position


def is_numpy_like(xp):
    """numpy and cupy accept `out=`, `axis=` tuples everywhere and the wider numpy API."""
    return xp is np or getattr(xp, "__name__", "") == "cupy"


def is_inexact(dtype):
    """True for floating-point and complex dtypes, numpy's and cupy's as well as an array-API library's
    (whose dtype objects numpy cannot interpret; their names are numpy's)."""
    try:
        return np.issubdtype(dtype, np.inexact)
    except TypeError:
        return np.issubdtype(np.dtype(str(dtype).rsplit(".", 1)[-1]), np.inexact)


def default_float():
    """The float dtype of creation functions (float32, as in PyTorch, unless `set_default_float` changed it)."""
    return _FLOAT_DEFAULT


def set_default_float(dtype):
    """Make `dtype` (a floating dtype) the one creation functions use (`avalon.set_default_dtype`)."""
    global _FLOAT_DEFAULT
    _FLOAT_DEFAULT = np.dtype(dtype).type


def device_of(x):
    """'cpu' for numpy arrays, 'cuda:N' for cupy arrays."""
    if type(x).__module__.startswith("cupy"):
        return f"cuda:{x.device.id}"
    return "cpu"


def to_device(x, device):
    """Move an array to 'cpu' (numpy) or 'cuda'/'cuda:N' (cupy)."""
    device = str(device)
    if device == "cpu":
        if type(x).__module__.startswith("cupy"):
            return x.get()
        return np.asarray(x)
    if device.startswith("cuda"):
        try:
            import cupy
        except ImportError:
            from .errors import AvalonError
            from .tracing.source import user_location  # tracing builds on this module

            raise AvalonError(f"moving to {device!r}: the GPU backend is cupy, which is not installed\n"
                              f"  at {user_location()}\n  fix: pip install 'avalon[gpu]' (and run on a machine "
                              "with a CUDA GPU); or stay on the CPU: arrays are numpy there") from None

        index = int(device.split(":")[1]) if ":" in device else 0
        with cupy.cuda.Device(index):
            return cupy.asarray(x)
    from .errors import AvalonError

    raise AvalonError(f"unknown device {device!r}: use 'cpu' or 'cuda[:N]'")


def to_numpy(x):
    """A numpy copy of any array (for printing, statistics and saving)."""
    if type(x).__module__.startswith("cupy"):
        return x.get()
    return np.asarray(x)
