"""Winograd's F(2, 3) along the first spatial axis, for the convolution fast path (conv_gemm.py).

A filter of 3 taps along the first spatial axis (stride 1, no dilation) makes two output rows from four
input rows d0..d3 with four products instead of six:

    m0 = (d0 - d2) * w0          m1 = (d1 + d2) * (w0 + w1 + w2) / 2
    m2 = (d2 - d1) * (w0 - w1 + w2) / 2                 m3 = (d1 - d3) * w2
    row 0 = m0 + m1 + m2         row 1 = m1 - m2 - m3

Each "*" is a convolution along the other axes: im2col of the combined rows and one GEMM with the
combined filter. So the products do 2/3 of the direct im2col's work and copy 2/3 of its columns, and the
combinations are adds over whole channels-last rows (long contiguous runs), which cost little. Only one
axis is transformed: the 2-d F(2×2, 3×3) would save more products, but its transforms work on 4×4
tiles whose runs are C values long, and cost more than they save here (measured).

conv_weight_grad is the adjoint: the output gradient's rows combine into (g0, g0 + g1, g0 - g1, g1),
each is multiplied with the same combined input rows, and the four products combine back into the
three taps. conv_transpose at unit stride is a convolution (conv.py) and comes here through `conv`.
"""
import math

from . import conv_gemm as cl


# Fewest output rows for this path: it saved 10-15% on 32 rows (a ResNet layer at 32x32), nothing on
# 16 and lost on 11 (measured), where the combined rows are short and odd counts waste a row.
MIN_ROWS = 24


def applies(kernel, stride, dilation, out):
    return kernel[0] == 3 and stride[0] == 1 and dilation[0] == 1 and out[0] >= MIN_ROWS


class _Rows:
    """The four combinations of input rows of chunks of a batch, (4, m, tiles, *padded rest, C), in
    buffers made once. The input is padded with zero rows after, to whole pairs of output rows."""

    def __init__(self, xp, x, size, padding, tiles):
        lo, hi = padding[0]
        hi += 2 * tiles + 2 - (x.shape[2] + lo + hi)
        self.xp, self.tiles = xp, tiles
        self.load = cl.ChannelsLast(xp, x, size, ((lo, hi),) + tuple(padding[1:]))
        self.rows = xp.empty((4, size, tiles) + tuple(self.load.buffer.shape[2:]), dtype=x.dtype)

    def __call__(self, x):
        xp, t = self.xp, self.tiles
        xl = self.load(x)
        d0, d1, d2, d3 = (xl[:, i:i + 2 * t:2] for i in range(4))
        r = self.rows[:, :x.shape[0]]
        xp.subtract(d0, d2, out=r[0])
        xp.add(d1, d2, out=r[1])
        xp.subtract(d2, d1, out=r[2])
        xp.subtract(d1, d3, out=r[3])
        return r


class _Plan:
    """What conv and conv_weight_grad share for one batch: the chunks, the combined rows and the
    im2col of each combination along the remaining axes."""

    def __init__(self, xp, x, kernel, stride, padding, dilation, out, groups):
        self.xp, self.groups = xp, groups
        self.tiles = -(-out[0] // 2)
        self.kernel, self.stride = (1,) + tuple(kernel[1:]), (1,) + tuple(stride[1:])
        self.dilation, self.out = (1,) + tuple(dilation[1:]), (self.tiles,) + tuple(out[1:])
        cg = x.shape[1] // groups
        width = math.prod(kernel[1:]) * cg
        self.pieces = cl.chunks(xp, x.shape[0], width * x.itemsize, math.prod(self.out))
        size = self.pieces[0].stop
        self.rows = _Rows(xp, x, size, padding, self.tiles)
        self.cols = xp.empty((groups, size * math.prod(self.out), width), dtype=x.dtype)

    def columns(self, rows, a):
        """im2col of combination `a` of the chunk's `rows`: (G, m·tiles·prod(out[1:]), prod(K[1:])·Cg)."""
        return cl.copy_windows(self.xp, rows[a], self.kernel, self.stride, self.dilation, self.out,
                               self.groups, self.cols)


def conv(xp, x, w, out, stride, padding, dilation, groups, into=None):
    """`conv.conv` for a kernel of 3 taps along the first axis at unit stride and dilation."""
    n, co = x.shape[0], w.shape[0]
    og = co // groups
    plan = _Plan(xp, x, tuple(w.shape[2:]), stride, padding, dilation, out, groups)
    wk = cl.kernel_rows(xp, w, groups)  # (G, 3·prod(K[1:])·Cg, Co/G), the first axis' taps outermost
    w0, w1, w2 = (wk[:, i * (wk.shape[1] // 3):(i + 1) * (wk.shape[1] // 3)] for i in range(3))
    half = (w0 + w2) * 0.5
    filters = (w0, half + w1 * 0.5, half - w1 * 0.5, w2)
    result = xp.empty((n, co) + tuple(out), dtype=x.dtype) if into is None else into
    t, rest = plan.tiles, tuple(out[1:])
    for chunk in plan.pieces:
        m = chunk.stop - chunk.start
        rows = plan.rows(x[chunk])
        even = xp.matmul(plan.columns(rows, 1), filters[1])  # (G, m·tiles·prod(rest), Co/G)
        m2 = xp.matmul(plan.columns(rows, 2), filters[2])
        odd = even - m2
        even += m2
        even += xp.matmul(plan.columns(rows, 0), filters[0])
        odd -= xp.matmul(plan.columns(rows, 3), filters[3])
        target = xp.reshape(result[chunk], (m, groups, og, out[0]) + rest)
        for first, y in ((0, even), (1, odd)):
            y = xp.reshape(y, (groups, m, t) + rest + (og,))
            y = xp.transpose(y, (1, 0, 3 + len(rest), 2) + tuple(range(3, 3 + len(rest))))
            target[:, :, :, first::2] = y[:, :, :, :(out[0] - first + 1) // 2]
    return result


def conv_weight_grad(xp, x, g, kernel, stride, padding, dilation, groups):
    """`conv.conv_weight_grad` for a kernel of 3 taps along the first axis at unit stride and dilation."""
    c, co = x.shape[1], g.shape[1]
    og, cg = co // groups, c // groups
    out = tuple(g.shape[2:])
    plan = _Plan(xp, x, kernel, stride, padding, dilation, out, groups)
    t, rest = plan.tiles, out[1:]
    u = [None] * 4  # the gradients of the four combined filters, (G, Co/G, prod(K[1:])·Cg)
    for chunk in plan.pieces:
        m = chunk.stop - chunk.start
        rows = plan.rows(x[chunk])
        gk = xp.reshape(g[chunk], (m, groups, og, out[0]) + rest)
        pair = xp.zeros((2, groups, og, m, t) + rest, dtype=g.dtype)  # output rows 2i and 2i + 1
        for first in (0, 1):
            rows_of = gk[:, :, :, first::2]
            pair[(first, Ellipsis, slice(0, rows_of.shape[3])) + (slice(None),) * len(rest)] = \
                xp.transpose(rows_of, (1, 2, 0) + tuple(range(3, 4 + len(rest))))
        g0, g1 = (xp.reshape(p, (groups, og, -1)) for p in pair)
        for a, ga in enumerate((g0, g0 + g1, g0 - g1, g1)):
            part = xp.matmul(ga, plan.columns(rows, a))
            if u[a] is None:
                u[a] = part
            else:
                u[a] += part
    half = (u[1] + u[2]) * 0.5
    taps = (u[0] + half, (u[1] - u[2]) * 0.5, half - u[3])  # (G, Co/G, prod(K[1:])·Cg) each
    k1 = tuple(kernel[1:])
    gw = xp.stack([xp.reshape(tap, (groups, og) + k1 + (cg,)) for tap in taps], axis=2)  # (G, Og, 3, *K1, Cg)
    d = len(kernel)
    gw = xp.transpose(gw, (0, 1, 2 + d) + tuple(range(2, 2 + d)))
    return xp.reshape(gw, (co, cg) + tuple(kernel))
