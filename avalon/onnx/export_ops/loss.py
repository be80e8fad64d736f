"""Loss primitives: cross-entropy against class indices (weights, ignore_index, label smoothing),
against class probabilities, and the logits' binary cross-entropy, written out with LogSoftmax and
GatherElements (ONNX's SoftmaxCrossEntropyLoss has no label smoothing)."""
import numpy as np

from . import emits


@emits("cross_entropy")
def cross_entropy(g, node):
    """(1 - ε)·w[y]·(-log p[y]) + (ε/C)·Σ_c w[c]·(-log p[c]); 0 where y is ignore_index."""
    x, dt = node.args[0], node.dtype
    axis = node.params.get("axis", 1) % len(x.shape)
    ignore, smoothing = node.params.get("ignore_index", -100), node.params.get("label_smoothing", 0.0)
    classes = x.shape[axis]
    logp = g.softmax("LogSoftmax", g.arg(node, 0), axis, len(x.shape))
    target = g.arg(node, 1, np.int64)
    counted = g.op("Not", [g.op("Equal", [target, g.const(np.int64(ignore))])])
    safe = g.op("Where", [counted, target, g.const(np.int64(0))])
    if g.opset >= 11:
        picked = g.squeeze(g.op("GatherElements", [logp, g.unsqueeze(safe, [axis])], axis=axis), [axis])
    else:  # before GatherElements: the target's one-hot mask along the class axis, summed
        along = [1] * len(x.shape)
        along[axis] = classes
        hot = g.op("Equal", [g.unsqueeze(safe, [axis]), g.const(np.arange(classes, dtype=np.int64).reshape(along))])
        picked = g.reduce("ReduceSum", g.op("Where", [hot, logp, g.const(0, dt)]), [axis], False)
    loss = g.op("Neg", [picked])
    weighted = len(node.args) > 2
    if weighted:
        loss = g.op("Mul", [loss, g.op("Gather", [g.arg(node, 2, dt), safe], axis=0)])
    if smoothing:
        if weighted:
            along = [1] * len(x.shape)
            along[axis] = classes
            logp = g.op("Mul", [logp, g.op("Reshape", [g.arg(node, 2, dt), g.ints(along)])])
        smooth = g.op("Neg", [g.reduce("ReduceSum", logp, [axis], False)])
        loss = g.op("Add", [g.op("Mul", [loss, g.const(1 - smoothing, dt)]),
                            g.op("Mul", [smooth, g.const(smoothing / classes, dt)])])
    return g.op("Where", [counted, loss, g.const(0, dt)])


@emits("soft_cross_entropy")
def soft_cross_entropy(g, node):
    axis = node.params.get("axis", 1) % len(node.args[0].shape)
    logp = g.softmax("LogSoftmax", g.arg(node, 0), axis, len(node.args[0].shape))
    return g.op("Neg", [g.reduce("ReduceSum", g.op("Mul", [g.arg(node, 1, node.dtype), logp]), [axis], False)])


@emits("sigmoid_cross_entropy")
def sigmoid_cross_entropy(g, node):
    """(1 - y)·x + (1 + (pos_weight - 1)·y)·log(1 + exp(-x)), log(1 + exp(-x)) written stably as
    log(1 + exp(-|x|)) + max(-x, 0)."""
    dt = node.dtype
    x, y = g.arg(node, 0, dt), g.arg(node, 1, dt)
    one = g.const(1, dt)
    negative = g.op("Neg", [x])
    softplus = g.op("Add", [g.op("Log", [g.op("Add", [one, g.op("Exp", [g.op("Neg", [g.op("Abs", [x])])])])]),
                            g.op("Max", [negative, g.const(0, dt)])])
    if len(node.args) > 2:
        weight = g.op("Add", [one, g.op("Mul", [g.op("Sub", [g.arg(node, 2, dt), one]), y])])
        softplus = g.op("Mul", [weight, softplus])
    return g.op("Add", [g.op("Mul", [g.op("Sub", [one, y]), x]), softplus])
