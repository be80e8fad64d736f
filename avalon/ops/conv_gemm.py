"""The convolution primitives' fast path: channels-last im2col over a few samples at a time.

The plain path (conv.py) copies the windows of the whole batch into one column matrix, which for a
ResNet layer (64 samples of 64×32×32, 3×3) is 150 MB: fresh memory at every call, whose page faults and
cache misses cost more than the product (the three primitives ran at ~50 GFLOP/s; numpy's GEMM does
~80 on the whole-batch shape and 120-135 on a chunk's, one thread). Here the batch is cut into chunks
of about COLUMN_BYTES of columns; each chunk is padded and laid out channels-last (N, *S, C), so every
row of its column matrix is made of runs of C contiguous values, copied once into buffers made once,
and multiplied while it is still in cache.

Rows of a chunk's column matrix are (sample, *output position), its columns (*kernel offset, channel of
the group); `conv` multiplies (G, rows, K·Cg) by the weight as (G, K·Cg, Co/G), `conv_weight_grad`
accumulates g as (G, Co/G, rows) times the columns, and the strided `conv_transpose` multiplies g's rows
by the weight and adds each kernel offset's block into a channels-last padded input.
"""
import itertools
import math
import os

import numpy as np

from .linalg import product

# Bytes of one chunk's column matrix: 256 KiB - 1 MiB measured best (the Winograd rows and columns
# of a chunk then stay in a core's L2; 150 MB in one piece was 1.6x slower). Only numpy is cut in
# chunks: on a GPU one large product is what pays.
COLUMN_BYTES = 1 << 19
# ... when numpy's BLAS runs on several threads: each product then waits for all of them. On a quiet
# 2-core machine, a ResNet layer's forward and both backward products at 2 threads took 149 / 141 /
# 160 / 216 ms with 512 KiB / 2 MiB / 8 MiB / 32 MiB chunks (the plain path 232). Also the chunks of
# each part of a batch split across the threads (conv_split.py): 99 / 86 / 86 / 101 ms a layer with
# 512 KiB / 1 / 2 / 4 MiB there.
COLUMN_BYTES_THREADED = 1 << 21
# Fewest channels per group for this path (conv.py's `_fast`).
CHANNELS_LAST_MIN = 16


def blas_threads():
    """The threads numpy's BLAS runs a product on: the usual variables, else every core (its default)."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    return os.cpu_count() or 1


def chunks(xp, n, row_bytes, per_sample):
    """Slices of the batch holding about COLUMN_BYTES of column rows each (whole samples)."""
    if xp is not np:
        return [slice(0, n)]
    budget = COLUMN_BYTES if blas_threads() == 1 else COLUMN_BYTES_THREADED
    size = max(1, budget // max(1, row_bytes * per_sample))
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def copy_windows(xp, xl, kernel, stride, dilation, out, groups, into):
    """im2col of a channels-last `xl` (m, *padded, C) into the buffer `into`: its first m·prod(out)
    rows of (G, rows, prod(kernel)·C/G), returned."""
    d, m, c = len(kernel), xl.shape[0], xl.shape[-1]
    cg = c // groups
    steps = xl.strides[1:-1]
    win = xp.lib.stride_tricks.as_strided(
        xl, shape=(m,) + tuple(out) + tuple(kernel) + (groups, cg),
        strides=(xl.strides[0],) + tuple(s * st for s, st in zip(steps, stride))
        + tuple(s * dl for s, dl in zip(steps, dilation)) + (xl.strides[-1] * cg, xl.strides[-1]))
    g_axis = 1 + 2 * d  # (m, *out, *kernel, G, Cg) -> (G, m, *out, *kernel, Cg)
    win = xp.transpose(win, (g_axis,) + tuple(range(g_axis)) + (g_axis + 1,))
    cols = into[:, :m * math.prod(out)]
    xp.reshape(cols, tuple(win.shape))[...] = win  # splitting the rows' axis keeps a view
    return cols


class ChannelsLast:
    """Chunks of one batch laid out channels-last and zero-padded, (m, *padded, C), in a buffer made
    once for `size` samples: only the inside is rewritten, so the border stays zero."""

    def __init__(self, xp, x, size, padding):
        d = x.ndim - 2
        padded = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], padding))
        self.xp = xp
        self.inside = (slice(None),) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape[2:], padding))
        self.to_last = (0,) + tuple(range(2, 2 + d)) + (1,)
        self.buffer = xp.zeros((size,) + padded + (x.shape[1],), dtype=x.dtype)

    def __call__(self, x):
        xl = self.buffer[:x.shape[0]]
        xl[self.inside] = self.xp.transpose(x, self.to_last)
        return xl


class _Columns:
    """im2col of chunks of one batch (at most `size` samples) into buffers made once."""

    def __init__(self, xp, x, size, kernel, stride, padding, dilation, out, groups):
        self.xp, self.kernel, self.stride, self.dilation, self.out, self.groups = \
            xp, tuple(kernel), stride, dilation, tuple(out), groups
        self.load = ChannelsLast(xp, x, size, padding)
        self.cols = xp.empty((groups, size * math.prod(out), math.prod(kernel) * (x.shape[1] // groups)),
                             dtype=x.dtype)

    def __call__(self, x):
        """The column matrix of the chunk `x` (m, C, *S): (G, m·prod(out), prod(kernel)·C/G)."""
        return copy_windows(self.xp, self.load(x), self.kernel, self.stride, self.dilation, self.out,
                            self.groups, self.cols)


# Output channels relaid out at a time by `kernel_rows` on numpy. Whole, the relayout reads a whole
# Cg·K row of the weight for every 4 bytes it writes, so a large weight thrashes the caches: a
# 512×512×3×3 weight took 22 ms whole and 2 ms in blocks of 32 (one thread), and a ResNet-18 step on
# 2×3×32×32 spent a third of its time there (each convolution and each input gradient relays its weight).
RELAYOUT_BLOCK = 32


def kernel_rows(xp, w, groups):
    """The weight (Co, Cg, *K) as (G, prod(K)·Cg, Co/G): rows in the columns' (*kernel, channel) order."""
    co, cg, kernel = w.shape[0], w.shape[1], tuple(w.shape[2:])
    d, k, per_group = len(kernel), math.prod(kernel), co // groups
    wk = xp.reshape(w, (groups, per_group, cg) + kernel)
    if xp is not np:  # one transpose is what pays on a GPU
        wk = xp.transpose(wk, (0,) + tuple(range(3, 3 + d)) + (2, 1))
        return xp.reshape(wk, (groups, k * cg, per_group))
    src = wk.reshape(groups, per_group, cg, k)
    rows = np.empty((groups, k, cg, per_group), dtype=w.dtype)
    for o in range(0, per_group, RELAYOUT_BLOCK):
        rows[..., o:o + RELAYOUT_BLOCK] = src[:, o:o + RELAYOUT_BLOCK].transpose(0, 3, 2, 1)
    return rows.reshape(groups, k * cg, per_group)


def group_rows(xp, g, groups):
    """g (n, Co, *out) as (G, Co/G, n·prod(out)) (a view for one sample)."""
    n, co = g.shape[:2]
    g = xp.transpose(xp.reshape(g, (n, groups, co // groups, -1)), (1, 2, 0, 3))
    return xp.reshape(g, (groups, co // groups, -1))


def conv(xp, x, w, out, stride, padding, dilation, groups, into=None):
    """`conv.conv` (N, C, *S) * (Co, C/G, *K) -> (N, Co, *out), chunk by chunk (into `into` when given,
    a C-contiguous array of that shape)."""
    n, kernel = x.shape[0], tuple(w.shape[2:])
    co = w.shape[0]
    wk = kernel_rows(xp, w, groups)
    result = xp.empty((n, co) + tuple(out), dtype=x.dtype) if into is None else into
    positions = math.prod(out)
    pieces = chunks(xp, n, w[0].size * x.itemsize, positions)
    columns = _Columns(xp, x, pieces[0].stop, kernel, stride, padding, dilation, out, groups)
    for chunk in pieces:
        # (G, rows, Co/G): 1.1-1.3x the rate of the product giving (Co, rows), transposing included
        y = product(xp, columns(x[chunk]), wk)
        m = chunk.stop - chunk.start
        y = xp.transpose(xp.reshape(y, (groups, m, positions, co // groups)), (1, 0, 3, 2))
        result[chunk] = xp.reshape(y, (m, co) + tuple(out))
    return result


def conv_weight_grad(xp, x, g, kernel, stride, padding, dilation, groups):
    """`conv.conv_weight_grad`: Σ over chunks of g's rows times the chunk's columns."""
    n, c, co = x.shape[0], x.shape[1], g.shape[1]
    out = tuple(g.shape[2:])
    d = len(kernel)
    gw = None
    pieces = chunks(xp, n, math.prod(kernel) * (c // groups) * x.itemsize, math.prod(out))
    columns = _Columns(xp, x, pieces[0].stop, kernel, stride, padding, dilation, out, groups)
    for chunk in pieces:
        part = product(xp, group_rows(xp, g[chunk], groups), columns(x[chunk]))  # (G, Co/G, K·Cg)
        if gw is None:
            gw = part
        else:
            gw += part
    gw = xp.reshape(gw, (groups, co // groups) + tuple(kernel) + (c // groups,))
    gw = xp.transpose(gw, (0, 1, 2 + d) + tuple(range(2, 2 + d)))
    return xp.reshape(gw, (co, c // groups) + tuple(kernel))


def conv_transpose(xp, g, w, shape, stride, padding, dilation, groups):
    """`conv.conv_transpose` through col2im: each chunk's g rows times the weight give the columns,
    whose kernel-offset blocks are added into a channels-last padded input (runs of Cg values)."""
    n, co = g.shape[:2]
    kernel = tuple(w.shape[2:])
    cg = w.shape[1]
    d = len(kernel)
    out = tuple(g.shape[2:])
    positions = math.prod(out)
    wk = xp.transpose(kernel_rows(xp, w, groups), (0, 2, 1))  # (G, Co/G, K·Cg)
    padded = tuple(size + lo + hi for size, (lo, hi) in zip(shape, padding))
    inside = tuple(slice(lo, lo + size) for size, (lo, _) in zip(shape, padding))
    result = xp.empty((n, groups * cg) + tuple(shape), dtype=g.dtype)
    for chunk in chunks(xp, n, math.prod(kernel) * cg * g.itemsize, positions):
        m = chunk.stop - chunk.start
        rows = xp.swapaxes(group_rows(xp, g[chunk], groups), -1, -2)  # (G, rows, Co/G)
        cols = xp.reshape(product(xp, rows, wk), (groups, m) + out + kernel + (cg,))
        xl = xp.zeros((m,) + padded + (groups, cg), dtype=g.dtype)
        for offset in itertools.product(*map(range, kernel)):
            key = (slice(None),) + tuple(slice(a * dl, a * dl + (o - 1) * s + 1, s)
                                         for a, o, s, dl in zip(offset, out, stride, dilation))
            target = xl[key]  # (m, *out, G, Cg): added into in place
            target += xp.moveaxis(cols[(slice(None),) * (1 + 1 + d) + offset], 0, -2)
        xl = xl[(slice(None),) + inside]
        result[chunk] = xp.reshape(xp.transpose(xl, (0, 1 + d, 2 + d) + tuple(range(1, 1 + d))),
                                   (m, groups * cg) + tuple(shape))
    return result
