"""Normalisation layers with PyTorch's constructors, buffers and state_dict keys: BatchNorm1d/2d/3d,
LayerNorm, GroupNorm, InstanceNorm1d/2d/3d.

Batch norm in training mode updates its running statistics by assigning new buffers
(`self.running_mean = ...`): the tape records them as state, and every compiled replay writes the new
values back into the module, as torch's in-place update would.
"""
import numpy as np

from ...errors import AvalonError
from ...ops import batch_norm as bn
from ...ops import elementwise as ew
from ...ops import shape as sh
from ...arguments import whole
from ..errors import array_input, input_error
from ..functional import normalization as Fn
from ..module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "RMSNorm", "GroupNorm", "InstanceNorm1d",
           "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm"]


def _vector(n, value, dtype):
    return np.full((n,), value, dtype=np.dtype(dtype or np.float32))


def _affine(module, n, affine, bias, dtype):
    """Per-channel weight (ones) and bias (zeros, unless bias=False) when `affine`, as torch."""
    if affine:
        module.weight = Parameter(_vector(n, 1.0, dtype))
    else:
        module.register_parameter("weight", None)
    if affine and bias:
        module.bias = Parameter(_vector(n, 0.0, dtype))
    else:
        module.register_parameter("bias", None)


def _reset_affine(module):
    if module.weight is not None:
        module.weight[...] = 1
    if module.bias is not None:
        module.bias[...] = 0


def _blend(old, new, factor):
    """(1 - factor)·old + factor·new, kept in old's dtype (factor may be a traced float64 scalar)."""
    mixed = old * (1.0 - factor) + new * factor
    return mixed if mixed.dtype == old.dtype else ew.astype(mixed, dtype=old.dtype)


class _NormBase(Module):
    """Arguments, affine parameters and running-statistic buffers shared by batch and instance norm."""

    def __init__(self, num_features, eps, momentum, affine, track_running_stats, device, dtype, bias):
        super().__init__()
        whole(type(self).__name__, "num_features", num_features)
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _affine(self, num_features, affine, bias, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", _vector(num_features, 0.0, dtype))
            self.register_buffer("running_var", _vector(num_features, 1.0, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        if device is not None:
            self.to(device)

    def reset_running_stats(self):
        """Running mean 0, running variance 1, no batches seen."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self):
        """Running statistics reset; weight 1 and bias 0."""
        self.reset_running_stats()
        _reset_affine(self)

    def _check(self, input, dims, channel_axis):
        array_input(self.layer_name(), input)
        if input.ndim not in dims or input.shape[channel_axis] != self.num_features:
            raise input_error(self.layer_name(), self.pattern.format(C=self.num_features), input.shape,
                              f"expected {' or '.join(f'{d}-d' for d in dims)} input with {self.num_features} channels")

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    dims = (4,)
    pattern = "(N, {C}, H, W)"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias)

    def forward(self, input):
        self._check(input, self.dims, 1)
        use_batch = self.training or self.running_mean is None
        if not use_batch:
            return Fn.normalize_with(input, self.running_mean, self.running_var, self.weight, self.bias, self.eps)
        _, count = Fn.batch_statistics(self.layer_name(), input)
        stats = bn.batch_norm_stats(input)  # (2, C): mean and biased variance
        if self.training and self.track_running_stats:
            self._update(stats[0], stats[1], count)
        return bn.batch_norm_apply(input, stats, self.weight, self.bias, eps=float(self.eps))

    def _update(self, mean, var, count):
        # torch: the running variance takes the unbiased batch variance; momentum None is a cumulative mean
        self.num_batches_tracked = self.num_batches_tracked + 1
        factor = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked
        c = (self.num_features,)
        self.running_mean = _blend(self.running_mean, sh.reshape(mean, shape=c), factor)
        self.running_var = _blend(self.running_var, sh.reshape(var, shape=c) * (count / (count - 1)), factor)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) per channel, with running statistics for evaluation."""

    dims = (2, 3)
    pattern = "(N, {C}) or (N, {C}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) per channel.

    Training uses the batch's statistics and updates running_mean / running_var (momentum 0.1, the
    unbiased variance, as torch); eval() uses the running statistics. Buffers and state_dict keys are
    torch's: running_mean, running_var, num_batches_tracked (int64).
    """

    dims = (4,)
    pattern = "(N, {C}, H, W)"


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of (N, C, D, H, W) per channel."""

    dims = (5,)
    pattern = "(N, {C}, D, H, W)"


class _InstanceNorm(_NormBase):
    dims = 2
    pattern = "(N, {C}, H, W) or ({C}, H, W)"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False, device=None,
                 dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias)

    def forward(self, input):
        d = self.dims
        self._check(input, (d + 1, d + 2), -d - 1)
        unbatched = input.ndim == d + 1
        x = sh.reshape(input, shape=(1,) + tuple(input.shape)) if unbatched else input
        use_input_stats = self.training or not self.track_running_stats
        if use_input_stats:
            axes = tuple(range(2, x.ndim))
            mean, centred, var = Fn.moments(x, axes)
            if self.track_running_stats and self.momentum is not None:
                count = int(np.prod(x.shape[2:]))
                if count <= 1:
                    raise input_error(self.layer_name(), self.pattern.format(C=self.num_features), input.shape,
                                      "running statistics need more than one value per channel")
                # torch: the batch average of the per-instance statistics, the variance unbiased
                n, c = x.shape[:2]
                self.running_mean = _blend(self.running_mean, sh.reshape(mean, shape=(n, c)).mean(0), self.momentum)
                unbiased = sh.reshape(var, shape=(n, c)).mean(0) * (count / (count - 1))
                self.running_var = _blend(self.running_var, unbiased, self.momentum)
            y = Fn.normalize_per_channel(centred, var, self.weight, self.bias, self.eps, axes)
        else:
            y = Fn.normalize_with(x, self.running_mean, self.running_var, self.weight, self.bias, self.eps)
        return sh.reshape(y, shape=tuple(input.shape)) if unbatched else y


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) or (C, L): per sample and channel, over positions."""

    dims = 1
    pattern = "(N, {C}, L) or ({C}, L)"


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) or (C, H, W) (affine=False, track_running_stats=False by default)."""

    dims = 2


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of (N, C, D, H, W) or (C, D, H, W)."""

    dims = 3
    pattern = "(N, {C}, D, H, W) or ({C}, D, H, W)"


class LayerNorm(Module):
    """Normalisation over the trailing `normalized_shape` dimensions of each sample, then an elementwise
    affine map (weight 1, bias 0 initially)."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, device=None, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        whole(type(self).__name__, "normalized_shape", shape)
        self.normalized_shape = shape
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dtype = np.dtype(dtype or np.float32)
        if elementwise_affine:
            self.weight = Parameter(np.ones(shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        """Weight 1 and bias 0."""
        _reset_affine(self)

    def forward(self, input):
        Fn.trailing_axes(self.layer_name(), input, self.normalized_shape)
        return Fn.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class RMSNorm(Module):
    """Root-mean-square normalisation over the trailing `normalized_shape` dimensions, times a weight
    (initially 1); eps None means the input dtype's machine epsilon."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=np.dtype(dtype or np.float32)))
        else:
            self.register_parameter("weight", None)
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        """Weight 1."""
        if self.weight is not None:
            self.weight[...] = 1

    def forward(self, input):
        Fn.trailing_axes(self.layer_name(), input, self.normalized_shape)
        return Fn.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Normalisation of (N, C, *) over groups of C / num_groups channels, then a per-channel affine map."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        if num_channels % num_groups:
            raise AvalonError(f"GroupNorm: num_channels={num_channels} must be divisible by num_groups={num_groups}")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        _affine(self, num_channels, affine, bias, dtype)
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        """Weight 1 and bias 0."""
        _reset_affine(self)

    def forward(self, input):
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise input_error(self.layer_name(), f"(N, {self.num_channels}, *)", input.shape)
        return Fn.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class LocalResponseNorm(Module):
    """Normalisation of (N, C, *) across `size` neighbouring channels (AlexNet): x / (k + alpha·mean x²)^beta."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        if input.ndim < 3:
            raise input_error(self.layer_name(), "(N, C, *spatial)", input.shape)
        return Fn.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
