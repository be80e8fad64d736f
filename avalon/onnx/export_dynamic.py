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
