"""Code generation: a tape becomes plain Python source, one assignment per node, and is exec'd.

Primitives that are one namespace function are called directly (`np.tanh`), so a replay costs one
Python call per node. The source stays readable: `compiled.source` (or `tape.source()`) shows it.
"""
import functools
import re

import numpy as np

from .. import heap, pages
from ..backend import is_array, is_numpy_like, namespace
from ..kernels.onednn import gemm
from ..tape import Call, Const, Input, Node
from ..tensor import plain
from . import passes
from .accumulate import accumulate_slices
from .anomaly_checks import CheckedReplay
from .arena import arena_layout, nbytes
from .fuse import fuse_elementwise, fused
from .fuse_norm import fuse_batch_norm_relu
from .replay_lines import ReplayLines, located


class Compiled:
    """A compiled tape: call it with the input arrays (in `tape.inputs` order) to get the outputs.

    Every call returns fresh output arrays: an output that could share memory with an input, a
    constant or another output is copied (`copied` lists those positions), and no output lives in a
    workspace, so callers may change or keep what they get back without touching the cache, their
    arguments or the next call's results.
    """

    def __init__(self, tape, fn, source, copied, copy, lines, checked=None):
        self.tape = tape
        self.fn = fn  # the generated function itself
        self.source = source
        self.copied = copied
        self._copy = copy
        self.lines = lines  # ReplayLines: the generated file's name and what each line computes
        # fn, its failures told as the user's (ReplayError); under detect_anomaly, checked()'s replay
        self.replay = located(fn, lines, checked)

    def __call__(self, *inputs):
        # Tensors (a model's parameters passed as they are) as the plain arrays behind them, as
        # avalon.grad's replays get them: the kernels' fast paths take plain ndarrays only
        return self.replay(*map(plain, inputs))

    def fresh(self, outputs):
        """`outputs` (e.g. the values seen while tracing) made as fresh as the replay's, and row-major
        where they are strided views (a Linear weight's gradient is a transposed product while tracing,
        row-major in the replay, `matmul_layout`): a first call's arrays are laid out as the next ones',
        so what reads them (an optimiser's step) needs no other memory for the first call's."""
        outputs = list(outputs)
        for i, value in enumerate(outputs):
            flags = getattr(value, "flags", None)
            if i in self.copied or (flags is not None and not flags.c_contiguous):
                outputs[i] = self._copy(value)
        return outputs

    def __repr__(self):
        return f"<Compiled {len(self.tape.calls)} calls>"


_POOL_SIZE = 2  # workspaces kept per compiled tape: one per concurrent call, beyond that freed


def compile_tape(tape, *, dce=True, cse=True, fold=True, layout=True, accumulate=True, fuse=True, reuse=True,
                 release=True, workspace=True, xp=None):
    """Optimise `tape` with the chosen passes and generate its replay function.

    `dce` removes dead code, `cse` merges common subexpressions, `fold` evaluates calls on constants
    once, `layout` computes transposed matrix products row-major (`matmul_layout`), `accumulate` sums
    the gradients of many slices of an array into one buffer (`accumulate_slices`), `fuse` computes
    chains of elementwise calls in one pass each (`fuse_elementwise`, numpy and cupy) and a batch norm
    with the ReLU after it (`fuse_norm.fuse_batch_norm_relu`), `reuse` writes
    results into dead buffers of the same shape and dtype (numpy and cupy), `release` lets go of each
    value after its last use (otherwise every intermediate lives until the call returns), and
    `workspace` keeps the buffers of intermediates between calls (`passes.workspace_slots`), laid out
    in one arena where buffers never alive at once share bytes (`arena_layout`): allocated at the first
    call and written again at every later one instead of allocated afresh.
    A call takes a workspace from a small pool and gives it back when it returns, so calls from
    several threads, or a replay inside itself, never share one.

    >>> compiled = avalon.trace(f, x).compile(cse=False)
    >>> print(compiled.source); y, = compiled(x)
    """
    if fold:
        tape = passes.constant_folding(tape)
    if cse:
        tape = passes.common_subexpressions(tape)
    if layout:
        tape = passes.matmul_layout(tape)
    if accumulate:
        tape = accumulate_slices(tape)
    if dce:
        tape = passes.dead_code(tape)
    xp = xp or _namespace_of(tape)
    numpy_like = is_numpy_like(xp)
    if numpy_like:
        heap.keep_freed_memory()  # a replay's arrays, allocated at every call, stay mapped between calls
    if fuse and (numpy_like or _is_cupy(xp)):
        tape = fuse_elementwise(fuse_batch_norm_relu(tape))
    plan = passes.buffer_plan(tape) if reuse and numpy_like else {}
    slots = passes.workspace_slots(tape, plan) if workspace and numpy_like else {}
    copied = _shared_outputs(tape)
    copy = _copier(xp)
    source, env = _generate(tape, xp, plan, slots, copied, release)
    env["copy"] = copy
    filename = f"<avalon replay {id(tape):x}>"
    exec(compile(source, filename, "exec"), env)
    offsets, size = arena_layout(tape, plan, slots)
    buffers = [(n.shape, n.dtype, offset) for n, offset in zip(slots, offsets)]
    # a result written in parts (`partial`) leaves pages of the arena untouched: 4 KiB pages keep them free
    partial = any(isinstance(n, Call) and n.prim.partial and (n in slots or n in plan) for n in tape.nodes)
    pooled = bool(slots)  # not the nodes themselves: a cached replay keeps no tape alive

    def wrap(body):
        body = _pooled(body, xp, buffers, size, partial) if pooled else body
        return _holding_numpy_blas(body) if xp is np else body

    lines = ReplayLines(filename, source, tape)
    compiled = Compiled(tape, wrap(env["replay"]), source, copied, copy, lines,
                        CheckedReplay(source, env, lines, wrap, xp))
    # for a rewritten copy of the source (the profiler's clocked one): its names, its workspaces
    compiled.env, compiled.with_workspace = env, wrap
    return compiled


def _pooled(body, xp, buffers, size, partial=False):
    """`body(*inputs, *workspace)` as a function of the inputs alone, with workspaces taken from a pool
    of at most `_POOL_SIZE` and given back. A workspace is one arena of `size` bytes, seen as arrays of
    the shapes and dtypes `buffers` lists at their byte offsets (`arena_layout`: buffers never alive at
    once share bytes); `partial`: mapped by `pages.empty` and settled after its first call (numpy's
    huge pages measured 1% faster on a ResNet-ish step's arena, written whole)."""
    pool = []
    partial = partial and xp is np

    def carve(arena):
        return [arena[offset:offset + nbytes(shape, dtype)].view(dtype).reshape(shape)
                for shape, dtype, offset in buffers]

    def replay(*inputs):
        arena = None
        try:
            ws = pool.pop()  # atomic: two threads never take the same one
        except IndexError:
            arena = pages.empty(size) if partial else xp.empty(size, dtype=xp.uint8)
            ws = carve(arena)
        try:
            return body(*inputs, *ws)
        finally:
            if arena is not None and partial:
                pages.settle(arena)  # written as every call will write it: its dense parts to huge pages
            if len(pool) < _POOL_SIZE:
                pool.append(ws)

    replay.workspaces = pool  # what the pool holds between calls, for tests and memory accounting
    return replay


def _holding_numpy_blas(body):
    """`body` run with numpy's OpenBLAS held to one thread where its float32 work runs on oneDNN at
    several (gemm.holding_numpy_blas: OpenBLAS's spinning workers would take oneDNN's cores)."""
    @functools.wraps(body)  # keeps what the body carries (its `workspaces`)
    def replay(*inputs):
        with gemm.holding_numpy_blas():
            return body(*inputs)

    return replay


def _is_cupy(xp):
    return getattr(xp, "__name__", "").startswith("cupy")


def _namespace_of(tape):
    for n in tape.nodes:
        if isinstance(n, (Input, Const)) and n.value is not None and hasattr(n.value, "shape"):
            return namespace(n.value)
    return np


def _copier(xp):
    if is_numpy_like(xp):
        return lambda a: a.copy()  # keeps numpy scalars scalars
    return lambda a: xp.asarray(a, copy=True)


def _shared_outputs(tape):
    """Positions of outputs that may share memory with an input, a constant or an earlier output."""
    roots = passes.memory_roots(tape)
    claimed, copied = set(), []
    for i, o in enumerate(tape.outputs):
        mine = roots[o]
        if claimed & mine or any(isinstance(r, (Input, Const)) for r in mine):
            copied.append(i)
        claimed |= mine
    return tuple(copied)


def _literal(value):
    """Python source for a value when it round-trips through repr, else None."""
    if isinstance(value, (bool, int, float, str, type(None))) or value is Ellipsis:
        text = repr(value)
    elif isinstance(value, (tuple, list)) and all(_literal(v) is not None for v in value):
        items = [_literal(v) for v in value]
        text = "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")" if isinstance(value, tuple) \
            else "[" + ", ".join(items) + "]"
    elif isinstance(value, slice):
        parts = [_literal(v) for v in (value.start, value.stop, value.step)]
        if any(p is None for p in parts):
            return None
        text = f"slice({', '.join(parts)})"
    else:
        return None
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return text


# Generated names: i<id> inputs, v<id> results, c<id> constants, w<k> workspace buffers, k… other
# values; primitives keep their own names unless they would collide with these.
_RESERVED = re.compile(r"^([ivckw]\d*(_\d+)?|replay|copy)$")


class _Names:
    def __init__(self):
        self.env = {}
        self._by_id = {}

    def var(self, node):
        if isinstance(node, Input):
            return f"i{node.id}"
        if isinstance(node, Const):
            return self.constant(node.value, f"c{node.id}")
        return f"v{node.id}"

    def constant(self, value, hint):
        key = id(value)
        if key not in self._by_id:
            name = hint if hint not in self.env else f"{hint}_{len(self.env)}"
            self.env[name] = _compact(value)
            self._by_id[key] = name
        return self._by_id[key]

    def function(self, prim, xp):
        fn = prim.specialize(xp)
        name = prim.name if prim.name.isidentifier() and not _RESERVED.match(prim.name) else f"p_{len(self.env)}"
        if self.env.get(name, fn) is not fn:
            name = f"{name}_{len(self.env)}"
        self.env[name] = fn
        return name


def _compact(value):
    """A constant that is a view into a larger array (a folded slice of a temporary made while
    tracing) as a copy of its own, so the compiled function does not keep the whole array alive."""
    if not is_array(value):
        return value
    base = value
    while is_array(getattr(base, "base", None)):  # array-API arrays may not say what they view
        base = base.base
    return value.copy() if base is not value and base.nbytes > value.nbytes else value


def _generate(tape, xp, plan, slots, copied, release):
    names = _Names()
    params = [names.var(n) for n in tape.inputs] + [f"w{k}" for k in range(len(slots))]
    lines = [f"def replay({', '.join(params)}):"]
    reads = []  # per generated line, the results it reads (out= buffers included)
    for n in tape.nodes:
        if not isinstance(n, Call):
            continue
        args = [names.var(a) if isinstance(a, Node) else (_literal(a) or names.constant(a, "k"))
                for a in n.args]
        if n.prim is fused:  # the kernel itself is called, and the comment shows what it computes
            kernel = n.params["kernel"]
            fn = names.constant(kernel, "fused_" + "_".join(dict.fromkeys(n.params["parts"])))
        else:
            fn = names.function(n.prim, xp)
            args += [f"{k}={_literal(v) or names.constant(v, 'k')}" for k, v in n.params.items()]
        if n in plan:
            args.append(f"out={names.var(plan[n])}")
        elif n in slots:
            args.append(f"out=w{slots[n]}")
        what = n.params["kernel"].text if n.prim is fused else ""
        note = "  ".join(x for x in (what, n.location.short if n.location else "", n.scope) if x)
        comment = f"  # {note}" if note else ""
        lines.append(f"    {names.var(n)} = {fn}({', '.join(args)}){comment}")
        reads.append((n, [a for a in n.inputs if isinstance(a, Call)] + ([plan[n]] if n in plan else [])))
    if release:
        lines[1:] = _with_releases(lines[1:], reads, tape.outputs, names)
    outs = [names.var(o) for o in tape.outputs]
    outs = [f"copy({v})" if i in copied else v for i, v in enumerate(outs)]
    lines.append(f"    return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
    return "\n".join(lines) + "\n", names.env


def _with_releases(body, reads, outputs, names):
    """`body` (one line per call) with `del` after the last line that reads each result, outputs
    excepted: a local lives until the function returns, so without it every intermediate of the
    call would be alive at its end and the peak would be the sum of them all."""
    last = {}
    for k, (n, used) in enumerate(reads):
        last[n] = k  # a result nobody reads goes right after it is made
        for a in used:
            last[a] = k
    keep = set(outputs)
    dying = {}
    for n, k in last.items():
        if n not in keep:
            dying.setdefault(k, []).append(names.var(n))
    out = []
    for k, line in enumerate(body):
        out.append(line)
        if k in dying:
            out.append(f"    del {', '.join(dying[k])}")
    return out
