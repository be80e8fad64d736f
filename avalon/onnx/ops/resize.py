"""Resize (and Upsample, its older form) in nearest, linear and cubic modes, one resized axis at a time:
the source positions and blend weights are computed at trace time from the shapes, then gathered and
blended from the input, so the result differentiates with respect to it."""
import numpy as np

from . import operator


def _source_positions(n, transform, out, size, scale, roi):
    """Where output positions 0..out-1 fall in the input (`coordinate_transformation_mode`); the
    modes use the unrounded output length size·scale, as the spec does."""
    x = np.arange(out, dtype=np.float64)
    length = size * scale
    if transform == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if transform == "half_pixel_symmetric":
        offset = size / 2 * (1 - out / length)
        return offset + (x + 0.5) / scale - 0.5
    if transform == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if length != 1 else np.full(out, -0.5)
    if transform == "align_corners":
        return x * (size - 1) / (length - 1) if length != 1 else np.zeros(out)
    if transform == "asymmetric":
        return x / scale
    if transform == "tf_crop_and_resize":
        start, end = roi
        if length == 1:
            return np.full(out, (end - start) * (size - 1) / 2 + start * (size - 1))
        return x * (end - start) * (size - 1) / (length - 1) + start * (size - 1)
    raise n.error(f"coordinate_transformation_mode {transform!r} is not supported")


_ROUNDING = {"round_prefer_floor": lambda p: np.ceil(p - 0.5), "round_prefer_ceil": lambda p: np.floor(p + 0.5),
             "floor": np.floor, "ceil": np.ceil}


def _cubic_weights(t, a):
    """Keys' cubic convolution weights of the four neighbours floor-1 .. floor+2 at fraction t."""
    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _antialiased(n, mode, positions, scale):
    """Downsampling with `antialias`: the linear or cubic filter stretched by 1/scale, so each output
    blends every input it covers, the weights normalised to sum 1 (taps relative to ceil(p) - 1)."""
    scale = min(scale, 1.0)
    base = np.ceil(positions) - 1
    t = positions - base  # in (0, 1]
    reach = 1 if mode == "linear" else 2
    start = int(np.floor(-reach / scale)) + 1
    offsets = list(range(start, 2 - start))
    if mode == "linear":
        weights = [np.clip(1 - np.abs((o - t) * scale), 0, 1) for o in offsets]
    else:
        a = n.attr("cubic_coeff_a", -0.75)
        distances = [np.abs((o - t) * scale) for o in offsets]  # Keys' kernel: near |d| <= 1, far below 2
        weights = [np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                            np.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, 0.0)) for d in distances]
    total = sum(weights)
    return base, offsets, [w / total for w in weights]


def _taps(n, mode, positions, size, scale):
    """Per output position: source indices (clamped to the input) and weights, one list per tap."""
    if mode == "nearest":
        rounding = _ROUNDING[n.attr("nearest_mode", "round_prefer_floor") if n.opset >= 11 else "floor"]
        return [rounding(positions)], [np.ones_like(positions)]
    if n.attr("antialias", 0) and scale < 1:
        base, offsets, weights = _antialiased(n, mode, positions, scale)
    else:
        base = np.floor(positions)
        t = positions - base
        if mode == "linear":
            offsets, weights = [0, 1], [1 - t, t]
        else:
            offsets, weights = [-1, 0, 1, 2], _cubic_weights(t, n.attr("cubic_coeff_a", -0.75))
    indices = [base + o for o in offsets]
    if n.attr("exclude_outside", 0):  # neighbours outside the input get no weight; the rest renormalised
        weights = [np.where((i < 0) | (i > size - 1), 0.0, w) for i, w in zip(indices, weights)]
        total = sum(weights)
        weights = [w / total for w in weights]
    return indices, weights


def _resize_axis(n, x, axis, out, scale, mode, transform, roi):
    size = x.shape[axis]
    positions = _source_positions(n, transform, out, size, scale, roi)
    indices, weights = _taps(n, mode, positions, size, scale)
    shape = [1] * x.ndim
    shape[axis] = out
    y = None
    for index, weight in zip(indices, weights):
        taken = np.take(x, np.clip(index, 0, size - 1).astype(np.int64), axis=axis)
        term = taken if mode == "nearest" else taken * weight.astype(x.dtype).reshape(shape)
        y = term if y is None else y + term
    if transform == "tf_crop_and_resize":
        outside = ((positions < 0) | (positions > size - 1)).reshape(shape)
        y = np.where(outside, np.asarray(n.attr("extrapolation_value", 0.0), x.dtype), y)
    return y


def _targets(n, x, axes, scales, sizes):
    """Output size and scale of every axis, from `sizes` (with keep_aspect_ratio_policy) or `scales`."""
    outs, factors = list(x.shape), [1.0] * x.ndim
    if sizes is not None and np.size(n.constant(sizes, "sizes")):
        wanted = n.ints(sizes, "sizes")
        policy = n.attr("keep_aspect_ratio_policy", "stretch")
        ratios = [w / x.shape[a] for a, w in zip(axes, wanted)]
        if policy != "stretch":
            if policy not in ("not_larger", "not_smaller"):
                raise n.error(f"keep_aspect_ratio_policy {policy!r} is not stretch, not_larger or not_smaller")
            ratio = min(ratios) if policy == "not_larger" else max(ratios)
            ratios, wanted = [ratio] * len(axes), [int(ratio * x.shape[a] + 0.5) for a in axes]
        for a, w, r in zip(axes, wanted, ratios):
            outs[a], factors[a] = w, r
    else:
        given = [float(f) for f in n.constant(scales, "scales").reshape(-1)]
        for a, f in zip(axes, given):
            outs[a], factors[a] = int(np.floor(x.shape[a] * f)), f
    return outs, factors


@operator("Resize", "Upsample")
def resize(n, x, *rest):
    """Opset 10 (and Upsample) take `scales` only and place pixels asymmetrically; from 11 `roi, scales,
    sizes` with coordinate_transformation_mode (default half_pixel), nearest_mode, cubic_coeff_a,
    exclude_outside, extrapolation_value; from 18 `axes` and keep_aspect_ratio_policy."""
    legacy = n.op_type == "Upsample" or n.opset < 11
    if legacy:
        scales = n.attr("scales") if n.op_type == "Upsample" and n.opset < 9 else rest[0]
        roi = sizes = None
        transform = "asymmetric"
    else:
        roi, scales, sizes = (list(rest) + [None, None, None])[:3]
        transform = n.attr("coordinate_transformation_mode", "half_pixel")
    mode = {"bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}.get(n.attr("mode", "nearest"),
                                                                              n.attr("mode", "nearest"))
    if mode not in ("nearest", "linear", "cubic"):
        raise n.error(f"mode {mode!r} is not supported (nearest, linear and cubic are)")
    if n.attr("antialias") and mode == "nearest":
        raise n.error("antialias applies to the linear and cubic modes, not nearest")
    axes = [a % x.ndim for a in n.attr("axes", range(x.ndim))]
    outs, factors = _targets(n, x, axes, scales, sizes)
    roi = None if roi is None or not np.size(n.constant(roi, "roi")) else n.constant(roi, "roi").reshape(-1)
    for i, axis in enumerate(axes):
        crop = (0.0, 1.0) if roi is None else (float(roi[i]), float(roi[i + len(axes)]))
        if outs[axis] == x.shape[axis] and factors[axis] == 1 and crop == (0.0, 1.0):
            continue
        x = _resize_axis(n, x, axis, outs[axis], factors[axis], mode, transform, crop)
    return x
