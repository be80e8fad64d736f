"""`torch.nn.parameter`'s names (`from avalon.nn.parameter import Parameter`)."""
from .module import Parameter

__all__ = ["Parameter"]
