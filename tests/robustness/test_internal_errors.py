"""Internal errors are not dressed up as user errors (issue #10): a primitive validates its operands
first (`Primitive.check`); operands it refuses are the user's `ShapeError` at their line, and an
exception from its implementation after that is `avalon.InternalError` ("a bug in Avalon's …") with
the node, operands and user line, the original exception kept as its cause. A user's own primitive's
exceptions stay theirs."""
import inspect

import numpy as np
import pytest

import avalon
from avalon.ops import linalg, shape


def product(a, b):
    return avalon.matmul(a, b).sum()  # the user's line (`a @ b` on Tensors is numpy's own)


def joined(a, b):
    return avalon.cat([a, b], 1).sum()  # the user's line


def _line(fn):
    return inspect.getsourcelines(fn)[1] + 1


def _failing(monkeypatch, prim, exc):
    def impl(*args, **params):
        raise exc

    monkeypatch.setattr(prim, "impl", impl)


@pytest.mark.parametrize("exc", [IndexError("tuple index out of range"), KeyError("axis"),
                                 ValueError("operands could not be broadcast")])
@pytest.mark.parametrize("fn, prim, operands", [
    (product, linalg.matmul, "float64 (2, 3), float64 (3, 4)"),
    (joined, shape.concatenate, "float64 (2, 3), float64 (2, 4) with axis=1"),
])
def test_a_failing_implementation_is_avalons_internal_error(monkeypatch, fn, prim, operands, exc):
    avalon.clear_cache()
    a, b = np.ones((2, 3)), np.ones((3, 4) if fn is product else (2, 4))
    _failing(monkeypatch, prim, exc)
    for call in (lambda: avalon.grad(fn, a, b), lambda: fn(avalon.tensor(a), avalon.tensor(b))):  # traced, eager
        with pytest.raises(avalon.InternalError) as info:
            call()
        message = str(info.value)
        assert not isinstance(info.value, avalon.ShapeError)
        assert message.startswith(f"internal error in Avalon's {prim.name} (operands {operands}): "
                                  f"{type(exc).__name__}: ")
        assert f"this is a bug in Avalon's {prim.name}, not in your code: please report it" in message
        assert (info.value.filename, info.value.lineno) == (__file__, _line(fn))
        assert info.value.__cause__ is exc


def test_the_internal_error_names_the_node_recorded_before_it(monkeypatch):
    _failing(monkeypatch, linalg.matmul, IndexError("boom"))
    with pytest.raises(avalon.InternalError, match=r"node: <Call %\d+ f64\[2,3\]>") as info:
        avalon.grad(lambda a, b: (np.tanh(a) @ b).sum(), np.ones((2, 3)), np.ones((3, 4)))
    assert info.value.node.prim.name == "tanh"


@pytest.mark.parametrize("fn, b_shape, why", [
    (product, (4, 5), "the inner dimensions differ: 3 (the first's columns) and 4 (the second's rows)"),
    (joined, (4, 5), "array 1 has length 4 along dimension 0, array 0 has 2: only dimension 1 (the joined "
                     "one) may differ"),
])
def test_genuine_shape_mismatches_stay_the_users_shape_error(fn, b_shape, why):
    a, b = np.ones((2, 3)), np.ones(b_shape)
    with pytest.raises(ValueError):  # numpy refuses them too
        np.concatenate([a, b], 1) if fn is joined else a @ b
    for call in (lambda: avalon.grad(fn, a, b), lambda: fn(avalon.tensor(a), avalon.tensor(b))):
        with pytest.raises(avalon.ShapeError) as info:
            call()
        assert not isinstance(info.value, avalon.InternalError)
        assert f"why: {why}" in str(info.value)
        assert (info.value.filename, info.value.lineno) == (__file__, _line(fn))


def test_batch_dimensions_that_do_not_broadcast_are_the_users():
    with pytest.raises(avalon.ShapeError, match=r"the batch dimensions \(2,\) and \(3,\) do not broadcast"):
        avalon.grad(product, np.ones((2, 3, 4)), np.ones((3, 4, 5)))
    value, _ = avalon.grad(product, np.ones((1, 3, 4)), np.ones((2, 4, 5)))  # broadcasting ones pass
    assert value == 2 * 3 * 5 * 4


@avalon.primitive
def users_own(x):
    raise KeyError("the user's primitive's own bug")


def test_a_users_primitive_raises_its_own_exceptions_unchanged():
    with pytest.raises(KeyError, match="the user's primitive's own bug"):
        avalon.jit(lambda x: users_own(x))(np.ones(2))


def test_floating_point_errors_asked_for_with_errstate_pass_unchanged():
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        avalon.grad(lambda x: np.log(x).sum(), np.zeros(2))


def test_a_validated_primitive_failing_on_a_replay_is_an_internal_error(monkeypatch):
    calls = []
    concatenate = shape.concatenate.impl

    def fails_on_the_replay(*xs, axis=0):
        calls.append(axis)
        if len(calls) > 1:
            raise IndexError("tuple index out of range")
        return concatenate(*xs, axis=axis)

    monkeypatch.setattr(shape.concatenate, "impl", fails_on_the_replay)
    compiled = avalon.jit(joined)
    a, b = np.ones((2, 3)), np.ones((2, 4))
    assert compiled(a, b) == 14.0  # traced
    with pytest.raises(avalon.InternalError) as info:
        compiled(a, b)  # replayed: the same shapes passed concatenate's check while tracing
    message = str(info.value)
    assert message.startswith("internal error in Avalon's concatenate (operands float64 (2, 3), float64 (2, 4)): "
                              "IndexError: tuple index out of range")
    assert "= concatenate(" in message and "this is a bug in Avalon's concatenate" in message
    assert (info.value.filename, info.value.lineno) == (__file__, _line(joined))
    assert isinstance(info.value.__cause__, IndexError)
