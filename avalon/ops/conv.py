"""Convolution primitives for 1, 2 and 3 spatial dimensions (layout N, C, *spatial).

Three primitives close under differentiation: `conv` (the forward), `conv_transpose` (its adjoint in
the input, which is also the transposed convolution) and `conv_weight_grad` (its adjoint in the
weight); each one's rule is written with the three, so gradients of gradients work. `unfold` and
`fold` (im2col and col2im, torch's F.unfold / F.fold) are the same machinery without the weight.

Padding is a (before, after) pair per spatial axis, so 'same' with an even kernel is representable.
Speed: the padded input is viewed as windows through strides (no copy), the windows are copied once
into a column matrix and one batched matrix product does the work (im2col); the adjoint multiplies
first and scatters the columns back with one strided add per kernel offset (col2im).
"""
import itertools
import math

from ..backend import is_numpy_like, namespace
from .primitive import primitive


def out_size(size, kernel, stride, padding, dilation):
    """Output length of a sliding window over `size` padded by the (before, after) pair `padding`."""
    return (size + padding[0] + padding[1] - dilation * (kernel - 1) - 1) // stride + 1


def pad_spatial(x, padding, value=0.0):
    """`x` with (before, after) `padding` pairs on its trailing axes, filled with `value`."""
    if not any(lo or hi for lo, hi in padding):
        return x
    xp = namespace(x)
    d = len(padding)
    shape = tuple(x.shape[:-d]) + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[-d:], padding))
    out = xp.full(shape, value, dtype=x.dtype)
    out[(...,) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape[-d:], padding))] = x
    return out


def crop_spatial(x, padding):
    """The inverse of `pad_spatial`: `x` without its (before, after) padding."""
    if not any(lo or hi for lo, hi in padding):
        return x
    d = len(padding)
    return x[(...,) + tuple(slice(lo, n - hi) for n, (lo, hi) in zip(x.shape[-d:], padding))]


def window_slices(offset, stride, dilation, out):
    """Slices picking, for kernel `offset`, the input element of every output position."""
    return tuple(slice(a * dl, a * dl + (o - 1) * s + 1, s) for a, s, dl, o in zip(offset, stride, dilation, out))


def _as_strided(xp):
    return getattr(getattr(getattr(xp, "lib", None), "stride_tricks", None), "as_strided", None)


def windows(x, kernel, stride, dilation, out):
    """A view (…, *kernel, *out) of `x`'s trailing axes: [..., a, o] = x[..., o * stride + a * dilation].

    Through strides where the array module has `as_strided` (numpy, cupy), else stacked slices.
    """
    xp = namespace(x)
    d = len(kernel)
    lead = tuple(x.shape[:-d])
    as_strided = _as_strided(xp)
    if as_strided is not None:
        steps = x.strides[-d:]
        strides = tuple(x.strides[:-d]) + tuple(s * dl for s, dl in zip(steps, dilation)) \
            + tuple(s * st for s, st in zip(steps, stride))
        return as_strided(x, shape=lead + tuple(kernel) + tuple(out), strides=strides)
    pieces = [x[(...,) + window_slices(offset, stride, dilation, out)]
              for offset in itertools.product(*map(range, kernel))]
    return xp.reshape(xp.stack(pieces, axis=len(lead)), lead + tuple(kernel) + tuple(out))


def col2im(cols, shape, kernel, stride, dilation, lead):
    """The adjoint of `windows`: columns (*A, *kernel, *B, *out) summed into an array (*A, *B, *shape).

    `lead` counts the A axes. Kernel axes come before the B axes so that each kernel offset's slice
    is one contiguous block per A index (measured 1.6x faster to add than a strided slice).
    """
    xp = namespace(cols)
    d = len(kernel)
    out = tuple(cols.shape[-d:])
    outer = tuple(cols.shape[:lead])
    res = xp.zeros(outer + tuple(cols.shape[lead + d:-d]) + tuple(shape), dtype=cols.dtype)
    everything = (slice(None),) * lead
    in_place = is_numpy_like(xp)
    for offset in itertools.product(*map(range, kernel)):
        key = (...,) + window_slices(offset, stride, dilation, out)
        if in_place:  # add into the view: `res[key] += v` would also copy the view back onto itself
            target = res[key]
            target += cols[everything + offset + (...,)]
        else:
            res[key] = res[key] + cols[everything + offset + (...,)]
    return res


def _columns(x, kernel, stride, padding, dilation, out, groups):
    """im2col: the windows of padded `x` as a (groups, C/groups * prod(kernel), N * prod(out)) copy.

    Batch and positions share the last axis so that each group is one large matrix product (measured
    up to 15x faster than per-sample products when the spatial size is small).
    """
    xp = namespace(x)
    win = windows(pad_spatial(x, padding), kernel, stride, dilation, out)
    n, c = x.shape[:2]
    d = len(kernel)
    win = xp.reshape(win, (n, groups, c // groups) + tuple(kernel) + tuple(out))
    # (N, G, Cg, *kernel, *out) -> (G, Cg, *kernel, N, *out): the reshape makes the one copy im2col needs
    win = _permute(xp, win, (1, 2) + tuple(range(3, 3 + d)) + (0,) + tuple(range(3 + d, 3 + 2 * d)))
    return xp.reshape(win, (groups, c // groups * math.prod(kernel), n * math.prod(out)))


def _to_batch_major(xp, y, n, out):
    """(G, Co/G, N * prod(out)) -> (N, Co, *out)."""
    groups, cg = y.shape[:2]
    y = _permute(xp, xp.reshape(y, (groups, cg, n, math.prod(out))), (2, 0, 1, 3))
    return xp.reshape(y, (n, groups * cg) + tuple(out))


def _to_group_major(xp, g, groups):
    """(N, Co, *out) -> (G, Co/G, N * prod(out)): the layout `_columns` multiplies with."""
    n, co = g.shape[:2]
    g = _permute(xp, xp.reshape(g, (n, groups, co // groups, -1)), (1, 2, 0, 3))
    return xp.reshape(g, (groups, co // groups, -1))


def _permute(xp, a, axes):
    return xp.transpose(a, axes) if is_numpy_like(xp) else xp.permute_dims(a, axes)


def _swap_last(xp, a):
    return a.swapaxes(-1, -2) if hasattr(a, "swapaxes") else xp.matrix_transpose(a)


def _padded(shape, padding):
    return tuple(n + lo + hi for n, (lo, hi) in zip(shape, padding))


@primitive("conv")
def conv(x, w, stride, padding, dilation, groups):
    """Cross-correlation of `x` (N, C, *S) with `w` (Co, C/groups, *K), no bias (torch's convNd).

    `padding` holds a (before, after) zero-padding pair per spatial axis.
    """
    xp = namespace(x, w)
    kernel = tuple(w.shape[2:])
    out = tuple(out_size(n, k, s, p, dl) for n, k, s, p, dl in zip(x.shape[2:], kernel, stride, padding, dilation))
    cols = _columns(x, kernel, stride, padding, dilation, out, groups)
    wmat = xp.reshape(w, (groups, w.shape[0] // groups, -1))
    return _to_batch_major(xp, xp.matmul(wmat, cols), x.shape[0], out)


@primitive("conv_transpose")
def conv_transpose(g, w, shape, stride, padding, dilation, groups):
    """The adjoint of `conv` in its input: `g` (N, Co, *out) back to an input of spatial `shape`.

    With torch's arguments this is conv_transposeNd (weight (Cin, Cout/groups, *K) there is the
    `w` of the convolution it transposes).
    """
    xp = namespace(g, w)
    n, co = g.shape[:2]
    kernel = tuple(w.shape[2:])
    out = tuple(g.shape[2:])
    cg = w.shape[1]
    d = len(kernel)
    full = tuple(dl * (k - 1) for k, dl in zip(kernel, dilation))
    if all(s == 1 for s in stride) and all(lo <= f and hi <= f for (lo, hi), f in zip(padding, full)) \
            and co // groups <= 2 * cg:
        # unit stride: a convolution with the flipped, transposed kernel, whose im2col copies the Co/G
        # channels of g: 1.3-2.5x faster than col2im unless Co/G is much larger than Cg (measured)
        wt = _permute(xp, xp.reshape(w, (groups, co // groups, cg) + kernel), (0, 2, 1) + tuple(range(3, 3 + d)))
        wt = xp.flip(xp.reshape(wt, (groups * cg, co // groups) + kernel), axis=tuple(range(2, 2 + d)))
        # rows past the last window (output_padding) get zeros: more padding after
        pads = tuple((f - lo, n - o + lo) for n, o, (lo, hi), f in zip(shape, out, padding, full))
        return conv.impl(g, wt, stride, pads, dilation, groups)
    # weight as (G, *kernel, Cg, Co/G) rows: the products come out kernel-offset major, as col2im wants
    wk = xp.reshape(w, (groups, co // groups, cg) + kernel)
    wk = xp.reshape(_permute(xp, wk, (0,) + tuple(range(3, 3 + d)) + (2, 1)), (groups, -1, co // groups))
    cols = xp.reshape(xp.matmul(wk, _to_group_major(xp, g, groups)), (groups,) + kernel + (cg, n) + out)
    x = crop_spatial(col2im(cols, _padded(shape, padding), kernel, stride, dilation, lead=1), padding)
    # (G, Cg, N, *shape) -> (N, G * Cg, *shape): back to the input layout, each group's channels in turn
    x = _permute(xp, x, (2, 0, 1) + tuple(range(3, 3 + d)))
    return xp.reshape(x, (n, groups * cg) + tuple(shape))


@primitive("conv_weight_grad")
def conv_weight_grad(x, g, kernel, stride, padding, dilation, groups):
    """The adjoint of `conv` in its weight: sum over batch and positions of `g` times `x`'s windows."""
    xp = namespace(x, g)
    c = x.shape[1]
    cols = _columns(x, kernel, stride, padding, dilation, tuple(g.shape[2:]), groups)
    gw = xp.matmul(_to_group_major(xp, g, groups), _swap_last(xp, cols))
    return xp.reshape(gw, (g.shape[1], c // groups) + tuple(kernel))


@primitive("unfold", view=True)
def unfold(x, kernel, stride, padding, dilation):
    """torch's F.unfold (im2col): the windows of `x` (N, C, *S) as (N, C * prod(kernel), L).

    A view of `x` when the windows tile it exactly (1x1 kernel, unit stride, no padding), else a copy.
    """
    xp = namespace(x)
    out = tuple(out_size(n, k, s, p, dl) for n, k, s, p, dl in zip(x.shape[2:], kernel, stride, padding, dilation))
    win = windows(pad_spatial(x, padding), kernel, stride, dilation, out)
    return xp.reshape(win, (x.shape[0], x.shape[1] * math.prod(kernel), math.prod(out)))


@primitive("fold")
def fold(cols, shape, kernel, stride, padding, dilation):
    """torch's F.fold (col2im): columns (N, C * prod(kernel), L) summed into (N, C, *shape)."""
    xp = namespace(cols)
    out = tuple(out_size(n, k, s, p, dl) for n, k, s, p, dl in zip(shape, kernel, stride, padding, dilation))
    n = cols.shape[0]
    c = cols.shape[1] // math.prod(kernel)
    cols = xp.reshape(cols, (n, c) + tuple(kernel) + out)
    return crop_spatial(col2im(cols, _padded(shape, padding), kernel, stride, dilation, lead=2), padding)
