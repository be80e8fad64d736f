"""Scenario (2 ranks): every collective in float32 and float64, checked here against numpy; reports `ok` from each rank."""
import sys

import numpy as np

import avalon
import avalon.distributed as dist
from report import say

dist.init_process_group("mpi")
rank, size = dist.get_rank(), dist.get_world_size()
assert size == 2 and dist.is_initialized()


def value(r, dtype, shape=(3, 4)):  # what rank r contributes
    return (np.arange(np.prod(shape)).reshape(shape) * (r + 1) + 0.25 * r).astype(dtype)


for dtype in (np.float32, np.float64):
    every = [value(r, dtype) for r in range(size)]
    for op, expected in ((dist.ReduceOp.SUM, sum(every)), (dist.ReduceOp.AVG, sum(every) / size),
                         (dist.ReduceOp.MAX, np.maximum(*every)), (dist.ReduceOp.MIN, np.minimum(*every))):
        a = value(rank, dtype)
        dist.all_reduce(a, op=op)
        assert a.dtype == dtype and np.allclose(a, expected, rtol=1e-6), (op, a, expected)
    b = value(rank, dtype)
    dist.broadcast(b, src=1)
    assert np.array_equal(b, every[1])
    gathered = [np.zeros((3, 4), dtype) for _ in range(size)]
    dist.all_gather(gathered, value(rank, dtype))
    assert all(np.array_equal(g, e) for g, e in zip(gathered, every))
    out = np.zeros((3, 4), dtype)
    inputs = [value(rank, dtype) + 10 * k for k in range(size)]  # part k goes to rank k
    dist.reduce_scatter(out, inputs, op=dist.ReduceOp.SUM)
    assert np.allclose(out, sum(value(r, dtype) + 10 * rank for r in range(size))), out
    # The traced primitive inside a cached gradient: it communicates at every call (replays too), and its
    # rule sums the cotangents of all ranks' outputs (the gradient of the ranks' losses added up)
    for step in range(3):
        x = value(rank, dtype) + step
        loss, (g,) = avalon.grad(lambda x: (dist.all_reduce_sum(2 * x) ** 2).sum(), x)
        y = 2 * sum(value(r, dtype) + step for r in range(size))
        assert np.allclose(loss, (y ** 2).sum(), rtol=1e-5) and np.allclose(g, 8 * y, rtol=1e-5), (step, g, y)
dist.barrier()
# A refused call changes nothing and says what to do
a = np.ones(3, np.int64)
try:
    dist.all_reduce(a, op=dist.ReduceOp.AVG)
    raise SystemExit("AVG on integers was not refused")
except dist.DistributedError as error:
    assert "integer" in str(error) and np.array_equal(a, np.ones(3)), error
# In traced code the in-place collective is refused, naming the recorded one
try:
    avalon.grad(lambda x: (dist.all_reduce(x) or x).sum(), np.ones(3))
    raise SystemExit("all_reduce on a tracer was not refused")
except dist.DistributedError as error:
    assert "all_reduce_sum" in str(error), error
say(rank, "ok")
dist.destroy_process_group()
assert not dist.is_initialized()
sys.exit(0)
