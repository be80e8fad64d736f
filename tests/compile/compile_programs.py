"""Randomly generated tapes for the compiler's tests: chains of elementwise ops, matmuls, reductions,
reshapes, transposes and views over a few small arrays, planned on numpy so every shape is valid."""
import numpy as np

import avalon

UNARY = {
    "tanh": np.tanh, "sin": np.sin, "cos": np.cos, "negative": np.negative, "abs": np.abs,
    "square": np.square, "exp_small": lambda v: np.exp(v * 0.1),
}
BINARY = {"add": np.add, "multiply": np.multiply, "subtract": np.subtract, "maximum": np.maximum}


def _broadcastable(a, b):
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def plan_program(seed, n_ops=14):
    """A list of steps (op, operand indices, extra) and input arrays; steps refer to earlier values."""
    r = np.random.default_rng(seed)
    inputs = [r.standard_normal((3, 4)), r.standard_normal(4), r.standard_normal((4, 3))]
    values = list(inputs)
    steps = []
    while len(steps) < n_ops:
        kind = r.choice(["unary", "binary", "scalar", "matmul", "reduce", "reshape", "transpose", "getitem"],
                        p=[0.25, 0.25, 0.1, 0.08, 0.08, 0.08, 0.08, 0.08])
        i = int(r.integers(len(values)))
        v = values[i]
        if kind == "unary":
            step = ("unary", (i,), str(r.choice(list(UNARY))))
        elif kind == "binary":
            partners = [j for j, w in enumerate(values) if _broadcastable(v.shape, w.shape)]
            step = ("binary", (i, int(r.choice(partners))), str(r.choice(list(BINARY))))
        elif kind == "scalar":
            step = ("scalar", (i,), float(np.round(r.uniform(-2, 2), 2)))
        elif kind == "matmul":
            partners = [j for j, w in enumerate(values) if v.ndim == 2 and w.ndim in (1, 2) and w.shape[0] == v.shape[-1]]
            if not partners:
                continue
            step = ("matmul", (i, int(r.choice(partners))), None)
        elif kind == "reduce":
            if v.ndim == 0:
                continue
            step = ("reduce", (i,), (str(r.choice(["sum", "mean", "max"])), int(r.integers(v.ndim)), bool(r.integers(2))))
        elif kind == "reshape":
            step = ("reshape", (i,), tuple(reversed(v.shape)) if r.integers(2) else (-1,))
        elif kind == "transpose":
            if v.ndim < 2:
                continue
            step = ("transpose", (i,), None)
        else:
            if v.ndim == 0 or v.shape[0] < 2:
                continue
            step = ("getitem", (i,), str(r.choice(["1:", "::2", "0", ":, None"])))
        values.append(apply(step, values))
        steps.append(step)
    n_out = int(r.integers(1, 4))
    outputs = sorted({len(values) - 1, *(int(k) for k in r.integers(0, len(values), n_out - 1))})
    return steps, outputs, inputs


def apply(step, values):
    kind, ops, extra = step
    v = values[ops[0]]
    if kind == "unary":
        return UNARY[extra](v)
    if kind == "binary":
        return BINARY[extra](v, values[ops[1]])
    if kind == "scalar":
        return v * extra + 1.0
    if kind == "matmul":
        return v @ values[ops[1]]
    if kind == "reduce":
        name, axis, keepdims = extra
        return getattr(np, name)(v, axis=axis, keepdims=keepdims)
    if kind == "reshape":
        return v.reshape(extra)
    if kind == "transpose":
        return v.T
    key = {"1:": np.s_[1:], "::2": np.s_[::2], "0": np.s_[0], ":, None": np.s_[:, None]}[extra]
    return v[key]


def program(seed, n_ops=14):
    """(f, inputs): f(*inputs) runs the planned program and returns its chosen values."""
    steps, outputs, inputs = plan_program(seed, n_ops)

    def f(*args):
        values = list(args)
        for step in steps:
            values.append(apply(step, values))
        return tuple(values[k] for k in outputs)

    return f, inputs


def joint_tape(f, inputs):
    """The forward+backward tape of the sum of f's outputs (every output takes part)."""
    def loss(*args):
        return sum((np.tanh(out) * (k + 1)).sum() for k, out in enumerate(f(*args)))

    return avalon.grad_tape(loss, *inputs)


def evaluate_all(tape, inputs):
    """Every node's value, evaluated eagerly with the reference implementations (views are real views)."""
    from avalon.tape import Call, Const, Node

    env = dict(zip(tape.inputs, inputs))
    for n in tape.nodes:
        if isinstance(n, Const):
            env[n] = n.value
        elif isinstance(n, Call):
            env[n] = n.prim.impl(*[env[a] if isinstance(a, Node) else a for a in n.args], **n.params)
    return env


def sliced_program(seed):
    """(f, inputs): a program that takes many slices of its inputs (a loop over time steps, split,
    chunk, unbind, narrow, overlapping slices, single elements) and sometimes uses them whole, so its
    backward pass sums many scatters of slices (what `accumulate_slices` rewrites)."""
    r = np.random.default_rng(seed)
    inputs = [r.standard_normal((3, 7, 4)), r.standard_normal((4, 4)) * 0.5]
    picks = [str(r.choice(["time", "split", "chunk", "unbind", "narrow", "overlap", "element", "whole"]))
             for _ in range(int(r.integers(2, 6)))]

    def f(x, w):
        s = 0
        for pick in picks:
            if pick == "time":
                for t in range(x.shape[1]):
                    s = np.tanh(x[:, t] @ w + s)
            elif pick == "split":
                s = s + sum(np.sin(p).sum() * (k + 1) for k, p in enumerate(avalon.split(x, [2, 1, 4], dim=1)))
            elif pick == "chunk":
                s = s + sum((p * p).sum() for p in avalon.chunk(x @ w, 2, dim=-1))
            elif pick == "unbind":
                s = s + sum(np.cos(p).mean() for p in avalon.unbind(x, dim=0))
            elif pick == "narrow":
                s = s + (avalon.narrow(x, 2, 1, 2) ** 2).sum()
            elif pick == "overlap":
                s = s + (x[:, 1:5] * x[:, 0:4]).sum()
            elif pick == "element":
                s = s + x[1, 2, 3] * x[0, 0, 0]
            else:
                s = s + np.tanh(x).sum()
        return (s,) if np.ndim(s) == 0 else (s, x[:, 0] * 2)

    return f, inputs
