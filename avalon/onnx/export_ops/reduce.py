"""Reductions, scans and searches: sum, mean, prod, max, min, any, all, argmax/argmin, var, logsumexp,
cumsum, cumprod, argsort, searchsorted, sum_to, and einsum (layer norm's sums are einsums on the tape)."""
import numpy as np

from ..export_opset import NeedsOpset
from . import emits

_REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "prod": "ReduceProd", "max": "ReduceMax",
           "min": "ReduceMin", "logsumexp": "ReduceLogSumExp"}


def _axes(node, ndim):
    axis = node.params.get("axis")
    if axis is None:
        return None
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    return [a % ndim for a in axis] if ndim else []


@emits(*_REDUCE)
def reduction(g, node):
    # numpy sums booleans and small integers in a wider type: the node's dtype
    x = g.arg(node, 0, node.dtype)
    axes = _axes(node, len(node.args[0].shape))
    return g.reduce(_REDUCE[node.prim.name], x, axes, node.params.get("keepdims", False))


@emits("any", "all")
def any_all(g, node):
    """ReduceMax / ReduceMin of the values as 0/1 integers (bool reductions came only at opset 20)."""
    x = g.cast(g.arg(node, 0, np.bool_), np.bool_, np.int32)
    op_type = "ReduceMax" if node.prim.name == "any" else "ReduceMin"
    y = g.reduce(op_type, x, _axes(node, len(node.args[0].shape)), node.params.get("keepdims", False))
    return g.cast(y, np.int32, np.bool_)


@emits("argmax", "argmin")
def arg_extreme(g, node):
    x = g.arg(node, 0)
    op_type = "ArgMax" if node.prim.name == "argmax" else "ArgMin"
    axis, keep = node.params.get("axis"), int(bool(node.params.get("keepdims", False)))
    if axis is not None:
        return g.op(op_type, [x], axis=int(axis) % len(node.args[0].shape), keepdims=keep)
    flat = g.op(op_type, [g.op("Reshape", [x, g.ints([-1])])], axis=0, keepdims=0)
    return g.op("Reshape", [flat, g.ints(node.shape)]) if keep else flat


@emits("var")
def var(g, node):
    """mean((x - mean(x))²) · n / (n - ddof), n the count along the axes."""
    x = g.arg(node, 0, node.dtype)
    shape = node.args[0].shape
    axes = _axes(node, len(shape))
    centred = g.op("Sub", [x, g.reduce("ReduceMean", x, axes, True)])
    y = g.reduce("ReduceMean", g.op("Mul", [centred, centred]), axes, node.params.get("keepdims", False))
    ddof = node.params.get("ddof", 0)
    if ddof:
        g.static_sizes(node, node.args[0], axes, "its divisor n - ddof")
        n = int(np.prod([shape[a] for a in (axes if axes is not None else range(len(shape)))]))
        y = g.op("Mul", [y, g.const(n / (n - ddof), node.dtype)])
    return y


@emits("argsort")
def argsort(g, node):
    """TopK over the whole axis (ties keep the lower index first, as a stable sort)."""
    x = node.args[0]
    axis = node.params.get("axis", -1) % len(x.shape)
    g.static_sizes(node, x, [axis], "the number of sorted elements")
    k = g.ints([x.shape[axis]])
    _, indices = g.op("TopK", [g.arg(node, 0), k], outputs=2, axis=axis,
                      largest=int(bool(node.params.get("descending"))), sorted=1)
    return indices


@emits("cumsum")
def cumsum(g, node):
    return g.op("CumSum", [g.arg(node, 0), g.const(np.int64(node.params["axis"]))])


@emits("cumprod")
def cumprod(g, node):
    """Each running product as the product of the elements up to it (ONNX has no CumProd): the axis
    set against a copy of itself, the elements past each position replaced by 1 (a lower-triangular
    mask), ReduceProd over the copy; L² work for L elements along the axis."""
    x, dt = node.args[0], node.dtype
    axis = node.params["axis"] % len(x.shape)
    g.static_sizes(node, x, [axis], "the triangular mask of the running product")
    length = x.shape[axis]
    upto = (np.arange(length)[None, :] <= np.arange(length)[:, None]).reshape(
        (length, length) + (1,) * (len(x.shape) - axis - 1))
    picked = g.op("Where", [g.const(upto), g.unsqueeze(g.arg(node, 0, dt), [axis]), g.const(1, dt)])
    return g.reduce("ReduceProd", picked, [axis + 1], False)


@emits("searchsorted")
def searchsorted(g, node):
    """How many elements of the sorted `a` come before each value (left: a < v; right: a ≤ v), in
    numpy's order where NaN is largest; an (…, len(a)) comparison summed."""
    a, v = node.args[:2]
    dtype = np.result_type(a.dtype, v.dtype)
    sorted_a, values = g.arg(node, 0, dtype), g.unsqueeze(g.arg(node, 1, dtype), [len(v.shape)])
    left = node.params.get("side", "left") == "left"
    before = g.compare("Less" if left else "LessOrEqual", sorted_a, values, dtype)
    if np.issubdtype(dtype, np.floating):
        nan_v = g.op("IsNaN", [values])
        before = g.op("Or", [before, g.op("And", [nan_v, g.op("Not", [g.op("IsNaN", [sorted_a])])]) if left
                             else nan_v])
    return g.reduce("ReduceSum", g.cast(before, np.bool_, np.int64), [len(v.shape)], False)


@emits("sum_to")
def sum_to(g, node):
    """The sum over the axes that broadcasting to x's shape added or stretched, reshaped to `shape`."""
    x, shape = node.args[0], tuple(node.params["shape"])
    lead = len(x.shape) - len(shape)
    axes = list(range(lead)) + [lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1]
    y = g.reduce("ReduceSum", g.arg(node, 0), axes, True) if axes else g.arg(node, 0)
    twin = g.twin(node)
    return g.op("Reshape", [y, g.shape_tensor(shape, twin and twin.params["shape"])])


@emits("einsum")
def einsum(g, node):
    return einsum_form(g, node.params["subscripts"], [g.arg(node, i) for i in range(len(node.args))],
                       [len(a.shape) for a in node.args])


def einsum_form(g, equation, names, ranks):
    """Einsum from opset 12; before it, each operand laid out over all the indices (Transpose, then
    Unsqueeze where it lacks one), the operands multiplied (broadcasting) and the indices the output
    lacks summed out: the same sums, with a larger intermediate."""
    if g.opset >= 12:
        return g.op("Einsum", names, equation=equation)
    terms, output = _explicit(equation, ranks)
    letters = list(output) + [c for c in dict.fromkeys("".join(terms)) if c not in output]
    product = None
    for term, x in zip(terms, names):
        if len(set(term)) != len(term):
            raise NeedsOpset("Einsum", "with an index repeated within one operand (a diagonal)", 12, g.opset)
        ordered = sorted(term, key=letters.index)
        if ordered != list(term):
            x = g.op("Transpose", [x], perm=[term.index(c) for c in ordered])
        missing = [i for i, c in enumerate(letters) if c not in term]
        x = g.unsqueeze(x, missing) if missing else x
        product = x if product is None else g.op("Mul", [product, x])
    summed = list(range(len(output), len(letters)))
    return g.reduce("ReduceSum", product, summed, False) if summed else g.op("Identity", [product])


def _explicit(equation, ranks):
    """The terms and output of `equation` with any `...` written as letters of its own."""
    inputs, output = equation.replace(" ", "").split("->")
    terms = inputs.split(",")
    spare = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in equation]
    width = max([r - (len(t) - 3) for t, r in zip(terms, ranks) if "..." in t] or [0])
    ellipsis = "".join(spare[:width])
    terms = [t.replace("...", ellipsis[width - (r - (len(t) - 3)):]) if "..." in t else t
             for t, r in zip(terms, ranks)]
    return terms, output.replace("...", ellipsis)
