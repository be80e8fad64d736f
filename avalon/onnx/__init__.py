"""ONNX import: `avalon.onnx.load(path_or_bytes)` turns an ONNX model into a trainable Module.

Needs the `onnx` extra (`pip install 'avalon[onnx]'`); `import avalon` never imports onnx.
"""
from .errors import OnnxError, UnsupportedOperator
from .graph_module import OnnxModule
from .load import load
from .ops import HANDLERS as _HANDLERS


def supported_operators():
    """The default-domain ONNX op types `load` can import, sorted."""
    return sorted(_HANDLERS)


__all__ = ["load", "OnnxModule", "OnnxError", "UnsupportedOperator", "supported_operators"]

from .errors import UnexportablePrimitive  # noqa: E402
from .export import export, exportable_primitives  # noqa: E402

__all__ += ["export", "exportable_primitives", "UnexportablePrimitive"]
