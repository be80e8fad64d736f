"""Reductions and scans: sum, mean, prod, max, min, any, all, argmax/argmin, var, logsumexp, cumsum,
sum_to, and einsum (layer norm's sums are einsums on the tape)."""
import numpy as np

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
        return g.op(op_type, [x], axis=int(axis), keepdims=keep)
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
    return g.op("Einsum", [g.arg(node, i) for i in range(len(node.args))], equation=node.params["subscripts"])
