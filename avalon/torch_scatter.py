"""torch's out-of-place writes at integer indices — `scatter`, `index_copy`, `index_fill`,
`index_put` — and torch's flat `take`, on arrays and tracers. Exported as `avalon.*`; also methods.

Each is written with `scatter_add` (the values placed at the indices) and `where` (a mask of the
written positions), so gradients come from their rules: the input's gradient is kept where nothing
was written, each written value's gradient is read back at its index. The indices are checked at
every call, replays included, with torch's rule for negatives (`index_fill`, `index_put` and `take`
count them from the end; `scatter` and `index_copy` refuse them). As in torch, which of several
values written to one position wins is unspecified (here: their sum).
"""
import numpy as np

from . import numpy_api as npa
from . import torch_api as ta
from .errors import AvalonError
from .ops import elementwise as ew
from .ops import index as ix


def _written(mask_parts, key, shape):
    """Where anything is written: a scatter of ones, compared with 0."""
    ones = npa.ones_like(mask_parts[0], dtype=np.int64)
    return ew.greater(ix.scatter_add(ones, *mask_parts, key=key, shape=tuple(shape)), 0)


def _along(input, dim, index, what, negative):
    """(dim, the checked 1-D index, the key writing along dim) of index_copy / index_fill."""
    dim = dim % max(input.ndim, 1)
    index = ix.in_range(npa.index_array(index), ta._length(input, dim), what, negative=negative)
    return dim, index, (slice(None),) * dim + (ix.Slot(0),)


def index_copy(input, dim, index, source):
    """`input` with the slices of `source` written at `index` along `dim` (out of place; torch's
    `index_copy`). Negative indices are refused, as torch refuses them."""
    dim, index, key = _along(input, dim, index, "index_copy", negative=False)
    placed = ix.scatter_add(npa.astype(source, input.dtype, copy=False), index, key=key, shape=tuple(input.shape))
    mask = _written([index], (ix.Slot(0),), (input.shape[dim],))
    return ew.where(npa.reshape(mask, (-1,) + (1,) * (input.ndim - dim - 1)), placed, input)


def index_fill(input, dim, index, value):
    """`input` with `value` at the entries `index` along `dim` (out of place; torch's `index_fill`;
    negative indices count from the end)."""
    dim, index, _ = _along(input, dim, index, "index_fill", negative=True)
    mask = _written([index], (ix.Slot(0),), (input.shape[dim],))
    value = value if hasattr(value, "shape") else np.asarray(value, dtype=input.dtype)
    return ew.where(npa.reshape(mask, (-1,) + (1,) * (input.ndim - dim - 1)), value, input)


def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    """`input` with `src[i][j]` written at `[index[i][j]][j]` (for dim=0; or the number `value`), out
    of place, as torch's `scatter`. Negative indices are refused, as torch refuses them."""
    if reduce is not None:
        raise AvalonError(f"scatter(reduce={reduce!r}): use scatter_add for 'add' (torch deprecates reduce= "
                          "here too)")
    if (src is None) == (value is None):
        raise AvalonError("scatter: give either src (an array) or value (a number), as torch")
    index = ix.in_range(npa.index_array(index), ta._length(input, dim), "scatter")
    operands, key = npa.along_axis(input, index, dim, index.shape)
    if src is None or not hasattr(src, "shape"):
        src = ta.full(tuple(index.shape), src if value is None else value, dtype=input.dtype)
    elif tuple(src.shape) != tuple(index.shape):
        src = src[tuple(slice(0, n) for n in index.shape)]
    placed = ix.scatter_add(npa.astype(src, input.dtype, copy=False), *operands, key=key, shape=tuple(input.shape))
    return ew.where(_written(operands, key, input.shape), placed, input)


def index_put(input, indices, values, accumulate=False):
    """`input` with `values` (broadcast) written at `input[indices]` (a tuple of index arrays), out of
    place, as torch's `index_put`; with `accumulate`, added there (repeats accumulate)."""
    from .numpy_indexing import _in_range, index_key

    static, arrays = index_key(input, tuple(indices))
    arrays = _in_range(input, static, arrays)
    picked = ix.getitem(input, *arrays, key=static).shape  # the shape written (the call itself is dead code)
    values = npa.broadcast_to(npa.astype(values if hasattr(values, "shape") else np.asarray(values), input.dtype,
                                         copy=False), picked)
    placed = ix.scatter_add(values, *arrays, key=static, shape=tuple(input.shape))
    if accumulate:
        return input + placed
    ones = npa.ones_like(values, dtype=np.int64)
    mask = ew.greater(ix.scatter_add(ones, *arrays, key=static, shape=tuple(input.shape)), 0)
    return ew.where(mask, placed, input)


def take(input, index):
    """The entries of `input` read flat at `index` (torch's `take`; negative indices count from the end)."""
    return npa.take(input, index)


__all__ = ["scatter", "index_copy", "index_fill", "index_put", "take"]
