"""Every primitive in `avalon.ops.PRIMITIVES` is accounted for: a differentiable one has a rule and a
gradient check (float64 central differences through `avalon.gradcheck`) on a small case below, and one
marked not differentiable is listed with the reason. A new primitive fails these tests until it is
given a case here (or a reason in NOT_DIFFERENTIABLE), so no rule goes untested.

A case is `(f, *operands)`: f records the primitive (checked on its tape) and returns arrays, whose
weighted sum (fixed, uneven weights, so every element's cotangent differs) is what is checked.
Primitives that appear only in gradients (conv_transpose, normalize_grad …) are checked through a
gradient of a gradient, which runs their rules.
"""
import numpy as np
import pytest

import avalon
import avalon.nn.functional as F
from avalon.autodiff.recompute import recompute
from avalon.ops import PRIMITIVES
from avalon.ops import attention as at
from avalon.ops import elementwise as ew
from avalon.ops import index as ix
from avalon.ops import linalg as la
from avalon.ops import nn as nn_ops
from avalon.ops import reduce as rd
from avalon.ops import shape as sh

NOT_DIFFERENTIABLE = {
    **dict.fromkeys(["all", "any", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
                     "logical_and", "logical_or", "logical_xor", "logical_not", "isfinite", "isnan", "isinf"],
                    "boolean outputs"),
    **dict.fromkeys(["argmax", "argmin", "argsort", "argpartition", "argwhere", "searchsorted"],
                    "integer positions as outputs"),
    **dict.fromkeys(["bitwise_and", "bitwise_or", "bitwise_xor", "invert"], "integer (bit) operands"),
    **dict.fromkeys(["sign", "floor", "ceil", "trunc", "rint", "floor_divide"],
                    "piecewise constant: the derivative is 0 almost everywhere"),
    "bitcast": "reads the bits as another dtype: not a function of the values with a derivative",
    "class_distribution": "builds the target distribution of integer class labels (a constant of the loss)",
    "stop_gradient": "its meaning is that no gradient flows (its rule returns None)",
    "checked_index": "passes integer indices through once their range is checked",
    "host_callback": "an effect: calls back into Python at every replay, its result is not a function of "
                     "its operands the tape can see",
    "multinomial": "a random draw of integer positions",
    "broadcast_from": "a collective giving every rank one rank's buffers (DDP's running statistics): nothing "
                      "differentiates through it",
    "lstm_layer": "fills the buffer lstm_layer_output reads; that one's rule differentiates the layer with "
                  "respect to lstm_layer's own operands, so no gradient reaches lstm_layer",
    "fused": "made by the compiler's fusion pass in compiled replays only: tapes that are differentiated "
             "never hold one",
    "batch_norm_relu": "made by the compiler's batch-norm/ReLU fusion (compile/fuse_norm.py) in compiled "
                       "replays only: tapes that are differentiated never hold one",
    **dict.fromkeys(["normal", "uniform", "randint", "randperm"],
                    "a random draw from a shape and a dtype: no array operand for a gradient to reach"),
}


def _uneven(shape):
    """Fixed weights, different for every element (a cotangent of ones would hide transposed rules)."""
    size = int(np.prod(shape))
    return np.cos(np.arange(size) * 1.37 + 0.4).reshape(shape)


def _weighted(outputs):
    """Σ w·y over every floating output, with `_uneven` weights."""
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    total = 0.0
    for y in outputs:
        if y is not None and np.issubdtype(np.dtype(y.dtype), np.floating):
            total = total + (y * _uneven(tuple(y.shape))).sum()
    return total


def _second(f):
    """A function of the same operands whose tape records `f`'s backward pass (a weighted sum of the
    gradients of `_weighted(f)`), so checking it runs the rules of the primitives in that pass."""
    def grads(*args):
        return _weighted(avalon.grad(lambda *a: _weighted(f(*a)), *args)[1])

    return grads


def _r(*shape, low=None, high=None, seed=0):
    rng = np.random.default_rng(seed + sum(shape) * 7 + len(shape))
    if low is not None:
        return rng.uniform(low, high, shape)
    return rng.standard_normal(shape)


def _apart(*shape, seed=0):
    """Values at least 0.1 apart from each other (max, min, sort: no ties within finite differences)."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(int(np.prod(shape))) * 0.1 - 0.5).reshape(shape)


def _unary(prim, low=-2.0, high=2.0):
    return (prim, _r(2, 3, low=low, high=high))


def _conv(x, w):
    return F.conv2d(x, w, stride=2, padding=1)


def _max_pool(x):
    return F.max_pool2d(x, 2, stride=2)


def _avg_pool(x):
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


def _batch_norm(x, w, b):
    return F.batch_norm(x, None, None, w, b, training=True)


def _layer_norm(x, w, b):  # the fused primitives, over the two trailing axes
    stats = PRIMITIVES["layer_norm_stats"](x, k=2)
    return PRIMITIVES["layer_norm_apply"](x, stats, w, b, eps=1e-5, k=2)


def _instance_norm(x, w, b):  # the decomposed normalisation primitives (batch norm has fused ones)
    return F.instance_norm(x, weight=w, bias=b)


def _cross_entropy(x):
    return F.cross_entropy(x, np.array([2, 0, 1, 2]), label_smoothing=0.1)


def _attention(q, k, v):  # the fused primitive itself (sdpa keeps small weights unfused)
    return at.attention(q, k, v, scale=0.5, causal=True)


def _attention_weights(q, k):
    return at.attention_weights(q, k, scale=0.5, causal=False)


def _resample(x):
    return F.interpolate(x, size=(3, 5), mode="bilinear", align_corners=False)


def _scatter_sum(whole, rows, row):
    keys = ((), (slice(0, 2),), (2,))  # a part over the whole array first, then basic keys
    return PRIMITIVES["scatter_sum"](whole, rows, row, keys=keys, shape=(3, 4))


def _lstm_scan(gi, h0, c0, w_hh, bias):
    # the whole workspace is its output: the h and c blocks the layers read, and the four gates
    return PRIMITIVES["lstm_scan"](gi, h0, c0, w_hh, bias, reverse=True)


def _rnn_scan(gi, h0, w_hh):
    return PRIMITIVES["rnn_scan"](gi, h0, w_hh, nonlinearity="tanh", reverse=False)


def _gru_scan(gi, h0, w_hh, b_hh):
    return PRIMITIVES["gru_scan"](gi, h0, w_hh, b_hh, reverse=True)


def _lstm_layer(x, h0, c0, w_ih, w_hh, bias):  # float64 here: the numpy path (oneDNN's: tests/kernels)
    ws = PRIMITIVES["lstm_layer"](x, h0, c0, w_ih, w_hh, bias, reverse=True)
    return PRIMITIVES["lstm_layer_output"](ws, x, h0, c0, w_ih, w_hh, bias, reverse=True)


_LSTM_LAYER = (_r(3, 2, 3), _r(2, 2), _r(2, 2, seed=1), _r(8, 3, low=-0.5, high=0.5), _r(8, 2, low=-0.5, high=0.5),
               _r(8, seed=4))
_LSTM = (_r(3, 2, 8), _r(2, 2), _r(2, 2, seed=1), _r(8, 2, low=-0.5, high=0.5), _r(8, seed=4))
_RNN = (_r(3, 2, 2), _r(2, 2, seed=1), _r(2, 2, low=-0.5, high=0.5))
_GRU = (_r(3, 2, 6), _r(2, 2, seed=2), _r(6, 2, low=-0.5, high=0.5), _r(6, seed=3))

CASES = {
    # elementwise
    "abs": (ew.absolute, _apart(2, 3) + 0.05),
    "add": (ew.add, _r(2, 3), _r(3)),
    "subtract": (ew.subtract, _r(2, 3), _r(2, 1)),
    "multiply": (ew.multiply, _r(2, 3), _r(3)),
    "divide": (ew.divide, _r(2, 3), _r(3, low=0.5, high=2.0)),
    "power": (ew.power, _r(2, 3, low=0.5, high=2.0), _r(3, low=-1.5, high=1.5)),
    "remainder": (lambda a, b: ew.remainder(a, b), _r(2, 3, low=0.1, high=0.9), _r(3, low=1.1, high=1.9)),
    "maximum": (ew.maximum, _apart(2, 3), _apart(3, seed=1) + 0.05),
    "minimum": (ew.minimum, _apart(2, 3), _apart(3, seed=1) + 0.05),
    "negative": _unary(ew.negative),
    "exp": _unary(ew.exp),
    "exp2": _unary(ew.exp2),
    "expm1": _unary(ew.expm1),
    "log": _unary(ew.log, 0.2, 3.0),
    "log2": _unary(ew.log2, 0.2, 3.0),
    "log10": _unary(ew.log10, 0.2, 3.0),
    "log1p": _unary(ew.log1p, -0.5, 3.0),
    "sqrt": _unary(ew.sqrt, 0.2, 3.0),
    "square": _unary(ew.square),
    "reciprocal": _unary(ew.reciprocal, 0.3, 2.0),
    "sin": _unary(ew.sin),
    "cos": _unary(ew.cos),
    "tan": _unary(ew.tan, -1.2, 1.2),
    "arcsin": _unary(ew.arcsin, -0.9, 0.9),
    "arccos": _unary(ew.arccos, -0.9, 0.9),
    "arctan": _unary(ew.arctan),
    "arctan2": (ew.arctan2, _r(2, 3), _r(2, 3, low=0.3, high=2.0)),
    "sinh": _unary(ew.sinh),
    "cosh": _unary(ew.cosh),
    "tanh": _unary(ew.tanh),
    "arcsinh": _unary(ew.arcsinh),
    "arccosh": _unary(ew.arccosh, 1.2, 3.0),
    "arctanh": _unary(ew.arctanh, -0.9, 0.9),
    "sigmoid": _unary(ew.sigmoid),
    "relu": (ew.relu, _apart(2, 3) + 0.05),
    "erf": _unary(avalon.erf),
    "all_reduce_sum": _unary(avalon.distributed.all_reduce_sum),  # one process: the identity (2 ranks: tests/distributed)
    "clip": (lambda x: ew.clip(x, -0.3, 0.4), _apart(2, 3) + 0.02),
    "where": (lambda a, b: ew.where(np.array([[True, False, True], [False, True, True]]), a, b),
              _r(2, 3), _r(3)),
    "astype": (lambda x: ew.astype(x, dtype=np.dtype(np.float64)) * ew.astype(x, dtype=np.dtype(np.float32)),
               _r(2, 3)),
    # reductions
    "sum": (lambda x: rd.sum(x, axis=1, keepdims=True), _r(2, 3)),
    "mean": (lambda x: rd.mean(x, axis=(0,)), _r(2, 3)),
    "prod": (lambda x: rd.prod(x, axis=1), _r(2, 3, low=0.5, high=1.5)),
    "max": (lambda x: rd.max(x, axis=0), _apart(2, 3)),
    "min": (lambda x: rd.min(x), _apart(2, 3)),
    "var": (lambda x: rd.var(x, axis=1, ddof=1), _r(2, 3)),
    "logsumexp": (lambda x: rd.logsumexp(x, axis=1), _r(2, 3)),
    "cumsum": (lambda x: rd.cumsum(x, axis=1), _r(2, 3)),
    "cumprod": (lambda x: rd.cumprod(x, axis=1), _r(2, 3, low=0.5, high=1.5)),
    "sum_to": (lambda x: rd.sum_to(x, shape=(1, 3)), _r(2, 3)),
    # shapes and indexing
    "reshape": (lambda x: sh.reshape(x, shape=(3, 2)), _r(2, 3)),
    "transpose": (lambda x: sh.transpose(x, axes=(2, 0, 1)), _r(2, 3, 4)),
    "broadcast_to": (lambda x: sh.broadcast_to(x, shape=(2, 3)), _r(1, 3)),
    "concatenate": (lambda a, b: sh.concatenate(a, b, axis=1), _r(2, 3), _r(2, 1)),
    "pad": (lambda x: sh.pad(x, widths=((1, 0), (2, 1)), value=0.5), _r(2, 3)),
    "flip": (lambda x: sh.flip(x, axis=(1,)), _r(2, 3)),
    "tile": (lambda x: sh.tile(x, reps=(2, 1)), _r(2, 3)),
    "repeat": (lambda x: sh.repeat(x, repeats=2, axis=0), _r(2, 3)),
    "getitem": (lambda x: x[np.array([2, 0, 2]), 1:], _r(3, 4)),
    "scatter_add": (_second(lambda x: x[np.array([2, 0, 2]), 1:]), _r(3, 4)),
    "scatter_sum": (_scatter_sum, _r(3, 4), _r(2, 4), _r(4)),
    # linear algebra and fused nn primitives
    "matmul": (la.matmul, _r(2, 3), _r(3, 4)),
    "einsum": (lambda a, b: la.einsum(a, b, subscripts="ij,jk->ik"), _r(2, 3), _r(3, 4)),
    "softmax": (lambda x: nn_ops.softmax(x, axis=1), _r(2, 3)),
    "log_softmax": (lambda x: nn_ops.log_softmax(x, axis=1), _r(2, 3)),
    "recompute": (lambda x: recompute(x) * x, _r(2, 3)),
    # convolution and pooling
    "conv": (_conv, _r(2, 2, 5, 5), _r(3, 2, 3, 3, seed=1)),
    "conv_transpose": (_second(_conv), _r(2, 2, 5, 5), _r(3, 2, 3, 3, seed=1)),
    "conv_weight_grad": (_second(_conv), _r(2, 2, 5, 5), _r(3, 2, 3, 3, seed=1)),
    "unfold": (lambda x: F.unfold(x, 2, stride=1, padding=1), _r(1, 2, 3, 3)),
    "fold": (lambda x: F.fold(x, (3, 3), 2, stride=1), _r(1, 8, 4)),
    "max_pool": (_max_pool, _apart(1, 2, 4, 4)),
    "max_pool_scatter": (_second(_max_pool), _apart(1, 2, 4, 4)),
    "max_pool_gather": (_second(_second(_max_pool)), _apart(1, 2, 4, 4)),
    "avg_pool": (_avg_pool, _r(1, 2, 5, 5)),
    "avg_pool_transpose": (_second(_avg_pool), _r(1, 2, 5, 5)),
    # normalisation
    "center": (_instance_norm, _r(4, 3, 2), _r(3, low=0.5, high=1.5), _r(3)),
    "normalize": (_instance_norm, _r(4, 3, 2), _r(3, low=0.5, high=1.5), _r(3)),
    "normalize_grad": (_second(_instance_norm), _r(4, 3, 2), _r(3, low=0.5, high=1.5), _r(3)),
    "batch_norm_stats": (lambda x: PRIMITIVES["batch_norm_stats"](x), _r(4, 3, 2)),
    "batch_norm_apply": (_batch_norm, _r(4, 3, 2), _r(3, low=0.5, high=1.5), _r(3)),
    "batch_norm_backward": (_second(_batch_norm), _r(4, 3, 2), _r(3, low=0.5, high=1.5), _r(3)),
    "layer_norm_stats": (lambda x: PRIMITIVES["layer_norm_stats"](x, k=2), _r(4, 3, 2)),
    "layer_norm_apply": (_layer_norm, _r(4, 3, 2), _r(3, 2, low=0.5, high=1.5), _r(3, 2)),
    "layer_norm_backward": (_second(_layer_norm), _r(4, 3, 2), _r(3, 2, low=0.5, high=1.5), _r(3, 2)),
    # losses
    "cross_entropy": (_cross_entropy, _r(4, 3)),
    "cross_entropy_backward": (_second(_cross_entropy), _r(4, 3)),
    "soft_cross_entropy": (lambda x, t: F.cross_entropy(x, t), _r(4, 3), _r(4, 3, low=0.0, high=1.0)),
    "checked_probability": (lambda x, t: F.binary_cross_entropy(x, t), _r(4, 3, low=0.1, high=0.9),
                            _r(4, 3, low=0.0, high=1.0)),
    "sigmoid_cross_entropy": (lambda x, t, pw: F.binary_cross_entropy_with_logits(x, t, pos_weight=pw),
                              _r(4, 3), _r(4, 3, low=0.0, high=1.0), _r(3, low=0.5, high=2.0)),
    # attention
    "attention": (_attention, _r(2, 3, 4), _r(2, 3, 4, seed=1), _r(2, 3, 4, seed=2)),
    "attention_weights": (_attention_weights, _r(2, 3, 4), _r(2, 3, 4, seed=1)),
    "attention_scores_grad": (_second(_attention_weights), _r(2, 3, 4), _r(2, 3, 4, seed=1)),
    # resampling
    "resample": (_resample, _r(1, 2, 4, 4)),
    "resample_transpose": (_second(_resample), _r(1, 2, 4, 4)),
    # recurrence
    "lstm_scan": (_lstm_scan, *_LSTM),
    "rnn_scan": (_rnn_scan, *_RNN),
    "gru_scan": (_gru_scan, *_GRU),
    "lstm_layer_output": (_lstm_layer, *_LSTM_LAYER),
}

# gradcheck's options where its defaults do not fit: a cast to float32 and back is exact only to
# float32's precision, so its finite differences take a larger step (the function is linear)
OPTIONS = {"astype": dict(eps=1e-2)}

# Differentiable primitives whose rule refuses, with what the refusal must say (the rewrite).
REFUSED = {
    "lstm_scan_grad": ((_second(_lstm_scan), *_LSTM), "fused = False"),
    "rnn_scan_grad": ((_second(_rnn_scan), *_RNN), "fused = False"),
    "gru_scan_grad": ((_second(_gru_scan), *_GRU), "fused = False"),
    "lstm_layer_grad": ((_second(_lstm_layer), *_LSTM_LAYER), "fused = False"),
}


def _differentiable():
    return sorted(name for name, p in PRIMITIVES.items()
                  if p.differentiable and not _users(p))


def _users(prim):
    """Whether a primitive is a user's (one a test made with avalon.primitive / avalon.rule): its
    forward is defined outside Avalon."""
    return not (prim.impl.__module__ or "").startswith("avalon.")


def test_every_primitive_is_differentiable_with_a_case_or_listed_with_the_reason():
    builtin = {name for name, p in PRIMITIVES.items() if not _users(p)}
    listed = set(NOT_DIFFERENTIABLE)
    without_case = sorted(set(_differentiable()) - set(CASES) - set(REFUSED) - listed)
    assert not without_case, f"differentiable primitives with no gradient-check case: {without_case}"
    assert not sorted(listed - builtin), "listed primitives that no longer exist"
    marked_off = {name for name in builtin if not PRIMITIVES[name].differentiable}
    assert marked_off <= set(NOT_DIFFERENTIABLE), \
        f"not differentiable, with no reason given: {sorted(marked_off - set(NOT_DIFFERENTIABLE))}"
    assert not set(NOT_DIFFERENTIABLE) & (set(CASES) | set(REFUSED))


@pytest.mark.parametrize("name", _differentiable())
def test_every_differentiable_primitive_has_a_rule(name):
    assert PRIMITIVES[name].vjp is not None, f"{name} is differentiable but has no rule"


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_rule_passes_a_gradient_check(name):
    if name not in PRIMITIVES:
        pytest.skip(f"{name} is not a primitive in this build")
    f, *operands = CASES[name]
    tape = avalon.trace(lambda *a: _weighted(f(*a)), *operands)
    assert name in {n.prim.name for n in tape.calls}, f"the case for {name} does not record it"
    result = avalon.gradcheck(lambda *a: _weighted(f(*a)), *operands, **OPTIONS.get(name, {}))
    assert result, f"{name}: {result}"


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_rule_that_refuses_says_what_to_do(name):
    if name not in PRIMITIVES:
        pytest.skip(f"{name} is not a primitive in this build")
    (f, *operands), says = REFUSED[name]
    tape = avalon.trace(lambda *a: _weighted(f(*a)), *operands)
    assert name in {n.prim.name for n in tape.calls}, f"the case for {name} does not record it"
    with pytest.raises(avalon.AvalonError, match=says):
        avalon.gradcheck(lambda *a: _weighted(f(*a)), *operands)
