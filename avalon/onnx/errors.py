"""The errors `avalon.onnx` raises: every one is an `AvalonError`."""
from ..errors import AvalonError


class OnnxError(AvalonError):
    """An ONNX model could not be read or run: malformed, unsafe, or inconsistent."""


class UnsupportedOperator(OnnxError):
    """The model uses operators Avalon cannot import yet; `operators` maps each unsupported
    (domain, op_type) to its opset and the names of the nodes that use it, all at once."""

    def __init__(self, operators):
        self.operators = operators
        lines = [f"this ONNX model uses {len(operators)} operator type(s) Avalon cannot import yet:"]
        for (domain, op_type), (opset, nodes) in sorted(operators.items()):
            where = f"{domain or 'ai.onnx'} opset {opset}"
            shown = ", ".join(repr(n) for n in nodes[:5]) + (f" and {len(nodes) - 5} more" if len(nodes) > 5 else "")
            lines.append(f"  {op_type} ({where}): node(s) {shown}")
        lines.append("  fix: export with operators from the supported list (avalon.onnx.supported_operators()), "
                     "or file an issue naming these operators")
        super().__init__("\n".join(lines))


class UnexportablePrimitive(OnnxError):
    """`avalon.onnx.export` met primitives with no ONNX form; `primitives` maps each primitive's name to
    (count, reason, the user's source locations), all of them at once. Nothing was written."""

    def __init__(self, primitives):
        self.primitives = primitives
        lines = [f"export: the traced program uses {len(primitives)} primitive(s) with no ONNX form; "
                 "nothing was written:"]
        for name, (count, reason, locations) in sorted(primitives.items()):
            lines.append(f"  {name} (used {count}×): {reason}")
            for location in locations[:3]:
                lines.append(f"      at {location}" + (f": {location.code}" if location.code else ""))
            if len(locations) > 3:
                lines.append(f"      and {len(locations) - 3} more line(s)")
        lines.append("  fix: rewrite these lines with operations that have an ONNX form (see "
                     "avalon.onnx.exportable_primitives())")
        super().__init__("\n".join(lines))
