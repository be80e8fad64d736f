"""Convolutions: conv1d/2d/3d and conv_transpose1d/2d/3d against PyTorch (outputs, input, weight and bias
gradients) over a grid of strides, paddings, dilations and groups; finite-difference checks of the
three convolution primitives (and of gradients of gradients); the layers' initialisation, reprs,
state_dict and shape errors."""
import math
import sys

import numpy as np
import pytest
from nnparity import check_layer

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
from avalon.ops import conv as cv

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def _x(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _parity(f_avalon, f_torch, *arrays, rtol=1e-4, atol=1e-5):
    """Output of f(*arrays) and the gradients of sum(out * w) for every array, avalon against torch."""
    torch = pytest.importorskip("torch")
    out = f_avalon(*arrays)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    t_out = f_torch(*ts)
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=rtol, atol=atol, err_msg="forward")
    w = _x(*out.shape, seed=9)
    _, grads = avalon.grad(lambda *xs: (f_avalon(*xs) * w).sum(), *arrays)
    (t_out * torch.tensor(w)).sum().backward()
    for i, (g, t) in enumerate(zip(grads, ts)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=rtol, atol=atol, err_msg=f"gradient of argument {i}")
    return out


CONV_CASES = [  # (dims, C_in, C_out, kernel, stride, padding, dilation, groups, spatial)
    (1, 3, 4, 3, 1, 0, 1, 1, (9,)),
    (1, 4, 6, 2, 2, 1, 2, 2, (10,)),
    (1, 2, 4, 4, 1, "same", 1, 1, (7,)),
    (2, 3, 4, 3, 1, 1, 1, 1, (6, 7)),
    (2, 4, 6, (3, 2), (2, 1), (1, 0), (1, 2), 2, (7, 8)),
    (2, 4, 4, 3, 1, "same", 2, 4, (6, 5)),
    (2, 2, 3, (2, 4), 1, "same", 1, 1, (5, 6)),
    (2, 3, 2, 3, 3, "valid", 1, 1, (8, 9)),
    (2, 6, 3, 1, 2, 0, 1, 3, (5, 5)),
    (3, 2, 4, 2, (1, 2, 1), 1, 1, 2, (4, 5, 4)),
    (3, 3, 2, (2, 3, 2), 1, "same", (2, 1, 1), 1, (4, 4, 5)),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}d-k{c[3]}-s{c[4]}-p{c[5]}-d{c[6]}-g{c[7]}")
def test_conv_matches_torch(case):
    torch = pytest.importorskip("torch")
    d, cin, cout, k, s, p, dl, g, spatial = case
    kernel = (k,) * d if isinstance(k, int) else k
    x, w, b = _x(2, cin, *spatial), _x(cout, cin // g, *kernel, seed=1), _x(cout, seed=2)
    ours = getattr(F, f"conv{d}d")
    theirs = getattr(torch.nn.functional, f"conv{d}d")
    _parity(lambda x, w, b: ours(x, w, b, stride=s, padding=p, dilation=dl, groups=g),
            lambda x, w, b: theirs(x, w, b, stride=s, padding=p, dilation=dl, groups=g), x, w, b)


TRANSPOSE_CASES = [  # (dims, C_in, C_out, kernel, stride, padding, output_padding, dilation, groups, spatial)
    (1, 3, 2, 3, 1, 0, 0, 1, 1, (6,)),
    (1, 4, 6, 3, 2, 1, 1, 1, 2, (5,)),
    (2, 3, 4, 3, 2, 1, 1, 1, 1, (4, 5)),
    (2, 4, 2, (2, 3), (2, 1), (0, 1), (1, 0), (1, 2), 2, (3, 4)),
    (2, 2, 3, 4, 2, 1, 0, 1, 1, (4, 4)),  # DCGAN's generator block
    (2, 2, 2, 3, 1, 0, 1, 2, 1, (3, 3)),  # output_padding below the dilation
    (3, 2, 2, 2, 2, 0, 1, 1, 1, (2, 3, 2)),
]


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=lambda c: f"{c[0]}d-k{c[3]}-s{c[4]}-p{c[5]}-op{c[6]}-g{c[8]}")
def test_conv_transpose_matches_torch(case):
    torch = pytest.importorskip("torch")
    d, cin, cout, k, s, p, op, dl, g, spatial = case
    kernel = (k,) * d if isinstance(k, int) else k
    x, w, b = _x(2, cin, *spatial), _x(cin, cout // g, *kernel, seed=1), _x(cout, seed=2)
    ours = getattr(F, f"conv_transpose{d}d")
    theirs = getattr(torch.nn.functional, f"conv_transpose{d}d")
    _parity(lambda x, w, b: ours(x, w, b, stride=s, padding=p, output_padding=op, groups=g, dilation=dl),
            lambda x, w, b: theirs(x, w, b, stride=s, padding=p, output_padding=op, groups=g, dilation=dl), x, w, b)


DEPTHWISE_CASES = [  # (dims, channels, multiplier, kernel, stride, padding, dilation, spatial)
    (1, 3, 1, 3, 1, 1, 1, (40,)),                 # several blocks along the last axis, one cropped
    (1, 2, 3, 4, 3, 2, 2, (19,)),
    (2, 4, 1, 3, 1, 1, 1, (6, 7)),                # MobileNet's 3x3
    (2, 3, 2, (3, 2), (2, 3), (1, 0), (1, 2), (8, 35)),
    (2, 2, 1, 5, 2, "valid", 1, (9, 33)),
    (2, 3, 1, 3, 1, "same", 2, (5, 18)),
    (3, 2, 2, (2, 3, 3), (1, 2, 1), 1, (2, 1, 3), (4, 5, 20)),
]


@pytest.mark.parametrize("case", DEPTHWISE_CASES, ids=lambda c: f"{c[0]}d-c{c[1]}x{c[2]}-k{c[3]}-s{c[4]}-p{c[5]}")
@pytest.mark.parametrize("chunk_bytes", [cv.CHUNK_BYTES, 1], ids=["one-chunk", "a-chunk-per-channel"])
def test_depthwise_convolution_matches_torch(case, chunk_bytes, monkeypatch):
    # one input channel per group: the channel-major banded-matrix path of conv, conv_transpose and
    # conv_weight_grad, with the channels done all at once or one at a time
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(cv, "CHUNK_BYTES", chunk_bytes)
    d, c, m, k, s, p, dl, spatial = case
    kernel = (k,) * d if isinstance(k, int) else k
    x, w, b = _x(2, c, *spatial), _x(c * m, 1, *kernel, seed=1), _x(c * m, seed=2)
    ours, theirs = getattr(F, f"conv{d}d"), getattr(torch.nn.functional, f"conv{d}d")
    _parity(lambda x, w, b: ours(x, w, b, stride=s, padding=p, dilation=dl, groups=c),
            lambda x, w, b: theirs(x, w, b, stride=s, padding=p, dilation=dl, groups=c), x, w, b)
    if p != "same":  # the transposed layer with one channel per group (its weight: (C, 1, *K))
        y = _x(2, c, *cv.conv(x[:, :c], w[:c], stride=(s,) * d if isinstance(s, int) else s,
                               padding=((p, p),) * d if isinstance(p, int) else ((0, 0),) * d,
                               dilation=(dl,) * d if isinstance(dl, int) else dl, groups=c).shape[2:], seed=3)
        ours, theirs = getattr(F, f"conv_transpose{d}d"), getattr(torch.nn.functional, f"conv_transpose{d}d")
        p = 0 if p == "valid" else p
        _parity(lambda y, w: ours(y, w, stride=s, padding=p, dilation=dl, groups=c),
                lambda y, w: theirs(y, w, stride=s, padding=p, dilation=dl, groups=c), y, w[:c])


@pytest.mark.parametrize("params", [
    dict(stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(1, 2), groups=3),
    dict(stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=3),
], ids=["strided", "unit-stride"])
def test_depthwise_primitives_pass_gradcheck(params):
    x, w = _x(2, 3, 4, 18, dtype=np.float64), _x(6, 1, 3, 2, seed=1, dtype=np.float64)  # two filters a channel
    out = cv.conv(x, w, **params)
    g = _x(*out.shape, seed=2, dtype=np.float64)
    assert avalon.gradcheck(lambda x, w: (cv.conv(x, w, **params) ** 2).sum(), x, w)
    assert avalon.gradcheck(lambda g, w: (cv.conv_transpose(g, w, shape=(4, 18), **params) ** 2).sum(), g, w)
    assert avalon.gradcheck(lambda x, g: (cv.conv_weight_grad(x, g, kernel=(3, 2), **params) ** 2).sum(), x, g)
    one = dict(params, groups=3)  # one filter a channel: the unit-stride adjoint is itself a depthwise conv
    assert avalon.gradcheck(lambda g, w: (cv.conv_transpose(g, w, shape=(4, 18), **one) ** 2).sum(),
                            g[:, :3], w[:3])


def test_unbatched_and_biasless_inputs_match_torch():
    torch = pytest.importorskip("torch")
    x, w = _x(3, 6, 5), _x(4, 3, 3, 3, seed=1)
    _parity(lambda x, w: F.conv2d(x, w, padding=1), lambda x, w: torch.nn.functional.conv2d(x, w, padding=1), x, w)
    wt = _x(3, 2, 3, 3, seed=1)
    _parity(lambda x, w: F.conv_transpose2d(x, w, stride=2),
            lambda x, w: torch.nn.functional.conv_transpose2d(x, w, stride=2), x, wt)


P2 = dict(stride=(2, 1), padding=((1, 0), (1, 1)), dilation=(1, 2), groups=2)


# unit stride with asymmetric padding: conv_transpose runs as a convolution with the flipped kernel
P1 = dict(stride=(1, 1), padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2)


@pytest.mark.parametrize("params,out", [(P2, (2, 6)), (P1, (4, 7))], ids=["strided", "unit-stride"])
def test_primitives_pass_gradcheck(params, out):
    x, w = _x(2, 4, 5, 6, dtype=np.float64), _x(6, 2, 3, 2, seed=1, dtype=np.float64)
    g = _x(2, 6, *out, seed=2, dtype=np.float64)
    assert cv.conv(x, w, **params).shape == g.shape
    assert avalon.gradcheck(lambda x, w: (cv.conv(x, w, **params) ** 2).sum(), x, w)
    assert avalon.gradcheck(lambda g, w: (cv.conv_transpose(g, w, shape=(5, 6), **params) ** 2).sum(), g, w)
    assert avalon.gradcheck(lambda x, g: (cv.conv_weight_grad(x, g, kernel=(3, 2), **params) ** 2).sum(), x, g)


def test_unfold_and_fold_primitives_pass_gradcheck():
    x, cols = _x(2, 3, 5, 6, dtype=np.float64), _x(2, 3 * 6, 10, seed=1, dtype=np.float64)
    windows = dict(kernel=(2, 3), stride=(1, 2), padding=((1, 1), (0, 0)), dilation=(2, 1))
    assert avalon.gradcheck(lambda x: (cv.unfold(x, **windows) ** 2).sum(), x)
    assert avalon.gradcheck(lambda c: (cv.fold(c, shape=(5, 6), **windows) ** 2).sum(), cols)


def test_gradient_of_gradient_passes_gradcheck_and_matches_torch():
    torch = pytest.importorskip("torch")
    x, w = _x(2, 4, 5, 6, dtype=np.float64), _x(6, 2, 3, 2, seed=1, dtype=np.float64)
    loss = lambda x, w: (cv.conv(x, w, **P2) ** 2).sum()  # noqa: E731

    def penalty(x, w):  # a gradient penalty: differentiating it differentiates the rules
        _, (gx, gw) = avalon.grad(loss, x, w)
        return (gx ** 2).sum() + (gw * w).sum()

    assert avalon.gradcheck(penalty, x, w)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tl = (torch.nn.functional.conv2d(torch.nn.functional.pad(tx, (1, 1, 1, 0)), tw, stride=(2, 1), dilation=(1, 2),
                                     groups=2) ** 2).sum()
    tgx, tgw = torch.autograd.grad(tl, (tx, tw), create_graph=True)
    ((tgx ** 2).sum() + (tgw * tw).sum()).backward()
    _, (gx, gw) = avalon.grad(penalty, x, w)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_conv_transpose_is_the_adjoint_of_conv():
    x, w, g = _x(2, 4, 7, 6, dtype=np.float64), _x(6, 2, 3, 3, seed=1, dtype=np.float64), _x(2, 6, 4, 6, seed=2,
                                                                                             dtype=np.float64)
    params = dict(stride=(2, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=2)
    lhs = (cv.conv(x, w, **params) * g).sum()
    rhs = (x * cv.conv_transpose(g, w, shape=(7, 6), **params)).sum()
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


@pytest.mark.parametrize("make", [
    lambda nn: nn.Conv1d(3, 4, 3, stride=2, padding=1),
    lambda nn: nn.Conv1d(2, 4, 3, padding="same", padding_mode="circular"),
    lambda nn: nn.Conv2d(3, 6, (3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1), groups=3, bias=False),
    lambda nn: nn.Conv2d(2, 4, 4, padding="same"),
    lambda nn: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"),
    lambda nn: nn.Conv2d(2, 3, 3, padding=(2, 1), padding_mode="replicate"),
    lambda nn: nn.Conv3d(2, 3, 2, padding=1),
    lambda nn: nn.ConvTranspose1d(3, 2, 3, stride=2, output_padding=1),
    lambda nn: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=1),
    lambda nn: nn.ConvTranspose3d(2, 2, 2, stride=2, bias=False),
], ids=lambda make: "")
def test_layers_match_torch(make):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    layer, torch_layer = make(nn), make(torch.nn)
    assert repr(layer) == repr(torch_layer)
    assert list(layer.state_dict()) == list(torch_layer.state_dict())
    d = layer.dims
    check_layer(layer, torch_layer, _x(2, layer.in_channels, *(5, 6, 4)[:d]))


def test_conv_transpose_output_size_matches_torch():
    torch = pytest.importorskip("torch")
    layer, torch_layer = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1), torch.nn.ConvTranspose2d(2, 3, 3, 2, 1)
    layer.load_state_dict(torch_layer.state_dict())
    x = _x(1, 2, 4, 4)
    out = layer(x, output_size=(1, 3, 8, 8))
    assert out.shape == (1, 3, 8, 8)
    np.testing.assert_allclose(out, torch_layer(torch.tensor(x), output_size=(8, 8)).detach().numpy(), atol=1e-5)
    with pytest.raises(avalon.AvalonError, match="valid sizes range from 7 to 8"):
        layer(x, output_size=(9, 9))


def test_default_initialisation_follows_pytorch():
    layer = nn.Conv2d(16, 200, 3)
    bound = 1 / math.sqrt(16 * 9)  # kaiming_uniform_(a=√5) bound equals the bias bound
    for array in (layer.weight, layer.bias):
        assert array.dtype == np.float32
        assert 0.95 * bound < np.abs(array).max() <= bound
    assert abs(layer.weight.std() - bound / math.sqrt(3)) < 0.03 * bound
    transposed = nn.ConvTranspose2d(200, 8, 3, groups=2)  # fan-in from the weight's dim 1: 4 · 9
    assert transposed.weight.shape == (200, 4, 3, 3)
    assert 0.95 / 6 < np.abs(transposed.weight).max() <= 1 / 6


def test_wrong_channels_raise_shape_error_at_the_users_line():
    layer = nn.Conv2d(3, 8, 3)
    with pytest.raises(avalon.ShapeError) as info:
        line = sys._getframe().f_lineno + 1
        layer(_x(2, 4, 8, 8))
    message = str(info.value)
    assert "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))" in message
    assert "(N, 3, H, W)" in message and "got (2, 4, 8, 8)" in message
    assert f"test_conv.py:{line}" in message and "layer(_x(2, 4, 8, 8))" in message


def test_wrong_rank_and_too_small_inputs_raise_shape_errors():
    with pytest.raises(avalon.ShapeError, match=r"Conv1d\(2, 4.*\(N, 2, W\).*got \(2, 2, 3, 3\)"):
        nn.Conv1d(2, 4, 3)(_x(2, 2, 3, 3))
    with pytest.raises(avalon.ShapeError, match="smaller than the .dilated. kernel"):
        F.conv2d(_x(1, 1, 2, 2), _x(1, 1, 3, 3))
    with pytest.raises(avalon.ShapeError, match=r"ConvTranspose2d\(4, 2.*\(N, 4, H, W\)"):
        nn.ConvTranspose2d(4, 2, 3)(_x(1, 2, 3, 3))


def test_invalid_arguments_are_refused():
    with pytest.raises(avalon.AvalonError, match="not supported for strided"):
        nn.Conv2d(2, 2, 3, stride=2, padding="same")
    with pytest.raises(avalon.AvalonError, match="groups=3"):
        nn.Conv2d(4, 6, 3, groups=3)
    with pytest.raises(avalon.AvalonError, match="output_padding"):
        F.conv_transpose2d(_x(1, 2, 3, 3), _x(2, 2, 3, 3), stride=2, output_padding=2)


def test_a_small_cnn_trains_the_same_as_torch():
    torch = pytest.importorskip("torch")

    def build(nn):
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    torch.manual_seed(0)
    torch_model, model = build(torch.nn), build(nn)
    model.load_state_dict(torch_model.state_dict())
    x, y = _x(4, 1, 8, 8), np.array([0, 1, 2, 1])
    loss, grads = avalon.grad(lambda m, x: F.cross_entropy(m(x), y), model, x)
    t_loss = torch.nn.functional.cross_entropy(torch_model(torch.tensor(x)), torch.tensor(y))
    t_loss.backward()
    np.testing.assert_allclose(loss, t_loss.item(), rtol=1e-5)
    for name, p in torch_model.named_parameters():
        np.testing.assert_allclose(grads[0][name], p.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_primitives_run_on_a_strict_array_api_namespace():
    xp = pytest.importorskip("array_api_strict")
    from avalon.ops import norm as nm
    from avalon.ops import pool as pl
    from avalon.ops import vision as vs

    x, w = _x(2, 4, 6, 5), _x(6, 2, 3, 3, seed=1)
    g = cv.conv(x, w, **P2)
    windows = dict(kernel=(3, 2), stride=(2, 1), padding=((1, 1), (0, 1)), dilation=(1, 1))
    averaging = dict(kernel=(3, 2), stride=(2, 1), padding=((1, 1), (0, 1)), count_include_pad=False,
                     divisor_override=None)
    cases = [
        (cv.conv, (x, w), P2),
        (cv.conv_transpose, (g, w), dict(shape=(6, 5), **P2)),
        (cv.conv_weight_grad, (x, g), dict(kernel=(3, 3), **P2)),
        (cv.unfold, (x,), windows),
        (pl.max_pool, (x,), windows),
        (cv.fold, (cv.unfold(x, **windows),), dict(shape=(6, 5), **windows)),
        (pl.max_pool_scatter, (pl.max_pool(x, **windows), x, pl.max_pool(x, **windows)), windows),
        (pl.max_pool_gather, (x, x, pl.max_pool(x, **windows)), windows),
        (pl.avg_pool, (x,), averaging),
        (pl.avg_pool_transpose, (pl.avg_pool(x, **averaging),), dict(shape=(6, 5), **averaging)),
        (vs.resample, (x,), dict(maps=(("linear", 6, 9, False, None), ("nearest", 5, 7, None, False)))),
        (nm.center, (x, x.mean((2, 3), keepdims=True)), dict(axes=(2, 3))),
        (nm.normalize, (x - x.mean((2, 3), keepdims=True), x.var((2, 3), keepdims=True), x[:1, :, :1, :1], None),
         dict(eps=1e-5, axes=(2, 3))),
        (nm.normalize_grad, (x[::-1], x - x.mean((2, 3), keepdims=True), x.var((2, 3), keepdims=True), None),
         dict(eps=1e-5, axes=(2, 3))),
        (nm.normalize_grad, (x[::-1], x - x.mean((1, 3), keepdims=True), x.var((1, 3), keepdims=True), x[:1, :, :1]),
         dict(eps=1e-5, axes=(1, 3))),
    ]
    for prim, args, params in cases:
        strict = prim(*[xp.asarray(a) if a is not None else None for a in args], **params)
        assert type(strict).__module__.startswith("array_api_strict"), prim.name
        np.testing.assert_allclose(np.asarray(strict), prim(*args, **params), rtol=1e-6, atol=1e-6, err_msg=prim.name)


def test_a_residual_block_with_batch_norm_matches_torch_in_training_and_eval():
    torch = pytest.importorskip("torch")

    def build(nn):
        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv1, self.bn1 = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(4)
                self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
                self.down = nn.Sequential(nn.Conv2d(3, 4, 1, stride=2, bias=False), nn.BatchNorm2d(4))

            def forward(self, x):
                y = nn.functional.relu(self.bn1(self.conv1(x)))
                return nn.functional.relu(self.bn2(self.conv2(y)) + self.down(x))

        return Block()

    torch.manual_seed(0)
    torch_block, block = build(torch.nn), build(nn)
    block.load_state_dict(torch_block.state_dict())
    for step in range(2):
        x = _x(4, 3, 6, 6, seed=step)
        loss, grads = avalon.grad(lambda m, x: (m(x) ** 2).mean(), block, x)
        torch_block.zero_grad()
        t_loss = (torch_block(torch.tensor(x)) ** 2).mean()
        t_loss.backward()
        np.testing.assert_allclose(loss, t_loss.item(), rtol=1e-5)
        for name, p in torch_block.named_parameters():
            np.testing.assert_allclose(grads[0][name], p.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
    for name, value in torch_block.state_dict().items():
        np.testing.assert_allclose(block.state_dict()[name], value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    block.eval()
    torch_block.eval()
    x = _x(2, 3, 6, 6, seed=5)
    np.testing.assert_allclose(block(x), torch_block(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
