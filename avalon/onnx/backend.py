"""`avalon.onnx.backend`: Avalon as an `onnx.backend.base.Backend`, so onnx's own backend test runner
(and any tool written for that interface) runs models through `avalon.onnx.load`'s Module.

>>> import avalon.onnx.backend as backend                      # doctest: +SKIP
>>> rep = backend.prepare(onnx.load("model.onnx"), "CPU")      # doctest: +SKIP
>>> (y,) = rep.run([x])                                        # doctest: +SKIP

onnx's test runner takes the module itself:
`onnx.backend.test.BackendTest(avalon.onnx.backend, __name__)` (tests/onnx/test_backend_suite.py).
"""
import numpy as np
from onnx import ModelProto, helper
from onnx.backend.base import Backend, BackendRep, Device, DeviceType, namedtupledict

from .. import cuda
from ..backend import to_device, to_numpy
from .errors import OnnxError
from .load import load
from .ops import HANDLERS

# keyword arguments onnx's test runner passes to `prepare` with a case's own tolerances; they are
# the runner's business, not the model's
_RUNNER_KWARGS = ("rtol", "atol")


def _device(device):
    """'cpu' or 'cuda:N' for onnx's device string ('CPU', 'CUDA', 'CUDA:1')."""
    try:
        parsed = Device(device)
    except (AttributeError, ValueError):
        raise OnnxError(f"unknown device {device!r}: onnx backends take 'CPU' or 'CUDA[:N]'") from None
    return "cpu" if parsed.type == DeviceType.CPU else f"cuda:{parsed.device_id}"


class AvalonRep(BackendRep):
    """A prepared model: `run(inputs)` gives the graph's outputs as numpy arrays, in a tuple whose
    fields are also reachable by output name. `module` is the trainable `avalon.onnx.OnnxModule`."""

    def __init__(self, module, device):
        self.module, self.device = module, device

    def run(self, inputs, **kwargs):
        """`inputs`: a list in graph-input order, a dict by input name, or one array."""
        if kwargs:
            raise TypeError(f"AvalonRep.run() takes no options, got {sorted(kwargs)}")
        if isinstance(inputs, dict):
            outputs = self.module(**{k: self._to_device(k, v) for k, v in inputs.items()})
        else:
            inputs = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
            names = self.module.input_names + [None] * len(inputs)  # extra inputs go on, for the module to refuse
            outputs = self.module(*[self._to_device(k, v) for k, v in zip(names, inputs)])
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        return namedtupledict("Outputs", self.module.output_names)(*[to_numpy(o) for o in outputs])

    def _to_device(self, name, value):
        """An input on the model's device; static inputs (shapes, sizes) stay host values."""
        if self.device == "cpu" or name in self.module.static_inputs or not isinstance(value, np.ndarray):
            return value
        return to_device(value, self.device)


class AvalonBackend(Backend):
    """Runs ONNX models with Avalon: `prepare` imports the model once (`avalon.onnx.load`), `run_model`
    and `run_node` run it once. CPU always; CUDA when cupy sees a GPU."""

    @classmethod
    def is_compatible(cls, model, device="CPU", **kwargs):
        """True when every node is a default-domain operator Avalon imports and the device is usable."""
        return cls.supports_device(device) and all(
            node.domain in ("", "ai.onnx") and node.op_type in HANDLERS for node in model.graph.node)

    @classmethod
    def prepare(cls, model, device="CPU", base_dir=None, **kwargs):
        """An `AvalonRep` for `model` (a ModelProto, its bytes or a file path) on `device`. `base_dir`:
        the folder of the model's external data when it is given as a proto or bytes."""
        unknown = sorted(set(kwargs) - set(_RUNNER_KWARGS))
        if unknown:
            raise TypeError(f"prepare() got unexpected keyword arguments {unknown}")
        where = _device(device)
        if not cls.supports_device(device):
            raise OnnxError(f"device {device!r} is not available: Avalon runs on the GPU through cupy, which "
                            "is not installed or sees no CUDA device; use 'CPU'")
        source = model.SerializeToString() if isinstance(model, ModelProto) else model
        module = load(source, base_dir=base_dir)
        if where != "cpu":
            module.to(where)
        return AvalonRep(module, where)

    @classmethod
    def run_model(cls, model, inputs, device="CPU", **kwargs):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node, inputs, device="CPU", outputs_info=None, **kwargs):
        """Run one NodeProto on `inputs` (arrays in the node's input order; an empty input name is an
        omitted optional input). `opset_version` picks the default-domain opset (the newest the
        installed onnx knows by default); `outputs_info` is not needed (outputs are inferred)."""
        import onnx.defs
        opset = kwargs.pop("opset_version", onnx.defs.onnx_opset_version())
        arrays = [np.asarray(v) for v in inputs]
        names = [name for name in node.input if name]
        if len(names) != len(arrays):
            raise OnnxError(f"node {node.name or node.op_type!r} names {len(names)} input(s) {names}, "
                            f"got {len(arrays)} array(s)")
        graph = helper.make_graph(
            [node], f"run_node_{node.op_type}",
            [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
             for name, a in zip(names, arrays)],
            [helper.make_empty_tensor_value_info(name) for name in node.output if name])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        return cls.prepare(model, device, **kwargs).run(arrays)

    @classmethod
    def supports_device(cls, device):
        """'CPU' always; 'CUDA[:N]' when cupy is installed and sees a GPU."""
        try:
            where = _device(device)
        except OnnxError:
            return False
        return where == "cpu" or cuda.is_available()


# onnx's runner and tools call these on the module (`onnx.backend.test.BackendTest(avalon.onnx.backend)`)
is_compatible = AvalonBackend.is_compatible
prepare = AvalonBackend.prepare
run_model = AvalonBackend.run_model
run_node = AvalonBackend.run_node
supports_device = AvalonBackend.supports_device
