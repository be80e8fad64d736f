"""`avalon.onnx.export`: a model's (or a numpy function's) forward tape written as an ONNX file.

The function is traced once into a tape (twice with dynamic axes: export_dynamic.py), each primitive
becomes ONNX nodes (export_ops/), parameters and buffers become initializers under their state_dict
names, and node names carry the module scope (`/layer1/0/conv1/Conv`), so that `avalon.onnx.load`
of the file rebuilds the scopes. Every primitive without an ONNX form is reported at once, before
anything is written.
"""
import os
import re

import numpy as np

from ..backend import is_array, to_numpy
from ..errors import AvalonError
from ..tape import Call, Const, Input
from ..tracing import _record
from .errors import OnnxError, UnexportablePrimitive
from .export_dynamic import DynamicDims, DynamicSizeError, check_static, computed_constant, differences
from .export_fuse import fuse
from .export_graph import GraphBuilder
from .export_opset import DEFAULT_OPSET, MIN_OPSET, NeedsOpset, max_opset
from .export_recurrent import recurrences
from .export_ops import EMITTERS, refusal


def exportable_primitives():
    """The names of the primitives `export` can write, sorted."""
    return sorted(EMITTERS)


def export(model_or_fn, args, f, *, input_names=None, output_names=None, dynamic_axes=None,
           opset_version=None):
    """Write `model_or_fn(*args)`'s forward as an ONNX model to `f` (a path or a binary file object),
    as `torch.onnx.export` does; returns the `onnx.ModelProto`.

    A Module is traced in its current mode (call `.eval()` first for inference: dropout is then the
    identity and batch norm uses its running statistics); a plain numpy function works too. `args` is
    a tuple of arrays, or one array; as in torch, a dict as its last element holds keyword arguments.
    The array arguments become the graph's inputs (named after the function's parameters unless
    `input_names` names them), the results its outputs (`output`, or `output_names`).
    `dynamic_axes` as torch's: `{"x": {0: "batch"}, "y": {0: "batch"}}` or `{"x": [0]}` makes those
    dimensions symbolic, and shapes the program computes follow them.
    `opset_version` from 9 to the newest the installed onnx defines (default 20, as torch's): each
    opset's operator forms are written, and a primitive whose form needs a newer opset is refused.

    >>> avalon.onnx.export(model.eval(), x, "model.onnx", input_names=["x"],
    ...                    dynamic_axes={"x": {0: "batch"}})          # doctest: +SKIP

    Raises `UnexportablePrimitive` listing every primitive with no ONNX form (with the lines that
    use them) and `OnnxError` for bad arguments; in either case nothing is written.
    """
    onnx = _onnx()
    opset = _opset(opset_version)
    args = args if isinstance(args, tuple) else (args,)
    kwargs = {}
    if args and isinstance(args[-1], dict):  # torch's convention: a last dict holds keyword arguments
        args, kwargs = args[:-1], args[-1]
    recording = _record(model_or_fn, args, kwargs)
    tape, outputs = recording.tape, list(recording.out_nodes)
    data = [n for n in tape.inputs if n.role == "data"]
    in_names = _names(input_names, [n.name for n in data], "input_names")
    out_names = _names(output_names, ["output"] if len(outputs) == 1 else [f"output_{i}" for i in
                                                                          range(len(outputs))], "output_names")
    axes = _dynamic_axes(dynamic_axes, dict(zip(in_names, data)), dict(zip(out_names, outputs)))
    replaced = {**fuse(tape, outputs, opset), **recurrences(tape, outputs)}
    live = _live(tape, outputs, replaced)
    _refuse_unexportable(live, opset, replaced)

    g = GraphBuilder(onnx, opset)
    if any(axes[name] for name in in_names):
        _follow_dynamic_axes(g, model_or_fn, args, kwargs, tape, live, data, in_names, axes)
    graph_inputs = []
    for name, node in zip(in_names, data):
        g.names[node] = g.reserve(name)
        graph_inputs.append(_value_info(onnx, name, node.dtype, node.shape, axes[name]))
    for node in live:
        if isinstance(node, Input) and node.role != "data":
            g.names[node] = g.initializer(node.name, to_numpy(node.value))
    too_new = {}
    for node in live:
        g.scope, g.current = node.scope, node
        try:
            if isinstance(node, Const):
                g.names[node] = _constant(g, node)
            elif isinstance(node, Call):
                g.names[node] = replaced[node](g) if node in replaced else EMITTERS[node.prim.name](g, node)
        except NeedsOpset as error:  # listed with the others below; later nodes read a placeholder
            g.names[node] = g.fresh("unexported")
            _count(too_new, node, f"its ONNX form {error}")
    if too_new:
        raise UnexportablePrimitive(too_new)
    g.scope = ""
    graph_outputs = [_output(g, name, node, axes) for name, node in zip(out_names, outputs)]
    model = _model(onnx, g, graph_inputs, graph_outputs, opset)
    _write(model, f)
    return model


def _onnx():
    try:
        import onnx
    except ImportError as error:
        raise OnnxError("avalon.onnx.export needs the onnx package: pip install 'avalon[onnx]'") from error
    return onnx


def _opset(version):
    if version is None:
        return DEFAULT_OPSET
    if not isinstance(version, (int, np.integer)) or not MIN_OPSET <= version <= max_opset():
        raise OnnxError(f"export: opset_version={version!r} is not supported; Avalon writes opsets "
                        f"{MIN_OPSET} to {max_opset()} (the newest the installed onnx defines; default "
                        f"{DEFAULT_OPSET})")
    return int(version)


def _names(given, default, what):
    if given is None:
        return list(default)
    given = list(given)
    if len(given) > len(default) or not all(isinstance(n, str) and n for n in given):
        raise OnnxError(f"export: {what} must be at most {len(default)} non-empty strings (one per "
                        f"{'array argument' if what == 'input_names' else 'result'}), got {given!r}")
    return given + list(default[len(given):])


def _dynamic_axes(dynamic_axes, inputs, outputs):
    """{name: {axis: symbol or None}} for every input and output name (empty when static)."""
    axes = {name: {} for name in (*inputs, *outputs)}
    for name, spec in (dynamic_axes or {}).items():
        node = inputs.get(name, outputs.get(name))
        if node is None:
            raise OnnxError(f"export: dynamic_axes names {name!r}, which is none of the inputs {list(inputs)} "
                            f"or outputs {list(outputs)}")
        spec = spec if isinstance(spec, dict) else {a: None for a in spec}
        for axis, symbol in spec.items():
            if not isinstance(axis, (int, np.integer)) or not 0 <= axis < len(node.shape):
                raise OnnxError(f"export: dynamic_axes[{name!r}] has axis {axis!r}, but {name!r} has "
                                f"{len(node.shape)} dimensions")
            axes[name][int(axis)] = symbol if symbol is not None else f"{name}_dynamic_axes_{axis + 1}"
    return axes


def _live(tape, outputs, replaced):
    """The nodes the outputs need, in tape order (a fused group's inner nodes left out)."""
    needed, stack = set(), list(outputs)
    while stack:
        node = stack.pop()
        if node in needed:
            continue
        needed.add(node)
        if node in replaced:
            stack.extend(replaced[node].inputs)
        elif isinstance(node, Call):
            stack.extend(node.inputs)
    return [n for n in tape.nodes if n in needed]


def _refuse_unexportable(live, opset, replaced):
    found = {}
    for node in live:
        if isinstance(node, Call) and node not in replaced:
            why = refusal(node, opset)
            if why is not None:
                _count(found, node, why)
    if found:
        raise UnexportablePrimitive(found)


def _count(found, node, why):
    """Add `node` to UnexportablePrimitive's table {primitive: (count, why, user's lines)}."""
    name = node.prim.name if isinstance(node, Call) else "constant"
    count, first_why, locations = found.get(name, (0, why, []))
    if node.location is not None and node.location not in locations:
        locations.append(node.location)
    found[name] = (count + 1, first_why, locations)


def _twin_args(args, kwargs, data, in_names, axes):
    """The arguments with every dynamic axis longer: each symbol by its own amount (3, 4, …), the
    values repeated cyclically so indices and masks stay valid."""
    arrays = [i for i, a in enumerate(args) if is_array(a)]
    keyword_arrays = sum(1 for a in kwargs.values() if is_array(a))
    if len(arrays) + keyword_arrays != len(data) or any(axes[name] for name in in_names[len(arrays):]):
        raise OnnxError("export: dynamic_axes works with array arguments passed directly in args (positional, "
                        "not keyword arguments, lists, dicts or other containers)")
    symbols = list(dict.fromkeys(s for name in in_names for s in axes[name].values()))
    new = list(args)
    for i, name in zip(arrays, in_names):
        value = to_numpy(args[i])
        for axis, symbol in axes[name].items():
            size = value.shape[axis] + 3 + symbols.index(symbol)
            value = np.take(value, np.arange(size) % value.shape[axis], axis=axis)
        new[i] = value
    return tuple(new)


def _follow_dynamic_axes(g, model_or_fn, args, kwargs, tape, live, data, in_names, axes):
    """Trace again with the dynamic axes longer, pair the nodes of the two tapes, refuse what would
    bake a dynamic size, and give `g` the inputs' dynamic dimensions (export_dynamic.py)."""
    twin_tape = _twin_trace(model_or_fn, _twin_args(args, kwargs, data, in_names, axes), kwargs)
    g.twins = differences(tape, twin_tape)
    for node in live:
        check_static(node, g.twins[node])
    g.dims = DynamicDims([(name, axis, node.shape[axis], g.twins[node].shape[axis])
                          for name, node in zip(in_names, data) for axis in axes[name]])


def _twin_trace(model_or_fn, args, kwargs):
    try:
        return _record(model_or_fn, args, kwargs).tape
    except AvalonError as error:
        raise OnnxError("export: with dynamic_axes the function is traced a second time with those axes longer, "
                        f"and there it failed:\n{error}\n  fix: make the code work at any size of the dynamic "
                        "axes (sizes from x.shape, -1 in reshape), or export without dynamic_axes") from error


def _constant(g, node):
    """A captured array as a Constant; one filled with a single value (an initial state of zeros) as
    ConstantOfShape, whose shape follows the dynamic axes (and which an import never takes for a
    weight); a range or a band (a causal mask) built from a dynamic size as computed from it."""
    twin = g.twin(node)
    value = to_numpy(node.value)
    filled = value.size > 1 and (value == value.flat[0]).all()
    if twin is not None:
        other = to_numpy(twin.value)
        if (other.shape == value.shape and not np.array_equal(other, value, equal_nan=True)) or \
                (other.shape != value.shape and not (filled and (other == value.flat[0]).all())):
            computed = computed_constant(g, value, other)
            if computed is None:
                raise DynamicSizeError(node, "a constant array whose values are computed from a dynamic size, and "
                                             "neither a range nor a band of a matrix (np.arange, np.tril, np.triu)")
            return computed
    if filled:
        fill = g.onnx.numpy_helper.from_array(value.reshape(-1)[:1].copy())
        shape = g.shape_tensor(node.shape, twin.shape if twin is not None else None, fill=None)
        return g.op("ConstantOfShape", [shape], value=fill)
    if twin is None or twin.shape == node.shape:
        return g.const(value, value.dtype)
    raise DynamicSizeError(node, f"a constant array of shape {node.shape} whose shape follows a dynamic size")


def _output(g, name, node, axes):
    """The graph output `name` for `node`: its value renamed, its dimensions that follow the dynamic
    axes named (as dynamic_axes names them, else as the input's axis of the same size)."""
    g.rename(g.names[node], g.reserve(name))
    twin = g.twin(node)
    dynamic = axes.get(name) or {a: None for a in range(len(node.shape)) if twin and twin.shape[a] != node.shape[a]}
    return _value_info(g.onnx, name, node.dtype, node.shape, _symbols(dynamic, name, axes, g, node))


def _symbols(dynamic, name, axes, g, node):
    """Output dimension names: those given in dynamic_axes, else an input's symbol of the same size."""
    out = {}
    for axis, symbol in dynamic.items():
        if symbol is None and g.dims is not None:
            twin = g.twin(node)
            for (input_name, input_axis, a, b) in g.dims.entries:
                if (a, b) == (node.shape[axis], twin.shape[axis]):
                    symbol = axes[input_name][input_axis]
                    break
        out[axis] = symbol or f"{name}_dim_{axis}"
    return out


def _value_info(onnx, name, dtype, shape, dynamic):
    dims = [dynamic.get(a, n) for a, n in enumerate(shape)]
    return onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), dims)


def _model(onnx, g, inputs, outputs, opset):
    graph = onnx.helper.make_graph(g.nodes, "avalon", inputs, outputs, initializer=g.initializers)
    opsets = [onnx.helper.make_opsetid("", opset)]
    model = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="avalon",
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        named = re.search(r"node name: ([^)]*)\)", str(error))
        node = g.origin.get(named.group(1)) if named else None
        if node is None or not isinstance(node, Call):
            raise OnnxError(f"export made a model the ONNX checker refuses (a bug in Avalon's export, please "
                            f"report it): {error}") from error
        # most often an operator that takes these types only from a later opset (Pow on integers from 12)
        raise UnexportablePrimitive({node.prim.name: (1, f"the ONNX checker refuses its form at opset {opset}: "
                                                         f"{error} (a newer opset_version may take these types)",
                                                      [node.location] if node.location else [])}) from error
    return model


def _write(model, f):
    """To a file object, or to a path through a temporary file (an old file stays whole on failure)."""
    data = model.SerializeToString()
    if hasattr(f, "write"):
        f.write(data)
        return
    path = os.fspath(f)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
