"""Shape primitives: reshape, transpose, broadcast_to, concatenate, pad, flip, tile, repeat.

swapaxes, moveaxis, expand_dims, squeeze, stack and split are not primitives: they are expressed
with these (see `avalon.functions`), so the tape and the rules stay small.
"""
from ..backend import is_numpy_like, namespace
from .primitive import primitive


@primitive("reshape", view=True)
def reshape(x, shape):
    """`x` with a new shape of the same size (a view when possible)."""
    return namespace(x).reshape(x, tuple(shape))


@primitive("transpose", view=True)
def transpose(x, axes):
    """`x` with its axes permuted: result axis i is `x`'s axis `axes[i]`."""
    xp = namespace(x)
    return xp.transpose(x, axes) if is_numpy_like(xp) else xp.permute_dims(x, tuple(axes))


@primitive("broadcast_to", view=True)
def broadcast_to(x, shape):
    """A read-only view of `x` broadcast to `shape`."""
    return namespace(x).broadcast_to(x, tuple(shape))


def _concatenate_operands(*xs, axis=0):
    """Refuse arrays that cannot be joined along `axis` (before it runs: what fails after is Avalon's bug)."""
    first = xs[0]
    if not -first.ndim <= axis < first.ndim:
        raise ValueError(f"axis {axis} is out of range for {first.ndim}-D arrays")
    for k, x in enumerate(xs[1:], start=1):
        if x.ndim != first.ndim:
            raise ValueError(f"array {k} has {x.ndim} dimensions, array 0 has {first.ndim}")
        for d, (m, n) in enumerate(zip(first.shape, x.shape)):
            if m != n and d != axis % first.ndim:
                raise ValueError(f"array {k} has length {n} along dimension {d}, array 0 has {m}: only "
                                 f"dimension {axis % first.ndim} (the joined one) may differ")


@primitive("concatenate", check=_concatenate_operands)
def concatenate(*xs, axis=0):
    """The arrays joined along an existing `axis`."""
    xp = namespace(*xs)
    return xp.concatenate(xs, axis=axis) if is_numpy_like(xp) else xp.concat(xs, axis=axis)


@primitive("pad")
def pad(x, widths, value=0.0):
    """`x` padded with `value`: `widths` holds a (before, after) pair per axis."""
    xp = namespace(x)
    if is_numpy_like(xp):
        return xp.pad(x, widths, mode="constant", constant_values=value)
    shape = tuple(n + a + b for n, (a, b) in zip(x.shape, widths))
    out = xp.full(shape, value, dtype=x.dtype)
    out[tuple(slice(a, a + n) for n, (a, _) in zip(x.shape, widths))] = x
    return out


@primitive("flip", view=True)
def flip(x, axis):
    """`x` reversed along the axes in `axis` (a tuple)."""
    return namespace(x).flip(x, axis=axis)


@primitive("tile")
def tile(x, reps):
    """`x` repeated `reps[i]` times along axis i (numpy's tile; torch's `Tensor.repeat`)."""
    return namespace(x).tile(x, tuple(reps))


@primitive("repeat")
def repeat(x, repeats, axis):
    """Each element of `x` repeated `repeats` times along `axis` (torch's `repeat_interleave`)."""
    return namespace(x).repeat(x, repeats, axis=axis)
