"""torch.utils's counterparts: `avalon.utils.data` (the very module `avalon.data`, under torch's
path), `avalon.utils.checkpoint` (gradient checkpointing) and `avalon.utils.model_zoo` (torch's old
name for `avalon.hub`'s loader).

>>> from avalon.utils.data import DataLoader, TensorDataset
>>> from avalon.utils.checkpoint import checkpoint
"""
import sys

from .. import data
from . import checkpoint, model_zoo

# An alias rather than a module that re-exports: `import avalon.utils.data` then finds the same module
# object, so its names (and anything patched onto it) are one set.
sys.modules[f"{__name__}.data"] = data

__all__ = ["data", "checkpoint", "model_zoo"]
