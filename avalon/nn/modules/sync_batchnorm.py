"""`SyncBatchNorm`: batch normalisation whose statistics are those of the batches of all ranks together.

The per-channel sums are added across ranks by `all_reduce_sum`, a recorded primitive with its own rule,
so a cached replay communicates at every call and the backward pass sums the statistics' cotangents
across ranks as torch's does. Outside a process group (or with one process) it is BatchNorm.
"""
import numpy as np

from ...distributed.traced import all_reduce_sum
from ..functional import normalization as Fn
from ..module import Module
from .normalization import _BatchNorm

__all__ = ["SyncBatchNorm"]


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over (N, C, *) whose training statistics cover every rank's batch (torch's SyncBatchNorm).

    >>> model = nn.SyncBatchNorm.convert_sync_batchnorm(model)   # every BatchNorm*d becomes one
    """

    dims = (2, 3, 4, 5)
    pattern = "(N, {C}, *)"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias)

    def forward(self, input):
        self._check(input, self.dims, 1)
        if not self.training:  # running statistics, or (without them) this rank's batch alone, as torch
            return super().forward(input)
        axes, count = Fn.batch_statistics(self.layer_name(), input)
        # The combined count is communicated too: the other ranks' batches may be of other sizes.
        total = all_reduce_sum(np.full((1,) * input.ndim, count, dtype=input.dtype))
        mean = all_reduce_sum(np.sum(input, axis=axes, keepdims=True)) / total
        centred = input - mean
        # Centred before squaring (two passes): E[x²] - E[x]² loses precision in float32
        var = all_reduce_sum(np.sum(centred * centred, axis=axes, keepdims=True)) / total
        if self.track_running_stats:
            self._update(mean, var, np.reshape(total, ()))
        # Not the fused `normalize`: its rule takes var to be this rank's mean of centred², which it is not
        out = centred * (1.0 / np.sqrt(var + self.eps))
        shape = (1, -1) + (1,) * (input.ndim - 2)
        if self.weight is not None:
            out = out * np.reshape(self.weight, shape)
        if self.bias is not None:
            out = out + np.reshape(self.bias, shape)
        return out

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """`module` with every BatchNorm1d/2d/3d (itself, or inside it) replaced by a SyncBatchNorm holding
        the same parameters and buffers, as torch's."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, bias=module.bias is not None or not module.affine)
            for table in ("_parameters", "_buffers"):
                getattr(converted, table).update(getattr(module, table))
            converted.training = module.training
            return converted
        if isinstance(module, Module):
            for name, child in list(module._modules.items()):
                if child is not None:
                    module._modules[name] = cls.convert_sync_batchnorm(child, process_group)
        return module
