"""torch's names for shapes and dtypes: `Size`, `finfo`, `iinfo`, `is_floating_point`, the default
float dtype (`get_default_dtype` / `set_default_dtype`), and `_assert`, the check ported models make
of them. Exported as `avalon.*`.

Dtypes are numpy's (`avalon.float32 is np.float32`), so these take anything `np.dtype` takes.
"""
import math
import operator

import numpy as np

from . import backend
from .errors import DtypeError, ShapeError


dtype = np.dtype  # torch.dtype, the type of dtypes: for annotations (`dtype: avalon.dtype = avalon.float32`)


class Size(tuple):
    """torch.Size: a shape, a tuple of ints with `numel()`; slicing it or adding a tuple gives a Size.

    >>> avalon.Size([2, 3]).numel()
    6
    """

    def __new__(cls, sizes=()):
        try:
            return super().__new__(cls, [operator.index(n) for n in sizes])
        except TypeError:
            raise DtypeError(f"avalon.Size() takes an iterable of ints, got {sizes!r}") from None

    def numel(self):
        """The number of elements of an array of this shape."""
        return math.prod(self)

    def __getitem__(self, key):
        item = super().__getitem__(key)
        return Size(item) if isinstance(key, slice) else item

    def __add__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple(self) + other)

    def __repr__(self):
        return f"avalon.Size({list(self)})"


def _dtype(type, kind, name, other):
    dtype = np.dtype(backend.default_float() if type is None else type)
    if not np.issubdtype(dtype, kind):
        described = "floating-point" if kind is np.floating else "integer"
        raise DtypeError(f"avalon.{name}({dtype.name}): {name} describes {described} dtypes; use avalon.{other} "
                         f"for {dtype.name}")
    return dtype


class finfo:
    """torch.finfo: the limits of a floating dtype (the default float dtype when none is given).

    Fields as torch's, Python floats: `bits`, `eps`, `max`, `min`, `tiny` (= `smallest_normal`),
    `resolution`, and `dtype` (its name, 'float32').

    >>> avalon.finfo(avalon.float32).eps
    1.1920928955078125e-07
    """

    def __init__(self, type=None):
        dtype = _dtype(type, np.floating, "finfo", "iinfo")
        info = np.finfo(dtype)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -info.precision  # exact, as torch (numpy rounds it to the dtype)
        self.dtype = dtype.name

    def __repr__(self):
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """torch.iinfo: the limits of an integer dtype: `bits`, `max`, `min` (Python ints) and `dtype`
    (its name, 'int64').

    >>> avalon.iinfo(avalon.int64).max
    9223372036854775807
    """

    def __init__(self, type):
        dtype = _dtype(type, np.integer, "iinfo", "finfo")
        info = np.iinfo(dtype)
        self.bits, self.max, self.min = int(info.bits), int(info.max), int(info.min)
        self.dtype = dtype.name

    def __repr__(self):
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"


def is_floating_point(input):
    """True when `input` (an array or a traced array) has a floating-point dtype."""
    dtype = getattr(input, "dtype", None)
    if dtype is None or not hasattr(input, "shape"):
        raise DtypeError(f"avalon.is_floating_point() takes an array, not {type(input).__name__}")
    return bool(np.issubdtype(np.dtype(dtype), np.floating))


def get_default_dtype():
    """The float dtype creation functions use when given none (float32 unless changed)."""
    return backend.default_float()


def set_default_dtype(d):
    """Make `d` (float16, float32 or float64) the dtype of `avalon.zeros`, `tensor(float data)`,
    `rand` … when they are given none, as torch.set_default_dtype. Layers keep their own (float32)."""
    dtype = np.dtype(d)
    if not np.issubdtype(dtype, np.floating):
        raise DtypeError(f"set_default_dtype({dtype.name}): only floating-point types can be the default type "
                         "(float16, float32 or float64)")
    backend.set_default_float(dtype)


def _assert(condition, message):
    """torch._assert: raise `AssertionError(message)` when `condition` is false.

    Ported models check shapes with it (`avalon._assert(H == self.img_size, "...")`); in traced code
    such a check of shapes or Python values runs while tracing, and holds for every replay because
    shapes are part of what a cached trace is keyed on. A condition on a traced value is checked at
    every call too, as in torch: it is recorded as a callback on the tape (it carries no gradient).
    """
    if getattr(type(condition), "_avalon_tracer", False):
        if condition.size != 1:
            raise ShapeError(f"avalon._assert: the condition has {condition.size} values, so it is neither true "
                             "nor false", fix="reduce it first: condition.all() or condition.any()")
        from .ops.callback import host_callback

        host_callback(condition, callback=_Check(message))
    elif not condition:
        raise AssertionError(message)


class _Check:
    """What a recorded `_assert` calls at each replay (and once while tracing) with its condition."""

    __slots__ = ("message",)

    def __init__(self, message):
        self.message = message

    def __call__(self, condition):
        if not condition:
            raise AssertionError(self.message)


__all__ = ["_assert", "dtype", "Size", "finfo", "iinfo", "is_floating_point", "get_default_dtype", "set_default_dtype"]
