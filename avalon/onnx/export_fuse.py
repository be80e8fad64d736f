"""Groups of tape nodes written as one ONNX operator, as PyTorch's exports have them: a Linear's
matmul and bias add as Gemm, an evaluation-mode batch norm's folded scale and shift as
BatchNormalization (so its running statistics stay statistics when the file is imported again) and
a layer norm's statistics and apply (or its moments and normalize) as LayerNormalization (opset 17
on; below it, the nodes one by one). Each pattern is matched on the tape exactly as the layers
record it; anything else stays as its separate nodes, which export just as well.
"""
from dataclasses import dataclass

import numpy as np

from ..tape import Call, Input


@dataclass
class Fused:
    """One ONNX operator for a group of nodes ending in the node it replaces: `inputs` are the tape
    nodes it reads (or None for an absent optional operand), `emit(g)` writes it."""

    inputs: list
    emit: object

    def __call__(self, g):
        return self.emit(g)


def _call(node, *names):
    return node if isinstance(node, Call) and node.prim.name in names else None


def _param(node):
    return node if isinstance(node, Input) and node.role != "data" else None


def fuse(tape, outputs, opset):
    """{node: Fused} for every group found (the node being the group's result)."""
    found = {}
    for node in tape.calls:
        for match in (_gemm, _batch_norm, _layer_norm if opset >= 17 else None):
            fused = match(node) if match is not None else None
            if fused is not None:
                found[node] = fused
                break
    return found


def _gemm(node):
    """add(matmul(x, transpose(W)), b) with x 2-D, W a parameter: Gemm(x, W, b, transB=1)."""
    if not _call(node, "add") or len(node.shape) != 2:
        return None
    product, bias = node.args
    product = _call(product, "matmul")
    if product is None or not _param(bias) or len(bias.shape) != 1 or bias.shape[0] != node.shape[1]:
        return None
    x, wt = product.args
    wt = _call(wt, "transpose")
    if wt is None or tuple(wt.params["axes"]) != (1, 0) or not _param(wt.args[0]) or len(x.shape) != 2 \
            or x.dtype != node.dtype:
        return None
    w = wt.args[0]

    def emit(g):
        return g.op("Gemm", [g.names[x], g.names[w], g.names[bias]], transB=1)
    return Fused([x, w, bias], emit)


def _batch_norm(node):
    """x·reshape(scale) + reshape(shift), scale = weight/sqrt(var + eps) and shift = bias - mean·scale
    (nn.functional.batch_norm in evaluation mode), with the statistics and affine parameters inputs."""
    if not _call(node, "add"):
        return None
    scaled, shift_r = node.args
    scaled, shift_r = _call(scaled, "multiply"), _call(shift_r, "reshape")
    if scaled is None or shift_r is None:
        return None
    x, scale_r = scaled.args
    scale_r = _call(scale_r, "reshape")
    if scale_r is None or not hasattr(x, "shape") or len(x.shape) < 2:
        return None
    channels = x.shape[1]
    if scale_r.shape != (1, channels) + (1,) * (len(x.shape) - 2) or scale_r.shape != shift_r.shape:
        return None
    scale, shift = scale_r.args[0], shift_r.args[0]
    weight = None
    if _call(scale, "multiply") and _param(scale.args[1]):
        scale, weight = scale.args
    inverse = _call(scale, "divide")
    if inverse is None or inverse.args[0] != 1.0:
        return None
    root = _call(inverse.args[1], "sqrt")
    plus = _call(root.args[0], "add") if root is not None else None
    if plus is None or not _param(plus.args[0]) or not isinstance(plus.args[1], float):
        return None
    var, eps = plus.args
    bias = None
    if _call(shift, "add") and _param(shift.args[1]):
        shift, bias = shift.args
    product = _call(shift, "multiply")
    negative = _call(product.args[0], "negative") if product is not None else None
    if negative is None or not _param(negative.args[0]) or product.args[1] is not scale_r.args[0]:
        return None
    mean = negative.args[0]

    def emit(g):
        dt = node.dtype
        w = g.names[weight] if weight is not None else g.const(np.ones(channels, dt))
        b = g.names[bias] if bias is not None else g.const(np.zeros(channels, dt))
        return g.op("BatchNormalization", [g.names[x], w, b, g.names[mean], g.names[var]], epsilon=eps)
    return Fused([n for n in (x, weight, bias, mean, var) if n is not None], emit)


def _mean_of(node, source, axes):
    """Whether `node` is layer norm's mean over `axes` of `source` (keepdims): (sum of source, or of
    source·source, as an einsum) reshaped and times 1/n."""
    scaled = _call(node, "multiply")
    if scaled is None or not isinstance(scaled.args[1], float):
        return False
    total = _call(scaled.args[0], "reshape")
    total = _call(total.args[0], "einsum") if total is not None else None
    if total is None or any(a is not source for a in total.args):
        return False
    n = float(np.prod([source.shape[a] for a in axes]))
    return np.isclose(scaled.args[1] * n, 1.0)


def _layer_norm(node):
    """LayerNormalization for layer_norm_apply(x, layer_norm_stats(x), weight, bias) (the fused
    primitives) or normalize(center(x, mean(x)), mean(c²), weight, bias) over trailing axes (the
    decomposed steps: nn.functional.normalization.FUSED_LAYER_NORM = False)."""
    if _call(node, "layer_norm_apply"):
        x, stats, weight, bias = node.args[:4]
        stats = _call(stats, "layer_norm_stats")
        if stats is None or stats.args[0] is not x or stats.params["k"] != node.params["k"]:
            return None
        return _layer_normalization(node, x, weight, bias, node.params["k"])
    if not _call(node, "normalize"):
        return None
    c, var, weight, bias = node.args[:4]
    axes = tuple(node.params["axes"])
    ndim = len(node.shape)
    centred = _call(c, "center")
    if centred is None or axes != tuple(range(ndim - len(axes), ndim)):
        return None
    x, mean = centred.args[:2]
    if not _mean_of(mean, x, axes) or not _mean_of(var, c, axes):
        return None
    return _layer_normalization(node, x, weight, bias, len(axes))


def _layer_normalization(node, x, weight, bias, k):
    """A Fused LayerNormalization of x over its trailing k axes, or None where weight or bias is not
    of their shape."""
    trailing = node.shape[len(node.shape) - k:]
    if any(v is not None and (not hasattr(v, "shape") or v.shape != trailing) for v in (weight, bias)):
        return None

    def emit(g):
        dt = node.dtype
        w = g.names[weight] if weight is not None else g.const(np.ones(trailing, dt))
        inputs = [g.names[x], w] + ([g.names[bias]] if bias is not None else [])
        return g.op("LayerNormalization", inputs, axis=-k, epsilon=float(node.params["eps"]))
    return Fused([n for n in (x, weight, bias) if n is not None], emit)
