"""Scenario (2 ranks): SyncBatchNorm under DDP trains as BatchNorm on the combined batch in one process —
outputs, gradients, running statistics and weights after 3 SGD steps; the ranks' batches differ in size.
Each rank reports `ok`."""
import copy

import numpy as np

import avalon
import avalon.distributed as dist
from report import say
import avalon.nn as nn
import avalon.nn.functional as F
from avalon import optim
from avalon.nn.parallel import DistributedDataParallel

dist.init_process_group("mpi")
rank = dist.get_rank()
avalon.manual_seed(0)
reference = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 5 * 5, 3), nn.BatchNorm1d(3))
synced = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(reference))
assert [type(m).__name__ for m in synced] == ["Conv2d", "SyncBatchNorm", "ReLU", "Flatten", "Linear", "SyncBatchNorm"]
ddp = DistributedDataParallel(synced)
loss_fn = lambda m, x, y: F.cross_entropy(m(x), y)
ref_opt, opt = optim.SGD(reference.parameters(), lr=0.1), optim.SGD(ddp.parameters(), lr=0.1)
sizes = (6, 10)  # rank 0's and rank 1's batch: the combined statistics weigh every sample once
for step in range(3):
    data = np.random.default_rng(step)
    x = (data.standard_normal((16, 2, 5, 5)) * 2 + 1).astype(np.float32)
    y = data.integers(0, 3, 16)
    mine = slice(0, 6) if rank == 0 else slice(6, 16)
    if step == 0:
        out_ref, out = reference(x), ddp(x[mine])  # train mode: statistics of the combined batch
        assert np.allclose(out, out_ref[mine], atol=2e-5), np.abs(out - out_ref[mine]).max()
        reference.load_state_dict(ddp.module.state_dict())  # both updated their running statistics once
    # The combined batch's mean loss is the size-weighted mean of the ranks' losses; DDP averages the ranks'
    # gradients, so each rank's loss is scaled by its share times the number of ranks
    weight = sizes[rank] / 16 * 2
    _, grads = avalon.grad(lambda m, x, y: loss_fn(m, x, y) * weight, ddp, x[mine], y[mine])
    _, ref_grads = avalon.grad(loss_fn, reference, x, y)
    for name, g in grads[0]:
        expected = ref_grads[0][name[len("module."):]]
        assert np.allclose(g, expected, rtol=1e-4, atol=1e-5), (step, name, np.abs(g - expected).max())
    opt.step(grads[0])
    ref_opt.step(ref_grads[0])
for (name, a), (_, b) in zip(ddp.module.state_dict().items(), reference.state_dict().items()):
    assert np.allclose(a, b, rtol=1e-4, atol=1e-5), (name, np.abs(np.asarray(a, float) - b).max())
ddp.eval(), reference.eval()
assert np.allclose(ddp(x[mine]), reference(x[mine]), atol=2e-5)
say(rank, "ok")
