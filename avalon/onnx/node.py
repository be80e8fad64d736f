"""One ONNX node as the interpreter sees it, and the helpers handlers share."""
import numpy as np

from .errors import OnnxError


class Node:
    """An ONNX node: op type, name, input and output names, attributes (Python values, tensors as numpy
    arrays), the opset of its domain, and `module` (the OnnxModule running it) while it runs."""

    def __init__(self, op_type, name, inputs, outputs, attrs, opset):
        self.op_type, self.name, self.inputs, self.outputs = op_type, name, list(inputs), list(outputs)
        self.attrs, self.opset = attrs, opset
        self.scope = module_scope(name)
        self.module = None

    def attr(self, name, default=None):
        return self.attrs.get(name, default)

    def error(self, message):
        return OnnxError(f"ONNX node {self.name!r} ({self.op_type}, opset {self.opset}): {message}")

    def constant(self, value, what):
        """`value` as a numpy array, which it must be: a shape, axes or index computed from constants."""
        if isinstance(value, (np.ndarray, np.generic)):
            return np.asarray(value)
        raise self.error(f"{what} must be computable from constants and shapes, but it depends on the "
                         "model's inputs or weights (data-dependent shapes cannot be traced); a model input "
                         "that sets it can be given as a Python list or number")

    def ints(self, value, what):
        return [int(v) for v in self.constant(value, what).reshape(-1)]


def module_scope(name):
    """The module path in an exporter's node name: PyTorch writes '/layer1/layer1.0/conv1/Conv' for
    `layer1.0.conv1` (a part may repeat its parent's path); a name without slashes has none."""
    parts = name.strip("/").split("/")[:-1] if "/" in name else []
    path = ""
    for part in parts:
        path = part if not path or part.startswith(path + ".") else f"{path}.{part}"
    return path


def is_array_constant(x):
    return isinstance(x, (np.ndarray, np.generic))
