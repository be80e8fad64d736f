"""DistributedDataParallel across 2 MPI processes (run_ddp.py): training equals one process on the combined
batches and leaves both ranks identical; gradient accumulation; buckets."""
import numpy as np
import pytest

import avalon.distributed as dist
import avalon.nn as nn
from avalon.nn.parallel import DistributedDataParallel
from avalon.nn.parallel.distributed import _buckets
from mpi_launch import mpirun, needs_mpi, outputs


@needs_mpi
@pytest.mark.parametrize("bucket_cap_mb", [25, 0.0001])  # one bucket; one per parameter
def test_sgd_momentum_under_ddp_equals_one_process_on_the_combined_batches(bucket_cap_mb):
    result = mpirun("run_ddp.py", bucket_cap_mb)
    assert result.returncode == 0, result.stderr
    per_rank = outputs(result)
    assert per_rank[0][-1] == per_rank[1][-1] == "ok", result.stdout
    assert per_rank[0][0] == per_rank[1][0]  # the parameters' checksums, to the last digit


def test_buckets_hold_one_dtype_up_to_the_cap_in_order():
    arrays = [("a", np.zeros(10, np.float32)), ("b", np.zeros(10, np.float32)), ("c", np.zeros(30, np.float32)),
              ("d", np.zeros(2, np.float64)), ("e", np.zeros(1, np.float64))]
    names = [[name for name, _ in bucket] for bucket in _buckets(arrays, cap=80)]
    assert names == [["a", "b"], ["c"], ["d", "e"]]  # c alone exceeds the cap; a dtype change starts a bucket


def test_without_a_process_group_ddp_says_to_create_one_and_changes_nothing():
    model = nn.Linear(2, 2)
    before = np.array(model.weight)
    with pytest.raises(dist.DistributedError, match=r"init_process_group\('mpi'\)"):
        DistributedDataParallel(model)
    assert np.array_equal(model.weight, before)
    with pytest.raises(dist.DistributedError, match="wraps an nn.Module, got a function"):
        DistributedDataParallel(lambda x: x)
