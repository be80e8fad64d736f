"""Sampling an input at computed positions: AffineGrid (the positions of an affine transform), GridSample
(nearest, linear or cubic interpolation, zeros, border or reflection padding, any number of spatial axes),
RoiAlign and DeformConv. Values at the positions are gathered and weighted with ordinary ops, so the
result differentiates with respect to the input (and, through the weights, the positions)."""
import itertools

import numpy as np

from . import operator


def _base_coordinates(size, align_corners, dtype):
    """Normalised positions in [-1, 1] of `size` points: the pixel centres, or the corners' centres."""
    if align_corners:
        return np.linspace(-1.0, 1.0, size).astype(dtype)
    return ((2 * np.arange(size) + 1) / size - 1).astype(dtype)


@operator("AffineGrid")
def affine_grid(n, theta, size):
    """theta (N, r, r+1) applied to the grid of (x, y[, z], 1) positions of an output of `size`
    (N, C, [D,] H, W): positions (N, [D,] H, W, r), x first."""
    dims = n.ints(size, "the size")[2:]
    axes = [_base_coordinates(d, n.attr("align_corners", 0), theta.dtype) for d in dims]
    mesh = np.meshgrid(*axes, indexing="ij")  # per spatial axis, outermost first
    homogeneous = np.stack(list(mesh[::-1]) + [np.ones(tuple(dims), theta.dtype)], axis=-1)  # x, y[, z], 1
    flat = np.reshape(homogeneous, (-1, len(dims) + 1))
    positions = np.matmul(flat, np.transpose(theta, (0, 2, 1)))  # (N, points, r)
    return np.reshape(positions, (theta.shape[0],) + tuple(dims) + (len(dims),))


def _reflect(p, low, high):
    """`p` folded back into [low, high] at the borders, as often as it takes."""
    span = high - low if high > low else 1.0
    below, above = low - p, p - high
    distance = np.where(p < low, below, np.where(p > high, above, np.zeros((), p.dtype)))
    folds = np.floor(distance / span)
    rest = distance - folds * span
    even = np.equal(np.mod(folds, 2), 0)
    from_below = np.where(even, low + rest, high - rest)
    from_above = np.where(even, high - rest, low + rest)
    return np.where(p < low, from_below, np.where(p > high, from_above, p))


def _cubic(t, a=-0.75):
    """Keys' cubic convolution weights of the taps at -1, 0, 1, 2 for a fraction t in [0, 1)."""
    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _taps(p, mode):
    """(integer position, weight) per tap along one axis."""
    if mode == "nearest":
        return [(p, None)]
    base = np.floor(p)
    frac = p - base
    if mode == "linear":
        return [(base, 1 - frac), (base + 1, frac)]
    return [(base + offset, weight) for offset, weight in zip((-1, 0, 1, 2), _cubic(frac))]


@operator("GridSample")
def grid_sample(n, x, grid):
    """Y[n, c, *out] = X[n, c] sampled at grid[n, *out] (normalised, x first; see the ONNX spec)."""
    mode = n.attr("mode", "linear")
    mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode)  # GridSample-16's names
    padding, align = n.attr("padding_mode", "zeros"), n.attr("align_corners", 0)
    dims = x.shape[2:]
    rank = len(dims)
    per_axis = []
    for axis, size in enumerate(dims):
        g = grid[..., rank - 1 - axis]  # the grid's last axis lists x (the last spatial axis) first
        p = (g + 1) / 2 * (size - 1) if align else ((g + 1) * size - 1) / 2
        if mode == "nearest":
            p = np.rint(p)
        low, high = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
        # border: each tap is clamped to the edge below (as onnxruntime and PyTorch do; onnx's reference
        # clamps the position first, which differs for cubic taps of positions beyond the edge)
        if padding == "reflection":
            p = _reflect(p, low, high)
        taps = []
        for position, weight in _taps(p, mode):
            index = np.trunc(position).astype(np.int64)
            valid = None
            if padding == "zeros":
                valid = (index >= 0) & (index < size)
            elif padding == "reflection":
                index = np.trunc(_reflect(index.astype(p.dtype), low, high)).astype(np.int64)
            taps.append((np.clip(index, 0, size - 1), weight, valid))
        per_axis.append(taps)
    batch, channels = x.shape[:2]
    out = grid.shape[1:-1]
    flat = np.reshape(x, (batch, channels, -1))
    strides = [int(np.prod(dims[axis + 1:], dtype=np.int64)) for axis in range(rank)]
    total = None
    for combination in itertools.product(*per_axis):
        index, weight, valid = 0, None, None
        for stride, (i, w, ok) in zip(strides, combination):
            index = index + i * stride
            weight = w if weight is None else (weight if w is None else weight * w)
            valid = ok if valid is None else (valid if ok is None else valid & ok)
        values = np.take_along_axis(flat, np.reshape(index, (batch, 1, -1)), axis=2)
        if valid is not None:
            values = np.where(np.reshape(valid, (batch, 1, -1)), values, np.zeros((), x.dtype))
        if weight is not None:
            values = values * np.reshape(weight, (batch, 1, -1)).astype(x.dtype)
        total = values if total is None else total + values
    return np.reshape(total, (batch, channels) + tuple(out))


def _roi_axis(start, bin_size, bins, grid, size):
    """Along one axis of a region: the lower and upper pixel and the upper weight of each sample,
    (bins, grid), and which samples lie inside the image (RoiAlign's bilinear rules)."""
    p = start + np.arange(bins)[:, None] * bin_size + (np.arange(grid)[None, :] + 0.5) * bin_size / grid
    inside = (p >= -1.0) & (p <= size)
    p = np.maximum(p, 0.0)
    low = np.floor(p).astype(np.int64)
    last = low >= size - 1
    low = np.where(last, size - 1, low)
    high = np.where(last, size - 1, low + 1)
    p = np.where(last, low, p)
    return low, high, p - low, inside


@operator("RoiAlign")
def roi_align(n, x, rois, batch_indices):
    """Each region of interest (x1, y1, x2, y2 at spatial_scale) cut into output_height × output_width
    bins, each the average (or max) of bilinear samples on a sampling_ratio grid (adaptive when 0). The
    regions are read when traced; the gradient reaches the feature map."""
    rois = np.asarray(n.constant(rois, "the regions"), np.float64)
    batch_indices = n.ints(batch_indices, "batch_indices")
    out_h, out_w, ratio = n.attr("output_height", 1), n.attr("output_width", 1), n.attr("sampling_ratio", 0)
    scale, mode = n.attr("spatial_scale", 1.0), n.attr("mode", "avg")
    half_pixel = n.attr("coordinate_transformation_mode", "half_pixel" if n.opset >= 16 else "output_half_pixel") \
        == "half_pixel"
    channels, height, width = x.shape[1:]
    results = []
    for (x1, y1, x2, y2), b in zip(rois, batch_indices):
        offset = 0.5 if half_pixel else 0.0
        start_w, start_h = x1 * scale - offset, y1 * scale - offset
        roi_w, roi_h = x2 * scale - offset - start_w, y2 * scale - offset - start_h
        if not half_pixel:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        grid_h = ratio if ratio > 0 else int(np.ceil(roi_h / out_h))
        grid_w = ratio if ratio > 0 else int(np.ceil(roi_w / out_w))
        ys = _roi_axis(start_h, roi_h / out_h, out_h, grid_h, height)
        xs = _roi_axis(start_w, roi_w / out_w, out_w, grid_w, width)
        inside = ys[3][:, :, None, None] & xs[3][None, None]  # (out_h, grid_h, out_w, grid_w)
        flat = np.reshape(x[b], (channels, -1))
        corners = []
        for y_index, y_weight in ((ys[0], 1 - ys[2]), (ys[1], ys[2])):
            for x_index, x_weight in ((xs[0], 1 - xs[2]), (xs[1], xs[2])):
                position = np.where(inside, y_index[:, :, None, None] * width + x_index[None, None], 0)
                weight = np.where(inside, y_weight[:, :, None, None] * x_weight[None, None], 0.0)
                corners.append(np.take(flat, position, axis=1) * weight.astype(x.dtype))
        if mode == "avg":
            value = np.sum(corners[0] + corners[1] + corners[2] + corners[3], axis=(2, 4)) / max(grid_h * grid_w, 1)
        else:  # the largest weighted corner of any sample (the reference's max mode)
            value = np.max(np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3])),
                           axis=(2, 4))
        results.append(value.astype(x.dtype))
    if not results:
        return np.zeros((0, channels, out_h, out_w), x.dtype)
    return np.stack(results)


@operator("DeformConv")
def deform_conv(n, x, w, offset, bias=None, mask=None):
    """A 2-D convolution whose every tap samples the input (bilinearly, zero outside) at its place moved
    by `offset` (per offset group, tap and output position) and weighted by `mask`; the gradient reaches
    the input, the weights, the offsets and the mask."""
    batch, channels, height, width = x.shape
    kh, kw = n.attr("kernel_shape", list(w.shape[2:]))
    (sh, sw), (dh, dw) = n.attr("strides", [1, 1]), n.attr("dilations", [1, 1])
    pads, groups, offset_groups = n.attr("pads", [0, 0, 0, 0]), n.attr("group", 1), n.attr("offset_group", 1)
    out_h, out_w = offset.shape[2:]
    expected = ((height + pads[0] + pads[2] - (kh - 1) * dh - 1) // sh + 1,
                (width + pads[1] + pads[3] - (kw - 1) * dw - 1) // sw + 1)
    if (out_h, out_w) != expected:
        raise n.error(f"the offsets' positions {(out_h, out_w)} are not the output's {expected} (from the input "
                      "size, kernel, strides, dilations and pads)")
    offset = np.reshape(offset, (batch, offset_groups, kh, kw, 2, out_h, out_w))
    taps_y = (np.arange(kh) * dh)[:, None, None, None] + (np.arange(out_h) * sh - pads[0])[None, None, :, None]
    taps_x = (np.arange(kw) * dw)[None, :, None, None] + (np.arange(out_w) * sw - pads[1])[None, None, None, :]
    py, px = offset[:, :, :, :, 0] + taps_y.astype(x.dtype), offset[:, :, :, :, 1] + taps_x.astype(x.dtype)
    y0, x0 = np.floor(py), np.floor(px)
    fy, fx = py - y0, px - x0
    flat = np.reshape(x, (batch, offset_groups, channels // offset_groups, height * width))
    sampled = None
    for y, wy in ((y0, 1 - fy), (y0 + 1, fy)):
        for xx, wx in ((x0, 1 - fx), (x0 + 1, fx)):
            inside = (y >= 0) & (y < height) & (xx >= 0) & (xx < width)
            position = np.clip(y, 0, height - 1) * width + np.clip(xx, 0, width - 1)
            index = np.reshape(position.astype(np.int64), (batch, offset_groups, 1, -1))
            weight = np.where(inside, wy * wx, np.zeros((), x.dtype))
            value = np.take_along_axis(flat, index, axis=3) * np.reshape(weight, (batch, offset_groups, 1, -1))
            sampled = value if sampled is None else sampled + value
    if mask is not None:
        sampled = sampled * np.reshape(mask, (batch, offset_groups, 1, -1))
    columns = np.reshape(sampled, (batch, groups, (channels // groups) * kh * kw, out_h * out_w))
    kernels = np.reshape(w, (groups, w.shape[0] // groups, -1))
    y = np.reshape(np.einsum("ngkp,gok->ngop", columns, kernels), (batch, w.shape[0], out_h, out_w))
    return y if bias is None else y + np.reshape(bias, (1, -1, 1, 1))
