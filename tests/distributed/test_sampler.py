"""DistributedSampler gives exactly torch's partitions (torch only here, to compare: avalon does not import it)."""
import subprocess
import sys

import numpy as np
import pytest

from avalon.data import DataError, DistributedSampler
from avalon.data.distributed import torch_randperm
from mpi_launch import ROOT

torch = pytest.importorskip("torch")
from torch.utils.data import DistributedSampler as TorchSampler  # noqa: E402


@pytest.mark.parametrize("n", [0, 1, 7, 10, 101, 1000])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("shuffle,drop_last", [(True, False), (True, True), (False, False), (False, True)])
def test_partitions_are_torchs(n, replicas, shuffle, drop_last):
    dataset = list(range(n))
    for seed, epoch in ((0, 0), (3, 2), (2 ** 32 + 5, 7)):
        for rank in range(replicas):
            theirs = TorchSampler(dataset, replicas, rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
            ours = DistributedSampler(dataset, replicas, rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
            theirs.set_epoch(epoch), ours.set_epoch(epoch)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_randperm_is_torchs_bit_for_bit():
    for n, seed in ((2, 0), (50, 1), (5000, 12345), (300, 2 ** 40 + 3)):
        assert torch_randperm(n, seed) == torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


def test_the_sampler_does_not_import_torch():
    code = ("import sys, avalon\nfrom avalon.data import DistributedSampler\n"
            "print(list(DistributedSampler(range(10), 2, 1)), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    sampler = TorchSampler(range(10), 2, 1)
    assert out.stdout.split(" False")[0].strip() == str(list(sampler)) and out.stdout.strip().endswith("False"), \
        out.stdout + out.stderr


def test_bad_ranks_are_refused_with_the_fix():
    with pytest.raises(DataError, match=r"rank 2 is not in \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(Exception, match="init_process_group"):
        DistributedSampler(range(4))  # no process group to ask


def test_every_rank_reads_the_same_number_of_samples_and_together_all_of_them():
    parts = [list(DistributedSampler(np.arange(11), 3, r, seed=4)) for r in range(3)]
    assert [len(p) for p in parts] == [4, 4, 4] and set(sum(parts, [])) == set(range(11))
