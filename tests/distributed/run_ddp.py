"""Scenario (2 ranks): 10 steps of SGD with momentum under DistributedDataParallel end where one process
training on the combined batches ends, on both ranks; gradient accumulation under no_sync; small buckets; a
step compiled whole (avalon.jit) averages at every replay; buffers are rank 0's at every forward.
Each rank reports its parameters' checksum, then `ok`. argv[1]: bucket_cap_mb."""
import sys

import numpy as np

import avalon
import avalon.distributed as dist
from report import say
import avalon.nn as nn
import avalon.nn.functional as F
from avalon import optim
from avalon.nn.parallel import DistributedDataParallel

dist.init_process_group("mpi")
rank, size = dist.get_rank(), dist.get_world_size()
bucket_cap_mb = float(sys.argv[1])


def model(seed):
    avalon.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))


def batches(step):  # every rank's batch of this step: rank r's is the r-th half of the combined batch
    data = np.random.default_rng(step)
    return data.standard_normal((2 * 8, 5)).astype(np.float32), data.integers(0, 3, 2 * 8)


loss_fn = lambda m, x, y: F.cross_entropy(m(x), y)
# One process on the combined batches, from rank 0's initial weights
reference = model(0)
ref_opt = optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
for step in range(10):
    x, y = batches(step)
    ref_opt.step(avalon.grad(loss_fn, reference, x, y)[1][0])

ddp = DistributedDataParallel(model(rank), bucket_cap_mb=bucket_cap_mb)  # rank 1 starts elsewhere: broadcast
assert list(ddp.state_dict())[:2] == ["module.0.weight", "module.0.bias"], list(ddp.state_dict())
assert ddp.module is ddp._modules["module"]
opt = optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
for step in range(10):
    x, y = batches(step)
    part = slice(rank * 8, (rank + 1) * 8)
    loss, grads = avalon.grad(loss_fn, ddp, x[part], y[part])
    opt.step(grads[0])
for (name, p), (_, q) in zip(ddp.module.named_parameters(), reference.named_parameters()):
    assert np.allclose(p, q, rtol=1e-5, atol=1e-6), (name, np.abs(p - q).max())
checksum = float(sum(np.asarray(p, np.float64).sum() for p in ddp.parameters()))
say(rank, f"{checksum!r}")

# Accumulation: two micro-batches under no_sync then one synchronised call = the mean over ranks of the sums
x, y = batches(99)
micro = [(x[rank * 8 + k * 4: rank * 8 + (k + 1) * 4], y[rank * 8 + k * 4: rank * 8 + (k + 1) * 4]) for k in (0, 1)]
with ddp.no_sync():
    _, local = avalon.grad(loss_fn, ddp, *micro[0])
mine = avalon.grad(loss_fn, ddp.module, *micro[0])[1][0]
assert all(np.array_equal(local[0][n], mine[n[len("module."):]]) for n in local[0].keys())  # not averaged
_, accumulated = avalon.grad(loss_fn, ddp, *micro[1])
every = [[(x[r * 8 + k * 4: r * 8 + (k + 1) * 4], y[r * 8 + k * 4: r * 8 + (k + 1) * 4]) for k in (0, 1)]
         for r in range(size)]
for name, g in accumulated[0]:
    expected = sum(avalon.grad(loss_fn, ddp.module, *mb)[1][0][name[len("module."):]] for r in every for mb in r) / size
    assert np.allclose(g, expected, rtol=1e-5, atol=1e-7), (name, np.abs(g - expected).max())

# A step compiled whole (avalon.jit around avalon.grad): the averaging is recorded (all_reduce_sum), and the
# replays communicate at every call
@avalon.jit
def gradients(model, x, y):
    return [g for _, g in avalon.grad(loss_fn, model, x, y)[1][0]]


for step in range(3):
    x, y = batches(200 + step)
    part = slice(rank * 8, (rank + 1) * 8)
    compiled = gradients(ddp, x[part], y[part])
    expected = avalon.grad(loss_fn, reference, x, y)[1][0]  # reference holds the same weights by now
    for g, (name, e) in zip(compiled, expected):
        assert np.allclose(g, e, rtol=1e-5, atol=1e-6), (step, name, np.abs(g - e).max())
with ddp.no_sync():  # a second compiled entry (the flag is part of the key): this rank's own gradients
    local = gradients(ddp, x[part], y[part])
own = avalon.grad(loss_fn, ddp.module, x[part], y[part])[1][0]
assert all(np.allclose(g, e, rtol=1e-6) for g, (_, e) in zip(local, own))
assert all(np.allclose(g, e, rtol=1e-5, atol=1e-6) for g, (_, e) in zip(gradients(ddp, x[part], y[part]), expected))

# Buffers (BatchNorm without Sync): every forward starts from rank 0's running statistics, as torch's
bn = DistributedDataParallel(nn.BatchNorm1d(3))
for step in range(3):
    previous = [np.zeros(3, np.float32) for _ in range(size)]
    dist.all_gather(previous, np.array(bn.module.running_mean))
    batch = np.random.default_rng(300 + 10 * step + rank).standard_normal((5, 3)).astype(np.float32) + rank
    bn(batch)
    expected = 0.9 * previous[0] + 0.1 * batch.mean(0)  # rank 0's statistics, then this rank's batch
    assert np.allclose(bn.module.running_mean, expected, atol=1e-6), (step, bn.module.running_mean, expected)
    assert int(bn.module.num_batches_tracked) == step + 1
say(rank, "ok")
