"""Arguments checked before anything is built or changed: sizes, counts, strides, kernels.

A layer built with `Linear(-1, 3)` or `MaxPool2d(0)` used to fail deep inside numpy (or divide by
zero at its first call); these checks refuse it at the user's line, naming the argument and the fix.
"""
import functools
import inspect
import numbers

import numpy as np

from .errors import AvalonError, _where


class ArgumentError(AvalonError, ValueError, TypeError):
    """An argument a function or a layer cannot use (a negative size, a stride of 0, a list where an
    array belongs); the message says what, the user's line, why and what to pass instead. A ValueError
    and a TypeError both, so code written for torch's errors catches it."""

    def __init__(self, what, why=None, fix=None):
        from .tracing.source import user_location  # tracing builds on the modules that import this one

        lines = [what, *_where(user_location())]
        lines += [f"  why: {why}"] if why else []
        lines += [f"  fix: {fix}"] if fix else []
        super().__init__("\n".join(lines))


def whole(who, name, value, minimum=0):
    """`value` (an int, or a tuple of ints for a per-dimension argument) refused unless each is a whole
    number >= `minimum`."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)):
            raise ArgumentError(f"{who}: {name}={value!r} is not a whole number",
                                f"{name} counts elements, so it must be an int",
                                f"pass an int >= {minimum}, e.g. {name}={max(minimum, 1)}")
        if v < minimum:
            raise ArgumentError(f"{who}: {name}={value!r} is out of range",
                                f"{name} must be >= {minimum}",
                                f"pass {name} >= {minimum}")
    return value



def refusing_non_arrays(namespace, names):
    """Rebind the functions `names` of `namespace` whose first parameter is torch's `input` (`tensor`, or
    the `tensors` of cat and stack) so that None, a str, bytes or a dict there is refused at the user's
    line (torch: "argument 'input' must be Tensor"), instead of failing deep inside with an AttributeError."""
    for name in names:
        fn = namespace.get(name)
        try:
            first = next(iter(inspect.signature(fn).parameters), None)
        except (TypeError, ValueError):
            continue
        if first in ("input", "tensor", "tensors"):
            namespace[name] = _refusing_non_arrays(fn)


def _refusing_non_arrays(fn):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        if args and (args[0] is None or isinstance(args[0], (str, bytes, dict))):
            from .errors import DtypeError, _where
            from .tracing.source import user_location

            raise DtypeError("\n".join([f"{fn.__name__} expects an array (or a list of them) as its first argument, "
                                        f"got {type(args[0]).__name__}",
                                        *_where(user_location()),
                                        "  fix: pass an array (np.asarray(x) or avalon.tensor(x))"]))
        return fn(*args, **kwargs)

    return call
