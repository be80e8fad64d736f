"""Convolution primitives for 1, 2 and 3 spatial dimensions (layout N, C, *spatial).

Three primitives close under differentiation: `conv` (the forward), `conv_transpose` (its adjoint in
the input, which is also the transposed convolution) and `conv_weight_grad` (its adjoint in the
weight); each one's rule is written with the three, so gradients of gradients work. `unfold` and
`fold` (im2col and col2im, torch's F.unfold / F.fold) are the same machinery without the weight.

Padding is a (before, after) pair per spatial axis, so 'same' with an even kernel is representable.
Speed: the padded input is viewed as windows through strides (no copy), the windows are copied once
into a column matrix and one batched matrix product does the work (im2col); the adjoint multiplies
first and scatters the columns back with one strided add per kernel offset (col2im). Layers of 16 or
more channels per group take the fast path of conv_gemm.py instead (the same im2col, channels-last, a
few samples at a time so the columns stay in cache), and 3 taps at unit stride along the first axis
the Winograd rows of winograd.py (2/3 of the products).

A depthwise convolution (one input channel per group) would make im2col a copy of the input per
kernel offset feeding products of one row each. It is done channel-major instead: each channel's
filter becomes a small banded (Toeplitz) matrix along the last spatial axis, applied to blocks of
input columns viewed through strides, one batched matrix product per offset along the other axes.
"""
import itertools
import math

from ..backend import is_numpy_like, namespace
from ..kernels.onednn import conv as onednn_conv
from . import conv_gemm, conv_split, winograd
from .primitive import primitive

# The fast paths (conv_gemm.py: channels-last im2col a few samples at a time). False runs the plain
# whole-batch im2col below, which the tests compare them with.
FAST_PATHS = True
# The plain path multiplies each sample's columns apart, (G, Co/G, Cg·K) by (N, G, Cg·K, P), where the
# output has at least this many positions per sample: the batch then needs no transposing on the way in
# or out. Below it one product over the whole batch's columns pays (up to 15x faster on small outputs).
# LeNet's first layer (1→32, 26×26 out), one thread: forward 1.46 -> 0.94 ms, weight gradient 2.86 ->
# 1.18 ms. 0: always the whole batch.
PER_SAMPLE_POSITIONS = 256
# Within them, Winograd's F(2, 3) along the first spatial axis for 3 taps at unit stride (winograd.py).
WINOGRAD = True


def _fast(xp, channels, kernel):
    """Whether the chunked channels-last path runs: its rows are made of runs of the group's
    `channels`, too short below CHANNELS_LAST_MIN to copy faster than the plain layout, and a 1×1
    kernel's columns are the input itself, which the plain path multiplies as it is (measured)."""
    return FAST_PATHS and channels >= conv_gemm.CHANNELS_LAST_MIN and math.prod(kernel) > 1 \
        and _as_strided(xp) is not None


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


def _per_sample(xp, out):
    return bool(PER_SAMPLE_POSITIONS) and is_numpy_like(xp) and math.prod(out) >= PER_SAMPLE_POSITIONS


def _sample_columns(x, kernel, stride, padding, dilation, out, groups):
    """im2col per sample: the windows of padded `x` as a (N, groups, C/groups * prod(kernel),
    prod(out)) copy, the batch outermost as in `x`."""
    xp = namespace(x)
    win = windows(pad_spatial(x, padding), kernel, stride, dilation, out)
    n, c = x.shape[:2]
    return xp.reshape(win, (n, groups, c // groups * math.prod(kernel), math.prod(out)))


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


@primitive("conv", out=True)
def conv(x, w, stride, padding, dilation, groups, out=None):
    """Cross-correlation of `x` (N, C, *S) with `w` (Co, C/groups, *K), no bias (torch's convNd).

    `padding` holds a (before, after) zero-padding pair per spatial axis. `out`: an array of the
    result's shape and dtype to write it into (the compiler's reused buffers and workspaces).
    """
    xp = namespace(x, w)
    kernel = tuple(w.shape[2:])
    size = tuple(out_size(n, k, s, p, dl) for n, k, s, p, dl in zip(x.shape[2:], kernel, stride, padding, dilation))
    if onednn_conv.applies("forward", x, w, padding, x.shape[1], groups, out):
        return onednn_conv.conv(x, w, size, stride, padding, dilation, groups, out)
    # the GEMM paths write their chunks straight into a C-contiguous `out`; the others copy into it
    into = out if out is not None and getattr(out, "flags", None) is not None and out.flags.c_contiguous else None
    if _depthwise(xp, w, groups):
        return _into(out, _depthwise_conv(xp, x, w, size, stride, padding, dilation))
    if _fast(xp, w.shape[1], kernel):
        if WINOGRAD and winograd.applies(kernel, stride, dilation, size):
            return _into(out, conv_split.split_batch(  # parts of the batch on the BLAS threads (conv_split.py)
                xp, x.shape[0], lambda s, part: winograd.conv(xp, x[s], w, size, stride, padding, dilation,
                                                              groups, part),
                (x.shape[0], w.shape[0]) + size, x.dtype, into))
        return _into(out, conv_gemm.conv(xp, x, w, size, stride, padding, dilation, groups, into))
    wmat = xp.reshape(w, (groups, w.shape[0] // groups, -1))
    if _per_sample(xp, size):
        y = xp.matmul(wmat, _sample_columns(x, kernel, stride, padding, dilation, size, groups))
        return _into(out, xp.reshape(y, (x.shape[0], w.shape[0]) + size))
    cols = _columns(x, kernel, stride, padding, dilation, size, groups)
    return _into(out, _to_batch_major(xp, xp.matmul(wmat, cols), x.shape[0], size))


def _into(out, result):
    """`result`, copied into `out` when it was given and not written already."""
    if out is None or result is out:
        return result
    out[...] = result
    return out


@primitive("conv_transpose", out=True)
def conv_transpose(g, w, shape, stride, padding, dilation, groups, out=None):
    """The adjoint of `conv` in its input: `g` (N, Co, *out) back to an input of spatial `shape`,
    written into `out` when given (as `conv`).

    With torch's arguments this is conv_transposeNd (weight (Cin, Cout/groups, *K) there is the
    `w` of the convolution it transposes).
    """
    if onednn_conv.applies("data", g, w, padding, w.shape[1] * groups, groups) \
            and onednn_conv.fits(shape, g.shape[2:], w.shape[2:], stride, padding, dilation):
        return onednn_conv.conv_transpose(g, w, shape, stride, padding, dilation, groups, out)
    return _into(out, _conv_transpose(g, w, shape, stride, padding, dilation, groups, out))


def _conv_transpose(g, w, shape, stride, padding, dilation, groups, into):
    xp = namespace(g, w)
    n, co = g.shape[:2]
    kernel = tuple(w.shape[2:])
    out = tuple(g.shape[2:])
    cg = w.shape[1]
    d = len(kernel)
    full = tuple(dl * (k - 1) for k, dl in zip(kernel, dilation))
    unit = all(s == 1 for s in stride) and all(lo <= f and hi <= f for (lo, hi), f in zip(padding, full))
    if _depthwise(xp, w, groups) and not (unit and co == groups):
        # (one filter per channel at unit stride is a depthwise convolution below: faster, measured)
        return _depthwise_conv_transpose(xp, g, w, groups, shape, stride, padding, dilation)
    if unit and co // groups <= 2 * cg:
        # unit stride: a convolution with the flipped, transposed kernel, whose im2col copies the Co/G
        # channels of g: 1.3-2.5x faster than col2im unless Co/G is much larger than Cg (measured)
        wt = _permute(xp, xp.reshape(w, (groups, co // groups, cg) + kernel), (0, 2, 1) + tuple(range(3, 3 + d)))
        wt = xp.flip(xp.reshape(wt, (groups * cg, co // groups) + kernel), axis=tuple(range(2, 2 + d)))
        # rows past the last window (output_padding) get zeros: more padding after
        pads = tuple((f - lo, n - o + lo) for n, o, (lo, hi), f in zip(shape, out, padding, full))
        return conv.impl(g, wt, stride, pads, dilation, groups, out=into)
    if _fast(xp, cg, kernel):
        return conv_gemm.conv_transpose(xp, g, w, shape, stride, padding, dilation, groups)
    # weight as (G, *kernel, Cg, Co/G) rows: the products come out kernel-offset major, as col2im wants
    wk = xp.reshape(w, (groups, co // groups, cg) + kernel)
    wk = xp.reshape(_permute(xp, wk, (0,) + tuple(range(3, 3 + d)) + (2, 1)), (groups, -1, co // groups))
    cols = xp.reshape(xp.matmul(wk, _to_group_major(xp, g, groups)), (groups,) + kernel + (cg, n) + out)
    x = crop_spatial(col2im(cols, _padded(shape, padding), kernel, stride, dilation, lead=1), padding)
    # (G, Cg, N, *shape) -> (N, G * Cg, *shape): back to the input layout, each group's channels in turn
    x = _permute(xp, x, (2, 0, 1) + tuple(range(3, 3 + d)))
    return xp.reshape(x, (n, groups * cg) + tuple(shape))


@primitive("conv_weight_grad", fresh=True)  # (a product: new memory)
def conv_weight_grad(x, g, kernel, stride, padding, dilation, groups):
    """The adjoint of `conv` in its weight: sum over batch and positions of `g` times `x`'s windows."""
    if onednn_conv.applies("weights", x, g, padding, x.shape[1], groups) \
            and onednn_conv.fits(x.shape[2:], g.shape[2:], kernel, stride, padding, dilation):
        return onednn_conv.conv_weight_grad(x, g, kernel, stride, padding, dilation, groups)
    xp = namespace(x, g)
    c = x.shape[1]
    if groups > 1 and groups == c and _as_strided(xp) is not None:
        return _depthwise_weight_grad(xp, x, g, kernel, stride, padding, dilation)
    if _fast(xp, c // groups, kernel):
        if WINOGRAD and winograd.applies(kernel, stride, dilation, tuple(g.shape[2:])):
            return conv_split.split_batch(xp, x.shape[0], lambda s, _: winograd.conv_weight_grad(
                xp, x[s], g[s], kernel, stride, padding, dilation, groups))
        return conv_gemm.conv_weight_grad(xp, x, g, kernel, stride, padding, dilation, groups)
    if _per_sample(xp, g.shape[2:]):
        n, co = g.shape[:2]
        cols = _sample_columns(x, kernel, stride, padding, dilation, tuple(g.shape[2:]), groups)
        parts = xp.matmul(xp.reshape(g, (n, groups, co // groups, -1)), _swap_last(xp, cols))
        return xp.reshape(xp.sum(parts, axis=0), (co, c // groups) + tuple(kernel))
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


# Depthwise convolution (groups == input channels): see the module docstring.

def _depthwise(xp, w, groups):
    return groups > 1 and w.shape[1] == 1 and _as_strided(xp) is not None


class _Bands:
    """How the last spatial axis is cut into blocks of `width` output columns, each computed from
    `span` input columns starting `step` apart, so that one small banded matrix serves every block.

    Narrow blocks keep the banded matrix mostly non-zero (a block of 16 outputs of a 3-tap filter
    reads 18 inputs; 8 to 32 columns measured alike); a width that divides the output saves cropping."""

    def __init__(self, out, kernel, stride, dilation):
        self.width = out if out <= 16 else next((b for b in range(16, 7, -1) if out % b == 0), 16)
        self.count = -(-out // self.width)
        self.step = self.width * stride
        self.span = (self.width - 1) * stride + (kernel - 1) * dilation + 1
        self.reach = (self.count - 1) * self.step + self.span  # input columns the blocks read

    def matrices(self, xp, w, multiplier, stride, dilation):
        """(C, A, span, multiplier·width): for each channel and offset along the leading kernel axes
        (A of them), the banded matrix taking a block's input columns to its outputs, filter by filter."""
        taps = w.shape[-1]
        p = xp.arange(self.span)[None, :, None]
        o = xp.arange(self.width)[None, None, :]
        b = xp.arange(taps)[:, None, None]
        onehot = (p == o * stride + b * dilation).astype(w.dtype)  # (taps, span, width)
        channels, leading = w.shape[0] // multiplier, math.prod(w.shape[2:-1])
        bands = xp.matmul(xp.reshape(w, (-1, taps)), xp.reshape(onehot, (taps, -1)))
        bands = _permute(xp, xp.reshape(bands, (channels, multiplier, leading, self.span, self.width)), (0, 2, 3, 1, 4))
        return xp.reshape(bands, (channels, leading, self.span, multiplier * self.width)), onehot

    def view(self, xp, rows):
        """rows (..., R, W) seen as (..., count, R, span): block j is columns [j·step, j·step + span)."""
        s = rows.strides
        return _as_strided(xp)(rows, shape=tuple(rows.shape[:-2]) + (self.count, rows.shape[-2], self.span),
                               strides=tuple(s[:-2]) + (self.step * s[-1], s[-2], s[-1]))


def _channel_major(xp, x, padding, reach):
    """x (N, C, *S) zero-padded and laid out (C, *leading S, N, last S) with at least `reach` columns,
    so that the leading output positions and the batch make the rows of one matrix per channel."""
    n, c, d = x.shape[0], x.shape[1], x.ndim - 2
    padded = [size + lo + hi for size, (lo, hi) in zip(x.shape[2:], padding)]
    padded[-1] = max(padded[-1], reach)
    buf = xp.zeros((c, *padded[:-1], n, padded[-1]), dtype=x.dtype)
    inside = tuple(slice(lo, lo + size) for size, (lo, _) in zip(x.shape[2:], padding))
    buf[(slice(None),) + inside[:-1] + (slice(None), inside[-1])] = _permute(xp, x, (1, *range(2, d + 1), 0, d + 1))
    return buf


# Channels done together in a depthwise convolution: about this many bytes of channel-major input
# (best of 256 KiB - 4 MiB, measured). A chunk's temporaries stay in cache and are recycled by the
# allocator, where whole-array ones would be fresh memory at every call (whose page faults cost
# more than the arithmetic).
CHUNK_BYTES = 1 << 20


def _channel_chunks(shape, itemsize, padding, reach):
    """Slices of the channels of an (N, C, *S) input, CHUNK_BYTES of its channel-major copy each."""
    padded = [size + lo + hi for size, (lo, hi) in zip(shape[2:], padding)]
    per_channel = math.prod(padded[:-1]) * shape[0] * max(padded[-1], reach) * itemsize
    size = max(1, CHUNK_BYTES // per_channel)
    return [slice(i, min(i + size, shape[1])) for i in range(0, shape[1], size)]


def _offset_planes(xt, offset, out, stride, dilation):
    """The part of the channel-major `xt` (C, *leading, N, W) that the leading kernel `offset` reads:
    (C, *out, N, W), a view."""
    return xt[(slice(None),) + tuple(slice(a * dl, a * dl + (o - 1) * s + 1, s)
                                     for a, o, s, dl in zip(offset, out, stride, dilation))]


def _offset_rows(xp, xt, offset, out, stride, dilation):
    """`_offset_planes` as rows: (C, *out[:-1], out[-1]·N, W) (a view when the stride along the last
    leading axis is 1), or (C, N, W) in 1-d."""
    rows = _offset_planes(xt, offset, out, stride, dilation)
    return xp.reshape(rows, tuple(rows.shape[:-3]) + (-1, rows.shape[-1])) if offset else rows


def _batch_order(d):
    """The axes of (C, *out[:-2], count, [out[-2],] N, multiplier, width) in (N, C, multiplier, *out[:-1],
    count, width) order."""
    blocks = 1 + max(d - 2, 0)
    last_leading = [blocks + 1] if d >= 2 else []
    batch = blocks + 1 + len(last_leading)
    return (batch, 0, batch + 1, *range(1, blocks), *last_leading, blocks, batch + 2)


def _depthwise_conv(xp, x, w, out, stride, padding, dilation):
    n, c, d = x.shape[0], x.shape[1], x.ndim - 2
    multiplier = w.shape[0] // c
    bands = _Bands(out[-1], w.shape[-1], stride[-1], dilation[-1])
    matrices, _ = bands.matrices(xp, w, multiplier, stride[-1], dilation[-1])
    batch = (1,) * (d - 2) + (1,)  # matrices broadcast over the leading outputs and the blocks
    result = xp.empty((n, c * multiplier) + out, dtype=x.dtype)
    for chunk in _channel_chunks(x.shape, x.dtype.itemsize, padding, bands.reach):
        xt = _channel_major(xp, x[:, chunk], padding, bands.reach)
        k = xt.shape[0]
        y = z = None
        for a, offset in enumerate(itertools.product(*map(range, w.shape[2:-1]))):
            rows = bands.view(xp, _offset_rows(xp, xt, offset, out[:-1], stride[:-1], dilation[:-1]))
            band = xp.reshape(matrices[chunk, a], (k,) + batch + matrices.shape[2:])
            if y is None:
                y = xp.matmul(rows, band)
            else:  # one buffer for every later offset's product
                z = xp.matmul(rows, band) if z is None else xp.matmul(rows, band, out=z)
                y += z
        y = xp.reshape(y, (k,) + out[:-2] + (bands.count,) + out[-2:-1] + (n, multiplier, bands.width))
        y = _permute(xp, y, _batch_order(d))  # (N, k, multiplier, *out[:-1], count, width)
        # the chunk's channels of the result, seen with the same axes (splitting axes keeps a view)
        target = xp.reshape(result[:, chunk.start * multiplier:chunk.stop * multiplier], (n, k, multiplier) + out)
        if bands.count * bands.width == out[-1]:
            xp.reshape(target, tuple(y.shape))[...] = y
        else:
            target[...] = xp.reshape(y, (n, k, multiplier) + out[:-1] + (-1,))[..., :out[-1]]
    return result


def _gradient_blocks(xp, g, c, bands):
    """g (N, C·m, *out) zero-extended to whole blocks, and a function giving a chunk of channels in
    the layout of the forward's products: (k, *out[:-2], count, rows, m·width)."""
    n, out, d = g.shape[0], tuple(g.shape[2:]), g.ndim - 2
    multiplier = g.shape[1] // c
    wide = bands.count * bands.width
    if wide != out[-1]:
        g = pad_spatial(g, ((0, 0),) * (d - 1) + ((0, wide - out[-1]),))
    order = _batch_order(d)
    inverse = tuple(order.index(i) for i in range(len(order)))

    def chunk_of(chunk):
        k = chunk.stop - chunk.start
        gk = xp.reshape(g[:, chunk.start * multiplier:chunk.stop * multiplier],
                        (n, k, multiplier) + out[:-1] + (bands.count, bands.width))
        return xp.reshape(_permute(xp, gk, inverse), (k,) + out[:-2] + (bands.count, -1, multiplier * bands.width))

    return chunk_of


def _depthwise_conv_transpose(xp, g, w, c, shape, stride, padding, dilation):
    n, d = g.shape[0], g.ndim - 2
    out = tuple(g.shape[2:])
    multiplier = w.shape[0] // c
    bands = _Bands(out[-1], w.shape[-1], stride[-1], dilation[-1])
    matrices, _ = bands.matrices(xp, w, multiplier, stride[-1], dilation[-1])
    gradient_blocks = _gradient_blocks(xp, g, c, bands)
    padded = [size + lo + hi for size, (lo, hi) in zip(shape, padding)]
    padded[-1] = max(padded[-1], bands.reach)
    inside = tuple(slice(lo, lo + size) for size, (lo, _) in zip(shape, padding))
    batch = (1,) * (d - 2) + (1,)
    result = xp.empty((n, c) + tuple(shape), dtype=g.dtype)
    for chunk in _channel_chunks(result.shape, result.dtype.itemsize, padding, bands.reach):
        k = chunk.stop - chunk.start
        gk = gradient_blocks(chunk)
        xt = xp.zeros((k, *padded[:-1], n, padded[-1]), dtype=g.dtype)
        for a, offset in enumerate(itertools.product(*map(range, w.shape[2:-1]))):
            band = _swap_last(xp, xp.reshape(matrices[chunk, a], (k,) + batch + matrices.shape[2:]))
            z = xp.matmul(gk, band)  # (k, *out[:-2], count, rows, span)
            rows = _offset_planes(xt, offset, out[:-1], stride[:-1], dilation[:-1])  # the adds land in xt
            for j in range(bands.count):  # the blocks overlap when the kernel is wider than the stride
                block = z[(slice(None),) * max(d - 1, 1) + (j,)]
                target = rows[..., j * bands.step:j * bands.step + bands.span]
                target += xp.reshape(block, tuple(target.shape))
        xt = xt[(slice(None),) + inside[:-1] + (slice(None), inside[-1])]
        result[:, chunk] = _permute(xp, xt, (d, 0, *range(1, d), d + 1))
    return result


def _depthwise_weight_grad(xp, x, g, kernel, stride, padding, dilation):
    n, c, d = x.shape[0], x.shape[1], x.ndim - 2
    out = tuple(g.shape[2:])
    multiplier = g.shape[1] // c
    bands = _Bands(out[-1], kernel[-1], stride[-1], dilation[-1])
    _, onehot = bands.matrices(xp, xp.zeros((c * multiplier, 1) + tuple(kernel), dtype=x.dtype), multiplier,
                               stride[-1], dilation[-1])
    taps = _swap_last(xp, xp.reshape(onehot, (kernel[-1], -1)))
    gradient_blocks = _gradient_blocks(xp, g, c, bands)
    summed = tuple(range(1, max(d, 2)))  # the leading outputs beyond the rows, and the blocks
    gw = xp.empty((c * multiplier, 1) + tuple(kernel), dtype=x.dtype)
    for chunk in _channel_chunks(x.shape, x.dtype.itemsize, padding, bands.reach):
        xt = _channel_major(xp, x[:, chunk], padding, bands.reach)
        k = xt.shape[0]
        gk = gradient_blocks(chunk)
        per_offset = []
        for offset in itertools.product(*map(range, kernel[:-1])):
            rows = bands.view(xp, _offset_rows(xp, xt, offset, out[:-1], stride[:-1], dilation[:-1]))
            per_offset.append(xp.sum(xp.matmul(_swap_last(xp, rows), gk), axis=summed))  # (k, span, m·width)
        # Σ over each band's positions of the products: (k·m·A, span·width) against the one-hot taps
        m = xp.reshape(xp.stack(per_offset, axis=1), (k, len(per_offset), bands.span, multiplier, bands.width))
        m = xp.reshape(_permute(xp, m, (0, 3, 1, 2, 4)), (-1, bands.span * bands.width))
        gw[chunk.start * multiplier:chunk.stop * multiplier] = \
            xp.reshape(xp.matmul(m, taps), (k * multiplier, 1) + tuple(kernel))
    return gw
