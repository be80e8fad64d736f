"""torch.utils's counterparts: `avalon.utils.data` (the very module `avalon.data`, under torch's
path) and `avalon.utils.checkpoint` (gradient checkpointing).

>>> from avalon.utils.data import DataLoader, TensorDataset
>>> from avalon.utils.checkpoint import checkpoint
"""
import sys

from .. import data
from . import checkpoint

# An alias rather than a module that re-exports: `import avalon.utils.data` then finds the same module
# object, so its names (and anything patched onto it) are one set.
sys.modules[f"{__name__}.data"] = data

__all__ = ["data", "checkpoint"]
