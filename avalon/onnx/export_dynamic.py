"""Dynamic axes: which sizes of the recorded program follow the inputs' dynamic dimensions.

The function is traced twice: at the sizes given, and with every dynamic axis made longer (each
named axis by its own amount). A size that differs between the two traces follows a dynamic axis;
a size equal in both is fixed. Shapes that the program computes (a Reshape's target, an Expand's) are
then written as Shape → Gather → Concat of the inputs' own sizes instead of the traced numbers, and
numbers the code computed from them (the count a mean divides by) as those sizes, so the file runs at
other batch sizes; anything else that would bake a dynamic size into the file is
refused (`DynamicSizeError`) rather than exported wrong.
"""
import numpy as np

from ..tape import Call, Node
from .errors import OnnxError


class DynamicSizeError(OnnxError):
    """An exported program would hold a size of a dynamic axis as a fixed number."""

    def __init__(self, node, why):
        where = f"\n  at {node.location}" + (f"\n      {node.location.code}" if node.location and node.location.code
                                             else "") if node.location else ""
        super().__init__(f"export: {node.prim.name if isinstance(node, Call) else 'a constant'} cannot follow "
                         f"the dynamic axes: {why}{where}\n  fix: export without dynamic_axes for this input, or "
                         "compute the size from x.shape inside the traced code")
        self.node = node


class DynamicDims:
    """Each dynamic input dimension (input name, axis) with its size in the two traces; turns a
    shape whose sizes follow them into an int64 tensor computed from the inputs' shapes."""

    def __init__(self, entries):
        self.entries = entries  # [(onnx input name, axis, size, twin size)]
        self._gathered = {}

    def size(self, g, size, twin_size):
        """A 1-element int64 tensor for a number that is (size, twin_size) in the two traces: an
        input's dynamic dimension, a whole multiple of one (k·n), or one plus an offset (n + c, as in
        `x.size(0) - 1`); None when it is none of these (two traces cannot tell other relations)."""
        for name, axis, a, b in self.entries:
            if a and size % a == 0 and twin_size * a == size * b:
                return self._dim(g, name, axis) if size == a else g.op("Mul", [self._dim(g, name, axis),
                                                                               g.ints([size // a])])
        for name, axis, a, b in self.entries:
            if twin_size - size == b - a:
                return g.op("Add", [self._dim(g, name, axis), g.ints([size - a])])
        return None

    def _dim(self, g, name, axis):
        if (name, axis) not in self._gathered:
            self._gathered[(name, axis)] = g.op("Gather", [g.op("Shape", [name]), g.ints([axis])], axis=0)
        return self._gathered[(name, axis)]

    def scalar(self, g, node, value, twin_value, dtype):
        """A literal operand that differs between the traces (a count, or its reciprocal, as a mean
        over a dynamic axis divides by) computed from the inputs' sizes; refused when it is neither."""
        for size, twin_size, inverse in ((value, twin_value, False), (1 / value if value else 0,
                                                                       1 / twin_value if twin_value else 0, True)):
            if _whole(size) and _whole(twin_size):
                dim = self.size(g, int(round(size)), int(round(twin_size)))
                if dim is not None:
                    scalar = g.cast(g.op("Reshape", [dim, g.ints([])]), np.int64, dtype)
                    return g.op("Reciprocal", [scalar]) if inverse else scalar
        raise DynamicSizeError(node, f"its operand {value!r} is {twin_value!r} at another size, and is neither "
                                     "a size of an input's dynamic axis nor its reciprocal")

    def shape(self, g, values, twin_values, fill):
        parts, unknown = [], 0
        for v, w in zip(values, twin_values):
            part = g.ints([v]) if v == w else self.size(g, v, w)
            if part is None and fill is None:
                raise OnnxError(f"export: a shape {tuple(values)} has a size that follows the dynamic axes in a "
                                "way not found in any input's shape")
            if part is None:
                unknown += 1
                part = g.ints([fill])
            parts.append(part)
        if unknown > 1 and fill == -1:
            raise OnnxError(f"export: a shape {tuple(values)} has {unknown} sizes that follow the dynamic axes "
                            "in ways not found in any input's shape; at most one can be inferred")
        return g.op("Concat", parts, axis=0)


def computed_constant(g, value, twin_value):
    """An ONNX value for a constant array built from dynamic sizes, or None when it is none of the
    forms two traces can prove: a range (np.arange(n), start + step·k), or a band of a matrix
    (np.tril / np.triu of ones, a causal mask of -inf): p where col - row ≤ k (or ≥ k), else q, on
    the last two axes (any leading ones of size 1). Sizes come from the inputs' shapes (Range)."""
    if value.ndim == 1 and value.size > 1 and twin_value.ndim == 1 and np.issubdtype(value.dtype, np.number):
        start, step = value[0], value[1] - value[0]
        if all(np.array_equal(v, (start + step * np.arange(v.size)).astype(v.dtype)) for v in (value, twin_value)):
            n = g.dims.size(g, value.size, twin_value.size)
            if n is not None:
                return _range(g, n, start, step, value.dtype)
    if value.ndim < 2 or value.shape[:-2] != twin_value.shape[:-2] or any(n != 1 for n in value.shape[:-2]):
        return None
    band = _band(value)
    if band is None or not np.array_equal(twin_value, _banded(twin_value.shape, *band, value.dtype)):
        return None
    rows, columns = (g.dims.size(g, a, b) if a != b else g.ints([a]) for a, b in zip(value.shape[-2:],
                                                                                  twin_value.shape[-2:]))
    if rows is None or columns is None:
        return None
    upper, k, p, q = band
    offsets = g.op("Sub", [g.unsqueeze(_range(g, columns, 0, 1, np.int64), [0]),
                           g.unsqueeze(_range(g, rows, 0, 1, np.int64), [1])])
    inside = g.compare("GreaterOrEqual" if upper else "LessOrEqual", offsets, g.const(np.int64(k)), np.int64)
    if value.dtype == np.bool_:  # the comparison itself (onnxruntime's Where takes no booleans before 16)
        out = inside if p else g.op("Not", [inside])
    else:
        out = g.op("Where", [inside, g.const(p, value.dtype), g.const(q, value.dtype)])
    return g.unsqueeze(out, range(value.ndim - 2)) if value.ndim > 2 else out


def _range(g, n, start, step, dtype):
    """Range(start, start + n·step, step) of `dtype`, n a 1-element int64 tensor."""
    count = g.cast(g.op("Reshape", [n, g.ints([])]), np.int64, dtype)
    first, delta = g.const(start, dtype), g.const(step, dtype)
    return g.op("Range", [first, g.op("Add", [first, g.op("Mul", [count, delta])]), delta])


def _band(value):
    """(upper, k, p, q) with value = p where col - row ≥ k (upper) or ≤ k (else), q elsewhere; or None."""
    matrix = value.reshape(value.shape[-2:])
    kinds = np.unique(matrix)
    if kinds.size != 2:
        return None
    p, q = kinds[0], kinds[1]
    offsets = np.arange(matrix.shape[1])[None, :] - np.arange(matrix.shape[0])[:, None]
    where_p = offsets[matrix == p]
    for upper, k in ((False, where_p.max()), (True, where_p.min())):
        if np.array_equal(matrix, _banded(matrix.shape, upper, k, p, q, value.dtype)):
            return upper, int(k), p, q
    return None


def _banded(shape, upper, k, p, q, dtype):
    offsets = np.arange(shape[-1])[None, :] - np.arange(shape[-2])[:, None]
    return np.broadcast_to(np.where(offsets >= k if upper else offsets <= k, p, q).astype(dtype), shape)


def differences(tape, twin):
    """{node: the same node in the twin trace}, after checking that both traces recorded the same
    program."""
    if len(tape.nodes) != len(twin.nodes) or any(type(a) is not type(b) or getattr(a, "prim", None) is not
                                                 getattr(b, "prim", None) for a, b in zip(tape.nodes, twin.nodes)):
        raise OnnxError("export: the code records a different program when a dynamic axis has another size "
                        "(it branches on a shape); export without dynamic_axes, or make the code independent "
                        "of that size")
    return dict(zip(tape.nodes, twin.nodes))


_COMPUTED = {"reshape": ("shape",), "broadcast_to": ("shape",), "sum_to": ("shape",), "uniform": ("shape",),
             "normal": ("shape",), "getitem": ("key",)}


def check_static(node, twin):
    """Refuse a node whose parameters would bake a dynamic size into the file."""
    if not isinstance(node, Call):
        return
    for a, b in zip(node.args, twin.args):
        if not isinstance(a, Node) and not _same(a, b) and not isinstance(a, (int, float, np.number)):
            raise DynamicSizeError(node, f"its operand {a!r} is {b!r} at another size")
    for key, value in node.params.items():
        if key not in _COMPUTED.get(node.prim.name, ()) and not _same(value, twin.params.get(key)):
            raise DynamicSizeError(node, f"its parameter {key}={value!r} is {twin.params.get(key)!r} at another size")


def _whole(x):
    return x >= 1 and abs(x - round(x)) < 1e-6 * x


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and \
            np.array_equal(a, b)
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b
