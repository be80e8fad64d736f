"""Datasets: `Dataset`, `TensorDataset`, `Subset` and `random_split`, as in `torch.utils.data`.

A dataset is anything with `__getitem__(index)` and `__len__()`; `DataLoader` batches it.

>>> ds = TensorDataset(x, y)                  # x: (N, ...), y: (N,)
>>> train, val = random_split(ds, [0.8, 0.2], generator=0)
"""
import math

import numpy as np

from ..backend import is_array
from ..ops.random import generator as _avalon_generator
from ..tensor import is_torch_tensor, plain, wrap
from .collate import default_collate
from .errors import DataError, SampleIndexError

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split"]


class Dataset:
    """Base class of map-style datasets: subclasses define `__getitem__(index)` and `__len__()`.

    >>> class Squares(Dataset):
    ...     def __len__(self): return 10
    ...     def __getitem__(self, i): return np.float32(i), np.float32(i * i)
    """

    def __getitem__(self, index):
        raise NotImplementedError("subclasses of Dataset define __getitem__")


class TensorDataset(Dataset):
    """Samples are the rows of arrays sharing their first dimension: `ds[i] == (x[i], y[i])`.

    >>> ds = TensorDataset(np.zeros((100, 3), np.float32), np.arange(100))
    >>> x0, y0 = ds[0]
    """

    def __init__(self, *tensors):
        if not tensors:
            raise DataError("TensorDataset needs at least one array", fix="pass the arrays: TensorDataset(x, y)")
        tensors = tuple(_as_array(t) for t in tensors)
        sizes = [len(t) if np.ndim(t) else None for t in tensors]
        if None in sizes or len(set(sizes)) != 1:
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            raise DataError(f"TensorDataset arrays must share their first dimension, got shapes {shapes}",
                            fix="give one row per sample in every array (x[i] and y[i] belong together)")
        self.tensors = tensors

    def __getitem__(self, index):
        try:
            return tuple(t[index] for t in self.tensors)
        except IndexError:
            raise _past_the_end(self, index) from None

    def __len__(self):
        return len(self.tensors[0])

    def _batch(self, indices):
        """default_collate([self[i] for i in indices]), by one fancy index per array (DataLoader's fast path)."""
        try:
            indices = np.asarray(indices, dtype=np.int64)
            return [t[indices] for t in self.tensors]
        except (IndexError, TypeError, ValueError):  # then the first bad index, named
            for i in indices:
                self[i]
            raise


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order.

    >>> first_ten = Subset(ds, range(10))
    """

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = list(indices)

    def __getitem__(self, index):
        if isinstance(index, list):
            return [self[i] for i in index]
        try:
            position = self.indices[index]
        except IndexError:
            raise _past_the_end(self, index) from None
        return self.dataset[position]

    def __len__(self):
        return len(self.indices)

    def _batch(self, indices):
        """default_collate([self[i] for i in indices]), through the parent's fast path when it has one."""
        inner = getattr(self.dataset, "_batch", None)
        if inner is None:
            return default_collate([self[i] for i in indices])
        return inner([self.indices[i] for i in indices])


def resolve_generator(generator):
    """A numpy Generator from `generator`: a Generator, an int seed, or None (avalon's, see `manual_seed`)."""
    if generator is None:
        return _avalon_generator()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise DataError(f"generator must be a numpy Generator, an int seed or None, got {type(generator).__name__}",
                    fix="pass generator=0 (a seed) or np.random.default_rng(0)")


def random_split(dataset, lengths, generator=None):
    """Split `dataset` at random into non-overlapping `Subset`s of the given lengths.

    `lengths` are counts summing to len(dataset), or fractions summing to 1 (then counts are
    floor(n * fraction), the remainder handed out one by one from the first subset on, as PyTorch).
    `generator`: a numpy Generator, an int seed, or None for avalon's generator (`avalon.manual_seed`).

    >>> train, val = random_split(ds, [0.9, 0.1], generator=42)
    """
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1 and all(0 <= f <= 1 for f in lengths):
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(not isinstance(k, (int, np.integer)) or k < 0 for k in lengths) or sum(lengths) != n:
        raise DataError(f"random_split lengths {lengths} do not add up to the dataset's {n} samples",
                        fix="give whole counts >= 0 summing to len(dataset), or fractions summing to 1")
    order = resolve_generator(generator).permutation(n).tolist()
    subsets, start = [], 0
    for k in lengths:
        subsets.append(Subset(dataset, order[start:start + k]))
        start += k
    return subsets


def _past_the_end(dataset, index):
    return SampleIndexError(f"index {index} is out of range for a {type(dataset).__name__} of {len(dataset)} "
                            f"samples", fix=f"use indices in [0, {len(dataset)}) (check the sampler or the "
                                            f"indices you built)")


def _as_array(x):
    if not is_array(x) and not is_torch_tensor(x):
        raise DataError(f"TensorDataset takes arrays, got {type(x).__name__}",
                        fix="convert it first: np.asarray(x) (or avalon.tensor(x))")
    return wrap(plain(x))  # samples and batches are Tensors, as torch's
