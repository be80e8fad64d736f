"""`default_collate`: a list of samples becomes one batch, as `torch.utils.data.default_collate` does it.

Arrays (and numpy scalars, torch tensors) are stacked along a new first axis into a Tensor; Python ints
become an int64 Tensor, floats float64, bools bool; strings stay a sequence; dicts are collated key by key, named tuples field
by field, tuples and lists position by position (a tuple of columns comes back as a list, as in PyTorch).

>>> default_collate([(np.ones(3), 0), (np.zeros(3), 1)])
[Tensor([[1., 1., 1.], [0., 0., 0.]]), Tensor([0, 1])]
"""
import numpy as np

from ..backend import is_array, namespace
from ..tensor import is_torch_tensor, plain, wrap
from .errors import CollateError

__all__ = ["default_collate"]


def default_collate(batch):
    """Stack a list of samples into a batch (see the module docstring for the rules)."""
    first = batch[0]
    if is_torch_tensor(first):  # torch tensors from a ported dataset
        batch = [plain(t) for t in batch]
        first = batch[0]
    if is_array(first):
        shapes = {tuple(np.shape(x)) for x in batch}
        if len(shapes) > 1:
            raise CollateError(f"cannot stack samples of shapes {sorted(shapes)} into one batch",
                               fix="make the dataset return one shape (pad or crop), or pass a collate_fn to the "
                                   "DataLoader")
        return wrap(namespace(first).stack([plain(x) for x in batch]))
    if isinstance(first, bool):
        return wrap(np.array(batch, dtype=np.bool_))
    if isinstance(first, int):
        return wrap(np.array(batch, dtype=np.int64))
    if isinstance(first, float):
        return wrap(np.array(batch, dtype=np.float64))
    if isinstance(first, (str, bytes)):
        return batch
    if isinstance(first, dict):
        for sample in batch:
            if not isinstance(sample, dict) or set(sample) != set(first):
                raise CollateError(f"cannot batch dict samples with different keys: {sorted(first)} and "
                                   f"{sorted(sample) if isinstance(sample, dict) else type(sample).__name__}",
                                   fix="return the same keys from every sample, or pass a collate_fn")
        return {key: default_collate([sample[key] for sample in batch]) for key in first}
    if isinstance(first, (tuple, list)):
        if len({len(sample) for sample in batch}) != 1:
            raise CollateError("each sample of the batch should have the same number of elements",
                               fix="pass a collate_fn to the DataLoader for samples of varying length")
        columns = [default_collate(list(column)) for column in zip(*batch)]
        if isinstance(first, tuple) and hasattr(type(first), "_fields"):
            return type(first)(*columns)
        return columns
    raise CollateError(f"default_collate cannot batch samples of type {type(first).__name__}",
                       fix="return arrays, numbers, strings, dicts, tuples or lists of them from the dataset, or "
                           "pass a collate_fn to the DataLoader")
