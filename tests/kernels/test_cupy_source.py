"""The GPU backend's generated ElementwiseKernel source (no GPU here: the text is what is checked;
the kernel is built by cupy at the first launch)."""
import numpy as np

from avalon.kernels.cupy_backend import source
from avalon.kernels.program import Program

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


def generated(text, names, dtypes, out):
    return source(Program(text, names), tuple(((4,), d) for d in dtypes), out)


def test_relu_backward_is_one_select_in_registers():
    params, result, body = generated("where(x > 0, g, 0)", ["x", "g"], [F32, F32], F32)
    assert params == "float a0, float a1" and result == "float out"
    assert body.splitlines() == [
        "bool t0 = (bool)(a0 > ((float)0.0));",
        "float t1 = t0 ? (float)(a1) : (float)(((float)0.0));",
        "out = t1;",
    ]


def test_numbers_take_the_dtype_numpy_gives_them():
    # 0.1 next to float32 is float32's 0.1 (numpy's weak Python scalars), written exactly
    _, _, body = generated("x * 0.1", ["x"], [F32], F32)
    assert "((float)0.10000000149011612)" in body and float(np.float32(0.1)) == 0.10000000149011612
    _, result, body = generated("x * 0.1 + y", ["x", "y"], [F32, F64], F64)
    assert result == "double out" and body.splitlines()[1] == "double t1 = (double)(t0 + a1);"


def test_maximum_keeps_numpy_nan_propagation_and_functions_are_cuda_names():
    _, _, body = generated("maximum(x, y)", ["x", "y"], [F32, F32], F32)
    assert "|| (a0) != (a0)" in body  # NaN in the first operand wins, as in numpy
    _, _, body = generated("arctan2(abs(x), y) + log1p(x)", ["x", "y"], [F64, F64], F64)
    assert "atan2(t0, a1)" in body and "fabs(a0)" in body and "log1p(a0)" in body


def test_every_step_is_typed_as_numpy_types_it():
    _, _, body = generated("(x > 0) & (y < 1)", ["x", "y"], [F32, F64], np.dtype(bool))
    assert [line.split(" ")[0] for line in body.splitlines()[:-1]] == ["bool", "bool", "bool"]
