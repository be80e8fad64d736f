"""Shape and indexing primitives: reshape, transpose, broadcast, concatenate, pad, flip, tile, repeat,
getitem (basic slicing, integers, new axes and one index array) and the index range check."""
import numpy as np

from ...ops.index import Slot
from ..export_dynamic import DynamicSizeError
from ...tape import Node
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
    return g.slice(g.arg(node, 0), [-1] * n, [_BEFORE_START] * n, axes, [-1] * n)


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


def _getitem_refusal(node, opset):
    key = node.params["key"]
    slots = [k for k in key if isinstance(k, Slot)]
    ints = [k for k in key if isinstance(k, (int, np.integer))]
    if any(isinstance(a, Node) and a.dtype == np.bool_ for a in node.args[1:]):
        return "a boolean mask index gives a shape that depends on the data"
    if len(slots) > 1 and (ints or None in key):
        return "several index arrays mixed with integers or new axes have no ONNX form here"
    if len(slots) == 1 and ints:
        entries = [i for i, k in enumerate(key) if isinstance(k, (int, np.integer, Slot))]
        if entries != list(range(entries[0], entries[-1] + 1)) and key.index(slots[0]) != 0:
            return "integers and an index array apart from each other (numpy moves the result axes first)"
    return None


def _full_key(key, ndim):
    """The key with its Ellipsis replaced by full slices, and full slices up to ndim."""
    used = sum(1 for k in key if k is not None and k is not Ellipsis)
    out = []
    for k in key:
        out.extend([slice(None)] * (ndim - used) if k is Ellipsis else [k])
    if not any(k is Ellipsis for k in key):
        out.extend([slice(None)] * (ndim - used))
    return out


def _bound(g, node, value, twin_value):
    """A slice bound: the traced number, or where it follows a dynamic axis (`pe[:x.size(0)]`) a
    1-element tensor computed from the inputs' sizes."""
    if twin_value == value:
        return value
    size = g.dims.size(g, value, twin_value) if value is not None and twin_value is not None else None
    if size is None:
        _refuse(node, value, twin_value)
    return size


def _refuse(node, value, twin_value):
    raise DynamicSizeError(node, f"its index {value!r} is {twin_value!r} at another size")


@emits("getitem", refuse=_getitem_refusal)
def getitem(g, node):
    """Slice every sliced or integer axis at once, drop the integer axes, gather along the index
    array's axis, then add the new (None) axes."""
    key = _full_key(node.params["key"], len(node.args[0].shape))
    twin = g.twin(node)
    twin_key = _full_key(twin.params["key"], len(node.args[0].shape)) if twin is not None else key
    x = g.arg(node, 0)
    starts, ends, axes, steps, dropped = [], [], [], [], []
    axis = 0
    for k, t in zip(key, twin_key):
        if k is None:
            continue
        if isinstance(k, slice) and k != slice(None):
            step = 1 if k.step is None else int(k.step)
            if t.step != k.step:
                _refuse(node, k.step, t.step)
            start = _bound(g, node, k.start, t.start) if k.start is not None else (0 if step > 0 else -1)
            stop = _bound(g, node, k.stop, t.stop) if k.stop is not None else (_END if step > 0 else _BEFORE_START)
            starts.append(start)
            ends.append(stop)
            axes.append(axis)
            steps.append(step)
        elif isinstance(k, (int, np.integer)):
            if t != k:
                _refuse(node, k, t)
            starts.append(int(k))
            ends.append(int(k) + 1 if int(k) != -1 else _END)
            axes.append(axis)
            steps.append(1)
            dropped.append(axis)
        axis += 1
    if axes:
        x = g.slice(x, starts, ends, axes, steps)
    if dropped:
        x = g.squeeze(x, dropped)
    kept = [k for k in key if k is not None and not isinstance(k, (int, np.integer))]
    slots = [i for i, k in enumerate(kept) if isinstance(k, Slot)]
    if len(slots) > 1:
        return _gather_nd(g, node, x, slots)
    out_axes, position = [], 0  # where each None lands in the result
    for k in key:
        if isinstance(k, Slot):
            index = node.args[1 + k.i]
            x = g.op("Gather", [x, g.arg(node, 1 + k.i, np.int64)], axis=kept.index(k))
            position += len(index.shape)
        elif k is None:
            out_axes.append(position)
            position += 1
        elif isinstance(k, slice):
            position += 1
    if out_axes:
        x = g.unsqueeze(x, out_axes)
    return x if x != g.arg(node, 0) else g.op("Identity", [x])


def _gather_nd(g, node, x, slots):
    """Several index arrays (numpy's advanced indexing, as take_along_dim records it): their axes moved
    first, the arrays broadcast and stacked into GatherND's index tuples, and the indexed axes put
    where numpy puts them (in place of the first index when the arrays are adjacent, else first)."""
    arrays = [k for k in node.params["key"] if isinstance(k, Slot)]
    indices = [node.args[1 + k.i] for k in arrays]
    twins = [g.twin(a) for a in indices]
    common = np.broadcast_shapes(*[a.shape for a in indices])
    twin_common = np.broadcast_shapes(*[t.shape for t in twins]) if all(twins) else None
    ndim = len(node.args[0].shape)
    others = [a for a in range(ndim) if a not in slots]
    x = g.op("Transpose", [x], perm=slots + others)
    stacked = []
    for k in arrays:
        index = g.op("Expand", [g.arg(node, 1 + k.i, np.int64), g.shape_tensor(common, twin_common, fill=1)])
        stacked.append(g.unsqueeze(index, [len(common)]))
    y = g.op("GatherND", [x, g.op("Concat", stacked, axis=len(common))])
    first = slots[0] if slots == list(range(slots[0], slots[0] + len(slots))) else 0
    if first == 0:
        return y
    b = len(common)
    perm = [b + i for i in range(first)] + list(range(b)) + [b + i for i in range(first, len(others))]
    return g.op("Transpose", [y], perm=perm)


def _scatter_refusal(node, opset):
    if opset < 16:
        return "accumulating scatters (index_add, scatter_add, scatter) need opset 16 or newer (ScatterND's reduction)"
    if any(not isinstance(k, Slot) and k != slice(None) and k is not Ellipsis for k in node.params["key"]):
        return "a scatter into integers, partial slices or new axes has no ONNX form here"
    if any(isinstance(a, Node) and a.dtype == np.bool_ for a in node.args[1:]):
        return "a boolean mask index gives a shape that depends on the data"
    return None


@emits("scatter_add", refuse=_scatter_refusal)
def scatter_add(g, node):
    """zeros(shape) with the values added at the index arrays' positions (the adjoint of getitem's
    GatherND above): ScatterND with reduction add, on the zeros with the indexed axes first."""
    shape = tuple(node.params["shape"])
    key = _full_key(node.params["key"], len(shape))
    slots = [i for i, k in enumerate(key) if isinstance(k, Slot)]
    others = [a for a in range(len(shape)) if a not in slots]
    arrays = [key[i] for i in slots]
    common = np.broadcast_shapes(*[node.args[1 + k.i].shape for k in arrays])
    g.static_sizes(node, node, None, "the scattered array's shape")
    first = slots[0] if slots == list(range(slots[0], slots[0] + len(slots))) else 0
    b = len(common)
    region = [shape[a] for a in others[:first]] + list(common) + [shape[a] for a in others[first:]]
    values = g.arg(node, 0, node.dtype)
    if tuple(node.args[0].shape) != tuple(region):
        values = g.op("Expand", [values, g.ints(region)])
    updates = g.op("Transpose", [values], perm=[first + i for i in range(b)] + list(range(first)) +
                   [first + b + i for i in range(len(others) - first)])
    order = slots + others
    zero = g.onnx.numpy_helper.from_array(np.zeros(1, node.dtype))
    data = g.op("ConstantOfShape", [g.ints([shape[a] for a in order])], value=zero)
    stacked = [g.unsqueeze(g.op("Expand", [g.arg(node, 1 + k.i, np.int64), g.ints(common)]), [b]) for k in arrays]
    scattered = g.op("ScatterND", [data, g.op("Concat", stacked, axis=b), updates], reduction="add")
    return g.op("Transpose", [scattered], perm=[order.index(a) for a in range(len(shape))])
