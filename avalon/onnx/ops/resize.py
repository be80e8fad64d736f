"""Resize (and Upsample, its older form) in nearest and linear modes, one resized axis at a time: the
source positions are computed at trace time from the shapes, then gathered (and blended) from the
input, so the result differentiates with respect to it."""
import numpy as np

from . import operator


def _source_positions(n, mode, out, size, scale):
    """Where output positions 0..out-1 fall in the input, by `coordinate_transformation_mode`."""
    x = np.arange(out, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out > 1 else np.zeros(out)
    if mode == "align_corners":
        return x * (size - 1) / (out - 1) if out > 1 else np.zeros(out)
    if mode == "asymmetric":
        return x / scale
    raise n.error(f"coordinate_transformation_mode {mode!r} is not supported (half_pixel, pytorch_half_pixel, "
                  "align_corners and asymmetric are)")


_ROUNDING = {"round_prefer_floor": lambda p: np.ceil(p - 0.5), "round_prefer_ceil": lambda p: np.floor(p + 0.5),
             "floor": np.floor, "ceil": np.ceil}


def _resize_axis(n, x, axis, out, scale, mode, transform, rounding):
    size = x.shape[axis]
    positions = _source_positions(n, transform, out, size, scale)
    if mode == "nearest":
        index = np.clip(_ROUNDING[rounding](positions), 0, size - 1).astype(np.int64)
        return np.take(x, index, axis=axis)
    positions = np.clip(positions, 0, size - 1)
    low = np.floor(positions).astype(np.int64)
    high = np.minimum(low + 1, size - 1)
    shape = [1] * x.ndim
    shape[axis] = out
    weight = (positions - low).astype(x.dtype).reshape(shape)
    return np.take(x, low, axis=axis) * (1 - weight) + np.take(x, high, axis=axis) * weight


@operator("Resize", "Upsample")
def resize(n, x, *rest):
    """Opset 10 (and Upsample) take `scales` only and place pixels asymmetrically; from 11 `roi, scales,
    sizes` and the coordinate_transformation_mode (default half_pixel) and nearest_mode attributes."""
    if n.op_type == "Upsample" or n.opset < 11:
        scales = n.attr("scales") if n.op_type == "Upsample" and n.opset < 9 else rest[0]
        sizes, transform, rounding = None, "asymmetric", "floor"
    else:
        scales = rest[1] if len(rest) > 1 else None
        sizes = rest[2] if len(rest) > 2 else None
        transform = n.attr("coordinate_transformation_mode", "half_pixel")
        rounding = n.attr("nearest_mode", "round_prefer_floor")
    mode = n.attr("mode", "nearest")
    if mode not in ("nearest", "linear", "bilinear"):
        raise n.error(f"mode {mode!r} is not supported (nearest and linear are)")
    for name in ("antialias", "axes", "exclude_outside"):
        if n.attr(name):
            raise n.error(f"the {name} attribute is not supported")
    if sizes is not None and np.size(n.constant(sizes, "sizes")):
        outs = n.ints(sizes, "sizes")
        factors = [o / s for o, s in zip(outs, x.shape)]
    else:
        factors = [float(f) for f in n.constant(scales, "scales").reshape(-1)]
        outs = [int(np.floor(s * f)) for s, f in zip(x.shape, factors)]
    if len(outs) != x.ndim:
        raise n.error(f"{len(outs)} scales or sizes for a {x.ndim}-D input")
    for axis, (out, factor) in enumerate(zip(outs, factors)):
        if out != x.shape[axis] or factor != 1:
            x = _resize_axis(n, x, axis, out, factor, "nearest" if mode == "nearest" else "linear", transform,
                             rounding)
    return x
