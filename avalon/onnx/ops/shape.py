"""Shapes, indexing and constants. Shape-valued inputs (Reshape's shape, Slice's starts …)
are numpy arrays computed at trace time from constants and traced shapes, so a batch size never
gets stored in the model."""
import numpy as np

from ..node import is_array_constant
from . import operator
from .math import cast


def _axis(axis, ndim):
    return int(axis) % ndim if ndim else 0


@operator("Shape")
def shape(n, x):
    dims = np.array(x.shape, dtype=np.int64)
    start, end = n.attr("start", 0), n.attr("end")
    return dims[start:end]


@operator("Size")
def size(n, x):
    return np.array(int(np.prod(x.shape, dtype=np.int64)), dtype=np.int64)


@operator("Constant")
def constant(n):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in n.attrs:
            value = n.attrs[key]
            dtype = np.float32 if "float" in key else (np.int64 if "int" in key else None)
            return np.asarray(value, dtype=dtype)
    raise n.error(f"Constant with attribute(s) {sorted(n.attrs)} is not supported (value, value_float(s), "
                  "value_int(s) are)")


@operator("ConstantOfShape")
def constant_of_shape(n, dims):
    value = n.attr("value", np.zeros(1, np.float32))
    return np.full(n.ints(dims, "the shape"), value.reshape(-1)[0], dtype=value.dtype)


@operator("Flatten")
def flatten(n, x):
    axis = n.attr("axis", 1)
    axis = axis % x.ndim if axis < 0 else axis
    rows = int(np.prod(x.shape[:axis], dtype=np.int64))
    return np.reshape(x, (rows, int(np.prod(x.shape[axis:], dtype=np.int64))))


@operator("Reshape")
def reshape(n, x, dims=None):
    dims = n.attr("shape") if n.opset < 5 else n.ints(dims, "the target shape")
    if not n.attr("allowzero", 0):  # 0 copies the input's dimension
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
    return np.reshape(x, tuple(dims))


@operator("Transpose")
def transpose(n, x):
    return np.transpose(x, n.attr("perm", list(range(x.ndim))[::-1]))


@operator("Concat")
def concat(n, *xs):
    xs = [x for x in xs if x is not None]
    if all(is_array_constant(x) for x in xs):
        return np.concatenate([np.asarray(x) for x in xs], axis=n.attr("axis"))
    return np.concatenate(xs, axis=n.attr("axis"))


def _axes(n, given, ndim, what="axes"):
    """Axes from the attribute (before `since`) or the optional input; None when absent."""
    if given is not None:
        return [_axis(a, ndim) for a in n.ints(given, what)]
    attr = n.attr("axes")
    return None if attr is None else [_axis(a, ndim) for a in attr]


@operator("Squeeze")
def squeeze(n, x, axes=None):
    axes = _axes(n, axes, x.ndim)
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    return np.reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


@operator("Unsqueeze")
def unsqueeze(n, x, axes=None):
    values = n.attr("axes") if axes is None else n.ints(axes, "axes")
    out_ndim = x.ndim + len(values)
    dims = list(x.shape)
    for a in sorted(_axis(a, out_ndim) for a in values):
        dims.insert(a, 1)
    return np.reshape(x, tuple(dims))


@operator("Slice")
def slice_op(n, x, starts=None, ends=None, axes=None, steps=None):
    if n.opset < 10:
        starts, ends, axes, steps = n.attr("starts"), n.attr("ends"), n.attr("axes"), None
    else:
        starts, ends = n.ints(starts, "starts"), n.ints(ends, "ends")
        axes = None if axes is None else n.ints(axes, "axes")
        steps = None if steps is None else n.ints(steps, "steps")
    axes = list(range(len(starts))) if axes is None else [_axis(a, x.ndim) for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for a, start, end, step in zip(axes, starts, ends, steps):
        # Python's slice clamps as ONNX does (also for negative steps); indices() keeps the ints small
        index[a] = slice(*slice(start, end, step).indices(x.shape[a]))
        if step < 0 and index[a].stop < 0:
            index[a] = slice(index[a].start, None, step)
    return x[tuple(index)]


@operator("Gather")
def gather(n, data, indices):
    axis = _axis(n.attr("axis", 0), data.ndim)
    if is_array_constant(indices):
        indices = np.asarray(indices)
        indices = np.where(indices < 0, indices + data.shape[axis], indices)
    return np.take(data, indices, axis=axis)


@operator("Expand")
def expand(n, x, dims):
    target = np.broadcast_shapes(tuple(x.shape), tuple(n.ints(dims, "the shape")))
    return np.broadcast_to(x, target)


@operator("Range")
def range_op(n, start, limit, delta):
    start, limit, delta = (n.constant(v, "Range's inputs") for v in (start, limit, delta))
    return np.arange(start, limit, delta).astype(np.asarray(start).dtype)


@operator("Split")
def split(n, x, sizes=None):
    """Sizes from the `split` attribute (before opset 13) or input; without them, equal parts, one per
    output (opset 18's num_outputs: ceil-sized parts, the last one smaller)."""
    axis = _axis(n.attr("axis", 0), x.ndim)
    if n.opset < 13:
        sizes = n.attr("split")
    elif sizes is not None:
        sizes = n.ints(sizes, "split")
    if not sizes:
        parts, length = len(n.outputs), x.shape[axis]
        step = -(-length // parts)
        sizes = [min(step, length - i * step) for i in range(parts)]
    bounds = np.cumsum([0] + list(sizes))
    index = [slice(None)] * x.ndim
    pieces = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        index[axis] = slice(int(start), int(stop))
        pieces.append(x[tuple(index)])
    return tuple(pieces)


@operator("Tile")
def tile(n, x, repeats):
    return np.tile(x, tuple(n.ints(repeats, "repeats")))


@operator("GatherElements")
def gather_elements(n, data, indices):
    axis = _axis(n.attr("axis", 0), data.ndim)
    indices = np.where(indices < 0, indices + data.shape[axis], indices)
    return np.take_along_axis(data, indices, axis=axis)


@operator("Trilu")
def trilu(n, x, k=None):
    k = 0 if k is None else n.ints(k, "k")[0]
    return np.triu(x, k) if n.attr("upper", 1) else np.tril(x, k)


@operator("ArgMax", "ArgMin")
def arg_extreme(n, x):
    axis, keep = _axis(n.attr("axis", 0), x.ndim), bool(n.attr("keepdims", 1))
    find = np.argmax if n.op_type == "ArgMax" else np.argmin
    if n.attr("select_last_index", 0):  # the last of equal extremes: search the reversed axis
        index = [slice(None)] * x.ndim
        index[axis] = slice(None, None, -1)
        y = (x.shape[axis] - 1) - find(x[tuple(index)], axis=axis)
    else:
        y = find(x, axis=axis)
    y = cast(y, np.int64)
    return np.expand_dims(y, axis) if keep else y


@operator("TopK")
def top_k(n, x, k=None):
    from ... import topk
    k = n.attr("k") if n.opset < 10 else n.ints(k, "k")[0]
    values, indices = topk(x, k, dim=n.attr("axis", -1), largest=bool(n.attr("largest", 1)), sorted=True)
    return values, cast(indices, np.int64)


@operator("SpaceToDepth", "DepthToSpace")
def space_depth(n, x):
    """Blocks of the spatial axes moved into channels, or back, in DCR (default) or CRD order."""
    b, c, h, w = x.shape
    s = n.attr("blocksize")
    if n.op_type == "SpaceToDepth":
        y = np.reshape(x, (b, c, h // s, s, w // s, s))
        order = (0, 3, 5, 1, 2, 4) if n.attr("mode", "DCR") == "DCR" else (0, 1, 3, 5, 2, 4)
        return np.reshape(np.transpose(y, order), (b, c * s * s, h // s, w // s))
    if n.attr("mode", "DCR") == "DCR":
        y = np.transpose(np.reshape(x, (b, s, s, c // (s * s), h, w)), (0, 3, 4, 1, 5, 2))
    else:
        y = np.transpose(np.reshape(x, (b, c // (s * s), s, s, h, w)), (0, 1, 4, 2, 5, 3))
    return np.reshape(y, (b, c // (s * s), h * s, w * s))


@operator("EyeLike")
def eye_like(n, x):
    from onnx.helper import tensor_dtype_to_np_dtype
    dtype = tensor_dtype_to_np_dtype(n.attr("dtype")) if "dtype" in n.attrs else x.dtype
    return np.eye(x.shape[0], x.shape[1], k=n.attr("k", 0), dtype=dtype)


@operator("OneHot")
def one_hot(n, indices, depth, values):
    depth = int(n.constant(depth, "depth").reshape(-1)[0])
    axis = n.attr("axis", -1) % (indices.ndim + 1)
    indices = np.where(indices < 0, indices + depth, indices)
    hot = np.expand_dims(indices, axis) == np.arange(depth).reshape([-1 if a == axis else 1
                                                                      for a in range(indices.ndim + 1)])
    return np.where(hot, values[1], values[0])


@operator("GatherND")
def gather_nd(n, data, indices):
    batch = n.attr("batch_dims", 0)
    indices = n.constant(indices, "GatherND's indices")
    depth = indices.shape[-1]
    indices = np.where(indices < 0, indices + np.array(data.shape[batch:batch + depth]), indices)
    lead = np.indices(indices.shape[:batch]).reshape(batch, *indices.shape[:batch], *([1] * (indices.ndim - 1 - batch)))
    index = tuple(np.broadcast_to(l, indices.shape[:-1]) for l in lead) + tuple(np.moveaxis(indices, -1, 0))
    return data[index]


@operator("ScatterElements", "Scatter")
def scatter_elements(n, data, indices, updates):
    """`updates` written into `data` at `indices` along `axis` (reduction none, add, mul, max or min)."""
    from ... import scatter
    axis = _axis(n.attr("axis", 0), data.ndim)
    indices = np.where(indices < 0, indices + data.shape[axis], indices)
    reduction = n.attr("reduction", "none")
    if reduction == "none":
        return scatter(data, axis, indices, src=updates)
    if reduction == "add":
        return data + scatter(np.zeros(data.shape, data.dtype), axis, indices, src=updates)
    # the other reductions: flat positions of every update (its own coordinates, `indices` along axis)
    strides = [int(np.prod(data.shape[a + 1:], dtype=np.int64)) for a in range(data.ndim)]
    grid = np.indices(updates.shape)
    targets = sum(indices * strides[a] if a == axis else grid[a] * strides[a] for a in range(data.ndim))
    flat = _reduce_into(n, np.reshape(data, (-1, 1)), np.reshape(targets, (-1,)), np.reshape(updates, (-1, 1)))
    return np.reshape(flat, data.shape)


@operator("ScatterND")
def scatter_nd(n, data, indices, updates):
    """`updates` written into `data` at the index tuples in `indices`' last axis (any reduction)."""
    from ... import index_put
    reduction = n.attr("reduction", "none")
    depth = indices.shape[-1]
    indices = np.where(indices < 0, indices + np.array(data.shape[:depth]), indices)
    if reduction in ("none", "add"):
        return index_put(data, tuple(indices[..., i] for i in range(depth)), updates,
                         accumulate=reduction == "add")
    strides = [int(np.prod(data.shape[a + 1:depth], dtype=np.int64)) for a in range(depth)]
    targets = sum(indices[..., a] * strides[a] for a in range(depth))
    rest = tuple(data.shape[depth:])
    flat = _reduce_into(n, np.reshape(data, (-1,) + rest), np.reshape(targets, (-1,)),
                        np.reshape(updates, (-1,) + rest))
    return np.reshape(flat, data.shape)


def _reduce_into(n, data, targets, updates):
    """data (P, ...) with each update row k combined into row targets[k] by the node's reduction (mul,
    max or min), duplicates included: through a (K, P) one-hot table, as ordinary differentiable ops
    (memory K·P, for the rare models that use these reductions)."""
    reduction = n.attr("reduction")
    hits = np.reshape(targets, (-1, 1)) == np.arange(data.shape[0])[None, :]
    hits = np.reshape(hits, hits.shape + (1,) * (data.ndim - 1))
    spread = updates[:, None]
    if reduction == "mul":
        return data * np.prod(np.where(hits, spread, np.ones((), data.dtype)), axis=0)
    if reduction not in ("max", "min"):
        raise n.error(f"reduction {reduction!r} is not one of none, add, mul, max, min")
    combine, extreme = (np.max, -np.inf) if reduction == "max" else (np.min, np.inf)
    if not np.issubdtype(data.dtype, np.floating):
        info = np.iinfo(data.dtype)
        extreme = info.min if reduction == "max" else info.max
    best = combine(np.where(hits, spread, np.full((), extreme, data.dtype)), axis=0)
    pick = np.maximum if reduction == "max" else np.minimum
    return np.where(np.any(hits, axis=0), pick(data, best), data)


@operator("CenterCropPad")
def center_crop_pad(n, x, dims):
    """`x` cropped or zero-padded about its centre to `dims` along `axes` (all by default); an odd
    difference leaves the extra element at the end."""
    dims = n.ints(dims, "the shape")
    axes = [_axis(a, x.ndim) for a in n.attr("axes", range(x.ndim))]
    crop, pads = [slice(None)] * x.ndim, [(0, 0)] * x.ndim
    for a, target in zip(axes, dims):
        size = x.shape[a]
        if target < size:
            start = (size - target) // 2
            crop[a] = slice(start, start + target)
        elif target > size:
            before = (target - size) // 2
            pads[a] = (before, target - size - before)
    return np.pad(x[tuple(crop)], pads)


@operator("ReverseSequence")
def reverse_sequence(n, x, lengths):
    """The first lengths[b] steps of each batch entry reversed along the time axis, the rest kept."""
    time, batch = n.attr("time_axis", 0), n.attr("batch_axis", 1)
    steps = np.arange(x.shape[time])
    lengths = np.asarray(n.constant(lengths, "sequence_lens")) if is_array_constant(lengths) else lengths
    # source position of each (time, batch) output element: mirrored inside the length, itself beyond
    where = np.where(steps[:, None] < lengths[None, :], lengths[None, :] - 1 - steps[:, None], steps[:, None])
    if time > batch:
        where = where.T
    where = np.reshape(where, where.shape + (1,) * (x.ndim - 2))
    return np.take_along_axis(x, where.astype(np.int64), axis=time)


@operator("TensorScatter")
def tensor_scatter(n, cache, update, write_indices=None):
    """A key/value cache update: `update`'s positions along `axis` written into the cache from each
    batch entry's write index (0 by default), wrapping around in 'circular' mode."""
    from ... import scatter
    axis = _axis(n.attr("axis", -2), cache.ndim)
    shape = [1] * cache.ndim
    shape[axis] = update.shape[axis]
    index = np.reshape(np.arange(update.shape[axis]), shape)
    if write_indices is not None:
        index = index + np.reshape(write_indices, (-1,) + (1,) * (cache.ndim - 1))
    if n.attr("mode", "linear") == "circular":
        index = index % cache.shape[axis]
    return scatter(cache, axis, np.broadcast_to(index, update.shape).astype(np.int64), src=update)
