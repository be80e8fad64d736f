"""Timing every node of a compiled tape: each primitive runs on its real inputs, in tape order, over
several runs, and the median per node is kept (one slow run — a page fault, a garbage collection —
does not move a median).

Nodes are timed one call at a time with the same function the generated code calls
(`prim.specialize(xp)`), so the numbers are those of the compiled replay minus its buffer reuse. The
whole compiled function is timed as well (`Profile.compiled_s`) to show what the per-node sum leaves out.
"""
import json
import statistics
import time

from ..backend import namespace
from ..tape import Call, Const, Node
from .flops import flops as count_flops

COLUMNS = ("op", "module", "shapes", "median_s", "share", "flops", "gflops")


def _synchronize(xp):
    """Wait for queued device work (cupy), so a timer measures the kernel and not its launch."""
    cuda = getattr(xp, "cuda", None)
    if cuda is not None and hasattr(cuda, "Device"):
        cuda.Device().synchronize()


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
                "id": n.id, "label": n.label, "op": n.prim.name, "module": n.scope, "phase": n.phase,
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
            lines.append(f"{row['op']:<18}{row['module'][:23]:<24}{_seconds(row['median_s']):>12}"
                         f"{row['share']:>8.1%}{rate:>10}  {row['shapes']}")
        lines.append(f"total {_seconds(self.total_s)} over {len(self.rows)} calls "
                     f"(compiled replay {_seconds(self.compiled_s)}), median of {self.repeat} runs")
        return "\n".join(lines)

    def __repr__(self):
        return f"<Profile {len(self.rows)} calls, total {_seconds(self.total_s)}>"


def _seconds(s):
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.1f} µs"


def profile_tape(tape, inputs=None, repeat=5, warmup=1, optimize=True):
    """Time every call of `tape` compiled (median of `repeat` runs after `warmup` runs).

    `inputs` are the input arrays in `tape.inputs` order; by default the values seen while tracing.
    With `optimize` the tape is first optimised as `tape.compile()` does (folding, merging, dead
    code), so the profile is of the code that actually runs.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    if inputs is None:
        missing = [n.label for n in tape.inputs if n.value is None]
        if missing:
            raise ValueError(f"the tape has no values for inputs {', '.join(missing)} (dropped after "
                             "compiling): pass `inputs=` (arrays in tape.inputs order)")
        inputs = [n.value for n in tape.inputs]
    compiled = tape.compile(reuse=False) if optimize else tape.compile(dce=False, cse=False, fold=False,
                                                                        reuse=False)
    timed = compiled.tape
    xp = namespace(*inputs) if inputs else namespace(*(n.value for n in timed.nodes if isinstance(n, Const)))
    calls = [n for n in timed.nodes if isinstance(n, Call)]
    fns = {n: n.prim.specialize(xp) for n in calls}
    env = dict(zip(timed.inputs, inputs))
    env.update((n, n.value) for n in timed.nodes if isinstance(n, Const))
    times = {n: [] for n in calls}
    clock = time.perf_counter
    for run in range(warmup + repeat):
        for n in calls:
            args = [env[a] if isinstance(a, Node) else a for a in n.args]
            start = clock()
            env[n] = fns[n](*args, **n.params)
            _synchronize(xp)
            if run >= warmup:
                times[n].append(clock() - start)
    whole = []
    for run in range(warmup + repeat):
        start = clock()
        compiled(*inputs)
        _synchronize(xp)
        if run >= warmup:
            whole.append(clock() - start)
    return Profile(timed, times, statistics.median(whole), repeat)


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


__all__ = ["Profile", "profile", "profile_tape", "shapes_text", "COLUMNS"]
