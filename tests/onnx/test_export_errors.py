"""avalon.onnx.export refuses clearly, before writing anything: every primitive with no ONNX form at
once with the user's lines, unsupported opsets, bad names and axes, sizes baked along a dynamic axis."""
import io

import numpy as np
import onnx
import pytest

import avalon
import avalon.onnx
from avalon.errors import AvalonError
from avalon.onnx import OnnxError, UnexportablePrimitive

x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)


def two_unexportable(a):
    order = np.argpartition(a, 1, axis=1)  # the argpartition line
    draws = avalon.randint(0, 3, a.shape)  # the randint line
    return np.argpartition(order + draws, 0, axis=0)  # argpartition again


def line_of(marker):
    import inspect
    source, start = inspect.getsourcelines(two_unexportable)
    return start + next(i for i, s in enumerate(source) if marker in s)


def test_every_unexportable_primitive_is_listed_with_its_lines(tmp_path):
    path = tmp_path / "f.onnx"
    path.write_bytes(b"old")
    with pytest.raises(UnexportablePrimitive) as caught:
        avalon.onnx.export(two_unexportable, x, path)
    error = caught.value
    assert isinstance(error, AvalonError)
    assert set(error.primitives) == {"argpartition", "randint"}
    count, why, locations = error.primitives["argpartition"]
    assert count == 2 and why.startswith("numpy leaves the order within each part unspecified")
    assert [loc.lineno for loc in locations] == [line_of("the argpartition line"), line_of("argpartition again")]
    assert error.primitives["randint"][2][0].lineno == line_of("the randint line")
    assert error.primitives["randint"][1] == "ONNX draws random floats only (RandomUniform, RandomNormal), no integers"
    message = str(error)
    assert "argpartition (used 2×)" in message and "randint (used 1×)" in message
    assert "order = np.argpartition(a, 1, axis=1)" in message
    assert "avalon.onnx.exportable_primitives()" in message
    assert path.read_bytes() == b"old"  # nothing written


@pytest.mark.parametrize("opset", [8, onnx.defs.onnx_opset_version() + 1, "18", 17.0])
def test_unsupported_opset(opset):
    newest = onnx.defs.onnx_opset_version()
    with pytest.raises(OnnxError, match=rf"opset_version=.* is not supported; Avalon writes opsets 9 to {newest}"):
        avalon.onnx.export(np.tanh, x, io.BytesIO(), opset_version=opset)


def running_total(a):
    scaled = np.abs(a) + 1
    return np.cumsum(scaled, axis=1)  # the cumsum line


def test_a_form_newer_than_the_opset_is_refused_with_the_opset_it_needs_and_the_line():
    with pytest.raises(UnexportablePrimitive) as caught:
        avalon.onnx.export(running_total, x, io.BytesIO(), opset_version=10)
    count, why, locations = caught.value.primitives["cumsum"]
    assert set(caught.value.primitives) == {"cumsum"} and count == 1
    assert why == "its ONNX form CumSum needs opset 11 or newer (opset_version=10)"
    assert "np.cumsum(scaled, axis=1)  # the cumsum line" in str(caught.value)
    assert locations[0].lineno == running_total.__code__.co_firstlineno + 2
    avalon.onnx.export(running_total, x, io.BytesIO(), opset_version=11)


def test_dynamic_axes_must_name_an_input_or_output_and_a_real_axis():
    with pytest.raises(OnnxError, match=r"dynamic_axes names 'y', which is none of the inputs \['x'\]"):
        avalon.onnx.export(np.tanh, x, io.BytesIO(), input_names=["x"], dynamic_axes={"y": [0]})
    with pytest.raises(OnnxError, match=r"dynamic_axes\['x'\] has axis 2, but 'x' has 2 dimensions"):
        avalon.onnx.export(np.tanh, x, io.BytesIO(), input_names=["x"], dynamic_axes={"x": [2]})


def test_too_many_input_names():
    with pytest.raises(OnnxError, match="input_names must be at most 1"):
        avalon.onnx.export(np.tanh, x, io.BytesIO(), input_names=["a", "b"])


def baked(a):
    return a.reshape(3, 4) * 2  # a size of the batch written as a number


def test_code_that_fails_at_another_dynamic_size_is_refused():
    with pytest.raises(OnnxError, match="traced a second time with those axes longer, and there it failed") as caught:
        avalon.onnx.export(baked, x, io.BytesIO(), dynamic_axes={"a": {0: "batch"}})
    assert "a.reshape(3, 4)" in str(caught.value)


def squared_batch(a):
    return a * a.shape[0] ** 2  # neither the batch size nor its reciprocal


def test_a_literal_computed_from_a_dynamic_size_is_refused_at_its_line():
    with pytest.raises(OnnxError, match="cannot follow the dynamic axes") as caught:
        avalon.onnx.export(squared_batch, x, io.BytesIO(), dynamic_axes={"a": {0: "batch"}})
    assert "a * a.shape[0] ** 2" in str(caught.value)
    assert "is 36 at another size" in str(caught.value)


def positions_below_batch(a):
    return a * (np.arange(4) < a.shape[0])  # a constant whose values depend on the batch size


def test_a_constant_computed_from_a_dynamic_size_is_refused():
    with pytest.raises(OnnxError, match="a constant array whose values are computed from a dynamic size") as caught:
        avalon.onnx.export(positions_below_batch, x, io.BytesIO(), dynamic_axes={"a": {0: "batch"}})
    assert "np.arange(4) < a.shape[0]" in str(caught.value)


def integer_power(i):
    return i ** 2 + 1  # the power line


def test_types_an_operator_takes_only_at_a_newer_opset_are_refused_at_the_users_line(tmp_path):
    path = tmp_path / "f.onnx"
    with pytest.raises(UnexportablePrimitive) as caught:
        avalon.onnx.export(integer_power, np.arange(4), path, opset_version=11)
    (count, why, locations), = caught.value.primitives.values()
    assert set(caught.value.primitives) == {"power"}
    assert why.startswith("the ONNX checker refuses its form at opset 11: ") and "op_type:Pow" in why
    assert "i ** 2 + 1  # the power line" in str(caught.value) and not path.exists()
    avalon.onnx.export(integer_power, np.arange(4), path, opset_version=12)  # Pow takes integers from 12


def causal(a):
    return a * np.tril(np.ones((a.shape[0], 4), np.float32))  # the mask line


def test_a_mask_built_from_a_dynamic_size_needs_range_from_opset_11():
    with pytest.raises(UnexportablePrimitive) as caught:
        avalon.onnx.export(causal, x, io.BytesIO(), dynamic_axes={"a": {0: "batch"}}, opset_version=10)
    (count, why, locations), = caught.value.primitives.values()
    assert why == "its ONNX form Range needs opset 11 or newer (opset_version=10)"
    assert "np.tril(np.ones((a.shape[0], 4), np.float32))  # the mask line" in str(caught.value)


def test_pool_divisors_of_dynamic_spatial_sizes_are_refused():
    images = np.ones((1, 2, 5, 5), np.float32)
    pool = lambda im: avalon.nn.functional.avg_pool2d(im, 3, 1, padding=1, count_include_pad=False)  # noqa: E731
    with pytest.raises(OnnxError, match="the divisor of each window is computed from sizes along a dynamic axis"):
        avalon.onnx.export(pool, images, io.BytesIO(), dynamic_axes={"im": {2: "height"}})
