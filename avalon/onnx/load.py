"""avalon.onnx.load: read an ONNX model, check it, and build a trainable OnnxModule."""
import ast
import os
import re

import numpy as np

from .errors import OnnxError, UnsupportedOperator
from .graph_module import OnnxModule
from .node import Node
from .ops import HANDLERS
from .tensors import to_numpy

_DEFAULT_DOMAINS = ("", "ai.onnx")
# Input slots whose float value is a weight: a Constant node feeding one becomes a parameter.
_WEIGHT_SLOTS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2), "MatMul": (0, 1),
                 "BatchNormalization": (1, 2), "LayerNormalization": (1, 2), "InstanceNormalization": (1, 2),
                 "GroupNormalization": (1, 2), "RMSNormalization": (1,), "PRelu": (1,),
                 "LSTM": (1, 2, 3, 7), "GRU": (1, 2, 3), "RNN": (1, 2, 3)}
# Slots holding running statistics: they become buffers.
_STATISTIC_SLOTS = {"BatchNormalization": (3, 4)}
# Slots read at trace time (shapes, axes, sizes, scales): a graph input feeding only these is static.
_STATIC_SLOTS = {"Reshape": (1,), "Slice": (1, 2, 3, 4), "Squeeze": (1,), "Unsqueeze": (1,), "Expand": (1,),
                 "Tile": (1,), "TopK": (1,), "ConstantOfShape": (0,), "Split": (1,), "Range": (0, 1, 2),
                 "ReduceMean": (1,), "ReduceSum": (1,), "ReduceMax": (1,), "ReduceMin": (1,), "ReduceProd": (1,),
                 "ReduceL1": (1,), "ReduceL2": (1,), "ReduceLogSum": (1,), "ReduceLogSumExp": (1,),
                 "ReduceSumSquare": (1,), "CumSum": (1,), "CumProd": (1,), "Pad": (1, 2, 3),
                 "Resize": (1, 2, 3), "Upsample": (1,), "Dropout": (1, 2), "Trilu": (1,), "Attention": (6,),
                 "OneHot": (1,), "GatherND": (1,), "CenterCropPad": (1,),
                 "HannWindow": (0,), "HammingWindow": (0,), "BlackmanWindow": (0,), "AffineGrid": (1,),
                 "DFT": (1, 2), "STFT": (1, 3), "MelWeightMatrix": (0, 1, 2, 3, 4), "Col2Im": (1, 2),
                 "NonZero": (0,), "Compress": (1,), "Unique": (0,), "NonMaxSuppression": (0, 1, 2, 3, 4),
                 "MaxUnpool": (2,), "RoiAlign": (1, 2),
                 "LSTM": (4,), "GRU": (4,), "RNN": (4,)}
# Float slots that are settings, not weights: an initializer feeding only these stays a constant.
_SETTING_SLOTS = {**_STATIC_SLOTS, "Clip": (1, 2), "Pow": (1,), "NegativeLogLikelihoodLoss": (2,),
                  "SoftmaxCrossEntropyLoss": (2,), "OneHot": (1, 2)}


def _onnx():
    try:
        import onnx
    except ImportError as error:
        raise OnnxError("avalon.onnx needs the onnx package: pip install 'avalon[onnx]'") from error
    return onnx


def _read(onnx, source):
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, where = bytes(source), "the given bytes"
    else:
        where = os.fspath(source)
        try:
            with open(where, "rb") as f:
                data = f.read()
        except OSError as error:
            raise OnnxError(f"cannot read the ONNX file {where!r}: {error.strerror}") from error
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as error:  # protobuf's DecodeError and friends
        raise OnnxError(f"{where} is not a valid ONNX model (truncated or not a protobuf): {error}") from error
    if not model.HasField("graph") or not model.graph.output:
        raise OnnxError(f"{where} holds no ONNX graph (an empty, truncated or non-ONNX file)")
    return model


def _opsets(onnx, model):
    """Operator-set version per domain ('' for the default one, also spelled 'ai.onnx'); the default
    one must be a version the installed onnx defines (a newer one's operators may mean other things)."""
    versions = {("" if o.domain in _DEFAULT_DOMAINS else o.domain): o.version for o in model.opset_import}
    if "" not in versions:
        raise OnnxError("the model imports no version of the default ONNX operator set (opset_import)")
    newest = onnx.defs.onnx_opset_version()
    if not 1 <= versions[""] <= newest:
        raise OnnxError(f"the model imports ai.onnx opset {versions['']}, which does not exist in the installed "
                        f"onnx (opsets 1 to {newest}): the file is malformed, or needs a newer onnx "
                        "(pip install -U onnx)")
    return versions


def _nodes(onnx, graph, versions, base):
    from onnx import helper
    nodes, unsupported = [], {}
    for i, proto in enumerate(graph.node):
        name = proto.name or f"{proto.op_type}_{i}"
        if proto.domain not in _DEFAULT_DOMAINS or proto.op_type not in HANDLERS:
            entry = unsupported.setdefault((proto.domain, proto.op_type), (versions.get(proto.domain, "?"), []))
            entry[1].append(name)
            continue
        attrs = {}
        for a in proto.attribute:
            value = helper.get_attribute_value(a)
            if isinstance(value, onnx.TensorProto):
                value = to_numpy(value, f"attribute {a.name!r} of node {name!r}", base)
            elif isinstance(value, bytes):
                value = value.decode()
            attrs[a.name] = value
        node = Node(proto.op_type, name, proto.input, proto.output, attrs, versions[""])
        node.scope = _torch_scope(proto) or node.scope
        nodes.append(node)
    if unsupported:
        raise UnsupportedOperator(unsupported)
    return nodes


def _torch_scope(proto):
    """The module path PyTorch's dynamo exporter keeps in a node's metadata (its names carry none):
    name_scopes is ['', 'layer1', 'layer1.0', 'layer1.0.conv1', 'conv2d'], the innermost module's
    path second to last."""
    text = next((p.value for p in proto.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), "")
    if not text.startswith("['', ") or len(text) > 4096:
        return ""
    try:
        scopes = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return ""
    return scopes[-2] if len(scopes) > 2 and all(isinstance(s, str) for s in scopes) else ""


def _declared_dtype(value_info):
    from onnx.helper import tensor_dtype_to_np_dtype
    elem_type = value_info.type.tensor_type.elem_type
    try:
        return tensor_dtype_to_np_dtype(elem_type) if elem_type else None
    except KeyError:
        return None


def _uses(nodes):
    uses = {}
    for node in nodes:
        for slot, name in enumerate(node.inputs):
            if name:
                uses.setdefault(name, []).append((node.op_type, slot))
    return uses


def _in(table, uses):
    return any(slot in table.get(op_type, ()) for op_type, slot in uses)


def _only(table, uses):
    return bool(uses) and all(slot in table.get(op_type, ()) for op_type, slot in uses)


def _read_while_tracing(nodes):
    """Names whose values the trace reads: those in static slots and, walking back, whatever they are
    computed from (a window's size cast and scaled before Range); Shape and Size read only shapes."""
    needed = {name for node in nodes for slot, name in enumerate(node.inputs)
              if name and slot in _STATIC_SLOTS.get(node.op_type, ())}
    for node in reversed(nodes):  # topological order: a consumer is seen before its producers
        if node.op_type not in ("Shape", "Size") and any(o in needed for o in node.outputs):
            needed.update(name for name in node.inputs if name)
    return needed


def _generated_scalar(name, value, uses):
    """A one-element value an exporter made (dynamo's `val_12`, the legacy exporter's `onnx::Mul_7`): an
    epsilon, a scale, a zero expanded into an initial state. Unless it feeds a weight slot (PRelu's
    slope) it is a constant; a torch parameter keeps its dotted identifier name and stays one."""
    generated = re.fullmatch(r"val_\d+", name) or not re.fullmatch(r"[A-Za-z_]\w*(\.\w+)*", name)
    return value.size <= 1 and bool(generated) and not _in(_WEIGHT_SLOTS, uses)


def _check_order(nodes, known):
    """Every input is defined before its node (ONNX requires topological order; this also refuses
    cycles and dangling names), and every name once (a graph is SSA: a second definition would
    silently replace the first)."""
    defined = set()
    for name in known:
        if name in defined:
            raise OnnxError(f"the name {name!r} is defined twice among the graph's inputs and initializers")
        defined.add(name)
    for node in nodes:
        missing = [name for name in node.inputs if name and name not in defined]
        if missing:
            raise OnnxError(f"ONNX node {node.name!r} ({node.op_type}) reads {missing}, which no earlier node, "
                            "input or initializer defines (the graph is not in topological order, has a "
                            "cycle, or is truncated)")
        for name in node.outputs:
            if name in defined:
                raise OnnxError(f"ONNX node {node.name!r} ({node.op_type}) writes {name!r}, which an input, an "
                                "initializer or an earlier node already defines (names must be unique)")
            if name:
                defined.add(name)


def _undo_deduplication(nodes, initializers):
    """PyTorch's exporter stores equal weights once and makes the others Identity nodes of it (a fresh
    BatchNorm's running_var is `Identity(weight)`); give each its own copy under its own name, so it
    trains, and keeps its state_dict key, separately."""
    kept = []
    for node in nodes:
        if node.op_type == "Identity" and node.inputs[0] in initializers:
            initializers[node.outputs[0]] = initializers[node.inputs[0]].copy()
        else:
            kept.append(node)
    return kept


def load(source, *, base_dir=None):
    """An ONNX model (a file path or the model's bytes) as a trainable `avalon.nn.Module`.

    Float initializers become parameters named by their ONNX names (so a PyTorch export exported with
    `do_constant_folding=False` keeps its `state_dict` keys); BatchNormalization's running mean and
    variance become buffers, updated in training mode; integer initializers stay constants, as do
    float ones used only as settings (Clip bounds, Pow exponents) and one-element ones an exporter
    made (dynamo's `val_7`: an epsilon, a scale, a zero initial state). Weights stored as Constant nodes
    that feed a weight slot (Conv, Gemm, MatMul, normalisation scale and bias) become parameters too.
    The module is returned in eval mode, as the file's inference semantics; call `.train()` to
    fine-tune. Inputs go positionally in graph order or by name; several outputs come as a tuple.
    Inputs that only set shapes, axes, sizes or scales (`model.static_inputs`) are static: they are
    read when the model is traced, and a new value traces again.

    >>> model = avalon.onnx.load("mlp.onnx")          # doctest: +SKIP
    >>> loss, grads = avalon.grad(lambda m, x: m(x).sum(), model, x)   # doctest: +SKIP

    Weights in an external data file are read only from inside the model's folder (`base_dir` when the
    model is given as bytes). Raises `UnsupportedOperator` listing every unsupported operator at once,
    and `OnnxError` for a file that is not a readable, safe ONNX model.
    """
    onnx = _onnx()
    model = _read(onnx, source)
    graph = model.graph
    if base_dir is None and not isinstance(source, (bytes, bytearray, memoryview)):
        base_dir = os.path.dirname(os.path.abspath(os.fspath(source)))
    nodes = _nodes(onnx, graph, _opsets(onnx, model), base_dir)
    initializers = {t.name: to_numpy(t, "initializer", base_dir) for t in graph.initializer}
    inputs = {i.name: _declared_dtype(i) for i in graph.input if i.name not in initializers}
    _check_order(nodes, [t.name for t in graph.initializer] + [i.name for i in graph.input
                                                              if i.name not in initializers])
    outputs = [o.name for o in graph.output]
    defined = set(initializers) | set(inputs) | {o for n in nodes for o in n.outputs}
    missing = [o for o in outputs if o not in defined]
    if missing:
        raise OnnxError(f"the graph's output(s) {missing} are produced by no node")

    nodes = _undo_deduplication(nodes, initializers)
    uses = _uses(nodes)
    constants, parameters, buffers = {}, {}, {}
    for name, value in initializers.items():
        floating = np.issubdtype(value.dtype, np.floating)
        if floating and _only(_STATISTIC_SLOTS, uses.get(name, [])):
            buffers[name] = value
        elif floating and uses.get(name) and not _only(_SETTING_SLOTS, uses[name]) \
                and not _generated_scalar(name, value, uses[name]):
            parameters[name] = value
        else:
            constants[name] = value
    kept = []
    for node in nodes:
        out = node.outputs[0] if node.outputs else ""
        if node.op_type == "Constant" and "value" in node.attrs and np.issubdtype(node.attrs["value"].dtype,
                                                                                   np.floating):
            if _only(_STATISTIC_SLOTS, uses.get(out, [])):
                buffers[out] = node.attrs["value"]
                continue
            if _in(_WEIGHT_SLOTS, uses.get(out, [])):
                parameters[out] = node.attrs["value"]
                continue
        kept.append(node)
    # an integer input the trace reads through other nodes is static too (it sets a shape either way)
    read = _read_while_tracing(kept)
    static = [name for name, dtype in inputs.items() if _only(_STATIC_SLOTS, uses.get(name, [])) or
              (name in read and dtype is not None and (np.issubdtype(dtype, np.integer) or dtype == np.bool_))]
    module = OnnxModule(kept, inputs, static, outputs, constants, parameters, buffers)
    return module.eval()
