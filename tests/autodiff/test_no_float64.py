"""No silent float64: the forward+backward tapes of the ported models, traced on float32 data, hold
no float64 (or complex128) node. numpy promotes quietly (a Python float array, a float64 constant,
an integer divided), and one such node doubles the memory and halves the speed of all it touches."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import avalon

pytest.importorskip("torch")
pytestmark = [pytest.mark.filterwarnings("ignore:enable_nested_tensor")]



def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent.parent / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ports = _load("ported_models", "ports/test_ports.py")
zoo = _load("zoo_models", "zoo/test_zoo.py")

WIDE = (np.float64, np.complex128)


def wide_nodes(tape):
    """The nodes of `tape` whose dtype is a double-precision one, as printed lines."""
    return [tape.line(n) for n in tape.nodes if np.dtype(n.dtype) in WIDE]


@pytest.mark.parametrize("name", list(ports.CASES))
def test_ported_models_trace_in_float32_alone(name):
    cls, kwargs, loss_name, make_batch, _ = ports.CASES[name]
    model = ports.AVALON_NS[cls](**kwargs)
    batch = make_batch()
    assert not [a for a in batch if np.asarray(a).dtype in WIDE]
    tape = avalon.grad_tape(ports.AVALON_NS[loss_name], model, *batch)
    wide = wide_nodes(tape)
    assert not wide, f"{name}: float64 nodes on a float32 step:\n" + "\n".join(wide[:10])


@pytest.mark.parametrize("name", zoo.NAMES)
def test_zoo_models_trace_in_float32_alone(name):
    avalon.manual_seed(0)
    model = zoo.avalon_module(name).make_model()
    batch, _ = zoo._examples(name, "example_batch")
    tape = avalon.grad_tape(zoo.avalon_module(name).loss_fn, model, *batch, argnums=0)
    if any(np.dtype(n.dtype) in WIDE for n in tape.inputs):
        pytest.skip("the model or its data are float64 by choice")
    wide = wide_nodes(tape)
    assert not wide, f"{name}: float64 nodes on a float32 step:\n" + "\n".join(wide[:10])


def test_a_float64_input_is_not_reported_as_silent():
    x = np.ones(3)  # float64 by the user's choice: its nodes are float64, as they should be
    tape = avalon.grad_tape(lambda x: (x * 2).sum(), x)
    assert wide_nodes(tape)
