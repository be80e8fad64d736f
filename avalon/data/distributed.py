"""`DistributedSampler`: each rank's share of a dataset, exactly torch's partitions.

torch shuffles with `torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))`; its CPU
generator is MT19937 seeded with the low 32 bits of the seed (the standard `init_genrand`), and its
randperm is a Fisher–Yates pass taking one 32-bit draw per position (`draw % (n - i)`, swapped into
place i). numpy's legacy `RandomState` seeds MT19937 the same way, so the same permutation comes out
here without torch. (torch switches to 64-bit draws for n of about 2**32 / 20 and more; such a dataset
is refused rather than shuffled differently.)
"""
import math

import numpy as np

from .errors import DataError

_LARGEST = 2 ** 32 // 20  # torch's randperm changes algorithm from about here on


def torch_randperm(n, seed):
    """The permutation `torch.randperm(n, generator=torch.Generator().manual_seed(seed))` gives, as a list."""
    legacy = np.random.RandomState(seed & 0xFFFFFFFF)
    _, key, pos = legacy.get_state()[:3]
    words = np.random.MT19937()
    words.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": pos}}
    draws = words.random_raw(max(n - 1, 0)) if n > 1 else np.zeros(0, np.uint64)
    offsets = (draws % (n - np.arange(n - 1, dtype=np.uint64))).tolist() if n > 1 else []
    order = list(range(n))
    for i, z in enumerate(offsets):
        j = i + z
        order[i], order[j] = order[j], order[i]
    return order


class DistributedSampler:
    """The indices of `dataset` that rank `rank` of `num_replicas` reads (torch's DistributedSampler).

    Every rank gets `num_samples` indices: the (shuffled) order is padded with its own first indices to a
    multiple of `num_replicas` (or, with `drop_last`, cut to one), and rank r takes every
    `num_replicas`-th index from position r. Shuffling is the same on every rank (`seed + epoch`): call
    `set_epoch(epoch)` before each epoch for a new order. `num_replicas` and `rank` default to the
    process group's.

    >>> sampler = DistributedSampler(dataset)
    >>> loader = DataLoader(dataset, batch_size=32, sampler=sampler)
    >>> for epoch in range(10):
    ...     sampler.set_epoch(epoch)
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            from .. import distributed  # the process group, when rank or size are not given

            num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
            rank = distributed.get_rank() if rank is None else rank
        for name, value in (("num_replicas", num_replicas), ("rank", rank), ("seed", seed)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise DataError(f"DistributedSampler: {name}={value!r} is not an integer", fix=f"pass an integer {name}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise DataError(f"DistributedSampler: rank {rank} is not in [0, {num_replicas - 1}] (num_replicas="
                            f"{num_replicas})", fix="pass 0 <= rank < num_replicas, or leave both to the process group")
        if not hasattr(dataset, "__len__"):
            raise DataError(f"DistributedSampler needs a dataset with a length, got a {type(dataset).__name__}",
                            fix="give the dataset __len__ (a map-style Dataset)")
        if shuffle and len(dataset) >= _LARGEST:
            raise DataError(f"DistributedSampler: {len(dataset)} samples is past the sizes whose shuffle "
                            f"reproduces torch's ({_LARGEST - 1} at most)", fix="shard the dataset into smaller ones")
        self.dataset, self.num_replicas, self.rank = dataset, int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last, self.epoch = shuffle, int(seed), drop_last, 0
        n = len(dataset)
        if drop_last and n % self.num_replicas:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self):
        n = len(self.dataset)
        indices = torch_randperm(n, self.seed + self.epoch) if self.shuffle else list(range(n))
        if not self.drop_last:
            missing = self.total_size - len(indices)
            if missing > 0 and indices:
                indices += (indices * math.ceil(missing / len(indices)))[:missing]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Shuffle differently this epoch (the same way on every rank): call it before each epoch."""
        self.epoch = epoch
