"""Indexing primitives: getitem (slices, integers, new axes and index arrays, in numpy's layout) and
scatter_add, the accumulating scatter (index_add, scatter, scatter_add, one_hot)."""
import numpy as np

from ...ops.index import Slot
from ...tape import Node
from ..export_dynamic import DynamicSizeError
from . import emits
from .shape import _BEFORE_START, _END

_INT = (int, np.integer)


def _getitem_refusal(node, opset):
    if any(isinstance(a, Node) and a.dtype == np.bool_ for a in node.args[1:]):
        return "a boolean mask index gives a shape that depends on the data"
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


def _advanced(key):
    """Whether the key needs numpy's advanced indexing in full (GatherND): several index arrays, or
    one with integers that numpy counts as index arrays too and that are apart from it (the result's
    indexed axes then go first)."""
    slots = [k for k in key if isinstance(k, Slot)]
    positions = [i for i, k in enumerate(key) if isinstance(k, (Slot, *_INT))]
    if len(slots) > 1:
        return True
    return bool(slots) and len(positions) > 1 and positions != list(range(positions[0], positions[-1] + 1)) \
        and key.index(slots[0]) != 0


@emits("getitem", refuse=_getitem_refusal)
def getitem(g, node):
    """Slice every sliced axis (and every integer one, but for advanced indexing) at once, drop the
    integer axes, gather along the index array's axis (or GatherND for advanced indexing), then add
    the new (None) axes."""
    key = _full_key(node.params["key"], len(node.args[0].shape))
    twin = g.twin(node)
    twin_key = _full_key(twin.params["key"], len(node.args[0].shape)) if twin is not None else key
    advanced = _advanced(key)
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
        elif isinstance(k, _INT):
            if t != k:
                _refuse(node, k, t)
            if not advanced:
                starts.append(int(k))
                ends.append(int(k) + 1 if int(k) != -1 else _END)
                axes.append(axis)
                steps.append(1)
                dropped.append(axis)
        axis += 1
    if axes:
        x = g.slice(x, starts, ends, axes, steps, g.sizes(node.args[0]))
    if advanced:
        return _gather_nd(g, node, x, key)
    if dropped:
        x = g.squeeze(x, dropped)
    kept = [k for k in key if k is not None and not isinstance(k, _INT)]
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


def _gather_nd(g, node, x, key):
    """numpy's advanced indexing: the index arrays and integers broadcast and stacked into GatherND's
    index tuples (their axes moved first), then the indexed axes put where numpy puts them (in place
    of the first when the arrays and integers are adjacent in the key, a new axis parting them,
    else first) and the new axes added."""
    entries = [k for k in key if k is not None]  # one per axis of x
    indexed = [a for a, k in enumerate(entries) if isinstance(k, (Slot, *_INT))]
    others = [a for a in range(len(entries)) if a not in indexed]
    indices, shapes, twin_shapes = [], [], []
    for a in indexed:
        k = entries[a]
        if isinstance(k, Slot):
            array = node.args[1 + k.i]
            twin = g.twin(array)
            indices.append(g.arg(node, 1 + k.i, np.int64))
            shapes.append(array.shape)
            twin_shapes.append(twin.shape if twin is not None else array.shape)
        else:
            indices.append(g.const(np.int64(k)))
            shapes.append(())
            twin_shapes.append(())
    common, twin_common = np.broadcast_shapes(*shapes), np.broadcast_shapes(*twin_shapes)
    if indexed + others != list(range(len(entries))):
        x = g.op("Transpose", [x], perm=indexed + others)
    b = len(common)
    target = g.shape_tensor(common, twin_common, fill=1)
    if g.opset >= 11:
        stacked = [g.unsqueeze(g.op("Expand", [index, target]), [b]) for index in indices]
        y = g.op("GatherND", [x, g.op("Concat", stacked, axis=b)])
    else:
        y = _gather_flat(g, node, x, indices, [g.sizes(node.args[0])[a] for a in indexed], target)
    positions = [i for i, k in enumerate(key) if isinstance(k, (Slot, *_INT))]
    in_place = positions == list(range(positions[0], positions[-1] + 1))
    order, new_axes = ([] if in_place else list(range(b))), []
    position, sliced = (0 if in_place else b), 0
    for i, k in enumerate(key):
        if k is None:
            new_axes.append(position)
            position += 1
        elif isinstance(k, slice):
            order.append(b + sliced)
            sliced += 1
            position += 1
        elif in_place and i == positions[0]:
            order.extend(range(b))
            position += b
    if order != list(range(len(order))):
        y = g.op("Transpose", [y], perm=order)
    return g.unsqueeze(y, new_axes) if new_axes else y


def _gather_flat(g, node, x, indices, sizes, target):
    """GatherND before opset 11: the indexed (leading) axes of x merged into one, and a Gather of the
    flat positions Σ index·stride (numpy's negative indices wrapped first)."""
    if any(n is None for n in sizes):
        raise DynamicSizeError(node, "before opset 11 the index arrays' axes cannot follow a dynamic axis")
    flat = None
    for index, n, stride in zip(indices, sizes, np.cumprod([1] + sizes[::-1])[-2::-1]):
        wrapped = g.op("Where", [g.op("Less", [index, g.const(np.int64(0))]),
                                 g.op("Add", [index, g.const(np.int64(n))]), index])
        term = g.op("Mul", [wrapped, g.const(np.int64(stride))])
        flat = term if flat is None else g.op("Add", [flat, term])
    rest = g.slice(g.op("Shape", [x]), [len(sizes)], [_END], [0])
    merged = g.op("Reshape", [x, g.op("Concat", [g.ints([-1]), rest], axis=0)])
    return g.op("Gather", [merged, g.op("Expand", [flat, target])], axis=0)


def _scatter_refusal(node, opset):
    if any(not isinstance(k, Slot) and k != slice(None) and k is not Ellipsis for k in node.params["key"]):
        return "a scatter into integers, partial slices or new axes has no ONNX form here"
    if any(isinstance(a, Node) and a.dtype == np.bool_ for a in node.args[1:]):
        return "a boolean mask index gives a shape that depends on the data"
    return None


@emits("scatter_add", refuse=_scatter_refusal)
def scatter_add(g, node):
    """zeros(shape) with the values added at the index arrays' positions (the adjoint of getitem's
    GatherND above), on the zeros with the indexed axes first: ScatterND with reduction add from
    opset 16; before it (ScatterND and ScatterElements replace repeated positions there) a product
    with the one-hot matrix of the positions, which sums repeated ones."""
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
    indices = [g.op("Expand", [g.arg(node, 1 + k.i, np.int64), g.ints(common)]) for k in arrays]
    if g.opset >= 16:
        zero = g.onnx.numpy_helper.from_array(np.zeros(1, node.dtype))
        data = g.op("ConstantOfShape", [g.ints([shape[a] for a in order])], value=zero)
        stacked = g.op("Concat", [g.unsqueeze(i, [b]) for i in indices], axis=b)
        scattered = g.op("ScatterND", [data, stacked, updates], reduction="add")
    else:
        scattered = _scatter_by_product(g, node, indices, updates, [shape[a] for a in slots],
                                        [shape[a] for a in others], common)
    return g.op("Transpose", [scattered], perm=[order.index(a) for a in range(len(shape))])


def _scatter_by_product(g, node, indices, updates, sizes, rest, common):
    """Σ over the M index tuples of one-hot(position)ᵀ · update: the positions as flat indices into
    the indexed axes (P of them), a (M, P) one-hot matrix, MatMul with the (M, R) updates."""
    flat = None
    for index, n, stride in zip(indices, sizes, np.cumprod([1] + sizes[::-1])[-2::-1]):
        wrapped = g.op("Where", [g.op("Less", [index, g.const(np.int64(0))]),
                                 g.op("Add", [index, g.const(np.int64(n))]), index])  # numpy's negative indices
        term = g.op("Mul", [wrapped, g.const(np.int64(stride))])
        flat = term if flat is None else g.op("Add", [flat, term])
    m, p, r = int(np.prod(common)), int(np.prod(sizes)), int(np.prod(rest))
    column = g.op("Reshape", [flat, g.ints([m, 1])])
    dt = node.dtype if node.dtype != np.bool_ else np.float32  # booleans add as logical or: a sum, then ≠ 0
    hot = g.cast(g.op("Equal", [column, g.const(np.arange(p, dtype=np.int64)[None])]), np.bool_, dt)
    values = g.op("Reshape", [g.cast(updates, node.dtype, dt), g.ints([m, r])])
    rows = g.cast(g.op("MatMul", [g.op("Transpose", [hot], perm=[1, 0]), values]), dt, node.dtype)
    return g.op("Reshape", [rows, g.ints(list(sizes) + list(rest))])
