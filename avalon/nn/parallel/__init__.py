"""`torch.nn.parallel`'s single-process names, so scripts written for several GPUs run as they are.

Avalon runs a model on one device per process: `DataParallel(model)` is the model behind torch's
`module.` prefix (so its `state_dict` keys match a saved DataParallel checkpoint), and
`data_parallel(module, inputs, device_ids)` calls the module. Training across processes and machines
is `DistributedDataParallel` (over `avalon.distributed`'s MPI process group).
"""
from ..module import Module
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "data_parallel", "DistributedDataParallel"]


class DataParallel(Module):
    """`module` on this process's device; `.module` is the wrapped model, its state_dict keys carry
    `module.` as torch's do."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        self.module = module

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


def data_parallel(module, inputs, device_ids=None, output_device=None, dim=0, module_kwargs=None):
    """`module(inputs)` (one input, or a tuple of them) with `module_kwargs`, on this process's device."""
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    return module(*inputs, **(module_kwargs or {}))
