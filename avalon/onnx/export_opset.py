"""Which opsets export writes, and the check that every node it emits exists at the requested opset.

Each node is checked against `onnx.defs.get_schema(op_type, opset)` as it is emitted: the operator
must exist there, know every attribute given and take that many inputs. A node that does not fit
raises `NeedsOpset`, which export turns into a refusal naming the primitive, the operator, the first
opset that has the form and the user's line (UnexportablePrimitive), instead of a file the checker
or a runtime would reject.
"""
from .errors import OnnxError

# Opset 9 is the oldest with Where, Erf, ConstantOfShape, Sign and IsNaN, which most programs need
# (7 and 8 would also want int64 Constants and the weights listed as graph inputs); the newest is the
# installed onnx's. The default is torch.onnx.export's (20).
MIN_OPSET, DEFAULT_OPSET = 9, 20


def max_opset():
    import onnx
    return onnx.defs.onnx_opset_version()


class NeedsOpset(OnnxError):
    """The node being emitted has no form at the requested opset (`needed`: the first that has it,
    or None when no opset up to the newest has it)."""

    def __init__(self, op_type, what, needed, opset):
        self.op_type, self.what, self.needed, self.opset = op_type, what, needed, opset
        newer = f"needs opset {needed} or newer" if needed else "has no form at any opset"
        super().__init__(f"{op_type}{' ' + what if what else ''} {newer} (opset_version={opset})")


def check_node(onnx, opset, op_type, n_inputs, attributes):
    """Raise NeedsOpset unless `op_type` with `n_inputs` inputs and `attributes` exists at `opset`."""
    what = _misfit(onnx, opset, op_type, n_inputs, attributes)
    if what is None:
        return
    needed = next((v for v in range(opset + 1, max_opset() + 1)
                   if _misfit(onnx, v, op_type, n_inputs, attributes) is None), None)
    raise NeedsOpset(op_type, what, needed, opset)


def _misfit(onnx, opset, op_type, n_inputs, attributes):
    """Why the node does not fit `opset`'s schema ('' when the operator is missing), or None."""
    try:
        schema = onnx.defs.get_schema(op_type, opset, "")
    except onnx.defs.SchemaError:
        return ""
    if schema.deprecated:
        return ""
    unknown = sorted(set(attributes) - set(schema.attributes))
    if unknown:
        return f"with attribute {', '.join(unknown)}"
    if not schema.min_input <= n_inputs <= schema.max_input:
        return f"with {n_inputs} inputs"
    return None
