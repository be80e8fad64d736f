"""SyncBatchNorm: across 2 MPI processes (run_sync_batchnorm.py) it trains as BatchNorm on the combined
batch; in one process it is BatchNorm; convert_sync_batchnorm keeps the parameters and buffers."""
import numpy as np

import avalon
import avalon.nn as nn
from mpi_launch import mpirun, needs_mpi, outputs


@needs_mpi
def test_sync_batchnorm_under_ddp_matches_batchnorm_on_the_combined_batch():
    result = mpirun("run_sync_batchnorm.py")
    assert result.returncode == 0, result.stderr
    assert outputs(result) == {0: ["ok"], 1: ["ok"]}


def test_in_one_process_it_is_batchnorm_forward_backward_and_running_statistics():
    x = np.random.randn(4, 3, 5, 5) * 2 + 1
    bn, sync = nn.BatchNorm2d(3).double(), nn.SyncBatchNorm(3).double()
    for m in (bn, sync):
        m.weight[...] = [1.0, 2.0, 3.0]
        m.bias[...] = 0.5
    loss = lambda m, x: (m(x) ** 3).mean()
    for _ in range(2):  # the traced call, then the replay
        (l1, (g1, gx1)), (l2, (g2, gx2)) = avalon.grad(loss, bn, x), avalon.grad(loss, sync, x)
        assert np.allclose(l1, l2) and np.allclose(gx1, gx2, atol=1e-12)
        assert np.allclose(g1.weight, g2.weight) and np.allclose(g1.bias, g2.bias)
    assert np.allclose(bn.running_var, sync.running_var) and int(sync.num_batches_tracked) == 2
    bn.eval(), sync.eval()
    assert np.allclose(bn(x), sync(x))


def test_convert_sync_batchnorm_replaces_every_batchnorm_keeping_its_state():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.Flatten(), nn.BatchNorm1d(4 * 9)))
    model[1].running_mean[...] = 7.0
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(converted[1], nn.SyncBatchNorm) and isinstance(converted[2][1], nn.SyncBatchNorm)
    assert list(converted.state_dict()) == list(before)
    assert all(np.array_equal(converted.state_dict()[k], v) for k, v in before.items())
    assert isinstance(nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(2)), nn.SyncBatchNorm)
