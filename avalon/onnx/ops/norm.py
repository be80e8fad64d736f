"""Normalisation: Batch-, Layer-, Instance-, Group- and RMSNormalization."""
import numpy as np

from ...nn.functional import normalization as Fn
from . import operator
from .math import cast


@operator("BatchNormalization")
def batch_normalization(n, x, scale, bias, mean, var):
    """An inference node (the usual export) uses the running statistics in eval mode; in training mode
    (module.train()) it uses the batch's and updates the buffers as PyTorch's BatchNorm does:
    running·momentum + batch·(1 - momentum) with the unbiased batch variance (a PyTorch export's momentum
    is 1 - torch's). A node exported in training mode (training_mode=1, opset 14+) always uses the
    batch's statistics and gives the running ones as the spec defines them (the biased variance); they
    become the buffers' new values when the module is training."""
    eps = n.attr("epsilon", 1e-5)
    exported_training = bool(n.attr("training_mode", 0))
    outputs = len([o for o in n.outputs if o])
    if not (n.module.training or exported_training):
        y = Fn.normalize_with(x, mean, var, scale, bias, eps)
        return (y, mean, var) if outputs > 1 else y
    axes, count = Fn.batch_statistics(f"ONNX node {n.name!r}", x)
    batch_mean, centred, batch_var = Fn.moments(x, axes)
    y = Fn.normalize_per_channel(centred, batch_var, scale, bias, eps, axes)
    momentum = n.attr("momentum", 0.9)
    channels = (x.shape[1],)
    unbias = 1.0 if exported_training else count / (count - 1)
    new_mean = mean * momentum + np.reshape(batch_mean, channels) * (1.0 - momentum)
    new_var = var * momentum + np.reshape(batch_var, channels) * (unbias * (1.0 - momentum))
    new_mean, new_var = cast(new_mean, mean.dtype), cast(new_var, var.dtype)
    if n.module.training:
        for name, value in ((n.inputs[3], new_mean), (n.inputs[4], new_var)):
            n.module.update_buffer(name, value)
    return (y, new_mean, new_var) if outputs > 1 else y


@operator("LayerNormalization")
def layer_normalization(n, x, scale, bias=None):
    axis = n.attr("axis", -1) % x.ndim
    axes = tuple(range(axis, x.ndim))
    mean = np.mean(x, axis=axes, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=axes, keepdims=True)
    inverse_std = 1.0 / np.sqrt(var + n.attr("epsilon", 1e-5))
    y = centred * inverse_std * scale
    y = y if bias is None else y + bias
    return y, mean, inverse_std  # Mean and InvStdDev, the optional outputs, keep the reduced axes


def _normalize_groups(x, groups, eps):
    """x normalised over each of `groups` channel groups and all positions, per sample."""
    grouped = np.reshape(x, (x.shape[0], groups, -1))
    mean = np.mean(grouped, axis=2, keepdims=True)
    centred = grouped - mean
    var = np.mean(centred * centred, axis=2, keepdims=True)
    return np.reshape(centred / np.sqrt(var + eps), x.shape)


def _per_channel(v, ndim):
    return np.reshape(v, (1, -1) + (1,) * (ndim - 2))


@operator("InstanceNormalization")
def instance_normalization(n, x, scale, bias):
    y = _normalize_groups(x, x.shape[1], n.attr("epsilon", 1e-5))
    return y * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)


@operator("GroupNormalization")
def group_normalization(n, x, scale, bias):
    """Opset 18 has one scale and bias per group, opset 21 per channel."""
    groups = n.attr("num_groups")
    y = _normalize_groups(x, groups, n.attr("epsilon", 1e-5))
    if n.opset < 21:
        per_group = (x.shape[1] // groups,)
        scale, bias = np.repeat(scale, per_group[0]), np.repeat(bias, per_group[0])
    return y * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)


@operator("RMSNormalization")
def rms_normalization(n, x, scale):
    axes = tuple(range(n.attr("axis", -1) % x.ndim, x.ndim))
    return x / np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + n.attr("epsilon", 1e-5)) * scale


@operator("LRN")
def local_response_normalization(n, x):
    """x / (bias + alpha/size · Σ x² over the `size` channels around each one)^beta."""
    size = n.attr("size")
    alpha, beta, bias = n.attr("alpha", 1e-4), n.attr("beta", 0.75), n.attr("bias", 1.0)
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    squares = np.pad(x * x, [(0, 0), (before, after)] + [(0, 0)] * (x.ndim - 2))
    channels = x.shape[1]
    total = squares[:, 0:channels]
    for i in range(1, size):
        total = total + squares[:, i:i + channels]
    return x / (total * np.asarray(alpha / size, x.dtype) + np.asarray(bias, x.dtype)) ** np.asarray(beta, x.dtype)


@operator("MeanVarianceNormalization")
def mean_variance_normalization(n, x):
    axes = tuple(a % x.ndim for a in n.attr("axes", [0, 2, 3]))
    centred = x - np.mean(x, axis=axes, keepdims=True)
    deviation = np.sqrt(np.mean(centred * centred, axis=axes, keepdims=True))
    return centred / (deviation + np.asarray(1e-9, x.dtype))  # the spec's function adds 1e-9
