"""Reductions: ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceLogSum,
ReduceLogSumExp, ReduceSumSquare; CumSum."""
import numpy as np

from ..node import is_array_constant
from . import operator
from .math import cast


def _log_sum_exp(x, axis, keepdims):
    top = np.max(x, axis=axis, keepdims=True)  # shifted by the maximum so exp cannot overflow
    y = np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True)) + top
    return y if keepdims else np.squeeze(y, axis=axis)


_REDUCE = {
    "ReduceMean": np.mean, "ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMin": np.min, "ReduceProd": np.prod,
    "ReduceL1": lambda x, axis, keepdims: np.sum(np.abs(x), axis=axis, keepdims=keepdims),
    "ReduceL2": lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)),
    "ReduceSumSquare": lambda x, axis, keepdims: np.sum(x * x, axis=axis, keepdims=keepdims),
    "ReduceLogSum": lambda x, axis, keepdims: np.log(np.sum(x, axis=axis, keepdims=keepdims)),
    "ReduceLogSumExp": _log_sum_exp,
}
# The value of a reduction over no elements (ONNX defines them; numpy refuses max and min of nothing).
_EMPTY = {"ReduceMax": -np.inf, "ReduceMin": np.inf, "ReduceLogSum": -np.inf, "ReduceLogSumExp": -np.inf,
          "ReduceProd": 1, "ReduceMean": np.nan}


@operator(*_REDUCE)
def reduce(n, x, axes=None):
    """`axes` is an attribute before opset 18 (13 for ReduceSum), then an input; no axes reduces all of
    them unless noop_with_empty_axes."""
    axes_became_input = 13 if n.op_type == "ReduceSum" else 18
    if n.opset < axes_became_input:
        axes = n.attr("axes")
    elif axes is not None:
        axes = n.ints(axes, "axes")
    if not axes:
        if n.attr("noop_with_empty_axes", 0) and n.opset >= axes_became_input:
            return x
        axes = range(x.ndim)
    axes = tuple(sorted(int(a) % x.ndim for a in axes))
    keepdims = bool(n.attr("keepdims", 1))
    if any(x.shape[a] == 0 for a in axes):
        shape = tuple(1 if a in axes else d for a, d in enumerate(x.shape) if keepdims or a not in axes)
        empty = _EMPTY.get(n.op_type, 0)
        if x.dtype == np.bool_:
            empty = n.op_type == "ReduceMin"
        elif np.issubdtype(x.dtype, np.integer) and not np.isfinite(empty):
            info = np.iinfo(x.dtype)
            empty = info.min if empty < 0 else info.max
        return np.full(shape, empty, dtype=x.dtype)
    y = _REDUCE[n.op_type](x, axis=axes, keepdims=keepdims)
    return cast(y, x.dtype) if is_array_constant(y) else y


def _scan_axis(n, x, axis):
    """The axis of a CumSum/CumProd, its reversing index, and `x` reversed along it when asked."""
    axis = n.ints(axis, "axis")[0] % x.ndim
    flip = tuple(slice(None, None, -1) if i == axis else slice(None) for i in range(x.ndim))
    return axis, flip, (x[flip] if n.attr("reverse", 0) else x)


@operator("CumSum")
def cumulative_sum(n, x, axis):
    axis, flip, x = _scan_axis(n, x, axis)
    y = cast(np.cumsum(x, axis=axis), x.dtype)  # numpy widens small integers
    if n.attr("exclusive", 0):  # each position sums only what comes before it
        y = y - x
    return y[flip] if n.attr("reverse", 0) else y


@operator("CumProd")
def cumulative_product(n, x, axis):
    axis, flip, x = _scan_axis(n, x, axis)
    if n.attr("exclusive", 0):  # each position multiplies only what comes before it: shift in a one
        index = [slice(None)] * x.ndim
        index[axis] = slice(0, x.shape[axis] - 1)
        ones = [slice(None)] * x.ndim
        ones[axis] = slice(0, 1)
        x = np.concatenate([np.ones_like(x[tuple(ones)]), x[tuple(index)]], axis=axis)
    y = cast(np.cumprod(x, axis=axis), x.dtype)
    return y[flip] if n.attr("reverse", 0) else y
