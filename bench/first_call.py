"""The first call of a training step's gradient (trace + backward transform + compile + run) against a
cached call, split by phase, with its memory, and how tracing scales with depth (issue #9).

    python bench/first_call.py [threads] [--only ResNet-18,GPT-12] [--depths 12,24,48] [--cached 5]

Each model is measured in a fresh subprocess: a first call pays for memory the process has never
touched (every page is faulted in by the kernel, which on a virtual machine costs as much as the
arithmetic), so a first call after another model's would look cheaper than a user's is. Phases:

- forward: running the function on tracers, the forward values computed as it goes;
- backward: the backward transform (rules appended to the tape), the gradient values computed;
- of which compute: the time inside the primitives' implementations during those two (numpy's work);
- passes: the compile passes (folding, CSE, layout, accumulation, dead code, fusion, buffer plan);
- codegen: generating the replay's source; compile: Python's `compile` and `exec` of it;
- rest: everything else in the first call (flattening, the cache, copying the outputs).

Phases are CPU seconds (the machine these run on is shared: wall seconds swing by several times);
the first and cached calls are given in both.

The models: the torchvision-style ResNet-18 of tests/zoo (batch 8, 64×64), the ResNet-ish and
Transformer workloads of bench/models.py (their issue batch sizes), and the nanoGPT of tests/zoo at
d 128, 4 heads, sequence 64, batch 8, at each depth of `--depths`. Peak memory is the growth of the
resident-set high-water mark over the first call, and over one cached call after it. Nothing is
asserted; it prints Markdown tables.
"""
from harness import BENCH, THREADS, peak_rss_mb, reset_peak_rss, run_json  # noqa: I001 - sets the threads

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import linecache  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

ZOO = BENCH.parent / "tests" / "zoo" / "models"
GPT_SHAPE = dict(n_embd=128, n_head=4, block_size=64, vocab_size=256, batch=8)


def ported(path, module_name):
    """A PyTorch file with every "torch" renamed "avalon" (a user's port), as a module."""
    text = Path(path).read_text().replace("torch", "avalon")
    filename = str(Path(path).with_suffix(".avalon.py"))
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)  # source locations
    module = types.ModuleType(module_name)
    module.__file__ = filename
    sys.modules[module_name] = module  # dataclasses look their module up
    exec(compile(text, filename, "exec"), module.__dict__)
    return module


def workload(name):
    """(model, loss function, its arguments after the model) for a model name (`GPT-24`: 24 layers)."""
    import numpy as np

    import avalon
    import avalon.nn.functional as F

    avalon.manual_seed(0)
    rng = np.random.default_rng(0)
    if name == "ResNet-18":
        zoo = ported(ZOO / "resnet_torchvision_style.py", "first_call_resnet")
        images = rng.standard_normal((8, 3, 64, 64), dtype=np.float32)
        return zoo.resnet18(num_classes=10), zoo.loss_fn, (images, rng.integers(0, 10, 8))
    if name.startswith("GPT-"):
        zoo = ported(ZOO / "nanogpt.py", "first_call_gpt")
        shape = dict(GPT_SHAPE)
        batch = shape.pop("batch")
        model = zoo.GPT(zoo.GPTConfig(n_layer=int(name[4:]), dropout=0.0, bias=True, **shape))
        idx = rng.integers(0, shape["vocab_size"], (batch, shape["block_size"]))
        return model, zoo.loss_fn, (idx, np.roll(idx, -1, axis=1))
    models = ported(BENCH / "models.py", "first_call_models")
    cls, shape, batch = models.WORKLOADS[name]

    def loss_fn(model, x, y):
        return F.cross_entropy(model(x), y)

    x = rng.standard_normal((batch, *shape), dtype=np.float32)
    return cls(), loss_fn, (x, rng.integers(0, models.CLASSES, batch))


class Phases:
    """Wraps the functions a first call goes through with timers of CPU time (steadier than wall time
    on a shared machine; with one BLAS thread the two agree on a quiet one), and takes them off again."""

    def __init__(self):
        self.seconds = {}
        self._undo = []
        self._computing = 0
        self._impls = {}

    def wrap(self, owner, attr, phase):
        original = getattr(owner, attr)

        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[phase] = self.seconds.get(phase, 0.0) + time.process_time() - start

        setattr(owner, attr, timed)
        self._undo.append(lambda: setattr(owner, attr, original))

    def wrap_compute(self, prim):
        """Time spent in a primitive's implementation (outermost calls only: one may call another),
        until `restore_impls`."""
        original = self._impls[prim] = prim.impl

        def impl(*args, **kwargs):
            self._computing += 1
            start = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self._computing -= 1
                if not self._computing:
                    self.seconds["compute"] = self.seconds.get("compute", 0.0) + time.process_time() - start

        prim.impl = impl

    def restore_impls(self):
        for prim, original in self._impls.items():
            prim.impl = original

    def undo(self):
        self.restore_impls()
        while self._undo:
            self._undo.pop()()


def measure(name, cached_calls):
    """One model in this process: the first call by phase, then cached calls; seconds and MB."""
    import builtins

    import avalon
    from avalon.compile import codegen
    from avalon.ops import PRIMITIVES
    from avalon.tape import Tape

    grad_module = sys.modules["avalon.autodiff.grad"]
    model, loss_fn, args = workload(name)
    phases = Phases()
    phases.wrap(grad_module, "record", "trace")
    phases.wrap(grad_module, "backward", "backward")
    for prim in list(PRIMITIVES.values()):
        phases.wrap_compute(prim)
    compile_tape = Tape.compile

    def compile_with_plain_impls(tape, **options):
        phases.restore_impls()  # the generated code must call the primitives, not the timers
        return compile_tape(tape, **options)

    Tape.compile = compile_with_plain_impls
    for attr in ("constant_folding", "common_subexpressions", "matmul_layout", "dead_code", "buffer_plan",
                 "workspace_slots"):
        phases.wrap(codegen.passes, attr, "passes")
    phases.wrap(codegen, "accumulate_slices", "passes")
    phases.wrap(codegen, "fuse_elementwise", "passes")
    phases.wrap(codegen, "_generate", "codegen")
    codegen.compile, codegen.exec = builtins.compile, builtins.exec  # module globals shadowing the
    phases.wrap(codegen, "compile", "compile")  # builtins, to time them
    phases.wrap(codegen, "exec", "compile")
    nodes = {}
    record = grad_module.record

    def counted(*a, **k):
        recording = record(*a, **k)
        nodes["tape"] = len(recording.tape.nodes)
        return recording

    grad_module.record = counted
    gc.collect()
    base = reset_peak_rss()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start, cpu = time.perf_counter(), time.process_time()
    avalon.grad(loss_fn, model, *args)
    first, first_cpu = time.perf_counter() - start, time.process_time() - cpu
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    first_peak = peak_rss_mb() - base
    grad_module.record = record
    Tape.compile = compile_tape
    phases.undo()
    del codegen.compile, codegen.exec
    avalon.grad(loss_fn, model, *args)  # a cached call, untimed: the replay's own first run
    gc.collect()
    reset_peak_rss()
    avalon.grad(loss_fn, model, *args)
    cached_peak = peak_rss_mb() - base  # from before the first call: what a cached call holds at most
    cached, cached_cpu = [], []
    for _ in range(cached_calls):
        start, cpu = time.perf_counter(), time.process_time()
        avalon.grad(loss_fn, model, *args)
        cached.append(time.perf_counter() - start)
        cached_cpu.append(time.process_time() - cpu)
    s = phases.seconds
    trace, backward = s.get("trace", 0.0), s.get("backward", 0.0)
    compiling = s.get("passes", 0.0) + s.get("codegen", 0.0) + s.get("compile", 0.0)
    return dict(name=name, threads=THREADS, nodes=nodes.get("tape"), first_s=first, cached_s=statistics.median(cached),
                first_cpu_s=first_cpu, cached_cpu_s=statistics.median(cached_cpu),
                forward_s=trace - backward, backward_s=backward, compute_s=s.get("compute", 0.0),
                passes_s=s.get("passes", 0.0), codegen_s=s.get("codegen", 0.0), compile_s=s.get("compile", 0.0),
                rest_s=first_cpu - trace - compiling,
                first_peak_mb=first_peak, cached_peak_mb=cached_peak, first_faults=faults)


def tables(results):
    lines = ["| model | tape nodes | first call s (CPU s) | forward CPU s | backward | (compute) | passes | codegen "
             "| compile | rest | cached s (CPU s) | first / cached (CPU) | first − cached CPU s | peak MB first "
             "| peak MB cached | pages faulted in |", "|" + "---|" * 16]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['nodes']} | {r['first_s']:.2f} ({r['first_cpu_s']:.2f}) | {r['forward_s']:.2f} "
            f"| {r['backward_s']:.2f} | {r['compute_s']:.2f} | {r['passes_s']:.2f} | {r['codegen_s']:.2f} "
            f"| {r['compile_s']:.2f} | {r['rest_s']:.2f} | {r['cached_s']:.3f} ({r['cached_cpu_s']:.3f}) "
            f"| {r['first_cpu_s'] / r['cached_cpu_s']:.1f} | {r['first_cpu_s'] - r['cached_cpu_s']:.2f} "
            f"| {r['first_peak_mb']:.0f} "
            f"| {r['cached_peak_mb']:.0f} | {r['first_faults']} |")
    gpts = sorted((r for r in results if r["name"].startswith("GPT-")), key=lambda r: int(r["name"][4:]))
    if len(gpts) > 1:
        lines += ["", "| GPT layers | tape nodes | first − cached CPU s | per layer ms | per node µs | "
                      "passes + codegen + compile CPU s |", "|---|---|---|---|---|---|"]
        for r in gpts:
            layers = int(r["name"][4:])
            overhead = r["first_cpu_s"] - r["cached_cpu_s"]
            lines.append(f"| {layers} | {r['nodes']} | {overhead:.2f} | {1e3 * overhead / layers:.0f} "
                         f"| {1e6 * overhead / r['nodes']:.0f} "
                         f"| {r['passes_s'] + r['codegen_s'] + r['compile_s']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("threads", nargs="?", default="1", help="BLAS threads (default 1)")
    parser.add_argument("--only", default="ResNet-18,ResNet-ish,Transformer", help="models, comma-separated")
    parser.add_argument("--depths", default="12,24,48", help="GPT depths, comma-separated ('' for none)")
    parser.add_argument("--cached", type=int, default=5, help="cached calls timed (median; default 5)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker, args.cached)))
        return
    names = [n for n in args.only.split(",") if n] + [f"GPT-{d}" for d in args.depths.split(",") if d]
    results = []
    for name in names:
        print(f"{name}…", file=sys.stderr, flush=True)
        try:
            results.append(run_json(__file__, [THREADS, "--worker", name, "--cached", args.cached], THREADS))
        except RuntimeError as failed:  # one model's failure leaves the others' rows
            print(failed, file=sys.stderr, flush=True)
            continue
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(tables(results))


if __name__ == "__main__":
    main()
