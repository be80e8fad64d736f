"""Datasets and batching with `torch.utils.data`'s names: `from avalon.data import DataLoader, TensorDataset`.

>>> ds = TensorDataset(x, y)
>>> train, val = random_split(ds, [0.8, 0.2], generator=0)
>>> loader = DataLoader(train, batch_size=64, shuffle=True)
"""
from .collate import default_collate
from .dataloader import DataLoader
from .dataset import Dataset, Subset, TensorDataset, random_split
from .distributed import DistributedSampler
from .errors import CollateError, DataError, SampleIndexError

__all__ = ["Dataset", "TensorDataset", "Subset", "DataLoader", "random_split", "default_collate", "DistributedSampler", "DataError",
           "CollateError", "SampleIndexError"]
