"""The loss operators: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss."""
import numpy as np

from ...nn import functional as F
from . import operator
from .math import cast


def _negative_log_likelihood(n, log_prob, target, weight):
    """-log_prob[n, target[n, …], …]·weight[target], reduced by `reduction` (a weighted mean by default);
    targets equal to ignore_index count for nothing."""
    ignore = n.attr("ignore_index")
    ignored = None if ignore is None else target == ignore
    safe = target if ignored is None else np.where(ignored, 0, target)
    picked = -np.squeeze(np.take_along_axis(log_prob, np.expand_dims(safe, 1), axis=1), axis=1)
    weights = np.ones(target.shape, log_prob.dtype) if weight is None else np.take(weight, safe)
    if ignored is not None:
        weights = np.where(ignored, np.zeros((), log_prob.dtype), weights)
    loss = picked * weights
    reduction = n.attr("reduction", "mean")
    if reduction == "none":
        return loss
    if reduction == "sum":
        return np.sum(loss)
    if reduction == "mean":
        return cast(np.sum(loss) / np.sum(weights), log_prob.dtype)
    raise n.error(f"reduction {reduction!r} is not none, sum or mean")


@operator("NegativeLogLikelihoodLoss")
def negative_log_likelihood_loss(n, log_prob, target, weight=None):
    return _negative_log_likelihood(n, log_prob, target, weight)


@operator("SoftmaxCrossEntropyLoss")
def softmax_cross_entropy_loss(n, scores, labels, weights=None):
    log_prob = F.log_softmax(scores, dim=1)
    loss = _negative_log_likelihood(n, log_prob, labels, weights)
    return (loss, log_prob) if len(n.outputs) > 1 and n.outputs[1] else loss
