"""A whole training step of issue #9's five workloads, Avalon against PyTorch: forward, cross-entropy,
backward and an SGD-with-momentum update of the same model (PyTorch's state_dict loaded into Avalon's)
on the same fixed batch, fp32.

Run: `python bench/steps.py` (about ten minutes; prints one Markdown table). For each thread count
(`--threads 2,1`) and workload, each library runs in fresh subprocesses of its own, ROUNDS of them each,
alternating (Avalon, PyTorch, PyTorch, Avalon, …): medians over all their `--steps` steps, each process
after `--warmup` steps, and the first call (trace + compile + run) apart. Not in one process: there the
two libraries slow each other down, which no user running one library meets. Avalon used to hold
glibc's mmap threshold at 128 KiB, so PyTorch's larger tensors were mapped and faulted in afresh
at every step (its LSTM step at one thread 32 -> 51 ms), and after a numpy product on two threads
OpenBLAS's worker spins on a core for 0.1 s or more (PyTorch's 2-thread LSTM step 19 -> 86 ms). A
PyTorch process never imports Avalon, and runs with the GOMP_SPINCOUNT its users get (libgomp's
default unless the environment sets one); Avalon's run with Avalon's (bench/harness.py). Each process
measures numpy's fp32 GEMM rate too, so each library's share of the GEMM floor (the step's FLOPs,
bench/flops.py, ÷ that rate, ÷ the step's time) is of that run's machine. Peak memory is the growth of
the resident-set high-water mark over three steps after the model is built, each library in a
subprocess of its own. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset in the subprocesses.

Where both libraries share a process (the smoke mode; bench/op_shares.py and others), they share one
OpenMP runtime and its thread count: so that neither step inherits what the other left, every PyTorch
step first puts torch.set_num_threads back, and Avalon's count is given to avalon.set_num_threads,
which every oneDNN call of Avalon's sets before it runs.

`python bench/steps.py --smoke`: CI's check that every workload still runs in both libraries (small
batches, one step after the first call, in this process, losses compared); it asserts nothing about time.
"""
from harness import (BENCH, SPINCOUNT, THREADS, USER_SPINCOUNT, alternating_seconds, gemm,  # noqa: I001 - sets
                     peak_rss_mb, reset_peak_rss, run_json, time_calls)  # the thread count before numpy loads

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import linecache  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402

import flops  # noqa: E402

TITLES = {
    "MLP": "MLP 784-1024-1024-10, batch 256",
    "LeNet": "LeNet-style CNN (conv 1→32→64 3×3, max pool, fc 1600→128→10), 28×28, batch 128",
    "ResNet-ish": "ResNet-ish: stem conv 3→64 + BN, 4 basic blocks of 64 channels, 32×32, batch 64",
    "LSTM": "LSTM 128→256, seq 50, batch 32, batch_first, last step → Linear 10",
    "Transformer": "Transformer encoder (d 256, 4 heads, ff 1024, 2 layers, dropout 0), seq 128, batch 16",
}
LR, MOMENTUM = 0.01, 0.9
SMOKE_BATCH = 2
MEMORY_STEPS = 3
ROUNDS = 4  # processes per library and thread count
MODELS = BENCH / "models.py"


# the workloads in either library

def load_models(library):
    """bench/models.py as written ("torch"), or renamed, as a user ports it ("avalon")."""
    if library == "torch":
        spec = importlib.util.spec_from_file_location("bench_models_torch", MODELS)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    text = MODELS.read_text().replace("torch", "avalon")
    filename = str(MODELS.with_suffix(".avalon.py"))
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)  # tracebacks, locations
    module = types.ModuleType("bench_models_avalon")
    module.__file__ = filename
    exec(compile(text, filename, "exec"), module.__dict__)
    return module


def batch_of(name, batch, models):
    """A fixed batch (numpy float32 inputs, int64 labels) of the workload, `batch` examples or its own."""
    import numpy as np

    _, shape, default = models.WORKLOADS[name]
    rng = np.random.default_rng(0)
    n = batch or default
    return rng.standard_normal((n, *shape), dtype=np.float32), rng.integers(0, models.CLASSES, n)


def torch_step(models, name, x, y):
    """(the model, a function running one training step and returning its loss) in PyTorch."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(THREADS)
    model = models.WORKLOADS[name][0]()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        torch.set_num_threads(THREADS)  # the OpenMP count Avalon's step may have left otherwise (6 µs)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(tx), ty)
        loss.backward()
        opt.step()
        return loss.item()

    return model, step


def avalon_step(models, name, x, y, state=None):
    """(the model, a function running one training step and returning its loss) in Avalon, from
    `state` (a PyTorch state_dict) when given."""
    import avalon
    import avalon.nn.functional as F

    avalon.set_num_threads(THREADS)  # each oneDNN call sets it, whatever PyTorch's step left
    model = models.WORKLOADS[name][0]()
    if state is not None:
        model.load_state_dict(state)
    opt = avalon.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def loss_fn(model, x, y):
        return F.cross_entropy(model(x), y)

    def step():
        loss, grads = avalon.grad(loss_fn, model, x, y, argnums=0)
        opt.step(grads[0])
        return float(loss)

    return model, step


# the two measurements, each meant for a process of its own

def measure_time(name, batch=None, steps=20, warmup=3, gemm_n=2048, libraries=("avalon", "torch")):
    """The libraries' step times on one workload, alternating, with the first calls apart, and numpy's
    GEMM rate in this process: the best of products timed before the steps and between them (on a busy
    machine the best of many samples comes nearest to what the machine can do). With one library, the
    products are timed after its steps only, so that OpenBLAS's spinning worker (see the module
    docstring) never precedes a step (a LeNet step right after one took 46-51 ms instead of 39)."""
    import torch  # loaded before the clock starts (Avalon's weights are PyTorch's: its processes load it too)

    theirs = load_models("torch")
    x, y = batch_of(name, batch, theirs)
    torch.manual_seed(0)  # the same weights in every process
    torch_model, torch_fn = torch_step(theirs, name, x, y)
    runners = {"torch": torch_fn}
    if "avalon" in libraries:  # a PyTorch process never loads Avalon (see the module docstring)
        runners["avalon"] = avalon_step(load_models("avalon"), name, x, y, torch_model.state_dict())[1]
    fns = [runners[library] for library in libraries]
    if len(fns) > 1:
        product, product_flops = gemm(gemm_n)
        product_s = time_calls(product, 3)
    first = {}
    for library, fn in zip(libraries, fns):
        start = time.perf_counter()
        loss = fn()
        first[library] = (time.perf_counter() - start, loss)
    alternating_seconds(fns, warmup)
    if len(fns) > 1:
        *samples, between = alternating_seconds(fns, steps, each_round=product)
    else:
        samples = alternating_seconds(fns, steps)
        product, product_flops = gemm(gemm_n)
        product_s, between = [], time_calls(product, 3)
    result = dict(name=name, threads=THREADS, batch=len(x), full=len(x) == theirs.WORKLOADS[name][2],
                  steps=steps, gemm_gflops=product_flops / min(product_s + between) / 1e9,
                  flops=flops.COUNTS[name](len(x)))
    for library, seconds in zip(libraries, samples):
        result.update({f"{library}_samples": seconds, f"{library}_s": statistics.median(seconds),
                       f"{library}_first_s": first[library][0], f"{library}_loss": first[library][1]})
    if len(fns) > 1:
        _same_losses(result)
    return result


def _same_losses(result):
    ours, theirs = result["avalon_loss"], result["torch_loss"]
    if abs(ours - theirs) > 1e-4 * max(1.0, abs(theirs)):
        raise AssertionError(f"{result['name']}: the first losses differ: avalon {ours}, torch {theirs}")


def merged(runs):
    """One result from single-library runs of a workload (`measure_time(..., libraries=(one,))`): the
    medians over all their steps, the first processes' first calls, the best GEMM rate."""
    result = dict(runs[0], gemm_gflops=max(r["gemm_gflops"] for r in runs))
    for library in ("avalon", "torch"):
        mine = [r for r in runs if f"{library}_s" in r]
        seconds = [s for r in mine for s in r[f"{library}_samples"]]
        result.update({f"{library}_samples": seconds, f"{library}_s": statistics.median(seconds),
                       f"{library}_first_s": mine[0][f"{library}_first_s"],
                       f"{library}_loss": mine[0][f"{library}_loss"]})
    result["steps"] = len(result["avalon_samples"])
    _same_losses(result)
    return result


def measure_memory(library, name, batch=None, steps=MEMORY_STEPS):
    """Growth of this process's resident-set high-water mark (MB) over `steps` steps of one library,
    from just after the model, the batch and the optimiser are built (Avalon's first call, which traces
    and compiles, is one of the steps). Avalon's side never imports torch."""
    models = load_models(library)
    x, y = batch_of(name, batch, models)
    _, step = (torch_step if library == "torch" else avalon_step)(models, name, x, y)
    gc.collect()
    base = reset_peak_rss()
    for _ in range(steps):
        step()
    return dict(name=name, library=library, peak_mb=peak_rss_mb() - base)


# the table

def table(times, memory, steps, warmup, memory_steps=MEMORY_STEPS):
    """One Markdown table: a row per workload and thread count; memory on the rows of the thread count
    it was measured at."""
    rates = {}
    for t in times:
        rates.setdefault(t["threads"], []).append(t["gemm_gflops"])
    rate_text = ", ".join(f"{statistics.median(r):.0f} GFLOP/s at {_threads(n)}" for n, r in rates.items())
    mem_threads = times[0]["threads"] if times else None
    lines = [
        f"Training step (forward, cross-entropy, backward, SGD momentum {MOMENTUM}), fp32"
        f"{', timed in process CPU seconds' if os.environ.get('BENCH_CLOCK') == 'cpu' else ''}; medians of "
        f"{steps} steps after {warmup} warm-up steps, each library in {ROUNDS} fresh processes of its own, "
        f"alternating with the other's (in one process they slow each other down), OPENBLAS_CORETYPE and "
        f"OPENBLAS_L2_SIZE unset, GOMP_SPINCOUNT={SPINCOUNT} for Avalon and "
        f"{USER_SPINCOUNT or 'libgomp’s default'} for PyTorch. First call = trace + compile + run. "
        f"GEMM floor = the step's matmul/conv FLOPs ÷ numpy's fp32 GEMM rate in the same process "
        f"({rate_text}). Memory = growth of the resident-set high-water mark over {memory_steps} step(s) "
        f"after the model is built, each library in its own process, at {_threads(mem_threads)}.",
        "",
        "| workload | threads | Avalon ms | PyTorch ms | Avalon / PyTorch | first call Avalon / PyTorch s "
        "| Avalon % of GEMM floor | PyTorch % | memory MB Avalon / PyTorch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in times:
        floor_s = t["flops"] / (t["gemm_gflops"] * 1e9)
        mem = ""
        if t["threads"] == mem_threads and t["name"] in memory:
            ours, theirs = memory[t["name"]]["avalon"], memory[t["name"]]["torch"]
            mem = f"{ours:,.0f} / {theirs:,.0f}" + (f" ({ours / theirs:.2f}×)" if theirs > 0 else "")
        title = TITLES[t["name"]] if t["full"] else f"{t['name']}, batch {t['batch']}"
        lines.append(
            f"| {title} | {t['threads']} | {t['avalon_s'] * 1e3:,.1f} | {t['torch_s'] * 1e3:,.1f} "
            f"| {t['avalon_s'] / t['torch_s']:.2f} | {t['avalon_first_s']:.2f} / {t['torch_first_s']:.2f} "
            f"| {100 * floor_s / t['avalon_s']:.0f}% | {100 * floor_s / t['torch_s']:.0f}% | {mem} |")
    return "\n".join(lines)


def _threads(n):
    return f"{n} thread{'s' * (n != 1)}"


# entry points

def smoke():
    """Every workload, both libraries, small batches, in this process: the first call and one step
    timed, memory over one step, the table printed. Nothing is asserted about time."""
    times, memory = [], {}
    for name in flops.COUNTS:
        times.append(measure_time(name, SMOKE_BATCH, steps=1, warmup=0, gemm_n=128))
        memory[name] = {lib: measure_memory(lib, name, SMOKE_BATCH, steps=1)["peak_mb"]
                        for lib in ("avalon", "torch")}
    print(table(times, memory, steps=1, warmup=0, memory_steps=1))


def benchmark(threads, steps, warmup, names):
    """The real run: every measurement in a subprocess of its own (the thread count must be set before
    numpy and torch load; the high-water mark is per process)."""
    times, memory = [], {}
    for n in threads:
        for name in names:
            print(f"timing {name} at {n} thread(s)…", file=sys.stderr, flush=True)
            worker = ["--worker", "time", name, "--warmup", warmup, "--steps", max(5, -(-steps // ROUNDS))]
            order, runs = ["avalon", "torch"], []
            for _ in range(ROUNDS):  # each library in processes of its own (see the module docstring)
                for library in order:
                    runs.append(run_json(__file__, [*worker, "--library", library], n, library=library))
                order.reverse()
            times.append(merged(runs))
            summary = {k: v for k, v in times[-1].items() if not k.endswith("_samples")}
            print(json.dumps(summary), file=sys.stderr, flush=True)  # a long run's results so far
    for name in names:
        print(f"memory of {name}…", file=sys.stderr, flush=True)
        memory[name] = {library: run_json(__file__, ["--worker", "memory", name, "--library", library],
                                          threads[0], library=library)["peak_mb"] for library in ("avalon", "torch")}
        print(json.dumps(memory[name]), file=sys.stderr, flush=True)
    print(table(times, memory, steps, warmup))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="one step of each workload, small batches")
    parser.add_argument("--threads", default="2,1", help="thread counts, comma-separated (default 2,1)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per library (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first (default 3)")
    parser.add_argument("--only", default=",".join(TITLES), help="workloads, comma-separated")
    parser.add_argument("--cpu-clock", action="store_true",
                        help="time steps in process CPU seconds (one thread on a busy machine), not wall")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "WORKLOAD"), help=argparse.SUPPRESS)
    parser.add_argument("--library", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cpu_clock:  # read by the workers' harness (a fresh process each)
        os.environ["BENCH_CLOCK"] = "cpu"
    if args.worker:
        kind, name = args.worker
        if kind == "time":
            libraries = (args.library,) if args.library else ("avalon", "torch")
            result = measure_time(name, steps=args.steps, warmup=args.warmup, libraries=libraries)
        else:
            result = measure_memory(args.library, name)
        print(json.dumps(result))
    elif args.smoke:
        smoke()
    else:
        benchmark([int(n) for n in args.threads.split(",")], args.steps, args.warmup, args.only.split(","))


if __name__ == "__main__":
    main()
