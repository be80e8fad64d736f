"""Window geometry shared by convolutions and pooling: pads from `pads` or `auto_pad`, explicit padding."""
from ...nn import functional as F


def window_pads(n, x, kernel, strides, dilations):
    """(begin, end) padding per spatial axis, from `pads` or `auto_pad` (SAME_* depends on the input's
    size, so it is computed from the traced shape, never stored)."""
    d = len(kernel)
    auto = n.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, dil in zip(x.shape[2:], kernel, strides, dilations):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * dil + 1 - size)
            small = total // 2
            pads.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
        return pads
    if auto == "VALID":
        return [(0, 0)] * d
    if auto != "NOTSET":
        raise n.error(f"auto_pad {auto!r} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    pads = n.attr("pads", [0] * (2 * d))
    return list(zip(pads[:d], pads[d:]))


def padded(x, pads, value):
    """`x` padded explicitly (for asymmetric pads, which torch-style functions cannot take)."""
    flat = [p for begin_end in reversed(pads) for p in begin_end]
    return F.pad(x, flat, value=value)


def geometry(n, x, kernel):
    d = len(kernel)
    strides = n.attr("strides", [1] * d)
    dilations = n.attr("dilations", [1] * d)
    pads = window_pads(n, x, kernel, strides, dilations)
    return strides, dilations, pads
