"""Vision helpers: pad (all modes), interpolate (nearest, nearest-exact, linear/bilinear/trilinear with and
without align_corners, area; by size and by scale factor), pixel (un)shuffle, unfold and fold against
PyTorch, outputs and input gradients; the layers' reprs and shape errors."""
import sys

import numpy as np
import pytest
from nnparity import check_layer

import avalon
import avalon.nn as nn
import avalon.nn.functional as F


def _x(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _parity(f_avalon, f_torch, x, rtol=1e-5, atol=1e-6, exact=False):
    torch = pytest.importorskip("torch")
    out = f_avalon(x)
    t = torch.tensor(x, requires_grad=True)
    t_out = f_torch(t)
    assert out.shape == tuple(t_out.shape)
    if exact:
        np.testing.assert_array_equal(out, t_out.detach().numpy())
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=rtol, atol=atol, err_msg="forward")
    w = _x(*out.shape, seed=9)
    _, (g,) = avalon.grad(lambda x: (f_avalon(x) * w).sum(), x)
    (t_out * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=rtol, atol=atol, err_msg="input gradient")


@pytest.mark.parametrize("mode,shape,pad", [
    ("constant", (2, 3, 5), (1, 2)),
    ("constant", (2, 3, 4, 5), (1, 0, 2, 3)),
    ("constant", (2, 3, 4, 5), (-1, 2, 0, -2)),
    ("constant", (3, 4), (1, 1, 2, 0)),
    ("reflect", (2, 3, 5), (2, 3)),
    ("reflect", (2, 3, 4, 5), (1, 2, 3, 1)),
    ("reflect", (1, 2, 3, 4, 5), (1, 1, 2, 0, 1, 2)),
    ("replicate", (2, 3, 4, 5), (2, 0, 1, 3)),
    ("replicate", (2, 3, 5), (0, 4)),
    ("circular", (2, 3, 4, 5), (1, 2, 3, 0)),
    ("circular", (2, 3, 5), (5, 1)),
])
def test_pad_matches_torch(mode, shape, pad):
    torch = pytest.importorskip("torch")
    value = 1.5 if mode == "constant" else None
    _parity(lambda x: F.pad(x, pad, mode, value), lambda x: torch.nn.functional.pad(x, pad, mode, value), _x(*shape),
            exact=True)


INTERPOLATE_CASES = [  # (shape, size, scale_factor, mode, align_corners)
    ((2, 3, 5), 9, None, "nearest", None),
    ((2, 3, 5), None, 1.7, "nearest", None),
    ((2, 2, 4, 5), (8, 10), None, "nearest", None),
    ((2, 2, 4, 5), None, (0.6, 2.3), "nearest", None),
    ((2, 2, 6, 5), (4, 7), None, "nearest-exact", None),
    ((2, 2, 3, 4, 5), None, 2, "nearest", None),
    ((2, 3, 5), 8, None, "linear", False),
    ((2, 3, 5), 8, None, "linear", True),
    ((2, 3, 8), None, 0.5, "linear", False),
    ((2, 2, 4, 5), None, 2, "bilinear", False),
    ((2, 2, 4, 5), None, 2, "bilinear", True),
    ((2, 2, 4, 5), (7, 3), None, "bilinear", False),
    ((2, 2, 4, 5), (7, 3), None, "bilinear", True),
    ((2, 2, 6, 7), None, (0.7, 1.45), "bilinear", False),
    ((2, 2, 1, 5), (3, 1), None, "bilinear", True),
    ((1, 2, 3, 4, 3), (5, 6, 2), None, "trilinear", False),
    ((2, 2, 7, 9), (3, 4), None, "area", None),
]


@pytest.mark.parametrize("case", INTERPOLATE_CASES, ids=lambda c: f"{c[3]}-{c[1]}-{c[2]}-ac{c[4]}")
def test_interpolate_matches_torch(case):
    torch = pytest.importorskip("torch")
    shape, size, scale, mode, corners = case
    _parity(lambda x: F.interpolate(x, size, scale, mode, corners),
            lambda x: torch.nn.functional.interpolate(x, size, scale, mode, corners), _x(*shape),
            exact=mode.startswith("nearest"))


def test_interpolate_recompute_scale_factor_matches_torch():
    torch = pytest.importorskip("torch")
    for mode in ("nearest", "bilinear"):
        _parity(lambda x: F.interpolate(x, scale_factor=1.3, mode=mode, recompute_scale_factor=True),
                lambda x: torch.nn.functional.interpolate(x, scale_factor=1.3, mode=mode, recompute_scale_factor=True),
                _x(1, 2, 7, 6))


def test_pixel_shuffle_and_unshuffle_match_torch():
    torch = pytest.importorskip("torch")
    x = _x(2, 8, 3, 4)
    _parity(lambda x: F.pixel_shuffle(x, 2), lambda x: torch.nn.functional.pixel_shuffle(x, 2), x, exact=True)
    _parity(lambda x: F.pixel_unshuffle(x, 2), lambda x: torch.nn.functional.pixel_unshuffle(x, 2), _x(2, 3, 4, 6),
            exact=True)
    np.testing.assert_array_equal(F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2), x)
    _parity(lambda x: F.pixel_shuffle(x, 3), lambda x: torch.nn.functional.pixel_shuffle(x, 3), _x(9, 2, 2), exact=True)


@pytest.mark.parametrize("kernel,dilation,padding,stride",
                         [(2, 1, 0, 1), ((2, 3), (2, 1), (1, 0), (1, 2)), (3, 1, 1, 2)])
def test_unfold_and_fold_match_torch(kernel, dilation, padding, stride):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    x = _x(2, 3, 6, 7)
    args = (kernel, dilation, padding, stride)
    _parity(lambda x: F.unfold(x, *args), lambda x: TF.unfold(x, *args), x)
    cols = TF.unfold(torch.tensor(x), *args).numpy()
    _parity(lambda c: F.fold(c, (6, 7), *args), lambda c: TF.fold(c, (6, 7), *args), cols)
    _parity(lambda x: F.unfold(x, *args), lambda x: TF.unfold(x, *args), x[0])


@pytest.mark.parametrize("make,shape", [
    (lambda nn: nn.Upsample(scale_factor=2), (2, 3, 4, 5)),
    (lambda nn: nn.Upsample(size=(5, 7), mode="bilinear"), (2, 3, 4, 5)),
    (lambda nn: nn.Upsample(scale_factor=(2, 1.5), mode="bilinear", align_corners=True), (2, 3, 4, 4)),
    (lambda nn: nn.UpsamplingNearest2d(scale_factor=3), (1, 2, 3, 3)),
    (lambda nn: nn.UpsamplingBilinear2d(size=(6, 5)), (1, 2, 3, 3)),
    (lambda nn: nn.PixelShuffle(2), (2, 8, 3, 3)),
    (lambda nn: nn.PixelUnshuffle(2), (2, 2, 4, 6)),
    (lambda nn: nn.Unfold(2, padding=1), (2, 3, 4, 4)),
    (lambda nn: nn.Fold((4, 5), 2), (2, 12, 12)),
    (lambda nn: nn.ZeroPad2d((1, 0, 2, 1)), (2, 3, 4, 4)),
    (lambda nn: nn.ConstantPad1d(2, 3.5), (2, 3, 4)),
    (lambda nn: nn.ReflectionPad2d(2), (2, 3, 4, 4)),
    (lambda nn: nn.ReflectionPad1d((1, 3)), (2, 3, 5)),
    (lambda nn: nn.ReplicationPad2d((0, 1, 2, 3)), (2, 3, 4, 4)),
    (lambda nn: nn.CircularPad2d(1), (2, 3, 4, 4)),
], ids=lambda v: "" if callable(v) else str(v))
def test_layers_match_torch(make, shape):
    torch = pytest.importorskip("torch")
    layer, torch_layer = make(nn), make(torch.nn)
    assert repr(layer) == repr(torch_layer)
    check_layer(layer, torch_layer, _x(*shape), rtol=1e-5, atol=1e-6)


def test_wrong_shapes_raise_shape_errors_at_the_users_line():
    layer = nn.PixelShuffle(2)
    with pytest.raises(avalon.ShapeError) as info:
        line = sys._getframe().f_lineno + 1
        layer(_x(1, 6, 3, 3))
    message = str(info.value)
    assert "PixelShuffle(upscale_factor=2)" in message and "(*, C·4, H, W)" in message
    assert "got (1, 6, 3, 3)" in message
    assert f"test_vision.py:{line}" in message and "layer(_x(1, 6, 3, 3))" in message
    with pytest.raises(avalon.ShapeError, match=r"(?s)ReflectionPad2d\(\(3, 3, 3, 3\)\).*why: .*smaller than the padded"):
        nn.ReflectionPad2d(3)(_x(1, 1, 3, 5))
    with pytest.raises(avalon.ShapeError, match=r"Upsample\(scale_factor=2.0, mode='bilinear'\).*4-d input"):
        nn.Upsample(scale_factor=2, mode="bilinear")(_x(1, 2, 3))
    with pytest.raises(avalon.ShapeError, match=r"fold expected input of shape \(N, C·4, 12\)"):
        F.fold(_x(2, 8, 10), (4, 5), 2)


def test_invalid_arguments_are_refused():
    with pytest.raises(avalon.AvalonError, match="align_corners can only be set"):
        F.interpolate(_x(1, 1, 3, 3), scale_factor=2, align_corners=True)
    with pytest.raises(avalon.AvalonError, match="exactly one of size and scale_factor"):
        F.interpolate(_x(1, 1, 3, 3))
    with pytest.raises(avalon.AvalonError, match="only works with mode='constant'"):
        F.pad(_x(1, 1, 3, 3), (-1, 1), mode="reflect")


def test_an_identity_resize_returns_a_new_array():
    x = _x(1, 2, 3, 3)
    y = F.interpolate(x, size=(3, 3))
    np.testing.assert_array_equal(y, x)
    y[...] = 0  # as in torch, writing into the result leaves the input alone
    assert not np.shares_memory(x, y) and np.abs(x).sum() > 0
