"""Where a training step's time goes, Avalon against PyTorch, per operation: Avalon's profiler over the
compiled gradient tape (avalon.profile) plus its optimiser step timed apart, and torch.profiler's
self-CPU time per aten op over the same step (forward, cross-entropy, backward, SGD with momentum).

Run: `python bench/op_shares.py [threads] [--only LSTM,MLP] [--top 12]` (default 1 thread). For each
workload it prints both libraries' largest entries as milliseconds and shares of their own step, so
time Avalon spends that PyTorch does not (copies, elementwise passes, the update) stands out. On a busy
machine read the shares more than the milliseconds. Both libraries share this process, where each
slows the other down: take PyTorch's step times from bench/steps.py, which runs each library alone.
"""
import harness  # noqa: I001 - sets the thread count before numpy loads

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import steps  # noqa: E402

REPEAT = 7


def avalon_rows(name, x, y, state, nodes=False):
    """[(op, count, ms)] of Avalon's step: the gradient tape's ops, then the optimiser update; with
    `nodes`, the profile of every node is printed first."""
    import avalon
    import avalon.nn.functional as F
    from avalon.profile import profile_tape

    models = steps.load_models("avalon")
    model = models.WORKLOADS[name][0]()
    model.load_state_dict(state)
    tape = avalon.grad_tape(lambda m, x, y: F.cross_entropy(m(x), y), model, x, y, argnums=0)
    prof = profile_tape(tape, repeat=REPEAT)
    rows = [(g["name"], g["count"], 1e3 * g["median_s"]) for g in prof.by_op()]
    if nodes:
        print(prof)
    _, step = steps.avalon_step(models, name, x, y, state)
    step()
    opt = avalon.optim.SGD(model.parameters(), lr=steps.LR, momentum=steps.MOMENTUM)
    _, grads = avalon.grad(lambda m, x, y: F.cross_entropy(m(x), y), model, x, y, argnums=0)
    opt.step(grads[0])
    samples = harness.time_calls(lambda: opt.step(grads[0]), REPEAT)
    rows.append(("optimiser step (SGD momentum)", 1, 1e3 * statistics.median(samples)))
    return sorted(rows, key=lambda r: -r[2])


def torch_rows(name, x, y):
    """[(aten op, count, ms)] of PyTorch's step: self CPU time per op, averaged over REPEAT steps."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    models = steps.load_models("torch")
    _, step = steps.torch_step(models, name, x, y)
    for _ in range(3):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(REPEAT):
            step()
    rows = [(e.key, e.count // REPEAT, e.self_cpu_time_total / 1e3 / REPEAT) for e in prof.key_averages()]
    return sorted(rows, key=lambda r: -r[2])


def show(title, rows, top):
    total = sum(r[2] for r in rows)
    print(f"\n{title}: {total:.1f} ms in all")
    print("| op | calls | ms | share |\n|---|---|---|---|")
    for op, count, ms in rows[:top]:
        print(f"| {op[:60]} | {count} | {ms:.2f} | {ms / total:.1%} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("threads", nargs="?", default="1")
    parser.add_argument("--only", default="MLP,LeNet,ResNet-ish,LSTM,Transformer")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--nodes", action="store_true", help="also print every node of Avalon's profile")
    args = parser.parse_args()
    for name in args.only.split(","):
        theirs = steps.load_models("torch")
        x, y = steps.batch_of(name, None, theirs)
        state = theirs.WORKLOADS[name][0]().state_dict()
        start = time.perf_counter()
        show(f"## {name}, Avalon, {harness.THREADS} thread(s)", avalon_rows(name, x, y, state, args.nodes), args.top)
        show(f"## {name}, PyTorch, {harness.THREADS} thread(s)", torch_rows(name, x, y), args.top)
        print(f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
