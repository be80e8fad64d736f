"""Elementwise fusion: the `fuse_elementwise` pass.

A chain of elementwise calls whose intermediate values nothing else reads (ReLU's backward
`where(x > 0, g, 0)` with its comparison, a bias add and its activation, `where(x > 0, a + b, 0)` where
two gradients meet) becomes one `fused` call: a `Kernel` of the kernel library (avalon.kernels) that
computes the chain in one pass into one buffer, with no temporary of the full size in between. The
tape it is given is untouched (differentiation never sees a fused call); only compiled replays do.
"""
import math

import numpy as np

from ..kernels import Kernel, KernelError
from ..ops import elementwise as ew
from ..ops.primitive import Primitive
from ..tape import Call, Const, Node


def _run(*arrays, kernel, parts, out=None):
    """The fused chain `kernel` (its primitives `parts`) on `arrays`."""
    return kernel(*arrays, out=out)


fused = Primitive("fused", _run, out=True, differentiable=False,
                  doc="Elementwise calls fused by the compiler into one kernel (compiled replays only).")

# The kernel library's name of each fusable primitive ("maximum(x, 0)" for relu).
_OPS = {p: p.name for p in (ew.add, ew.subtract, ew.multiply, ew.divide, ew.power, ew.negative, ew.maximum,
                            ew.minimum, ew.arctan2, ew.exp, ew.log, ew.log2, ew.log10, ew.log1p, ew.expm1,
                            ew.sqrt, ew.square, ew.reciprocal, ew.sin, ew.cos, ew.tan, ew.sinh, ew.cosh,
                            ew.tanh, ew.arcsin, ew.arccos, ew.arctan, ew.arcsinh, ew.arccosh, ew.arctanh,
                            ew.equal, ew.not_equal, ew.less, ew.less_equal, ew.greater, ew.greater_equal,
                            ew.logical_and, ew.logical_or, ew.logical_not, ew.where)}
_OPS[ew.absolute] = "absolute"
_OPS[ew.relu] = "relu"
_INFIX = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "power": "**", "greater": ">",
          "greater_equal": ">=", "less": "<", "less_equal": "<=", "equal": "==", "not_equal": "!="}

MIN_SIZE = 16384  # smaller results gain nothing worth a kernel's call overhead


def fuse_elementwise(tape, min_size=None):
    """Replace each chain of fusable elementwise calls (a tree whose inner calls have the root's shape,
    one user, the root's chain, and are not outputs) by one `fused` call of a `Kernel`. Only chains of
    two calls or more (or a `where` alone, which the kernel computes without branches) with results of
    at least `min_size` elements (default `MIN_SIZE`) are fused."""
    min_size = MIN_SIZE if min_size is None else min_size
    users = tape.consumers()
    outputs = set(tape.outputs)
    taken, replace, drop, kernels = set(), {}, set(), {}
    for root in reversed(tape.nodes):
        if root in taken or not _fusable(root) or math.prod(root.shape) < min_size:
            continue
        inner = _chain(root, users, outputs, taken)
        if len(inner) < 2 and root.prim is not ew.where:  # a where alone gains the kernel's mask select
            continue
        call = _fused_call(root, inner, kernels)
        if call is None:
            continue
        taken |= inner
        replace[root] = call
        drop |= inner - {root}
    return tape.copy(replace=replace, drop=drop)


def _fusable(node):
    return isinstance(node, Call) and node.prim in _OPS and not node.params and \
        all(isinstance(a, Node) or type(a) in (int, bool) or type(a) is float and math.isfinite(a)
            for a in node.args)


def _chain(root, users, outputs, taken):
    """The calls of the chain ending at `root` (root included)."""
    inner, stack = {root}, [root]
    while stack:
        node = stack.pop()
        for a in node.args:
            if _fusable(a) and a not in taken and a not in inner and a not in outputs and \
                    a.shape == root.shape and users[a] == [node]:
                inner.add(a)
                stack.append(a)
    return inner


def _fused_call(root, inner, kernels):
    """The `fused` call computing `root` from the chain's leaves, or None when the kernel would not
    compute the tape's shape and dtype. `kernels` holds the kernels made so far, by expression: chains
    that compute the same thing share one."""
    leaves, names, steps = [], {}, []  # steps: the inner calls in the order the kernel computes them

    def spell(node):
        if not isinstance(node, Node):
            return repr(node)
        if node not in inner:
            if node not in names:
                names[node] = f"x{len(leaves)}"
                leaves.append(node)
            return names[node]
        op, args = _OPS[node.prim], [spell(a) for a in node.args]
        steps.append(node)
        if op not in _INFIX:  # a function's operands need no parentheses of their own
            args = [_bare(a) for a in args]
        if op == "relu":
            return f"maximum({args[0]}, 0)"
        if op in _INFIX:
            return f"({args[0]} {_INFIX[op]} {args[1]})"
        return f"{op}({', '.join(args)})"

    text = _bare(spell(root))
    kernel = kernels.get(text) or kernels.setdefault(text, Kernel(text, list(names.values())))
    signature = tuple((n.shape, np.dtype(n.dtype)) for n in leaves)
    try:
        computed = kernel.program.dtypes(signature)
    except (KernelError, TypeError, ValueError):  # a chain numpy would refuse stays, to fail where it did
        return None
    if any((shape, dtype) != (n.shape, np.dtype(n.dtype)) for (shape, dtype), n in zip(computed, steps)):
        return None
    call = Call(fused, leaves, {"kernel": kernel, "parts": tuple(_OPS[n.prim] for n in steps)},
                root.shape, root.dtype)
    call.location, call.scope, call.phase = root.location, root.scope, root.phase
    return call


def _bare(text):
    """`text` without the parentheses around it, if they enclose all of it."""
    return text[1:-1] if text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]) else text


def _balanced(text):
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def describe(node):
    """How a call names itself in profiles: its primitive, or `fused(greater+where)` for a fused one."""
    if node.prim is fused:
        return f"fused({'+'.join(node.params['parts'])})"
    return node.prim.name
