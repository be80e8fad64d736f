"""Loss functions with PyTorch's names, signatures and defaults (`torch.nn.functional.*_loss`).

They work on plain arrays and inside traced code alike. `reduction` is 'mean' (default), 'sum' or
'none'; PyTorch's deprecated `size_average` / `reduce` arguments are accepted and mapped as PyTorch
does. Class-index targets are integer arrays (int64) and receive no gradient; class weights receive
none either (as in PyTorch).

>>> loss = F.cross_entropy(logits, labels, label_smoothing=0.1)
"""
import warnings

import numpy as np

from ... import numpy_api as npa
from ...arguments import ArgumentError
from ...errors import AvalonError, DtypeError
from ...ops import elementwise as ew
from ...ops import index as ix
from ...ops import loss as L
from ...ops import nn as nn_ops
from ...ops import reduce as rd
from ..errors import array_input, fail

__all__ = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "cross_entropy", "nll_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "cosine_embedding_loss",
           "margin_ranking_loss", "triplet_margin_loss", "pairwise_distance"]

_REDUCTIONS = ("mean", "sum", "none")


def _reduction(fn, size_average, reduce, reduction, allowed=_REDUCTIONS):
    """PyTorch's reduction, with its legacy (size_average, reduce) pair taking precedence."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        return "mean" if size_average and reduce else "sum" if reduce else "none"
    if reduction not in allowed:
        raise ArgumentError(f"{fn}: reduction={reduction!r} is not one of {', '.join(map(repr, allowed))}",
                            fix=f"pass reduction={allowed[0]!r} (or another of those)")
    return reduction


def _reduce(loss, reduction):
    if reduction == "mean":
        return rd.mean(loss)
    if reduction == "sum":
        return rd.sum(loss)
    return loss


def _zero(x):
    return np.zeros((), dtype=x.dtype)


def _same_size(fn, input, target):
    array_input(fn, input, floating=False), array_input(fn, target, floating=False, name="target")
    if tuple(target.shape) != tuple(input.shape):
        try:
            np.broadcast_shapes(tuple(target.shape), tuple(input.shape))
        except ValueError:
            raise fail(fn, f"target of shape {tuple(target.shape)} does not fit input of shape "
                           f"{tuple(input.shape)}: they do not even broadcast",
                       fix="give the target the input's shape (reshape or transpose it)") from None
        warnings.warn(f"{fn}: target size {tuple(target.shape)} differs from input size {tuple(input.shape)}; "
                      "they are broadcast together, which is likely not what you want", stacklevel=3)


def _weighted(fn, loss, weight, input, reduction, mean_by_weight):
    """PyTorch's elementwise `weight` for mse/l1/huber: same size as `input`."""
    if tuple(weight.shape) != tuple(input.shape):
        raise fail(fn, f"weight of shape {tuple(weight.shape)} must have the input's shape {tuple(input.shape)}")
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return rd.sum(loss) / rd.sum(weight)
    return _reduce(loss, reduction)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error (input - target)²; with `weight`, each term weighted (mean divides by Σ weight)."""
    reduction = _reduction("mse_loss", size_average, reduce, reduction)
    _same_size("mse_loss", input, target)
    diff = input - target
    loss = diff * diff
    if weight is not None:
        return _weighted("mse_loss", loss, weight, input, reduction, True)
    return _reduce(loss, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean absolute error |input - target|; with `weight`, each term weighted (mean divides by Σ weight)."""
    reduction = _reduction("l1_loss", size_average, reduce, reduction)
    _same_size("l1_loss", input, target)
    loss = ew.absolute(input - target)
    if weight is not None:
        return _weighted("l1_loss", loss, weight, input, reduction, True)
    return _reduce(loss, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5·d²/beta where |d| < beta, else |d| - 0.5·beta (d = input - target); beta=0 is the L1 loss."""
    reduction = _reduction("smooth_l1_loss", size_average, reduce, reduction)
    if beta < 0:
        raise fail("smooth_l1_loss", f"beta must be non-negative, got {beta}", AvalonError)
    _same_size("smooth_l1_loss", input, target)
    d = ew.absolute(input - target)
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(ew.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5·d² where |d| < delta, else delta·(|d| - 0.5·delta) (d = input - target)."""
    reduction = _reduction("huber_loss", None, None, reduction)
    if delta <= 0:
        raise fail("huber_loss", f"delta must be positive, got {delta}", AvalonError)
    _same_size("huber_loss", input, target)
    d = ew.absolute(input - target)
    loss = ew.where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    if weight is not None:
        return _weighted("huber_loss", loss, weight, input, reduction, False)
    return _reduce(loss, reduction)


def _class_layout(fn, input, target):
    """(input, target, batched) with a batch axis: (C,) input and a 0-d target become (1, C) and (1,)."""
    array_input(fn, input), array_input(fn, target, floating=False, name="target")
    if input.ndim == 0:
        raise fail(fn, "input must have a class dimension: shape (C,), (N, C) or (N, C, d1, ...), got ()")
    if input.ndim == 1:
        return npa.expand_dims(input, 0), npa.expand_dims(target, 0), False
    return input, target, True


def _check_index_target(fn, input, target):
    if not np.issubdtype(target.dtype, np.integer):
        raise fail(fn, f"class-index targets must be an integer array (int64), got {target.dtype}", DtypeError,
                   fix="convert them: y.long() or y.astype(np.int64)")
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise fail(fn, f"target of shape {tuple(target.shape)} does not fit input of shape "
                        f"{tuple(input.shape)}: expected {expected} (the input's shape without the class "
                        "dimension 1)", fix="give one class index per sample (and position), e.g. y of shape (N,)")


def _check_class_weight(fn, weight, num_classes):
    if weight is not None and tuple(weight.shape) != (num_classes,):
        raise fail(fn, f"weight must have one entry per class, shape ({num_classes},), got {tuple(weight.shape)}")


def _target_weights(target, weight, ignore_index, dtype):
    """Per-sample weight of each target: w[target] (1 without weights), 0 where it is ignored."""
    mask = ew.astype(ew.not_equal(target, ignore_index), dtype=np.dtype(dtype))
    if weight is None:
        return mask
    safe = ew.where(ew.not_equal(target, ignore_index), target, np.zeros((), dtype=target.dtype))
    return npa.take(weight, safe) * mask


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits `input` (N, C) or (N, C, d1, ...) (or (C,)) against class indices
    (integer target of shape (N,) or (N, d1, ...)) or class probabilities (float target of the
    input's shape). One fused primitive: log-softmax, gather and weighting, numerically stable.

    With class `weight`, 'mean' divides by the summed weights of the counted targets, as PyTorch;
    targets equal to `ignore_index` count for nothing; `label_smoothing` ε mixes the target with the
    uniform distribution: (1 - ε)·target + ε/C.
    """
    fn = "cross_entropy"
    reduction = _reduction(fn, size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise fail(fn, f"label_smoothing must lie in [0, 1], got {label_smoothing}", AvalonError)
    input, target, batched = _class_layout(fn, input, target)
    num_classes = input.shape[1]
    _check_class_weight(fn, weight, num_classes)
    if weight is not None:
        weight = nn_ops.stop_gradient(weight)
    if np.issubdtype(target.dtype, np.floating):
        if ignore_index != -100:
            raise fail(fn, "ignore_index is not supported for class-probability (floating point) targets",
                        AvalonError)
        if tuple(target.shape) != tuple(input.shape):
            raise fail(fn, f"a floating point target is taken as class probabilities and must have the "
                            f"input's shape {tuple(input.shape)}, got {tuple(target.shape)}; class indices "
                            "must be an integer array (int64) of the input's shape without dimension 1",
                       fix="pass class indices as int64 (y.long()), or probabilities of the input's shape")
        if label_smoothing:
            target = target * (1 - label_smoothing) + label_smoothing / num_classes
        if weight is not None:
            target = target * npa.reshape(weight, (num_classes,) + (1,) * (input.ndim - 2))
        loss = L.soft_cross_entropy(input, target, axis=1)
        return _reduce(loss if batched else npa.squeeze(loss, 0), reduction)
    _check_index_target(fn, input, target)
    weights = () if weight is None else (weight,)
    loss = L.cross_entropy(input, target, *weights, axis=1, ignore_index=ignore_index,
                           label_smoothing=label_smoothing)
    if reduction == "mean":
        return rd.sum(loss) / rd.sum(_target_weights(target, weight, ignore_index, input.dtype))
    return _reduce(loss if batched else npa.squeeze(loss, 0), reduction)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log-likelihood of log-probabilities `input` (N, C) or (N, C, d1, ...) (or (C,)) at the
    class indices `target`: -w[y]·input[y]; 'mean' divides by the summed weights of counted targets."""
    fn = "nll_loss"
    reduction = _reduction(fn, size_average, reduce, reduction)
    input, target, batched = _class_layout(fn, input, target)
    _check_class_weight(fn, weight, input.shape[1])
    _check_index_target(fn, input, target)
    if weight is not None:
        weight = nn_ops.stop_gradient(weight)
    target = ix.checked_index(target, size=input.shape[1], what=fn, ignore=ignore_index)  # replays too
    counted = ew.not_equal(target, ignore_index)
    safe = ew.where(counted, target, np.zeros((), dtype=target.dtype))
    picked = npa.squeeze(npa.take_along_axis(input, npa.expand_dims(safe, 1), 1), 1)
    per_sample = _target_weights(target, weight, ignore_index, input.dtype)
    # selected, not multiplied by 0: an ignored sample gets gradient 0 even when a 'mean' over no
    # counted targets sends 1/0 back (PyTorch's value NaN, gradient 0)
    loss = ew.where(counted, -picked * per_sample, _zero(input))
    if reduction == "mean":
        return rd.sum(loss) / rd.sum(per_sample)
    return _reduce(loss if batched else npa.squeeze(loss, 0), reduction)


def _same_shape(fn, input, target):
    if tuple(target.shape) != tuple(input.shape):
        raise fail(fn, f"target of shape {tuple(target.shape)} must have the input's shape {tuple(input.shape)}",
                   fix="reshape the target to the input's shape")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-w·(y·log x + (1 - y)·log(1 - x)) for probabilities `input`; each log is clamped at -100, as
    PyTorch, so x = 0 or 1 gives a finite loss."""
    fn = "binary_cross_entropy"
    reduction = _reduction(fn, size_average, reduce, reduction)
    _same_shape(fn, input, target)
    input = L.checked_probability(input, what=fn)  # at every call, replays too: torch refuses, numpy gives NaN
    log_x = ew.clip(ew.log(input), -100.0, None)
    log_not_x = ew.clip(ew.log(1 - input), -100.0, None)
    loss = -(target * log_x + (1 - target) * log_not_x)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """Binary cross-entropy of logits `input` (sigmoid and log fused: stable for any logit).
    `pos_weight` weights the positive term (broadcast along the last dimension), `weight` each element."""
    fn = "binary_cross_entropy_with_logits"
    reduction = _reduction(fn, size_average, reduce, reduction)
    _same_shape(fn, input, target)
    loss = L.sigmoid_cross_entropy(input, target, *(() if pos_weight is None else (pos_weight,)))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Kullback-Leibler divergence with `input` given as log-probabilities: target·(log target - input)
    (target as log-probabilities too with `log_target`). 'batchmean' divides the sum by the batch size,
    which is the mathematical KL divergence; 'mean' divides by the number of elements."""
    fn = "kl_div"
    reduction = _reduction(fn, size_average, reduce, reduction, _REDUCTIONS + ("batchmean",))
    if log_target:
        loss = ew.exp(target) * (target - input)
    else:
        positive = target > 0
        safe = ew.where(positive, target, np.ones((), dtype=target.dtype))
        loss = ew.where(positive, target * ew.log(safe), _zero(target)) - target * input
    if reduction == "batchmean":
        return rd.sum(loss) / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """1 - cos(x1, x2) where target is 1, max(0, cos(x1, x2) - margin) where it is -1 (rows of (N, D)
    inputs, or one (D,) pair with a 0-d target)."""
    fn = "cosine_embedding_loss"
    reduction = _reduction(fn, size_average, reduce, reduction)
    if input1.ndim not in (1, 2) or tuple(input1.shape) != tuple(input2.shape):
        raise fail(fn, f"inputs must be two (N, D) or (D,) arrays of one shape, got {tuple(input1.shape)} "
                        f"and {tuple(input2.shape)}")
    if tuple(target.shape) != tuple(input1.shape[:-1]):
        raise fail(fn, f"target of shape {tuple(target.shape)} must have shape {tuple(input1.shape[:-1])}")
    axis = input1.ndim - 1
    eps = 1e-12  # PyTorch's guard against zero vectors
    dot = rd.sum(input1 * input2, axis=axis)
    norms = ew.sqrt((rd.sum(input1 * input1, axis=axis) + eps) * (rd.sum(input2 * input2, axis=axis) + eps))
    cos = dot / norms
    zero = _zero(cos)
    loss = ew.where(target == 1, 1 - cos, zero) + ew.where(target == -1, ew.clip(cos - margin, 0.0, None), zero)
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """max(0, -target·(input1 - input2) + margin): input1 should rank higher where target is 1."""
    fn = "margin_ranking_loss"
    reduction = _reduction(fn, size_average, reduce, reduction)
    if not input1.ndim == input2.ndim == target.ndim:
        raise fail(fn, f"input1, input2 and target must have the same number of dimensions, got shapes "
                        f"{tuple(input1.shape)}, {tuple(input2.shape)} and {tuple(target.shape)}")
    return _reduce(ew.clip(-target * (input1 - input2) + margin, 0.0, None), reduction)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """The p-norm of x1 - x2 + eps along the last dimension (PyTorch's `pairwise_distance`)."""
    diff = x1 - x2 + eps
    if p == 2:
        return ew.sqrt(rd.sum(diff * diff, axis=-1 % diff.ndim, keepdims=keepdim))
    if p == 1:
        return rd.sum(ew.absolute(diff), axis=-1 % diff.ndim, keepdims=keepdim)
    return rd.sum(ew.absolute(diff) ** p, axis=-1 % diff.ndim, keepdims=keepdim) ** (1.0 / p)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    """max(0, margin + d(anchor, positive) - d(anchor, negative)) with d the `pairwise_distance`; with
    `swap`, d(anchor, negative) is replaced by d(positive, negative) where that is smaller."""
    fn = "triplet_margin_loss"
    reduction = _reduction(fn, size_average, reduce, reduction)
    if margin <= 0:
        raise fail(fn, f"margin must be greater than 0, got {margin}", AvalonError)
    if not anchor.ndim == positive.ndim == negative.ndim or anchor.ndim not in (1, 2):
        raise fail(fn, f"anchor, positive and negative must all be (N, D) or all (D,), got shapes "
                        f"{tuple(anchor.shape)}, {tuple(positive.shape)} and {tuple(negative.shape)}")
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = ew.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce(ew.clip(d_pos - d_neg + margin, 0.0, None), reduction)
