"""torch's functions that pick elements — by rank (`topk`), by being non-zero (`nonzero`, `argwhere`,
one-argument `where`) and by chance (`multinomial`) — on arrays and tracers. Exported as `avalon.*`.

Picked values are a gather at the picked positions, so their gradient goes back to where each came
from. What has a value-dependent length (`nonzero`) runs on concrete arrays and is refused in traced code.
"""
import builtins

import numpy as np

from . import numpy_api as npa
from . import torch_api as ta
from .errors import AvalonError, DtypeError, ShapeError
from .ops import random as rnd
from .ops import sort as so
from .tensor import plain, wrap


def topk(input, k, dim=-1, largest=True, sorted=True):
    """The `k` largest (or, with `largest=False`, smallest) entries along `dim`: a (values, indices)
    named tuple, indices int64. Differentiable: each value's gradient goes to the entry it came from.

    The entries always come in order (largest first, or smallest first), which `sorted=False` allows;
    equal entries come in the order of their positions, NaN counts as the largest value, as torch's.

    >>> values, indices = avalon.topk(logits, 5, dim=-1)
    """
    n = 1 if input.ndim == 0 else ta._length(input, dim)
    if not 0 <= k <= n:
        raise ShapeError(f"topk: k={k} is out of range for dimension {dim} of length {n} (input of shape "
                         f"{tuple(input.shape)})", fix=f"pick at most {n} entries")
    if input.ndim == 0:
        return ta.values_indices(input, ta.zeros((), dtype=np.int64))
    axis = dim % input.ndim
    order = so.argsort(input, axis=axis, kind="stable", descending=largest)
    indices = npa.slice_axis(order, axis, 0, k)
    return ta.values_indices(npa.take_along_axis(input, indices, axis), indices)


def nonzero(input, *, as_tuple=False):
    """The indices of the non-zero entries: an (n, input.ndim) int64 array, one row per entry; with
    `as_tuple=True` one 1-D array per dimension (a 0-d input counts as 1-D), as torch.

    Their number depends on the values, so traced code refuses it (keep the shape instead: a mask
    multiplied in, or `avalon.where(mask, x, 0)`).
    """
    rows = npa.argwhere(input)
    if not as_tuple:
        return rows
    if input.ndim == 0:
        rows = npa.argwhere(npa.reshape(input, (1,)))
    return tuple(rows[:, i] for i in range(builtins.max(input.ndim, 1)))


def argwhere(input):
    """torch.argwhere: `nonzero(input)`."""
    return nonzero(input)


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """Category indices drawn from each row of `input` (1-D or 2-D, non-negative weights: probabilities
    or unnormalised), int64 of shape (num_samples,) or (rows, num_samples).

    Without replacement a row's samples are distinct (as drawing one at a time and setting its weight to
    zero); once the non-zero categories run out, zero-weight ones follow, as in torch. Recorded like the
    other random draws, so a cached replay draws afresh; `generator` (a numpy Generator) draws from it
    instead of Avalon's, outside traced code only.

    >>> next_token = avalon.multinomial(avalon.softmax(logits, -1), num_samples=1)
    """
    if input.ndim not in (1, 2):
        raise ShapeError(f"multinomial: the weights must be 1-D or 2-D, got shape {tuple(input.shape)}")
    if not np.issubdtype(np.dtype(input.dtype), np.floating):
        raise DtypeError(f"multinomial: the weights must be floating-point, got {input.dtype}; convert them "
                         "with .float()")
    categories = input.shape[-1]
    if num_samples <= 0:
        raise AvalonError(f"multinomial: num_samples must be positive, got {num_samples}")
    if not replacement and num_samples > categories:
        raise AvalonError(f"multinomial: cannot draw {num_samples} samples without replacement from "
                          f"{categories} categories; pass replacement=True or draw at most {categories}")
    if generator is not None:
        if getattr(type(input), "_avalon_tracer", False):
            raise AvalonError("multinomial(..., generator=...) in traced code: a replay cannot draw from a "
                              "generator object; drop the argument (avalon.manual_seed seeds the draws)")
        return wrap(rnd.multinomial.impl(plain(input), num_samples, replacement, rng=generator))
    return rnd.multinomial(input, num_samples=num_samples, replacement=replacement)


__all__ = ["topk", "nonzero", "argwhere", "multinomial"]
