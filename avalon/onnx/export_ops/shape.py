"""Shape primitives: reshape, transpose, broadcast, concatenate, pad, flip, tile, repeat and the index
range check (indexing itself: index.py)."""
import numpy as np

from . import emits

_END = np.iinfo(np.int64).max
_BEFORE_START = np.iinfo(np.int64).min


@emits("reshape")
def reshape(g, node):
    twin = g.twin(node)
    target = g.shape_tensor(node.shape, twin and twin.shape, fill=-1)
    return g.op("Reshape", [g.arg(node, 0), target])


@emits("transpose")
def transpose(g, node):
    return g.op("Transpose", [g.arg(node, 0)], perm=[int(a) for a in node.params["axes"]])


@emits("broadcast_to")
def broadcast_to(g, node):
    twin = g.twin(node)
    return g.op("Expand", [g.arg(node, 0), g.shape_tensor(node.shape, twin and twin.shape, fill=1)])


@emits("concatenate")
def concatenate(g, node):
    names = [g.arg(node, i, node.dtype) for i in range(len(node.args))]
    if len(names) == 1:
        return g.op("Identity", names)
    return g.op("Concat", names, axis=int(node.params.get("axis", 0)) % len(node.shape))


@emits("pad")
def pad(g, node):
    widths = node.params["widths"]
    pads = [int(a) for a, _ in widths] + [int(b) for _, b in widths]
    return g.pad(g.arg(node, 0), pads, node.params.get("value", 0.0), node.dtype)


@emits("flip")
def flip(g, node):
    axis = node.params["axis"]
    axes = [int(a) % len(node.shape) for a in ((axis,) if isinstance(axis, int) else axis)]
    n = len(axes)
    return g.slice(g.arg(node, 0), [-1] * n, [_BEFORE_START] * n, axes, [-1] * n, g.sizes(node.args[0]))


@emits("tile")
def tile(g, node):
    reps = [int(r) for r in node.params["reps"]]
    x, ndim = g.arg(node, 0), len(node.args[0].shape)
    if len(reps) > ndim:  # numpy's tile adds leading axes of length 1 first
        x = g.unsqueeze(x, range(len(reps) - ndim))
    reps = [1] * (ndim - len(reps)) + reps
    return g.op("Tile", [x, g.ints(reps)])


def _repeat_refusal(node, opset):
    if not isinstance(node.params.get("repeats"), (int, np.integer)):
        return "repeat with a count per element has no ONNX form here (only one count for every element)"
    return None


@emits("repeat", refuse=_repeat_refusal)
def repeat(g, node):
    """Each element k times along `axis`: a new axis after it, expanded to k, merged back."""
    x, shape, k = g.arg(node, 0), node.args[0].shape, int(node.params["repeats"])
    axis = node.params["axis"]
    if axis is None:
        x, shape, axis = g.op("Reshape", [x, g.ints([-1])]), (int(np.prod(shape)),), 0
    axis %= len(shape)
    g.static_sizes(node, node.args[0], None, "the repeated array's shape")
    wide = g.op("Expand", [g.unsqueeze(x, [axis + 1]), g.ints(shape[:axis + 1] + (k,) + shape[axis + 1:])])
    return g.op("Reshape", [wide, g.ints(node.shape)])


@emits("checked_index")
def checked_index(g, node):
    # the range check has no ONNX form; Gather refuses indices out of range itself
    return g.op("Identity", [g.arg(node, 0)])
