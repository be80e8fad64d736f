"""Timing every node of a compiled tape: the generated replay itself runs, with a clock read after
each of its lines, over several runs, and the median per node is kept (one slow run — a garbage
collection, another process — does not move a median).

Timing the replay's own lines, rather than calling each primitive again on its own, keeps what the
replay pays: its buffer reuse (`out=`), the Python dispatch of each line, and the memory each result
gets. That last one matters: a replay that allocates its intermediates afresh on every call may get
memory straight from the operating system, zeroed page by page on first touch, which for large
arrays costs as much as the arithmetic. A primitive timed again and again on memory it has just
freed skips that, and such per-node times once summed to half of the replay's.

The plain compiled function is timed too (`Profile.compiled_s`): it should match the sum of the
node medians (`Profile.total_s`) within the noise, and it is the number to quote for a whole step.
"""
import ast
import gc
import json
import statistics
import time

from ..backend import namespace
from ..compile.fuse import describe
from ..tape import Call, Const, Node
from .flops import flops as count_flops

COLUMNS = ("op", "module", "shapes", "median_s", "share", "flops", "gflops")


def _needs_sync(xp):
    cuda = getattr(xp, "cuda", None)
    return cuda is not None and hasattr(cuda, "Device")


def _synchronize(xp):
    """Wait for queued device work (cupy), so a timer measures the kernel and not its launch."""
    if _needs_sync(xp):
        xp.cuda.Device().synchronize()


def _dims(shape):
    return "×".join(map(str, shape)) if shape else "scalar"


def shapes_text(node):
    """`5×3, 3×4 → 5×4`: the operand shapes and the result shape of a call."""
    ins = ", ".join(_dims(a.shape) for a in node.inputs)
    return f"{ins} → {_dims(node.shape)}"


class Profile:
    """Per-node median times of one compiled tape.

    `rows` holds one dict per call in tape order (op, module, shapes, median_s, share, flops,
    gflops, plus id, phase, dtype, location); `by_op()` and `by_module()` total them;
    `to_chrome_trace(path)` writes a trace that Perfetto and chrome://tracing open.

    `total_s` is the sum of the node medians; `compiled_s` the median time of a whole call of the
    compiled function. Both time the same code, so they differ only by noise: a median per node
    drops each node's slowest runs, so on a busy machine `total_s` is the smaller.
    """

    def __init__(self, tape, times, compiled_s, repeat):
        self.tape = tape
        self.repeat = repeat
        self.compiled_s = compiled_s
        medians = {n.id: statistics.median(ts) for n, ts in times.items()}
        self.total_s = sum(medians.values())
        self.rows = []
        for n in tape.nodes:
            if n.id not in medians:
                continue
            median = medians[n.id]
            work = count_flops(n)
            self.rows.append({
                "id": n.id, "label": n.label, "op": describe(n), "module": n.scope, "phase": n.phase,
                "shapes": shapes_text(n), "dtype": str(n.dtype), "median_s": median,
                "share": median / self.total_s if self.total_s else 0.0, "flops": work,
                "gflops": work / median / 1e9 if work and median > 0 else None,
                "location": n.location.short if n.location else "",
            })

    def times(self):
        """{node id: median seconds} for every timed call."""
        return {row["id"]: row["median_s"] for row in self.rows}

    def sorted(self, key="median_s", descending=True):
        """The rows ordered by one column (None values last)."""
        if self.rows and key not in self.rows[0]:
            raise KeyError(f"no column {key!r}; columns are {list(self.rows[0])}")
        present = [r for r in self.rows if r[key] is not None]
        missing = [r for r in self.rows if r[key] is None]
        return sorted(present, key=lambda r: r[key], reverse=descending) + missing

    def _totals(self, name_of):
        groups = {}
        for row in self.rows:
            g = groups.setdefault(name_of(row), {"count": 0, "median_s": 0.0, "flops": 0})
            g["count"] += 1
            g["median_s"] += row["median_s"]
            g["flops"] += row["flops"] or 0
        out = []
        for name, g in groups.items():
            out.append({"name": name, "count": g["count"], "median_s": g["median_s"],
                        "share": g["median_s"] / self.total_s if self.total_s else 0.0,
                        "flops": g["flops"] or None,
                        "gflops": g["flops"] / g["median_s"] / 1e9 if g["flops"] and g["median_s"] else None})
        return sorted(out, key=lambda g: g["median_s"], reverse=True)

    def by_op(self):
        """Time per primitive, largest first: [{name, count, median_s, share, flops, gflops}]."""
        return self._totals(lambda row: row["op"])

    def by_module(self, depth=None):
        """Time per module scope, largest first; `depth=1` totals top-level modules only. Calls
        outside any module are listed under '(top level)'."""
        def name_of(row):
            scope = row["module"]
            if depth is not None and scope:
                scope = ".".join(scope.split(".")[:depth])
            return scope or "(top level)"

        return self._totals(name_of)

    def to_chrome_trace(self, path=None):
        """The profile as Chrome trace events (one complete event per node, laid end to end in
        tape order, forward and backward on separate tracks). Written as JSON to `path` when given;
        returns the trace dict. Open it in Perfetto (ui.perfetto.dev) or chrome://tracing."""
        events = [{"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": name}}
                  for tid, name in ((1, "forward"), (2, "backward"))]
        clock = 0.0
        for row in self.rows:
            dur = row["median_s"] * 1e6
            events.append({
                "name": row["op"], "cat": row["phase"], "ph": "X", "pid": 1,
                "tid": 2 if row["phase"] == "backward" else 1, "ts": round(clock, 3), "dur": round(dur, 3),
                "args": {"node": row["label"], "module": row["module"], "shapes": row["shapes"],
                         "flops": row["flops"], "location": row["location"]},
            })
            clock += dur
        trace = {"traceEvents": events, "displayTimeUnit": "ms",
                 "otherData": {"repeat": self.repeat, "compiled_s": self.compiled_s}}
        if path is not None:
            with open(path, "w") as fh:
                json.dump(trace, fh)
        return trace

    def __str__(self):
        lines = [f"{'op':<18}{'module':<24}{'median':>12}{'share':>8}{'GFLOP/s':>10}  shapes"]
        for row in self.sorted():
            rate = f"{row['gflops']:.2f}" if row["gflops"] is not None else ""
            lines.append(f"{row['op']:<18}{row['module'][:23]:<24}{seconds_text(row['median_s']):>12}"
                         f"{row['share']:>8.1%}{rate:>10}  {row['shapes']}")
        lines.append(f"total {seconds_text(self.total_s)} over {len(self.rows)} calls "
                     f"(whole compiled call {seconds_text(self.compiled_s)}), medians of {self.repeat} runs")
        return "\n".join(lines)

    def __repr__(self):
        return f"<Profile {len(self.rows)} calls, total {seconds_text(self.total_s)}>"


def seconds_text(s):
    """A duration in the unit that suits it: `1.250 s`, `2.226 ms`, `365.9 µs`."""
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.1f} µs"


def _clocked(compiled, xp):
    """The compiled replay with `marks[k] = clock()` after its k-th line (marks[0] on entry):
    (function, marks, the Call node of each line)."""
    lines = {f"v{n.id}": n for n in compiled.tape.calls}  # codegen names a call's result v<id>
    tree = ast.parse(compiled.source)
    replay = tree.body[0]
    sync = "_sync(); " if _needs_sync(xp) else ""

    def mark(k):
        return ast.parse(f"{sync}_marks[{k}] = _clock()").body

    body, order = mark(0), []
    for stmt in replay.body:
        body.append(stmt)
        if isinstance(stmt, ast.Assign) and getattr(stmt.targets[0], "id", None) in lines:
            order.append(lines[stmt.targets[0].id])
            body += mark(len(order))
    replay.body = body
    marks = [0.0] * (len(order) + 1)
    scope = dict(compiled.env, _marks=marks, _clock=time.perf_counter,
                 _sync=lambda: _synchronize(xp))
    exec(compile(ast.fix_missing_locations(tree), "<avalon profiled replay>", "exec"), scope)
    return compiled.with_workspace(scope["replay"]), marks, order


def profile_tape(tape, inputs=None, repeat=5, warmup=1, optimize=True):
    """Time every call of `tape` compiled (median of `repeat` runs after `warmup` runs).

    `inputs` are the input arrays in `tape.inputs` order; by default the values seen while tracing.
    With `optimize` the tape is compiled as `tape.compile()` does it (folding, merging, dead code,
    buffer reuse, workspaces), so the profile is of the code that actually runs; without, no pass
    changes it and every result is allocated afresh.
    The garbage collector is paused while timing, as `timeit` does.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    if inputs is None:
        missing = [n.label for n in tape.inputs if n.value is None]
        if missing:
            raise ValueError(f"the tape has no values for inputs {', '.join(missing)} (dropped after "
                             "compiling): pass `inputs=` (arrays in tape.inputs order)")
        inputs = [n.value for n in tape.inputs]
    xp = namespace(*inputs) if inputs else namespace(*(n.value for n in tape.nodes if isinstance(n, Const)))
    options = {} if optimize else {"dce": False, "cse": False, "fold": False, "layout": False, "accumulate": False,
                                   "fuse": False, "reuse": False, "workspace": False}
    compiled = tape.compile(xp=xp, **options)
    clocked, marks, order = _clocked(compiled, xp)
    times = {n: [] for n in order}
    whole = []
    clock = time.perf_counter
    collecting = gc.isenabled()
    gc.disable()
    try:
        # clocked and plain replays take turns, so a burst of load elsewhere slows both alike
        for run in range(warmup + repeat):
            clocked(*inputs)
            start = clock()
            compiled(*inputs)
            _synchronize(xp)
            if run >= warmup:
                whole.append(clock() - start)
                for k, n in enumerate(order):
                    times[n].append(marks[k + 1] - marks[k])
    finally:
        if collecting:
            gc.enable()
    return Profile(compiled.tape, times, statistics.median(whole), repeat)


def profile(f, *args, repeat=5, warmup=1, backward=True):
    """Trace `f(*args)` (with its backward pass when `backward` and f returns a scalar) and time
    every node of the compiled tape. `print(avalon.profile.profile(loss_fn, model, x, y))` shows
    the table.
    """
    from ..autodiff import grad_tape
    from ..errors import GradientError
    from ..tracing import trace

    tape = None
    if backward:
        try:
            tape = grad_tape(f, *args)
        except GradientError:
            tape = None  # a non-scalar output has no default backward pass: time the forward alone
    if tape is None:
        tape = trace(f, *args)
    return profile_tape(tape, repeat=repeat, warmup=warmup)


__all__ = ["Profile", "profile", "profile_tape", "shapes_text", "seconds_text", "COLUMNS"]
