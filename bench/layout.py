"""How long the workbench takes at model scale (issue #12): for a ResNet-18 training step and a
GPT-style model's at 12 and 57 layers, the trace, each view's construction from the function and its
arguments (tracing included, as a user calls it) and its `.to_html()`, the slowest of opening one
module in TapeView, and the Profiler with its default repeats. One Markdown table, the targets beside
the figures. Nothing is asserted.

    python bench/layout.py [threads] [--resnet 2x32,1x224] [--layers 12,57]

The models: the torchvision-style ResNet-18 of tests/zoo (10 classes) on 2×3×32×32 (this script's
earlier size) and on 1×3×224×224 (ImageNet's), and the nanoGPT of tests/zoo (d 128, 4 heads,
sequence 64, vocabulary 256, dropout 0.1: about 2,100 nodes at 12 layers and 9,700 at 57), batch 1.
Each figure is wall seconds (what the user waits for) with the CPU seconds beside it (this process's
and its Graphviz `dot` runs'): on a shared machine the two part, and the CPU figure is the one that
does not depend on the neighbours. One BLAS thread unless a thread count is given.
"""
from harness import THREADS  # noqa: I001 - sets the threads before numpy loads

import argparse  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from first_call import ZOO, ported  # noqa: E402

VIEWS = ("TapeView", "BackwardStepper", "CheckView", "Workbench", "Profiler")
# the targets, for a ResNet-18 and the two GPT depths alike unless said
OPEN_ONE = "TapeView: open a module (slowest of 6)"
TARGETS = {"trace": "–", "TapeView": "≤ 2 s (GPT-57: ≤ 3 s)", "Profiler": "≤ 6 s", OPEN_ONE: "≤ 1 s"}
DEFAULT_TARGET = "≤ 2 s"


def resnet(size, batch):
    """(name, loss function, model, images, labels) of a ResNet-18 training step."""
    import numpy as np

    import avalon

    avalon.manual_seed(0)
    zoo = ported(ZOO / "resnet_torchvision_style.py", "layout_resnet")
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
    return f"ResNet-18 ({batch}×3×{size}×{size})", zoo.loss_fn, zoo.resnet18(num_classes=10), images, \
        rng.integers(0, 10, batch)


def gpt(layers, d=128, heads=4, seq=64, vocab=256):
    """(name, loss function, model, tokens, targets) of a nanoGPT training step, batch 1."""
    import numpy as np

    import avalon

    avalon.manual_seed(0)
    zoo = ported(ZOO / "nanogpt.py", "layout_gpt")
    config = zoo.GPTConfig(n_layer=layers, n_head=heads, n_embd=d, block_size=seq, vocab_size=vocab,
                           dropout=0.1, bias=True)
    tokens = np.random.default_rng(0).integers(0, vocab, (1, seq))
    return f"GPT-{layers}", zoo.loss_fn, zoo.GPT(config), tokens, np.roll(tokens, -1, axis=1)


def cpu_seconds():
    """CPU seconds of this process and of its finished children (the `dot` layouts)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def timed(fn):
    """(result, wall seconds, CPU seconds) of one call, after a garbage collection."""
    gc.collect()
    start, cpu = time.perf_counter(), cpu_seconds()
    out = fn()
    return out, time.perf_counter() - start, cpu_seconds() - cpu


def measure(workload, views):
    """{row name: (wall, cpu)} and the tape's node count for one model."""
    import avalon
    import avalon.widgets as widgets

    name, loss_fn, model, *args = workload
    tape, wall, cpu = timed(lambda: avalon.grad_tape(loss_fn, model, *args))
    rows = {"trace": (wall, cpu)}
    for view_name in views:
        view, wall, cpu = timed(lambda: getattr(widgets, view_name)(loss_fn, model, *args))
        rows[view_name] = (wall, cpu)
        _, wall, cpu = timed(view.to_html)
        rows[f"{view_name}.to_html()"] = (wall, cpu)
        if view_name == "TapeView":
            rows[OPEN_ONE] = slowest_open(view)
        del view
    return name, len(tape.nodes), rows


def slowest_open(view):
    """(wall, cpu) of the slowest of opening each of the first six closed modules (one at a time)."""
    closed = [unit[1] for unit in view.pane.graph.units() if unit[0] in "sr"]  # one box per closed module
    worst = (0.0, 0.0)
    for key in closed[:6]:
        _, wall, cpu = timed(lambda: view.expand(key))
        worst = max(worst, (wall, cpu))
        view.collapse_all()
    return worst


def table(results):
    """The Markdown table: one row per measurement, one column per model, the target beside."""
    heads = [f"{name} ({nodes:,} nodes)" for name, nodes, _ in results]
    lines = ["| measurement | target | " + " | ".join(heads) + " |",
             "|---|---|" + "---:|" * len(heads)]
    for key in results[0][2]:
        target = TARGETS.get(key, DEFAULT_TARGET)
        cells = [f"{rows[key][0]:.2f} s (cpu {rows[key][1]:.2f})" for _, _, rows in results]
        label = {"trace": "trace (grad_tape)", "Profiler": "Profiler (repeat=5), tracing included"}.get(
            key, f"{key}, tracing included" if key in VIEWS else key)
        lines.append(f"| {label} | {target} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("threads", nargs="?", default=None, help="BLAS threads (default 1)")
    parser.add_argument("--resnet", default="2x32,1x224",
                        help="ResNet-18's inputs as BATCHxSIDE, comma-separated (a batch of 1 needs a side "
                             "of 64 or more: batch norm needs two values per channel)")
    parser.add_argument("--layers", default="12,57", help="the GPT depths, comma-separated")
    parser.add_argument("--gpt-width", type=int, default=128, help="the GPT's d (4 heads)")
    parser.add_argument("--views", default=",".join(VIEWS), help="the views to time, comma-separated")
    opts = parser.parse_args()
    from avalon.widgets import render

    render.require_dot()
    render.layout("digraph warm { a -> b }")  # the first `dot` process start is not a view's
    views = [v for v in opts.views.split(",") if v]
    shapes = [tuple(map(int, shape.split("x"))) for shape in opts.resnet.split(",") if shape]
    workloads = [lambda batch=batch, side=side: resnet(side, batch) for batch, side in shapes]
    workloads += [lambda n=int(n): gpt(n, d=opts.gpt_width) for n in opts.layers.split(",") if n]
    results = []
    for make in workloads:
        results.append(measure(make(), views))
        print(f"measured {results[-1][0]}", flush=True)
    print(f"\nWorkbench at model scale, {THREADS} BLAS thread{'s' if THREADS > 1 else ''}: wall seconds "
          "(CPU seconds of this process and its dot runs)\n")
    print(table(results))


if __name__ == "__main__":
    main()
