"""The ONNX graph an export writes, built node by node: unique names, module scopes in node names,
constants, and the helpers whose form changed between opsets (axes and sizes as attributes or
inputs, Softmax over one axis or a flattened tail, the types Equal and Max accept).

Emitters (avalon/onnx/export_ops/) call `op` and the helpers; they never touch protobufs themselves.
Every node is checked against the requested opset's schema as it is added (export_opset.py).
"""
import numpy as np

from ..tape import Node
from .errors import OnnxError
from .export_opset import NeedsOpset, check_node

# The opset from which a reduction takes its axes as an input: 13 for ReduceSum, 18 for the others.
_AXES_INPUT_FROM = {"ReduceSum": 13}


class GraphBuilder:
    """Accumulates nodes and initializers; `scope` (a module path like `layer1.0.conv1`) is the
    module of the tape node being exported, put into every node name as `/layer1/0/conv1/Conv`, so
    `avalon.onnx.load` rebuilds the module scopes from the file."""

    def __init__(self, onnx, opset):
        self.onnx, self.opset = onnx, opset
        self.nodes, self.initializers = [], []
        self.scope = ""
        self._names = set()
        self._outputs = set()
        self._renamed = {}
        self._constants = {}  # (dtype, shape, bytes) -> name: a literal used twice is one Constant
        self.dims = None  # a DynamicDims when the export has dynamic axes (export_dynamic.py)
        self.twins = {}  # tape node -> the same node traced at other dynamic sizes
        self.names = {}  # tape node -> the ONNX name of its value
        self.current = None  # the tape node being exported
        self.origin = {}  # ONNX node name -> the tape node it was written for

    def fresh(self, hint):
        """A tensor or node name not used yet, from `hint`."""
        name, k = hint, 0
        while name in self._names:
            k += 1
            name = f"{hint}_{k}"
        self._names.add(name)
        return name

    def reserve(self, name):
        if name in self._names:
            raise OnnxError(f"export: the name {name!r} is given to two inputs, outputs or parameters; "
                            "pass distinct input_names and output_names")
        self._names.add(name)
        return name

    def op(self, op_type, inputs, outputs=1, **attrs):
        """Add one node; returns its output name (or a list of `outputs` names when that is > 1)."""
        prefix = "/" + "/".join(self.scope.split(".")) + "/" if self.scope else "/"
        node_name = self.fresh(prefix + op_type)
        names = [self.fresh(f"{node_name}_output_{i}") for i in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        check_node(self.onnx, self.opset, op_type, len(inputs), attrs)
        self.origin[node_name] = self.current
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), names, name=node_name, **attrs))
        return names[0] if outputs == 1 else names

    def rename(self, old, new):
        """Give the value `old` the name `new` (a graph output's): the producing node's output is
        renamed, or an Identity added where `old` is a graph input, an initializer or another output."""
        old = self._renamed.get(old, old)
        producer = next((n for n in reversed(self.nodes) if old in n.output), None)
        if producer is None or producer.op_type == "Constant" or old in self._outputs:
            self.nodes.append(self.onnx.helper.make_node("Identity", [old], [new], name=self.fresh("/Identity")))
        else:
            producer.output[list(producer.output).index(old)] = new
            for n in self.nodes:
                for i, name in enumerate(n.input):
                    if name == old:
                        n.input[i] = new
            self._renamed[old] = new
        self._outputs.add(new)
        return new

    def initializer(self, name, array):
        self.initializers.append(self.onnx.numpy_helper.from_array(np.array(array, order="C"), self.reserve(name)))
        return name

    def const(self, value, dtype=None):
        """A Constant node holding `value` (a literal or an array): constants, not parameters, so that
        importing the file back makes none of them trainable."""
        array = np.asarray(value, dtype=dtype)
        if array.dtype == np.float64 and dtype is None and not isinstance(value, np.ndarray):
            array = array.astype(np.float32)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._constants:
            saved, self.scope = self.scope, ""  # shared between modules: no module's scope
            tensor = self.onnx.numpy_helper.from_array(np.array(array, order="C"))
            self._constants[key] = self.op("Constant", [], value=tensor)
            self.scope = saved
        return self._constants[key]

    def ints(self, values):
        """A 1-D int64 Constant (shapes, axes, pads)."""
        return self.const(np.asarray(list(values), dtype=np.int64).reshape(-1))

    def cast(self, name, from_dtype, to_dtype):
        if np.dtype(from_dtype) == np.dtype(to_dtype):
            return name
        return self.op("Cast", [name], to=self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(to_dtype)))

    # The forms that changed between opsets: axes, split sizes, slice bounds and pads were
    # attributes before they became inputs (13 for axes and splits, 10 for Slice, 11 for Pad; the
    # reductions but ReduceSum kept their axes as an attribute until 18).

    def unsqueeze(self, x, axes):
        if self.opset >= 13:
            return self.op("Unsqueeze", [x, self.ints(axes)])
        return self.op("Unsqueeze", [x], axes=[int(a) for a in axes])

    def squeeze(self, x, axes):
        if self.opset >= 13:
            return self.op("Squeeze", [x, self.ints(axes)])
        return self.op("Squeeze", [x], axes=[int(a) for a in axes])

    def reduce(self, op_type, x, axes, keepdims):
        """`op_type` (ReduceSum, ReduceMean, …) over `axes` (None: all of them)."""
        keep = int(bool(keepdims))
        if axes is None:
            return self.op(op_type, [x], keepdims=keep)
        axes = list(axes)
        if self.opset >= _AXES_INPUT_FROM.get(op_type, 18):
            return self.op(op_type, [x, self.ints(axes)], keepdims=keep)
        return self.op(op_type, [x], axes=axes, keepdims=keep)

    def split(self, x, sizes, axis):
        """x cut along `axis` into pieces of `sizes`: one name per piece."""
        if len(sizes) == 1:
            return [self.op("Identity", [x])]
        if self.opset >= 13:
            return self.op("Split", [x, self.ints(sizes)], outputs=len(sizes), axis=axis)
        return self.op("Split", [x], outputs=len(sizes), axis=axis, split=[int(n) for n in sizes])

    def slice(self, x, starts, ends, axes, steps=None, sizes=None):
        """Slice; a start or end may be a 1-element tensor name (a bound that follows a dynamic axis).
        Before opset 10 (bounds as attributes, no steps) an axis with a step is a Gather of the
        positions, from its size in `sizes` (None where it follows a dynamic axis)."""
        steps = steps or [1] * len(axes)
        if self.opset < 10 and any(isinstance(v, str) for v in (*starts, *ends)):
            raise NeedsOpset("Slice", "with bounds computed in the graph", 10, self.opset)
        if self.opset < 10:
            for start, end, axis, step in zip(starts, ends, axes, steps):
                if step != 1:
                    if sizes is None or sizes[axis] is None:
                        raise NeedsOpset("Slice", "with steps along a dynamic axis", 10, self.opset)
                    picked = range(*slice(start, end, step).indices(sizes[axis]))
                    x = self.op("Gather", [x, self.ints(picked)], axis=axis)
            plain = [i for i, step in enumerate(steps) if step == 1]
            if not plain:
                return x
            return self.op("Slice", [x], starts=[int(starts[i]) for i in plain], ends=[int(ends[i]) for i in plain],
                           axes=[int(axes[i]) for i in plain])
        args = [x, self._int_list(starts), self._int_list(ends), self.ints(axes)]
        if any(step != 1 for step in steps):
            args.append(self.ints(steps))
        return self.op("Slice", args)

    def pad(self, x, pads, value, dtype):
        """Constant padding, `pads` as ONNX orders them (all starts, then all ends)."""
        if self.opset >= 11:
            return self.op("Pad", [x, self.ints(pads), self.const(value, dtype)], mode="constant")
        return self.op("Pad", [x], mode="constant", pads=[int(p) for p in pads], value=float(value))

    def softmax(self, op_type, x, axis, rank):
        """Softmax or LogSoftmax over one axis. Before 13 they normalise over the flattened axes from
        `axis` on, the same only for the last axis: another axis is moved last and back."""
        axis %= rank
        if self.opset >= 13 or axis == rank - 1:
            return self.op(op_type, [x], axis=axis)
        perm = list(range(rank))
        perm[axis], perm[-1] = perm[-1], perm[axis]
        moved = self.op(op_type, [self.op("Transpose", [x], perm=perm)], axis=rank - 1)
        return self.op("Transpose", [moved], perm=perm)

    def compare(self, op_type, a, b, dtype):
        """Equal, Less, Greater, LessOrEqual or GreaterOrEqual of two operands of `dtype`. Equal takes
        floats from 11 (before: neither less nor greater, nor NaN), the *OrEqual forms exist from 12."""
        if op_type in ("LessOrEqual", "GreaterOrEqual") and self.opset < 12:
            strict = "Less" if op_type == "LessOrEqual" else "Greater"
            return self.op("Or", [self.op(strict, [a, b]), self.compare("Equal", a, b, dtype)])
        if op_type == "Equal" and self.opset < 11 and np.issubdtype(np.dtype(dtype), np.floating):
            apart = [self.op("Less", [a, b]), self.op("Greater", [a, b]), self.op("IsNaN", [a]), self.op("IsNaN", [b])]
            either = apart[0]
            for other in apart[1:]:
                either = self.op("Or", [either, other])
            return self.op("Not", [either])
        return self.op(op_type, [a, b])

    def extreme(self, op_type, a, b, dtype):
        """Max or Min of two operands; they take integers from 12 (before: a Where)."""
        if self.opset >= 12 or not np.issubdtype(np.dtype(dtype), np.integer):
            return self.op(op_type, [a, b])
        return self.op("Where", [self.op("Greater" if op_type == "Max" else "Less", [a, b]), a, b])

    def _int_list(self, values):
        if not any(isinstance(v, str) for v in values):
            return self.ints(values)
        return self.op("Concat", [v if isinstance(v, str) else self.ints([v]) for v in values], axis=0)

    def shape_tensor(self, values, twin_values=None, fill=-1):
        """A 1-D int64 tensor of the shape `values` (the traced sizes): a constant, or, where a size
        follows a dynamic axis (it differs in the twin trace), computed from the inputs' shapes;
        a size found in no input's shape becomes `fill` (-1 for Reshape, 1 for Expand)."""
        if self.dims is None or twin_values is None or tuple(values) == tuple(twin_values):
            return self.ints(values)
        return self.dims.shape(self, values, twin_values, fill)

    # Operands of the tape node being exported.

    def arg(self, node, i, dtype=None):
        """The ONNX name of `node.args[i]`: a tape node's tensor (cast to `dtype` when given), or a
        Python literal as a Constant of `dtype` (else of the node's own dtype)."""
        a = node.args[i]
        if isinstance(a, Node):
            return self.cast(self.names[a], a.dtype, dtype) if dtype is not None else self.names[a]
        dtype = dtype if dtype is not None else node.dtype
        twin = self.twin(node)
        if twin is not None and isinstance(a, (int, float, np.number)) and twin.args[i] != a:
            return self.dims.scalar(self, node, a, twin.args[i], dtype)  # computed from a dynamic size
        return self.const(a, dtype=dtype)

    def twin(self, node):
        """The same node in the trace at other sizes of the dynamic axes (None without dynamic axes)."""
        return self.twins.get(node) if self.twins else None

    def sizes(self, operand):
        """`operand`'s sizes, None for those that follow a dynamic axis."""
        twin = self.twin(operand)
        return [n if twin is None or twin.shape[a] == n else None for a, n in enumerate(operand.shape)]

    def static_sizes(self, node, operand, axes, what):
        """Refuse to bake sizes of `operand` along `axes` (None: all) into `what` when they follow a
        dynamic axis: the file would be wrong at other sizes."""
        twin = self.twin(operand)
        if twin is None:
            return
        axes = range(len(operand.shape)) if axes is None else axes
        if any(operand.shape[a] != twin.shape[a] for a in axes):
            from .export_dynamic import DynamicSizeError
            raise DynamicSizeError(node, f"{what} is computed from sizes along a dynamic axis")
