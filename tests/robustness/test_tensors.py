"""The catalogue, tensors and the torch-named functions: dimensions an array does not have, shapes
that cannot hold its values, creation arguments numpy would misread. Before these checks several gave
a different answer without a word (`x.sum(dim=2)` of a 2-D array summed dimension 0; `unsqueeze(4)`
inserted at 1; `view(-2, 3)` and `repeat(2)` of a matrix were accepted); others failed raw inside
numpy. Each case: the AvalonError subclass, the user's line, a fix, and torch refusing the same."""
import numpy as np
import pytest
import torch

import avalon
from avalon import ArgumentError, DtypeError, ShapeError
from avalon.axes import DimError
from refusals import assert_refused, assert_refuses_non_array_first, assert_torch_refuses

M = avalon.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3))
TM = torch.arange(6.0).reshape(2, 3)

# (avalon call, torch call, words): a dimension the 2-D array M does not have
DIMS = {
    "sum over dim 2": (lambda: M.sum(dim=2), lambda: TM.sum(dim=2), "dimension 2"),
    "mean over dim -3": (lambda: M.mean(dim=-3), lambda: TM.mean(dim=-3), "dimension -3"),
    "amax over dims (0, 2)": (lambda: M.amax(dim=(0, 2)), lambda: TM.amax(dim=(0, 2)), "dimension 2"),
    "argmax over dim 2": (lambda: M.argmax(dim=2), lambda: TM.argmax(dim=2), "dimension 2"),
    "cumsum over dim 2": (lambda: M.cumsum(dim=2), lambda: TM.cumsum(dim=2), "dimension 2"),
    "softmax over dim 2": (lambda: avalon.softmax(M, dim=2), lambda: torch.softmax(TM, dim=2), "dimension 2"),
    "log_softmax over dim -3": (lambda: avalon.log_softmax(M, dim=-3), lambda: torch.log_softmax(TM, dim=-3),
                                "dimension -3"),
    "F.softmax over dim 3": (lambda: avalon.nn.functional.softmax(M, dim=3),
                             lambda: torch.nn.functional.softmax(TM, dim=3), "dimension 3"),
    "unsqueeze at 4": (lambda: M.unsqueeze(4), lambda: TM.unsqueeze(4), "dimension 4"),
    "squeeze dim 4": (lambda: M.squeeze(4), lambda: TM.squeeze(4), "dimension 4"),
    "transpose(0, 2)": (lambda: M.transpose(0, 2), lambda: TM.transpose(0, 2), "dimension 2"),
    "movedim(2, 0)": (lambda: avalon.movedim(M, 2, 0), lambda: torch.movedim(TM, 2, 0), "dimension 2"),
    "flip dim 3": (lambda: avalon.flip(M, (3,)), lambda: torch.flip(TM, (3,)), "dimension 3"),
    "cat along dim 2": (lambda: avalon.cat([M, M], dim=2), lambda: torch.cat([TM, TM], dim=2), "dimension 2"),
    "stack at dim 4": (lambda: avalon.stack([M, M], dim=4), lambda: torch.stack([TM, TM], dim=4), "dimension 4"),
    "split along dim 3": (lambda: M.split(1, dim=3), lambda: TM.split(1, dim=3), "dimension 3"),
    "unbind dim 2": (lambda: M.unbind(2), lambda: TM.unbind(2), "dimension 2"),
    "flatten from dim 2": (lambda: avalon.flatten(M, 2), lambda: torch.flatten(TM, 2), "dimension 2"),
}


@pytest.mark.parametrize("case", DIMS, ids=list(DIMS))
def test_a_dimension_the_array_does_not_have_is_refused_not_wrapped(case):
    ours, theirs, fragment = DIMS[case]
    error = assert_refused(ours, DimError, fragment, "(2, 3)")
    assert isinstance(error, IndexError)  # as torch's "Dimension out of range"
    assert_torch_refuses(theirs, IndexError)


def test_a_dimension_out_of_range_is_refused_inside_traced_code_too():
    def loss(x):
        return x.sum(dim=2).sum()

    with pytest.raises(DimError) as info:
        avalon.grad(loss, np.ones((2, 3), np.float32))
    assert f"{__file__}:{loss.__code__.co_firstlineno + 1}" in str(info.value)  # the traced line
    assert "fix:" in str(info.value)


def test_negative_dimensions_in_range_still_count_from_the_end():
    np.testing.assert_array_equal(M.sum(dim=-1), [3.0, 12.0])
    assert M.unsqueeze(-1).shape == (2, 3, 1) and M.unsqueeze(2).shape == (2, 3, 1)
    assert avalon.stack([M, M], dim=-1).shape == (2, 3, 2)
    assert avalon.tensor(5.0).sum(dim=0) == 5.0  # a 0-d tensor takes 0 and -1, as torch's


# shapes: (avalon call, torch call, error, words)
SHAPES = {
    "view to a shape of another size": (lambda: M.view(4, 2), lambda: TM.view(4, 2), "invalid"),
    "view with -2": (lambda: M.view(-2, 3), lambda: TM.view(-2, 3), ">= 0, or -1"),
    "reshape with two -1": (lambda: M.reshape(-1, -1), lambda: TM.reshape(-1, -1), "only one dimension"),
    "reshape to 5 values": (lambda: M.reshape(5), lambda: TM.reshape(5), "6 values do not fill 5"),
    "reshape -1 that cannot divide": (lambda: M.reshape(4, -1), lambda: TM.reshape(4, -1), "no size for -1"),
    "repeat with fewer counts than dims": (lambda: M.repeat(2), lambda: TM.repeat(2), "one count per dimension"),
    "expand to an incompatible shape": (lambda: M.expand(3, 3), lambda: TM.expand(3, 3), "(3, 3)"),
    "matmul of mismatched matrices": (lambda: avalon.matmul(M, M), lambda: torch.matmul(TM, TM), "matmul"),
    "cat of mismatched shapes": (lambda: avalon.cat([M, M.reshape(3, 2)]), lambda: torch.cat([TM, TM.reshape(3, 2)]),
                                 "concatenate"),
    "cat of nothing": (lambda: avalon.cat([]), lambda: torch.cat([]), "empty list"),
    "stack of nothing": (lambda: avalon.stack([]), lambda: torch.stack([]), "empty list"),
    "split sizes not adding up": (lambda: M.split([1, 1], dim=1), lambda: TM.split([1, 1], dim=1), "add up"),
    "permute repeating a dim": (lambda: M.permute(0, 0), lambda: TM.permute(0, 0), "transpose"),
    "item of two values": (lambda: avalon.tensor([1.0, 2.0]).item(), lambda: torch.tensor([1.0, 2.0]).item(),
                           "2 elements"),
    "masked_fill with a mask of another shape": (lambda: M.masked_fill(np.ones((3, 3), bool), 0.0),
                                                 lambda: TM.masked_fill(torch.ones(3, 3, dtype=torch.bool), 0.0),
                                                 "(3, 3)"),
}


@pytest.mark.parametrize("case", SHAPES, ids=list(SHAPES))
def test_a_shape_that_cannot_hold_the_values_is_refused(case):
    ours, theirs, fragment = SHAPES[case]
    before = M.copy()
    assert_refused(ours, ShapeError, fragment)
    np.testing.assert_array_equal(M, before)
    assert_torch_refuses(theirs)


# creation: (avalon call, torch call, error, words)
CREATION = {
    "tensor of a string": (lambda: avalon.tensor("abc"), lambda: torch.tensor("abc"), DtypeError, "str"),
    "tensor of None": (lambda: avalon.tensor(None), lambda: torch.tensor(None), DtypeError, "NoneType"),
    "tensor of ragged lists": (lambda: avalon.tensor([[1, 2], [3]]), lambda: torch.tensor([[1, 2], [3]]), ShapeError,
                               "ragged"),
    "tensor with an unknown dtype name": (lambda: avalon.tensor([1.0], dtype="float99"),
                                          lambda: torch.tensor([1.0], dtype="float99"), DtypeError, "'float99'"),
    "zeros with an unknown dtype name": (lambda: avalon.zeros(3, dtype="floatx"),
                                         lambda: torch.zeros(3, dtype="floatx"), DtypeError, "'floatx'"),
    "zeros of a negative size": (lambda: avalon.zeros(-1), lambda: torch.zeros(-1), ShapeError, "(-1,)"),
    "ones with a negative dimension": (lambda: avalon.ones(2, -3), lambda: torch.ones(2, -3), ShapeError, "(2, -3)"),
    "empty of a float size": (lambda: avalon.empty(2.5), lambda: torch.empty(2.5), ShapeError, "2.5"),
    "full of a negative size": (lambda: avalon.full((2, -1), 0.0), lambda: torch.full((2, -1), 0.0), ShapeError,
                                "(2, -1)"),
    "arange with step 0": (lambda: avalon.arange(0, 5, 0), lambda: torch.arange(0, 5, 0), ShapeError, "step=0"),
    "arange stepping away from the end": (lambda: avalon.arange(5, 0), lambda: torch.arange(5, 0), ShapeError,
                                          "never goes"),
    "randn of a negative size": (lambda: avalon.randn(-2), lambda: torch.randn(-2), ShapeError, "-2"),
    "chunk into 0 pieces": (lambda: M.chunk(0), lambda: TM.chunk(0), ArgumentError, "chunks=0"),
    "integer tensor requiring grad": (lambda: avalon.tensor([1, 2], requires_grad=True),
                                      lambda: torch.tensor([1, 2], requires_grad=True), DtypeError, "floating-point"),
    "requires_grad_ on an int tensor": (lambda: avalon.arange(3).requires_grad_(),
                                        lambda: torch.arange(3).requires_grad_(), DtypeError, "int64"),
}


@pytest.mark.parametrize("case", CREATION, ids=list(CREATION))
def test_creation_arguments_numpy_would_misread_are_refused(case):
    ours, theirs, kind, fragment = CREATION[case]
    assert_refused(ours, kind, fragment)
    assert_torch_refuses(theirs)


@pytest.mark.parametrize("call, fragment", [
    (lambda: avalon.tensor([1.0]).to("float99"), "unknown device type 'float99'"),
    (lambda: avalon.tensor([1.0]).to("tpu"), "unknown device type 'tpu'"),
])
def test_an_unknown_device_string_is_refused(call, fragment):
    assert_refused(call, avalon.AvalonError, fragment)


def test_moving_to_cuda_without_cupy_says_how_to_get_it():
    try:
        import cupy  # noqa: F401
        pytest.skip("cupy is installed here")
    except ImportError:
        pass
    assert_refused(lambda: avalon.tensor([1.0]).to("cuda"), avalon.AvalonError, "cupy", "pip install")


def _torch_named_functions():
    import inspect

    from avalon import torch_api, torch_scatter, torch_select

    names = torch_api.__all__ + torch_select.__all__ + torch_scatter.__all__
    chosen = []
    for name in sorted(set(names)):
        try:
            first = next(iter(inspect.signature(getattr(avalon, name)).parameters), None)
        except (TypeError, ValueError):
            continue
        if first in ("input", "tensor", "tensors"):
            chosen.append(name)
    return chosen


@pytest.mark.parametrize("bad", [None, "abc"], ids=["None", "a str"])
@pytest.mark.parametrize("name", _torch_named_functions())
def test_every_torch_named_function_refuses_a_first_argument_that_is_not_an_array(name, bad):
    assert_refuses_non_array_first(getattr(avalon, name), bad)
