"""Rules of the loss primitives, written with primitives so that they can be differentiated again."""
from .. import numpy_api as npa
from ..ops import elementwise as ew
from ..ops import loss as L
from ..ops import nn
from ..ops import reduce as rd
from .registry import array_module, rule


@rule(L.cross_entropy)
def _cross_entropy(g, out, x, target, *weight, axis=1, ignore_index=-100, label_smoothing=0.0):
    gx = L.cross_entropy_backward(g, x, target, *weight, axis=axis, ignore_index=ignore_index,
                                  label_smoothing=label_smoothing)
    return (gx, None) + (None,) * len(weight)


@rule(L.cross_entropy_backward)
def _cross_entropy_backward(h, out, g, x, target, *weight, axis=1, ignore_index=-100, label_smoothing=0.0):
    # out = g·(p·s - t) with p = softmax(x), t the target distribution and s = Σ_c t[c]
    t = L.class_distribution(target, *weight, num_classes=x.shape[axis], axis=axis, ignore_index=ignore_index,
                             label_smoothing=label_smoothing, dtype=x.dtype)
    s = rd.sum(t, axis=axis, keepdims=True)
    p = nn.softmax(x, axis=axis)
    gg = rd.sum(h * (p * s - t), axis=axis)
    # ignored samples: out is the constant 0 there, whatever g holds (it may be 1/0 from a 'mean')
    g = ew.where(ew.not_equal(target, ignore_index), g, array_module(g).zeros((), dtype=g.dtype))
    u = h * npa.expand_dims(g, axis) * s
    gx = p * (u - rd.sum(u * p, axis=axis, keepdims=True))
    return (gg, gx, None) + (None,) * len(weight)


@rule(L.soft_cross_entropy)
def _soft_cross_entropy(g, out, x, target, axis=1):
    ge = npa.expand_dims(g, axis)
    gx = ge * (nn.softmax(x, axis=axis) * rd.sum(target, axis=axis, keepdims=True) - target)
    return gx, -ge * nn.log_softmax(x, axis=axis)


def _softplus_of_negative(x):
    return ew.log1p(ew.exp(-ew.absolute(x))) + ew.relu(-x)


@rule(L.checked_probability)
def _checked_probability(g, out, x, **params):
    return (g,)


@rule(L.sigmoid_cross_entropy)
def _sigmoid_cross_entropy(g, out, x, target, *pos_weight):
    if not pos_weight:
        return g * (ew.sigmoid(x) - target), -g * x
    pw = pos_weight[0]
    log_weight = 1 + (pw - 1) * target
    soft = _softplus_of_negative(x)
    gx = g * (log_weight * ew.sigmoid(x) - pw * target)
    return gx, g * ((pw - 1) * soft - x), g * target * soft
