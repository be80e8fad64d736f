"""Indexing: one gather primitive (`getitem`) and its adjoint (`scatter_add`).

An index key is static, except for integer arrays in it, which are operands: the key holds a `Slot(i)`
where the i-th index array goes. So `x[idx, 1:]` is `getitem(x, idx, key=(Slot(0), slice(1, None)))`.
take, take_along_axis and torch's gather are written with getitem.
"""
from ..backend import first_marked, is_numpy_like, namespace
from ..errors import IndexRangeError
from .primitive import primitive


class Slot:
    """Placeholder in an index key for the i-th index-array operand."""

    __slots__ = ("i",)

    def __init__(self, i):
        self.i = i

    def __eq__(self, other):
        return isinstance(other, Slot) and other.i == self.i

    def __hash__(self):
        return hash(("Slot", self.i))

    def __repr__(self):
        return f"Slot({self.i})"


def fill_key(key, index_arrays, xp):
    """The key with its slots replaced by the index arrays. The array API wants every axis indexed, so
    there a key without `...` gets a trailing one (which numpy's rules make a no-op)."""
    key = tuple(index_arrays[k.i] if isinstance(k, Slot) else k for k in key)
    if not is_numpy_like(xp) and not any(k is Ellipsis for k in key):
        key += (Ellipsis,)
    return key


@primitive("getitem", view=True)
def getitem(x, *index_arrays, key):
    """`x[key]`, with `Slot(i)` in `key` standing for `index_arrays[i]`."""
    return x[fill_key(key, index_arrays, namespace(x))]


@primitive("scatter_add", out=True)
def scatter_add(values, *index_arrays, key, shape, out=None):
    """zeros(shape) with `values` added at `key`; repeated indices accumulate (the adjoint of getitem).
    `out=` (numpy, cupy): an array of that shape and dtype to zero and write into (a planned buffer)."""
    xp = namespace(values)
    if out is None:
        out = xp.zeros(tuple(shape), dtype=values.dtype)
    else:
        out[...] = 0
    full_key = fill_key(key, index_arrays, xp)
    if not index_arrays and not is_numpy_like(xp) and any(k is None for k in full_key):
        # the array API allows no new axis in an assignment's key: drop them (size 1) from values
        region = tuple(k for k in full_key if k is not None)
        out[region] = xp.reshape(values, out[region].shape)
    elif not index_arrays:
        out[full_key] = values
    elif is_numpy_like(xp) and xp.__name__ == "numpy":
        xp.add.at(out, full_key, values)
    elif is_numpy_like(xp):
        import cupyx

        cupyx.scatter_add(out, full_key, values)
    else:
        raise NotImplementedError(
            f"the gradient of indexing with integer arrays needs a scatter, which {xp.__name__} lacks "
            "(the array API has none): index with slices, or use numpy or cupy arrays")
    return out


@primitive("scatter_sum", out=True)
def scatter_sum(*parts, keys, shape, out=None):
    """zeros(shape) with each of `parts` added at its key of `keys`, in order: one array instead of a
    sum of `scatter_add`s (see `avalon.compile.accumulate`). Keys are basic (slices,
    integers, None, ...); the key `()` adds a part over the whole array. With `out=` the result is
    written into that buffer, whatever it held."""
    xp = namespace(*parts)
    if keys[0] == ():  # starting from a whole-array part saves zeroing the buffer, a pass over it
        if out is None:
            out = xp.array(parts[0], copy=True) if is_numpy_like(xp) else xp.asarray(parts[0], copy=True)
        else:
            out[...] = parts[0]
        parts, keys = parts[1:], keys[1:]
    elif out is None:
        out = xp.zeros(tuple(shape), dtype=parts[0].dtype)
    else:
        out[...] = 0
    for values, key in zip(parts, keys):
        _add_at(out, key, values, xp)
    return out


def _add_at(out, key, values, xp):
    """out[key] += values, in place, with one pass over the region."""
    if is_numpy_like(xp):
        region = out[key]
        if isinstance(region, xp.ndarray):  # a view (basic indexing): add straight into it
            xp.add(region, values, out=region)
        else:  # one element, as a scalar
            out[key] = region + values
        return
    region = tuple(k for k in fill_key(key, (), xp) if k is not None)  # the array API's keys have no new axis
    out[region] = out[region] + xp.reshape(values, out[region].shape)


@primitive("checked_index", differentiable=False)
def checked_index(index, *, size, what, ignore=None, low=0):
    """`index` itself, once every entry (but those equal to `ignore`) lies in [low, size): `low` is 0
    where torch refuses negative indices (gather, scatter, an embedding row, a class) and -size where
    they count from the end (`x[idx]`, take). Recorded, so the check runs at every replay, not only
    while tracing: numpy would read -1 as the last row where torch refuses it, and a replay on other
    data must refuse what tracing would have."""
    check_range(index, size, what, low, ignore)
    return index


def check_range(index, size, what, low=0, ignore=None):
    """Raise `IndexRangeError` (the first bad entry, its position) unless every entry of `index` but
    those equal to `ignore` lies in [low, size). The common case costs one min and one max."""
    if not index.size:
        return
    xp = namespace(index)
    if low <= int(xp.min(index)) and int(xp.max(index)) < size:
        return
    bad = (index < low) | (index >= size)
    if ignore is not None:
        bad = bad & (index != ignore)
    if not bool(xp.any(bad)):
        return
    value, position = first_marked(bad, index)
    raise IndexRangeError(what, int(value), position, low, size, ignore)


_NEVER_NEGATIVE = {"argsort", "argpartition", "argmax", "argmin"}


def in_range(index, size, what, *, negative=False, ignore=None):
    """`index` (an integer array or tracer) checked against an axis of length `size` at every call:
    entries in [0, size), or [-size, size) with `negative` (torch's `x[idx]`, take). Other indices
    (boolean masks, Python numbers, which numpy checks itself) pass as they are."""
    if getattr(getattr(index, "dtype", None), "kind", "") not in ("i", "u"):
        return index
    made = getattr(getattr(index, "_node", None), "prim", None)  # a tracer's producer
    if made is not None and made.name in _NEVER_NEGATIVE:
        return index  # from argsort or argmax: never negative, and numpy refuses any past the end itself
    if made is checked_index and index._node.params["size"] == size and index._node.params.get("ignore") is None \
            and index._node.params.get("low", 0) >= (-size if negative else 0):
        return index  # checked already (an embedding's rows, then taken)
    return checked_index(index, size=size, what=what, ignore=ignore, low=-size if negative else 0)
