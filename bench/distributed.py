"""Data-parallel training on MPI (issue #13): the MLP and ResNet-ish training steps of bench/models.py on
1 and 2 processes, and the all-reduce bandwidth on loopback, Avalon's (polled against the timeout) beside
mpi4py's own blocking Allreduce.

Run: `python bench/distributed.py [--steps 6] [--sizes-mb 0.001,0.1,4,32]`. Each configuration is a
fresh `mpirun -n N` (loopback only, one BLAS thread per process). The training step keeps the global
batch (the workload's own: MLP 256, ResNet-ish 64), split over the ranks, under DistributedDataParallel
with SGD-momentum: the figure is samples per second and the speed-up over one process. On a machine of
2 cores shared with other work, 2 processes cannot be more than 2x, and less is the honest figure.
Bandwidth: medians of interleaved rounds, reported as bus bandwidth (2 (N-1)/N · bytes / time, as nccl-tests).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MPIRUN = ["mpirun", "--bind-to", "none", "--oversubscribe", "--mca", "btl", "self,vader",
          "--mca", "oob_tcp_if_include", "lo", "--mca", "btl_tcp_if_include", "lo"]
WORKLOADS = ("MLP", "ResNet-ish")


def launch(n, *args):
    """Run this file's worker on n processes; rank 0's JSON report."""
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "BENCH_THREADS": "1"}
    out = subprocess.run([*MPIRUN, "-n", str(n), sys.executable, __file__, "--worker", *args],
                         capture_output=True, text=True, env=env, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"mpirun -n {n} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# workers (one per rank)

def step_worker(name, steps):
    sys.path.insert(0, str(BENCH))
    import steps as bench_steps  # sets the thread count before numpy loads

    import numpy as np

    import avalon
    import avalon.distributed as dist
    import avalon.nn.functional as F
    from avalon.nn.parallel import DistributedDataParallel

    dist.init_process_group("mpi")
    rank, size = dist.get_rank(), dist.get_world_size()
    models = bench_steps.load_models("avalon")
    x, y = bench_steps.batch_of(name, None, models)
    share = slice(rank * len(x) // size, (rank + 1) * len(x) // size)
    x, y = x[share], y[share]
    ddp = DistributedDataParallel(models.WORKLOADS[name][0]())
    opt = avalon.optim.SGD(ddp.parameters(), lr=bench_steps.LR, momentum=bench_steps.MOMENTUM)
    loss_fn = lambda m, x, y: F.cross_entropy(m(x), y)
    times = []
    for i in range(steps + 2):  # two warm-up steps: the first traces and compiles
        dist.barrier()
        start = time.perf_counter()
        _, grads = avalon.grad(loss_fn, ddp, x, y, argnums=0)
        opt.step(grads[0])
        times.append(time.perf_counter() - start)
    slowest = np.array([statistics.median(times[2:])])
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)  # a step lasts as long as its slowest rank
    if rank == 0:
        print(json.dumps({"seconds": float(slowest[0])}))


def bandwidth_worker(sizes_mb, rounds=11):
    import numpy as np

    import avalon.distributed as dist

    dist.init_process_group("mpi")
    comm = dist.group.current().comm
    from mpi4py import MPI

    result = {}
    for mb in sizes_mb:
        a = np.ones(max(1, int(mb * 1024 * 1024 / 4)), np.float32)
        repeats = max(3, min(200, int(16 / max(mb, 1e-3))))
        samples = {"avalon": [], "mpi4py": []}
        for _ in range(rounds):
            for who in samples:
                comm.Barrier()
                start = time.perf_counter()
                for _ in range(repeats):
                    if who == "avalon":
                        dist.all_reduce(a)
                    else:
                        comm.Allreduce(MPI.IN_PLACE, a, MPI.SUM)
                samples[who].append((time.perf_counter() - start) / repeats)
        size = dist.get_world_size()
        result[str(mb)] = {who: 2 * (size - 1) / size * a.nbytes / statistics.median(s) / 1e9
                           for who, s in samples.items()}
    if dist.get_rank() == 0:
        print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--sizes-mb", default="0.001,0.1,4,32")
    parser.add_argument("--worker", nargs="*")
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "step":
            step_worker(rest[0], args.steps)
        else:
            bandwidth_worker([float(s) for s in args.sizes_mb.split(",")])
        return
    print("| workload (global batch) | 1 process: samples/s | 2 processes: samples/s | speed-up |")
    print("|---|---|---|---|")
    sys.path.insert(0, str(BENCH))
    for name in WORKLOADS:
        batch = {"MLP": 256, "ResNet-ish": 64}[name]
        one, two = (launch(n, "step", name, "--steps", str(args.steps))["seconds"] for n in (1, 2))
        print(f"| {name} ({batch}) | {batch / one:.1f} | {batch / two:.1f} | {one / two:.2f}x |", flush=True)
    bandwidth = launch(2, "bandwidth", "--sizes-mb", args.sizes_mb)
    print("\n| all-reduce size (MB, float32) | Avalon GB/s | mpi4py Allreduce GB/s | ratio |")
    print("|---|---|---|---|")
    for mb, figures in bandwidth.items():
        print(f"| {mb} | {figures['avalon']:.3g} | {figures['mpi4py']:.3g} | "
              f"{figures['avalon'] / figures['mpi4py']:.2f} |")


if __name__ == "__main__":
    main()
