"""The catalogue, functional calls: `avalon.nn.functional` with shapes, reductions, dims and modes it
cannot use. Each refusal names the user's line and the fix, and torch refuses the same mistake; the
arrays passed in are left as they were."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import avalon
import avalon.nn.functional as F
from avalon import ArgumentError, DtypeError, ShapeError
from refusals import assert_refused, assert_refuses_non_array_first, assert_torch_refuses

X = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
TX = torch.from_numpy(X.copy())
Y = np.array([0, 3])
TY = torch.from_numpy(Y.copy())
IMG = np.ones((1, 1, 4, 4), np.float32)
TIMG = torch.ones(1, 1, 4, 4)

# (avalon call, torch call, error, words)
CASES = {
    "mse_loss reduction 'avg'": (lambda: F.mse_loss(X, X, reduction="avg"),
                                 lambda: TF.mse_loss(TX, TX, reduction="avg"), ArgumentError, "reduction='avg'"),
    "l1_loss reduction None": (lambda: F.l1_loss(X, X, reduction=None),
                               lambda: TF.l1_loss(TX, TX, reduction=None), ArgumentError, "reduction=None"),
    "cross_entropy reduction 'batchmean'": (lambda: F.cross_entropy(X, Y, reduction="batchmean"),
                                            lambda: TF.cross_entropy(TX, TY, reduction="batchmean"), ArgumentError,
                                            "'batchmean'"),
    "kl_div reduction 'bogus'": (lambda: F.kl_div(X, X, reduction="bogus"),
                                 lambda: TF.kl_div(TX, TX, reduction="bogus"), ArgumentError, "'bogus'"),
    "mse_loss of shapes that do not broadcast": (lambda: F.mse_loss(X, X.T), lambda: TF.mse_loss(TX, TX.T), ShapeError,
                                                 "do not even broadcast"),
    "l1_loss of shapes that do not broadcast": (lambda: F.l1_loss(X, np.ones(3, np.float32)),
                                                lambda: TF.l1_loss(TX, torch.ones(3)), ShapeError, "(3,)"),
    "cross_entropy with float targets of the wrong shape": (lambda: F.cross_entropy(X, Y.astype(np.float32)),
                                                            lambda: TF.cross_entropy(TX, TY.float()), ShapeError,
                                                            "class probabilities"),
    "cross_entropy with one target too many": (lambda: F.cross_entropy(X, np.array([0, 1, 2])),
                                               lambda: TF.cross_entropy(TX, torch.tensor([0, 1, 2])), ShapeError,
                                               "expected (2,)"),
    "nll_loss with bool targets": (lambda: F.nll_loss(X, Y > 0), lambda: TF.nll_loss(TX, TY > 0), DtypeError,
                                   "integer array"),
    "binary_cross_entropy of shapes that differ": (lambda: F.binary_cross_entropy(X[:, :2] ** 2, np.ones((2, 3),
                                                                                                     np.float32)),
                                                   lambda: TF.binary_cross_entropy(TX[:, :2] ** 2, torch.ones(2, 3)),
                                                   ShapeError, "(2, 3)"),
    "linear with a weight of other in_features": (lambda: F.linear(X, np.ones((3, 5), np.float32)),
                                                  lambda: TF.linear(TX, torch.ones(3, 5)), ShapeError, "(*, 5)"),
    "linear on a list": (lambda: F.linear([[1.0] * 4], np.ones((3, 4), np.float32)),
                         lambda: TF.linear([[1.0] * 4], torch.ones(3, 4)), DtypeError, "got list"),
    "conv2d with a weight of other channels": (lambda: F.conv2d(np.ones((1, 3, 5, 5), np.float32),
                                                                np.ones((2, 4, 3, 3), np.float32)),
                                               lambda: TF.conv2d(torch.ones(1, 3, 5, 5), torch.ones(2, 4, 3, 3)),
                                               ShapeError, "(N, 4, H, W)"),
    "conv2d with stride 0": (lambda: F.conv2d(np.ones((1, 1, 5, 5), np.float32), np.ones((1, 1, 3, 3), np.float32),
                                              stride=0),
                             lambda: TF.conv2d(torch.ones(1, 1, 5, 5), torch.ones(1, 1, 3, 3), stride=0),
                             ArgumentError, "stride"),
    "max_pool2d kernel 0": (lambda: F.max_pool2d(IMG, 0), lambda: TF.max_pool2d(TIMG, 0), ArgumentError, "kernel_size"),
    "avg_pool2d stride 0": (lambda: F.avg_pool2d(IMG, 2, stride=0), lambda: TF.avg_pool2d(TIMG, 2, stride=0),
                            ArgumentError, "stride"),
    "softmax over dim 3": (lambda: F.softmax(X, dim=3), lambda: TF.softmax(TX, dim=3), ShapeError, "dimension 3"),
    "log_softmax over dim -3": (lambda: F.log_softmax(X, dim=-3), lambda: TF.log_softmax(TX, dim=-3), ShapeError,
                                "dimension -3"),
    "pad with an unknown mode": (lambda: F.pad(X, (1, 1), mode="mirror"), lambda: TF.pad(TX, (1, 1), mode="mirror"),
                                 ArgumentError, "'mirror'"),
    "pad with an odd number of widths": (lambda: F.pad(X, (1, 1, 1)), lambda: TF.pad(TX, (1, 1, 1)), ArgumentError,
                                         "even number"),
    "pad with widths for more dims than the input": (lambda: F.pad(X, (1,) * 6), lambda: TF.pad(TX, (1,) * 6),
                                                     ArgumentError, "at most two per dimension"),
    "reflect padding wider than the input": (lambda: F.pad(np.ones((1, 1, 3), np.float32), (5, 5), mode="reflect"),
                                             lambda: TF.pad(torch.ones(1, 1, 3), (5, 5), mode="reflect"), ShapeError,
                                             "reflect"),
    "interpolate with neither size nor scale": (lambda: F.interpolate(IMG), lambda: TF.interpolate(TIMG),
                                                ArgumentError, "exactly one of size and scale_factor"),
    "interpolate with an unknown mode": (lambda: F.interpolate(IMG, scale_factor=2, mode="cubic"),
                                         lambda: TF.interpolate(TIMG, scale_factor=2, mode="cubic"), ArgumentError,
                                         "'cubic'"),
    "interpolate to a size of 0": (lambda: F.interpolate(IMG, scale_factor=0.1),
                                   lambda: TF.interpolate(TIMG, scale_factor=0.1), ArgumentError, "must be positive"),
    "dropout with p=2": (lambda: F.dropout(X, p=2.0), lambda: TF.dropout(TX, p=2.0), ArgumentError, "between 0 and 1"),
    "embedding with float indices": (lambda: F.embedding(np.array([0.5]), np.ones((3, 2), np.float32)),
                                     lambda: TF.embedding(torch.tensor([0.5]), torch.ones(3, 2)), DtypeError,
                                     "integer indices"),
    "layer_norm over a shape the input does not end with": (lambda: F.layer_norm(X, (5,)),
                                                            lambda: TF.layer_norm(TX, (5,)), ShapeError, "(*, 5)"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_functional_call_it_cannot_compute_is_refused(case):
    ours, theirs, kind, fragment = CASES[case]
    before = X.copy()
    assert_refused(ours, kind, fragment)
    np.testing.assert_array_equal(X, before, strict=True)
    assert_torch_refuses(theirs)


def test_a_target_that_broadcasts_warns_as_torch_warns_and_computes_torchs_value():
    target = np.ones((1, 4), np.float32)
    with pytest.warns(UserWarning, match="broadcast"):
        ours = F.mse_loss(X, target)
    with pytest.warns(UserWarning):
        theirs = TF.mse_loss(TX, torch.from_numpy(target))
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-6)


def test_a_bad_reduction_is_refused_inside_traced_code_at_the_traced_line():
    def loss(x):
        return F.mse_loss(x, x * 2, reduction="avg")

    with pytest.raises(ArgumentError) as info:
        avalon.grad(loss, X)
    assert f"{__file__}:{loss.__code__.co_firstlineno + 1}" in str(info.value)


def _public_functions():
    import inspect

    return sorted(name for name in dir(F) if not name.startswith("_") and inspect.isfunction(getattr(F, name)))


@pytest.mark.parametrize("bad", [[1.0, -1.0], None], ids=["a list", "None"])
@pytest.mark.parametrize("name", _public_functions())
def test_every_function_refuses_a_first_argument_that_is_not_an_array(name, bad):
    assert_refuses_non_array_first(getattr(F, name), bad)
