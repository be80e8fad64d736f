"""`torch.nn.modules.module`'s names (`from avalon.nn.modules.module import Module`)."""
from ..module import Module, Parameter

__all__ = ["Module", "Parameter"]
