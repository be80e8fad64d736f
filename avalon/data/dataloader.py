"""`DataLoader`: batches of a dataset, in order or shuffled by a seeded generator, as in torch.utils.data.

>>> loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=0)
>>> for xb, yb in loader:
...     loss, grads = avalon.grad(loss_fn, model, xb, yb); opt.step(grads[0])
"""
import numpy as np

from .collate import default_collate
from .dataset import resolve_generator
from .errors import DataError

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over `dataset` in batches of `batch_size` samples, collated by `collate_fn`.

    - `shuffle=True` draws a new permutation every epoch from `generator`: a numpy Generator, an int
      seed (a Generator made once, so the epochs differ but the run repeats), or None for avalon's
      generator (`avalon.manual_seed(s)` makes it repeatable).
    - `sampler`: an iterable of indices to use instead (not with shuffle); `batch_sampler`: an iterable
      of index lists (not with batch_size, shuffle, sampler or drop_last).
    - `drop_last=True` drops a final batch smaller than `batch_size`; `batch_size=None` yields single
      samples, uncollated.
    - `collate_fn(list_of_samples) -> batch`, `default_collate` by default.
    - `num_workers` and `pin_memory` are accepted so ported code runs; loading happens in this process.

    `len(loader)` is the number of batches.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, *, generator=None):
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None or drop_last):
            raise DataError("batch_sampler cannot be combined with batch_size, shuffle, sampler or drop_last",
                            fix="leave those out: the batch_sampler decides every batch")
        if sampler is not None and shuffle:
            raise DataError("sampler and shuffle=True cannot be combined: the sampler decides the order",
                            fix="drop shuffle=True, or use a RandomSampler-like sampler")
        if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size <= 0):
            raise DataError(f"batch_size must be a positive integer or None, got {batch_size!r}",
                            fix="pass a whole number of samples per batch, e.g. batch_size=32")
        if batch_size is None and drop_last:
            raise DataError("drop_last needs a batch_size", fix="give a batch_size, or leave drop_last out")
        if not hasattr(dataset, "__getitem__") or sampler is None and batch_sampler is None \
                and not hasattr(dataset, "__len__"):
            raise DataError(f"DataLoader needs a dataset (with __getitem__ and __len__), got "
                            f"{type(dataset).__name__}",
                            fix="wrap arrays as TensorDataset(x, y), or pass a list of samples")
        if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
            raise DataError(f"num_workers must be an int >= 0, got {num_workers!r}",
                            fix="pass num_workers=0 (batches are loaded in the calling process)")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.pin_memory = pin_memory
        self.drop_last = drop_last
        self.generator = generator if generator is None else resolve_generator(generator)

    def _indices(self):
        if self.sampler is not None:
            return list(self.sampler)
        if self.shuffle:
            return resolve_generator(self.generator).permutation(len(self.dataset)).tolist()
        return range(len(self.dataset))

    def _index_batches(self):
        if self.batch_sampler is not None:
            return (list(b) for b in self.batch_sampler)
        indices = self._indices()
        size = self.batch_size
        stop = len(indices) - len(indices) % size if self.drop_last else len(indices)
        return (list(indices[i:i + size]) for i in range(0, stop, size))

    def __iter__(self):
        if self.batch_size is None and self.batch_sampler is None:
            for i in self._indices():
                sample = self.dataset[i]
                yield sample if self.collate_fn is None else self.collate_fn(sample)
            return
        fast = getattr(self.dataset, "_batch", None) if self.collate_fn is None else None
        for indices in self._index_batches():
            if fast is not None:
                yield fast(indices)
            else:
                collate = self.collate_fn or default_collate
                yield collate([self.dataset[i] for i in indices])

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __repr__(self):
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last})")
