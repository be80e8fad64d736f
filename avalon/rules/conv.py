"""Rules of the convolution primitives: conv, conv_transpose and conv_weight_grad are each other's
adjoints, so every rule is written with the three (and gradients of gradients work)."""
from ..ops import conv as cv
from ..ops import index as ix
from .registry import rule


def _fit(y, shape):
    """`y` cut to spatial `shape`: a convolution of a transposed output (with output_padding ≥ stride)
    can be longer than the tensor it is the gradient of."""
    if tuple(y.shape[2:]) == tuple(shape):
        return y
    return ix.getitem(y, key=(slice(None), slice(None)) + tuple(slice(0, n) for n in shape))


@rule(cv.conv)
def _conv(g, out, x, w, stride, padding, dilation, groups):
    same = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    gx = cv.conv_transpose(g, w, shape=tuple(x.shape[2:]), **same)
    gw = cv.conv_weight_grad(x, g, kernel=tuple(w.shape[2:]), **same)
    return gx, gw


@rule(cv.conv_transpose)
def _conv_transpose(h, out, g, w, shape, stride, padding, dilation, groups):
    same = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    gg = _fit(cv.conv(h, w, **same), g.shape[2:])
    gw = cv.conv_weight_grad(h, g, kernel=tuple(w.shape[2:]), **same)
    return gg, gw


@rule(cv.conv_weight_grad)
def _conv_weight_grad(v, out, x, g, kernel, stride, padding, dilation, groups):
    same = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    gx = cv.conv_transpose(g, v, shape=tuple(x.shape[2:]), **same)
    gg = _fit(cv.conv(x, v, **same), g.shape[2:])
    return gx, gg


@rule(cv.unfold)
def _unfold(g, out, x, kernel, stride, padding, dilation):
    return (cv.fold(g, shape=tuple(x.shape[2:]), kernel=kernel, stride=stride, padding=padding, dilation=dilation),)


@rule(cv.fold)
def _fold(g, out, cols, shape, kernel, stride, padding, dilation):
    return (cv.unfold(g, kernel=kernel, stride=stride, padding=padding, dilation=dilation),)
