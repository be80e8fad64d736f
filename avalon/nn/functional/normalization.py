"""Normalisation with torch.nn.functional's names and signatures: batch_norm, layer_norm, group_norm,
instance_norm.

Batch norm in training mode and layer norm record fused primitives (avalon/ops/batch_norm.py,
avalon/ops/layer_norm.py: the statistics, then one `*_apply`, whose gradient is one `*_backward`).
Group and instance norm record the decomposed steps (see avalon/ops/norm.py): the input's mean over the
normalised axes, the centred input, its mean square (the biased variance) and one fused `normalize`;
the backward pass reuses the centred input. FUSED_LAYER_NORM = False records layer norm that way too.
"""
import numpy as np

from ...errors import AvalonError
from ...ops import batch_norm as bn
from ...ops import elementwise as ew
from ...ops import layer_norm as ln
from ...ops import linalg as la
from ...ops import norm as nm
from ...ops import pool as pl
from ...ops import reduce as rd
from ...ops import shape as sh
from ..errors import array_input, input_error

__all__ = ["batch_norm", "layer_norm", "rms_norm", "group_norm", "instance_norm", "local_response_norm"]

# Layer norm as the fused primitives of ops/layer_norm.py (False: the decomposed steps of ops/norm.py,
# which the tests compare against)
FUSED_LAYER_NORM = True


def moments(x, axes):
    """(mean, x - mean, biased variance) of x over `axes`, keeping the reduced axes: the centred x
    is what `normalize` takes, and its mean square is the variance (one einsum pass)."""
    mean = nm.mean_over(x, axes)
    centred = nm.center(x, mean, axes=axes)
    letters = "abcdefghijklmnopqrstuvwxyz"[:x.ndim]
    kept = "".join(letters[i] for i in range(x.ndim) if i not in axes)
    total = la.einsum(centred, centred, subscripts=f"{letters},{letters}->{kept}")
    var = sh.reshape(total, shape=tuple(mean.shape)) * (1.0 / nm.count(x.shape, axes))
    return mean, centred, var


def _per_channel(v, ndim):
    """A (C,) vector shaped to broadcast over (N, C, *spatial)."""
    return None if v is None else sh.reshape(v, shape=(1, -1) + (1,) * (ndim - 2))


def normalize_per_channel(centred, var, weight, bias, eps, axes):
    """The fused `normalize` of a centred (N, C, *) input by its variance over `axes`, with (C,)
    weight and bias."""
    return nm.normalize(centred, var, _per_channel(weight, centred.ndim), _per_channel(bias, centred.ndim),
                        eps=float(eps), axes=axes)


def _check_vectors(who, size, **vectors):
    for name, v in vectors.items():
        if v is not None and tuple(v.shape) != (size,):
            raise AvalonError(f"{who}: {name} must have shape ({size},), got {tuple(v.shape)}")


def batch_statistics(who, input):
    """The axes batch norm reduces over (all but the channel axis 1) and the number of values per
    channel; at least two are needed in training, as torch."""
    if input.ndim < 2:
        raise input_error(who, "(N, C) or (N, C, *)", input.shape)
    axes = (0,) + tuple(range(2, input.ndim))
    count = 1
    for a in axes:
        count *= input.shape[a]
    if count <= 1:
        raise input_error(who, "(N, C, *) with more than one value per channel", input.shape,
                          "batch statistics need at least two values per channel in training mode")
    return axes, count


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation of (N, C, *) per channel: with the batch's statistics when `training`, else
    with `running_mean` / `running_var`.

    Unlike torch, this function never updates `running_mean` and `running_var` in place: traced code
    cannot mutate arrays (a compiled replay would not repeat it). `nn.BatchNorm*` does the update by
    assigning new buffers in its forward (`self.running_mean = ...`), which the tape records as state
    and every replay writes back. `momentum` is accepted for signature compatibility only.
    """
    who = "batch_norm"
    if input.ndim < 2:
        raise input_error(who, "(N, C) or (N, C, *)", input.shape)
    _check_vectors(who, input.shape[1], weight=weight, bias=bias, running_mean=running_mean, running_var=running_var)
    if training:
        batch_statistics(who, input)
        return bn.batch_norm_apply(input, bn.batch_norm_stats(input), weight, bias, eps=float(eps))
    if running_mean is None or running_var is None:
        raise AvalonError(f"{who}: running_mean and running_var are needed when training=False")
    return normalize_with(input, running_mean, running_var, weight, bias, eps)


def normalize_with(input, mean, var, weight, bias, eps):
    """(x - mean) / sqrt(var + eps) * weight + bias with given per-channel statistics (evaluation mode):
    folded into one per-channel scale and shift, so two passes over the input."""
    scale = 1.0 / ew.sqrt(var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias
    return input * _per_channel(scale, input.ndim) + _per_channel(shift, input.ndim)


def trailing_axes(who, input, normalized_shape, **affine):
    """The axes of `normalized_shape` at the end of `input` (checked, with the affine arrays' shapes)."""
    array_input(who, input)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise input_error(who, "(*, " + ", ".join(map(str, shape)) + ")", input.shape,
                          "the trailing dimensions must equal normalized_shape")
    for name, v in affine.items():
        if v is not None and tuple(v.shape) != shape:
            raise AvalonError(f"{who}: {name} must have shape {shape}, got {tuple(v.shape)}")
    return tuple(range(input.ndim - k, input.ndim))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalisation over the trailing dimensions `normalized_shape`, then an elementwise affine map."""
    axes = trailing_axes("layer_norm", input, normalized_shape, weight=weight, bias=bias)
    if FUSED_LAYER_NORM:
        k = len(axes)
        return ln.layer_norm_apply(input, ln.layer_norm_stats(input, k=k), weight, bias, eps=float(eps), k=k)
    _, centred, var = moments(input, axes)
    return nm.normalize(centred, var, weight, bias, eps=float(eps), axes=axes)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x²) + eps) over the trailing dimensions `normalized_shape`, times `weight`;
    eps None is the machine epsilon of the input's dtype, as torch."""
    axes = trailing_axes("rms_norm", input, normalized_shape, weight=weight)
    eps = float(np.finfo(input.dtype).eps) if eps is None else float(eps)
    y = input * (1.0 / ew.sqrt(rd.mean(input * input, axis=axes, keepdims=True) + eps))
    return y if weight is None else y * weight


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalisation of (N, C, *) over each group of C / num_groups channels (and all positions),
    then a per-channel affine map."""
    who = "group_norm"
    if input.ndim < 2:
        raise input_error(who, "(N, C, *)", input.shape)
    n, c = input.shape[:2]
    if c % num_groups:
        raise input_error(who, f"(N, C, *) with C divisible by num_groups={num_groups}", input.shape)
    _check_vectors(who, c, weight=weight, bias=bias)
    spatial = tuple(input.shape[2:])
    # (N, G, C/G, *spatial): the statistics reduce over every axis after G, the affine map is per channel
    x = sh.reshape(input, shape=(n, num_groups, c // num_groups) + spatial)
    axes = tuple(range(2, x.ndim))
    _, centred, var = moments(x, axes)
    grouped = (1, num_groups, c // num_groups) + (1,) * len(spatial)
    w = None if weight is None else sh.reshape(weight, shape=grouped)
    b = None if bias is None else sh.reshape(bias, shape=grouped)
    y = nm.normalize(centred, var, w, b, eps=float(eps), axes=axes)
    return sh.reshape(y, shape=tuple(input.shape))


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Normalisation of (N, C, *) per sample and channel over the spatial positions.

    As with `batch_norm`, running statistics are never updated in place (see there); with
    use_input_stats=False they normalise instead.
    """
    who = "instance_norm"
    if input.ndim < 3:
        raise input_error(who, "(N, C, *spatial)", input.shape)
    _check_vectors(who, input.shape[1], weight=weight, bias=bias, running_mean=running_mean, running_var=running_var)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise AvalonError(f"{who}: running_mean and running_var are needed when use_input_stats=False")
        return normalize_with(input, running_mean, running_var, weight, bias, eps)
    axes = tuple(range(2, input.ndim))
    _, centred, var = moments(input, axes)
    return normalize_per_channel(centred, var, weight, bias, eps, axes)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """x / (k + alpha · mean of x² over `size` neighbouring channels)^beta (AlexNet's normalisation);
    the channel window is zero-padded by size//2 before and (size-1)//2 after and always divides by size."""
    if input.ndim < 3:
        raise input_error("local_response_norm", "(N, C, *spatial)", input.shape)
    d = input.ndim - 2
    # an average pool over the channel axis and (with a window of 1) the spatial axes behind it
    window = pl.avg_pool(input * input, kernel=(size,) + (1,) * d, stride=(1,) * (d + 1),
                         padding=((size // 2, (size - 1) // 2),) + ((0, 0),) * d, count_include_pad=True,
                         divisor_override=None)
    return input / (window * alpha + k) ** beta
