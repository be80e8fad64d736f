"""Loss primitives, fused for speed and numerical stability (their rules are in avalon/rules/loss.py).

Each returns the *unreduced* loss (one value per sample); the functional layer (avalon.nn.functional)
does the weighting of the mean and the reduction. Integer class targets are int64 operands with no
gradient; an optional class `weight` is a trailing operand (`*weight`: given or not), also without a
gradient (as in PyTorch).
"""
from ..backend import first_marked, namespace
from ..errors import ValueRangeError
from . import nn
from .index import check_range
from .primitive import primitive


def _astype(xp, x, dtype):
    return xp.astype(x, dtype) if hasattr(xp, "astype") else x.astype(dtype)


def _along(shape_ndim, axis, n):
    """The shape that lays a length-`n` vector along `axis` of an `shape_ndim`-D array."""
    shape = [1] * shape_ndim
    shape[axis] = n
    return tuple(shape)


@primitive("checked_probability")
def checked_probability(x, *, what):
    """`x` itself, once every value lies in [0, 1] (NaN does not): recorded, so a cached replay refuses
    what tracing would have, instead of a NaN loss."""
    xp = namespace(x)
    bad = ~((x >= 0) & (x <= 1))
    if not bool(xp.any(bad)):
        return x
    value, position = first_marked(bad, x)
    raise ValueRangeError(what, float(value), position, 0, 1,
                          "pass probabilities (a sigmoid's output), or logits to binary_cross_entropy_with_logits, "
                          "which is also numerically safer")


def _checked_targets(xp, target, num_classes, ignore_index):
    """(mask of counted targets, targets with ignored ones replaced by class 0)."""
    check_range(target, num_classes, "cross_entropy", ignore=ignore_index)  # at every call, replays too
    mask = target != ignore_index
    return mask, xp.where(mask, target, xp.zeros((), dtype=target.dtype))


@primitive("cross_entropy")
def cross_entropy(x, target, *weight, axis=1, ignore_index=-100, label_smoothing=0.0):
    """Per-sample cross-entropy of logits `x` (classes along `axis`) against class indices `target`.

    loss = (1 - ε)·w[y]·(-log p[y]) + (ε/C)·Σ_c w[c]·(-log p[c]) with p = softmax(x) and ε the label
    smoothing; samples whose target is `ignore_index` get 0. One pass: log-softmax, gather, weighting.
    """
    xp = namespace(x)
    num_classes = x.shape[axis]
    mask, safe = _checked_targets(xp, target, num_classes, ignore_index)
    logp = nn.log_softmax.impl(x, axis)
    picked = xp.take_along_axis(logp, xp.expand_dims(safe, axis=axis), axis=axis)
    loss = -xp.squeeze(picked, axis=axis)
    if weight:
        w = weight[0]
        loss = loss * xp.reshape(xp.take(w, xp.reshape(safe, (-1,))), safe.shape)
    if label_smoothing:
        if weight:
            logp = logp * xp.reshape(weight[0], _along(x.ndim, axis, num_classes))
        smooth = -xp.sum(logp, axis=axis)
        loss = (1 - label_smoothing) * loss + (label_smoothing / num_classes) * smooth
    return xp.where(mask, loss, xp.zeros((), dtype=loss.dtype))


@primitive("class_distribution", differentiable=False)
def class_distribution(target, *weight, num_classes, axis=1, ignore_index=-100, label_smoothing=0.0,
                       dtype="float32"):
    """The dense target distribution cross-entropy compares against: per sample the (smoothed)
    one-hot of `target` along `axis`, times the class weights, zero where `target` is ignored.

    cross_entropy(x, target) = -Σ_c class_distribution(target)[c]·log_softmax(x)[c].
    """
    xp = namespace(target)
    mask, safe = _checked_targets(xp, target, num_classes, ignore_index)
    ndim = target.ndim + 1
    classes = xp.reshape(xp.arange(num_classes, dtype=target.dtype), _along(ndim, axis, num_classes))
    dist = _astype(xp, xp.expand_dims(safe, axis=axis) == classes, dtype)
    if label_smoothing:
        dist = dist * (1 - label_smoothing) + label_smoothing / num_classes
    if weight:
        dist = dist * xp.reshape(_astype(xp, weight[0], dtype), _along(ndim, axis, num_classes))
    return dist * _astype(xp, xp.expand_dims(mask, axis=axis), dtype)


@primitive("cross_entropy_backward")
def cross_entropy_backward(g, x, target, *weight, axis=1, ignore_index=-100, label_smoothing=0.0):
    """The gradient of `cross_entropy` with respect to `x`: g·(softmax(x)·Σ_c t[c] - t), where t is
    `class_distribution(target)`, and exactly 0 for ignored samples whatever `g` holds there.

    An ignored sample's loss is a constant 0, so its gradient is 0 even when `g` is not finite: a
    'mean' over no counted targets is 0/0 = NaN with g = 1/0 (PyTorch's value and gradient: NaN, 0)."""
    xp = namespace(x)
    dist = class_distribution.impl(target, *weight, num_classes=x.shape[axis], axis=axis,
                                   ignore_index=ignore_index, label_smoothing=label_smoothing, dtype=x.dtype)
    p = nn.softmax.impl(x, axis)
    total = xp.sum(dist, axis=axis, keepdims=True)
    g = xp.where(target != ignore_index, g, xp.zeros((), dtype=g.dtype))
    return xp.expand_dims(g, axis=axis) * (p * total - dist)


@primitive("soft_cross_entropy")
def soft_cross_entropy(x, target, axis=1):
    """Per-sample cross-entropy of logits `x` against class probabilities `target` (same shape):
    -Σ_c target[c]·log_softmax(x)[c] along `axis`."""
    xp = namespace(x, target)
    return -xp.sum(target * nn.log_softmax.impl(x, axis), axis=axis)


def _softplus_of_negative(xp, x):
    # log(1 + exp(-x)) without overflow for either sign of x
    return xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, xp.zeros((), dtype=x.dtype))


@primitive("sigmoid_cross_entropy")
def sigmoid_cross_entropy(x, target, *pos_weight):
    """Per-element binary cross-entropy of logits `x` against `target` in [0, 1], stable for any x:
    (1 - y)·x + (1 + (pos_weight - 1)·y)·log(1 + exp(-x))."""
    xp = namespace(x, target)
    log_weight = 1 + (pos_weight[0] - 1) * target if pos_weight else 1
    return (1 - target) * x + log_weight * _softplus_of_negative(xp, x)
