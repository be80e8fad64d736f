"""OnnxModule: an ONNX graph as an Avalon Module whose forward interprets the nodes in order."""
import numpy as np

from ..nn import Module
from ..tracing import scope
from .errors import OnnxError
from .ops import HANDLERS


def _holder(root, dotted, create):
    """The submodule holding `dotted`'s last part (made on the way when `create`), and that part."""
    *path, leaf = dotted.split(".")
    module = root
    for part in path:
        if part not in module._modules:
            if not create:
                raise OnnxError(f"no submodule for {dotted!r}")
            if part in module.__dict__ or part in module._parameters or part in module._buffers:
                raise OnnxError(f"the ONNX name {dotted!r} clashes with {part!r} at another level")
            module.add_module(part, Module())
        module = module._modules[part]
    if create and (leaf in module.__dict__ or leaf in module._modules):
        raise OnnxError(f"the ONNX name {dotted!r} cannot be a parameter: {leaf!r} is taken by a "
                        "submodule or a Module attribute")
    return module, leaf


def _python(value):
    return value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value


class OnnxModule(Module):
    """An imported ONNX graph (see `avalon.onnx.load`). Parameters and buffers carry the ONNX names, in
    submodules split at the dots, so `state_dict()` keys are the ONNX names."""

    _array_first = False  # a first input may be static (a list of sizes); _bind checks the inputs

    def __init__(self, nodes, inputs, static_inputs, outputs, constants, parameters, buffers):
        """`inputs` maps each graph input's name to its declared numpy dtype (None when undeclared);
        `static_inputs` name those read while tracing (shapes, axes, scales)."""
        super().__init__()
        object.__setattr__(self, "_nodes", nodes)
        object.__setattr__(self, "input_names", list(inputs))
        object.__setattr__(self, "static_inputs", list(static_inputs))
        object.__setattr__(self, "_input_dtypes", dict(inputs))
        object.__setattr__(self, "output_names", list(outputs))
        object.__setattr__(self, "_constants", constants)
        object.__setattr__(self, "_state_names", list(parameters) + list(buffers))
        for name, value in parameters.items():
            module, leaf = _holder(self, name, create=True)
            module.register_parameter(leaf, value)
        for name, value in buffers.items():
            module, leaf = _holder(self, name, create=True)
            module.register_buffer(leaf, value)

    def update_buffer(self, name, value):
        """Give the buffer `name` a new value (BatchNormalization's running statistics in training);
        inputs that are not buffers are left alone."""
        if name in self._state_names:
            module, leaf = _holder(self, name, create=False)
            if leaf in module._buffers:
                setattr(module, leaf, value)

    def __call__(self, *args, **kwargs):
        # arrays for static inputs become Python values, which tracing keeps as constants (and retraces
        # for a new value), so the handlers can read them
        static = set(self.static_inputs)
        args = [_python(a) if name in static else a for name, a in zip(self.input_names, args)] + \
            list(args[len(self.input_names):])
        kwargs = {k: _python(v) if k in static else v for k, v in kwargs.items()}
        try:
            return super().__call__(*args, **kwargs)
        except MemoryError as error:  # a broadcast view (Expand) is only materialised for the outputs
            raise OnnxError(f"this ONNX model's results do not fit in memory ({error}): the model asks for more "
                            "than this machine has, or the file is malformed") from error

    def _bind(self, args, kwargs):
        if len(args) > len(self.input_names):
            raise OnnxError(f"this ONNX model takes {len(self.input_names)} input(s) {self.input_names}, "
                            f"got {len(args)} positional")
        values = dict(zip(self.input_names, args))
        for name, value in kwargs.items():
            if name not in self.input_names:
                raise OnnxError(f"this ONNX model has no input {name!r}; its inputs are {self.input_names}")
            if name in values:
                raise OnnxError(f"input {name!r} given twice (by position and by name)")
            values[name] = value
        missing = [name for name in self.input_names if name not in values]
        if missing:
            raise OnnxError(f"missing input(s) {missing}; this ONNX model takes {self.input_names}")
        for name, value in values.items():
            if isinstance(value, (list, tuple, int, float, bool)):
                # a Python value is static (a new value retraces): shapes, axes, sizes given as inputs
                values[name] = np.asarray(value, dtype=self._input_dtypes[name])
        return values

    def forward(self, *args, **kwargs):
        env = dict(self._constants)
        for name in self._state_names:
            module, leaf = _holder(self, name, create=False)
            env[name] = getattr(module, leaf)
        env.update(self._bind(args, kwargs))
        for node in self._nodes:
            node.module = self
            try:
                with scope(node.scope):  # the tape and the workbench group nodes by the exporter's modules
                    results = HANDLERS[node.op_type](node, *[env[i] if i else None for i in node.inputs])
            except MemoryError as error:  # a shape from the file (ConstantOfShape, Expand) beyond any memory
                raise node.error(f"its result does not fit in memory ({error}): the model asks for more than "
                                 "this machine has, or the file is malformed") from error
            finally:
                node.module = None
            if not isinstance(results, tuple):
                results = (results,)
            unmade = [name for name in node.outputs[len(results):] if name]
            if unmade:
                raise node.error(f"its output(s) {unmade} are not supported yet")
            for name, value in zip(node.outputs, results):
                if name:
                    env[name] = value
        outputs = tuple(env[name] for name in self.output_names)
        return outputs[0] if len(outputs) == 1 else outputs

    def extra_repr(self):
        return f"inputs={self.input_names}, outputs={self.output_names}, nodes={len(self._nodes)}"
