"""Dimension arguments checked against an array's rank, before anything wraps them.

`dim % ndim` alone turns a mistake into a different, silently wrong answer: `x.sum(dim=2)` on a 2-D
array summed dimension 0. Every function that takes a `dim`/`axis` normalises it here, which refuses a
dimension the array does not have, as torch and numpy do (a 0-d array takes 0 and -1, as torch's do).
"""
import operator

from .errors import ShapeError


class DimError(ShapeError, IndexError):
    """A dimension (`dim=` / `axis=`) the array does not have; an IndexError too, as torch's is."""


def _refuse(who, axis, ndim, shape, why):
    from .tracing import user_location  # tracing imports the op modules that import this one

    span = f"[{-max(ndim, 1)}, {max(ndim, 1) - 1}]"
    shape = tuple(shape) if shape is not None else f"with {ndim} dimensions"
    return DimError(f"{who}: dimension {axis!r} is out of range for an array of shape {shape}", who, [shape],
                    user_location(), why=why,
                    fix=f"pass a dimension in {span} (negative ones count from the end)")


def axis(value, ndim, who="dim", shape=None, new=0):
    """`value` as a dimension in [0, ndim + new); `new` counts the dimensions the call adds
    (unsqueeze/stack accept one past the end)."""
    try:
        value = operator.index(value)
    except TypeError:
        raise _refuse(who, value, ndim, shape, f"a dimension is an integer, not a {type(value).__name__}") from None
    size = max(ndim + new, 1)
    if not -size <= value < size:
        raise _refuse(who, value, ndim + new, shape, f"the array has {ndim} dimension{'s' * (ndim != 1)}")
    return value % size


def axes(values, ndim, who="dim", shape=None, new=0):
    """A dimension or a tuple/list of them, each checked and normalised (None stays None)."""
    if values is None:
        return None
    if isinstance(values, (tuple, list)):
        return tuple(axis(v, ndim, who, shape, new) for v in values)
    return axis(values, ndim, who, shape, new)


def new_shape(shape, old_shape, who="reshape"):
    """The target `shape` of a reshape of an array of `old_shape`, with its one -1 filled in; refused
    (instead of numpy's message from deep inside, or a silent guess) when it cannot hold the values."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    old_shape, total = tuple(old_shape), 1
    for n in old_shape:
        total *= n
    problem = None
    try:
        shape = tuple(operator.index(n) for n in shape)
    except TypeError:
        problem = "every entry must be a whole number"
    else:
        known = 1
        for n in shape:
            known *= n if n != -1 else 1
        if shape.count(-1) > 1:
            problem = "only one dimension may be -1 (inferred)"
        elif any(n < -1 for n in shape):
            problem = "sizes must be >= 0, or -1 for the one inferred from the others"
        elif -1 in shape and (known == 0 or total % known):
            problem = f"no size for -1 makes {total} values fit"
        elif -1 in shape:
            shape = tuple(total // known if n == -1 else n for n in shape)
        elif known != total:
            problem = f"{total} values do not fill {known} places"
    if problem is None:
        return shape
    from .tracing import user_location

    raise ShapeError(f"{who}: shape {shape} is invalid for an array of shape {old_shape} ({total} values)", who,
                     [old_shape], user_location(), why=problem,
                     fix="give sizes whose product is the number of values, with at most one -1")
