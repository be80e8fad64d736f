"""Elementwise fusion and workspaces, A/B in one process: the training step of issue #9's workloads
(bench/models.py, SGD with momentum, fp32) compiled three ways — `compile(fuse=False)`, the default
(fused), and fused with `workspace=True` — steps alternating with PyTorch's, medians; the share of the
compiled step ReLU's backward takes in the profiler, unfused (its `greater` and `where`) and fused
(the fused calls); and each variant's peak memory (growth of the resident-set high-water mark over
three steps, each variant in a process of its own).

Run: `python bench/fusion.py [threads] [--steps N] [--only MLP,ResNet-ish]` (prints a Markdown table).
"""
import harness  # noqa: I001 - sets the thread count before numpy loads

import argparse  # noqa: E402
import contextlib  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

import steps  # noqa: E402

VARIANTS = {"unfused": dict(fuse=False), "fused": {}, "fused+workspace": dict(workspace=True)}
MASKS = {"greater", "where"}  # ReLU's backward unfused: what the fused calls replace (with an add at times)


@contextlib.contextmanager
def compiled_with(**options):
    """Tapes compiled inside compile with these options (the first call of a step compiles it)."""
    import avalon.compile

    plain = avalon.compile.compile_tape
    avalon.compile.compile_tape = functools.partial(plain, **options)
    try:
        yield
    finally:
        avalon.compile.compile_tape = plain


def avalon_steps(name, x, y, state):
    """{variant: a compiled training step}, each traced and compiled with its options."""
    models = steps.load_models("avalon")
    out = {}
    for variant, options in VARIANTS.items():
        _, step = steps.avalon_step(models, name, x, y, state)
        with compiled_with(**options):
            step()
        out[variant] = step
    return out


def fusable_share(name, x, y, options):
    """Share of the compiled step's time in ReLU's backward per the profiler: its `greater` and `where`
    unfused, the fused calls fused."""
    import avalon
    import avalon.nn.functional as F
    from avalon.profile import profile_tape

    models = steps.load_models("avalon")
    model = models.WORKLOADS[name][0]()
    tape = avalon.grad_tape(lambda m, x, y: F.cross_entropy(m(x), y), model, x, y)
    with compiled_with(**options):
        prof = profile_tape(tape, repeat=5)
    ops = [g for g in prof.by_op() if g["name"] in MASKS or g["name"].startswith("fused(")]
    return sum(g["share"] for g in ops), prof.total_s


def measure_time(name, n_steps):
    import torch  # noqa: F401

    theirs = steps.load_models("torch")
    x, y = steps.batch_of(name, None, theirs)
    torch_model, torch_fn = steps.torch_step(theirs, name, x, y)
    ours = avalon_steps(name, x, y, torch_model.state_dict())
    fns = [*ours.values(), torch_fn]
    harness.alternating_seconds(fns, 2)
    samples = harness.alternating_seconds(fns, n_steps)
    result = {"name": name, "threads": harness.THREADS,
              "ms": {v: 1e3 * statistics.median(s) for v, s in zip([*ours, "torch"], samples)}}
    result["share"] = {v: fusable_share(name, x, y, VARIANTS[v])[0] for v in ("unfused", "fused")}
    return result


def measure_memory(name, variant):
    theirs = steps.load_models("torch") if variant == "torch" else None
    models = steps.load_models("avalon") if variant != "torch" else theirs
    x, y = steps.batch_of(name, None, models)
    if variant == "torch":
        _, step = steps.torch_step(models, name, x, y)
        run = step
    else:
        _, step = steps.avalon_step(models, name, x, y)

        def run():
            with compiled_with(**VARIANTS[variant]):
                step()
    gc.collect()
    base = harness.reset_peak_rss()
    for _ in range(steps.MEMORY_STEPS):
        run()
    return {"peak_mb": harness.peak_rss_mb() - base}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("threads", nargs="?", default="1")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--only", default="MLP,LeNet,ResNet-ish,LSTM,Transformer")
    parser.add_argument("--memory", action="store_true", help="also peak memory (a process per variant)")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure_memory(*args.worker)))
        return
    names = args.only.split(",")
    print("| workload | unfused ms | fused ms | fused + workspace ms | PyTorch ms | fused / unfused "
          "| workspace / fused | ReLU backward's share unfused → fused |" + (" peak MB unfused / fused / "
                                                                         "fused+ws / torch |" if args.memory else ""))
    print("|---|---|---|---|---|---|---|---|" + ("---|" if args.memory else ""))
    for name in names:
        print(f"{name}…", file=sys.stderr, flush=True)
        r = measure_time(name, args.steps)
        ms = r["ms"]
        row = (f"| {name} | {ms['unfused']:.1f} | {ms['fused']:.1f} | {ms['fused+workspace']:.1f} | "
               f"{ms['torch']:.1f} | {ms['fused'] / ms['unfused']:.2f} | {ms['fused+workspace'] / ms['fused']:.2f} "
               f"| {100 * r['share']['unfused']:.1f}% → {100 * r['share']['fused']:.1f}% |")
        if args.memory:
            mem = [harness.run_json(__file__, ["--worker", name, v], harness.THREADS)["peak_mb"]
                   for v in (*VARIANTS, "torch")]
            row += " " + " / ".join(f"{m:,.0f}" for m in mem) + " |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
