"""Indexing: one gather primitive (`getitem`) and its adjoint (`scatter_add`).

An index key is static, except for integer arrays in it, which are operands: the key holds a `Slot(i)`
where the i-th index array goes. So `x[idx, 1:]` is `getitem(x, idx, key=(Slot(0), slice(1, None)))`.
take, take_along_axis and torch's gather are written with getitem.
"""
from ..backend import is_numpy_like, namespace
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


@primitive("scatter_add")
def scatter_add(values, *index_arrays, key, shape):
    """zeros(shape) with `values` added at `key`; repeated indices accumulate (the adjoint of getitem)."""
    xp = namespace(values)
    out = xp.zeros(tuple(shape), dtype=values.dtype)
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
