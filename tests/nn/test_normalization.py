"""Normalisation: batch, layer, group and instance norm against PyTorch (outputs and gradients in train
and eval mode, running statistics after training steps), finite-difference checks of the fused
primitive's rule (and of its gradient), reprs, state_dict keys and shape errors."""
import sys

import numpy as np
import pytest
from nnparity import check_layer

import avalon
import avalon.nn as nn
import avalon.nn.functional as F


def _x(*shape, seed=0, dtype=np.float32, scale=1.0, shift=0.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale + shift).astype(dtype)


@pytest.mark.parametrize("make,shape", [
    (lambda nn: nn.BatchNorm1d(3), (4, 3)),
    (lambda nn: nn.BatchNorm1d(3, affine=False), (4, 3, 5)),
    (lambda nn: nn.BatchNorm2d(3), (2, 3, 4, 5)),
    (lambda nn: nn.BatchNorm2d(3, bias=False, momentum=None), (2, 3, 4, 5)),
    (lambda nn: nn.BatchNorm2d(3, track_running_stats=False), (2, 3, 4, 5)),
    (lambda nn: nn.BatchNorm3d(2, eps=1e-3), (2, 2, 3, 4, 3)),
    (lambda nn: nn.LayerNorm(5), (2, 3, 5)),
    (lambda nn: nn.LayerNorm((3, 5), eps=1e-3), (2, 3, 5)),
    (lambda nn: nn.LayerNorm(5, elementwise_affine=False), (4, 5)),
    (lambda nn: nn.LayerNorm(5, bias=False), (4, 5)),
    (lambda nn: nn.RMSNorm(5), (2, 3, 5)),
    (lambda nn: nn.RMSNorm((3, 5), eps=1e-3, elementwise_affine=False), (2, 3, 5)),
    (lambda nn: nn.GroupNorm(2, 6), (2, 6, 3, 4)),
    (lambda nn: nn.GroupNorm(3, 3, affine=False), (2, 3, 5)),
    (lambda nn: nn.InstanceNorm1d(3, affine=True), (2, 3, 6)),
    (lambda nn: nn.InstanceNorm2d(3), (2, 3, 4, 5)),
    (lambda nn: nn.InstanceNorm2d(3, affine=True, track_running_stats=True), (3, 4, 5)),
    (lambda nn: nn.LocalResponseNorm(3, alpha=0.1, beta=0.6, k=2.0), (2, 5, 4, 3)),
    (lambda nn: nn.LocalResponseNorm(2), (2, 4, 5)),
], ids=lambda v: "" if callable(v) else str(v))
@pytest.mark.parametrize("train", [True, False])
def test_layers_match_torch(make, shape, train):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    layer, torch_layer = make(nn), make(torch.nn)
    assert repr(layer) == repr(torch_layer)
    assert list(layer.state_dict()) == list(torch_layer.state_dict())
    for name, p in torch_layer.named_parameters():  # affine parameters away from 1 and 0
        p.data = torch.tensor(_x(*p.shape, seed=5, scale=0.5, shift=1.0))
    for name, b in torch_layer.named_buffers():
        if b.dtype == torch.float32:
            b.data = torch.tensor(_x(*b.shape, seed=6, scale=0.3, shift=1.0 if "var" in name else 0.0)).abs()
    check_layer(layer, torch_layer, _x(*shape, scale=2.0, shift=0.5), train=train)


def _train_steps(layer, torch_layer, batches):
    torch = pytest.importorskip("torch")
    layer.load_state_dict(torch_layer.state_dict())
    layer.train()
    torch_layer.train()
    for x in batches:
        np.testing.assert_allclose(layer(x), torch_layer(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    for name, expected in torch_layer.state_dict().items():
        actual = layer.state_dict()[name]
        assert actual.dtype == expected.numpy().dtype, name
        np.testing.assert_allclose(actual, expected.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_batch_norm_running_statistics_match_torch(momentum):
    torch = pytest.importorskip("torch")
    layer, torch_layer = nn.BatchNorm2d(3, momentum=momentum), torch.nn.BatchNorm2d(3, momentum=momentum)
    batches = [_x(4, 3, 2, 3, seed=s, scale=1 + s, shift=s) for s in range(3)]
    _train_steps(layer, torch_layer, batches)
    assert int(layer.num_batches_tracked) == 3 and layer.num_batches_tracked.dtype == np.int64
    layer.eval()
    torch_layer.eval()
    x = _x(2, 3, 2, 3, seed=9)
    np.testing.assert_allclose(layer(x), torch_layer(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_batch_norm_running_statistics_update_through_grad():
    torch = pytest.importorskip("torch")
    layer, torch_layer = nn.BatchNorm1d(4), torch.nn.BatchNorm1d(4)
    layer.load_state_dict(torch_layer.state_dict())
    x = _x(8, 4, 3, scale=3.0, shift=1.0)
    for _ in range(2):  # the second call replays the compiled tape: the update must happen again
        avalon.grad(lambda m, x: (m(x) ** 2).sum(), layer, x)
        (torch_layer(torch.tensor(x)) ** 2).sum().backward()
    np.testing.assert_allclose(layer.running_mean, torch_layer.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.running_var, torch_layer.running_var.numpy(), rtol=1e-5, atol=1e-6)
    assert int(layer.num_batches_tracked) == 2


def test_instance_norm_running_statistics_match_torch():
    torch = pytest.importorskip("torch")
    make = lambda nn: nn.InstanceNorm2d(2, track_running_stats=True, momentum=0.3)  # noqa: E731
    _train_steps(make(nn), make(torch.nn), [_x(3, 2, 4, 4, seed=s, shift=s) for s in range(2)])


def test_functional_forms_match_torch():
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    x, w, b = _x(4, 3, 5, scale=2.0), _x(3, seed=1), _x(3, seed=2)
    rm, rv = _x(3, seed=3), np.abs(_x(3, seed=4)) + 0.5
    t = [torch.tensor(a) for a in (x, rm, rv, w, b)]
    for training in (False, True):  # torch's training call updates t[1] and t[2] in place: it goes last
        np.testing.assert_allclose(F.batch_norm(x, rm, rv, w, b, training=training, eps=1e-3),
                                   TF.batch_norm(*t, training=training, eps=1e-3).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(F.layer_norm(x, (3, 5)), TF.layer_norm(t[0], (3, 5)).numpy(), rtol=1e-5, atol=1e-5)
    w5 = _x(5, seed=7)
    close = dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(F.rms_norm(x, (5,), w5), TF.rms_norm(t[0], (5,), torch.tensor(w5)).numpy(), **close)
    np.testing.assert_allclose(F.group_norm(x, 3, w, b), TF.group_norm(t[0], 3, t[3], t[4]).numpy(), **close)
    np.testing.assert_allclose(F.instance_norm(x, weight=w, bias=b),
                               TF.instance_norm(t[0], weight=t[3], bias=t[4]).numpy(), **close)
    np.testing.assert_allclose(F.instance_norm(x, rm, rv, use_input_stats=False),
                               TF.instance_norm(t[0], torch.tensor(rm), torch.tensor(rv), use_input_stats=False).numpy(),
                               **close)


def test_functional_batch_norm_leaves_running_statistics_alone():
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    F.batch_norm(_x(4, 3, shift=2.0), rm, rv, training=True)
    assert (rm == 0).all() and (rv == 1).all()


def test_normalize_rule_passes_gradcheck():
    x, w, b = _x(3, 4, 5, dtype=np.float64, scale=2.0), _x(4, seed=1, dtype=np.float64), _x(4, seed=2, dtype=np.float64)
    c = _x(3, 4, 5, seed=3, dtype=np.float64)  # a non-uniform cotangent
    assert avalon.gradcheck(lambda x, w, b: (F.batch_norm(x, None, None, w, b, training=True) * c).sum(), x, w, b)
    w5, b5 = _x(5, seed=4, dtype=np.float64), _x(5, seed=5, dtype=np.float64)
    assert avalon.gradcheck(lambda x, w, b: (F.layer_norm(x, (5,), w, b) * c).sum(), x, w5, b5)
    assert avalon.gradcheck(lambda x: (F.layer_norm(x, (4, 5)) * c).sum(), x)
    assert avalon.gradcheck(lambda x, w, b: (F.group_norm(x, 2, w, b) * c).sum(), x, w, b)
    assert avalon.gradcheck(lambda x: (F.instance_norm(x) * c).sum(), x)


def test_gradient_of_normalization_gradient_passes_gradcheck():
    x, w = _x(4, 3, 2, dtype=np.float64, scale=2.0), _x(3, seed=1, dtype=np.float64)
    c = _x(4, 3, 2, seed=3, dtype=np.float64)

    def penalty(x, w):
        def loss(x, w):
            return (F.batch_norm(x, None, None, w, None, training=True) ** 3 * c).sum()

        _, (gx, gw) = avalon.grad(loss, x, w)
        return (gx ** 2).sum() + (gw ** 2).sum()

    assert avalon.gradcheck(penalty, x, w)


def test_wrong_shapes_raise_shape_errors_at_the_users_line():
    layer = nn.BatchNorm2d(4)
    with pytest.raises(avalon.ShapeError) as info:
        line = sys._getframe().f_lineno + 1
        layer(_x(2, 3, 5, 5))
    message = str(info.value)
    assert "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)" in message
    assert "(N, 4, H, W)" in message and "got (2, 3, 5, 5)" in message
    assert f"test_normalization.py:{line}" in message and "layer(_x(2, 3, 5, 5))" in message
    with pytest.raises(avalon.ShapeError, match=r"BatchNorm1d\(3.*\(N, 3\) or \(N, 3, L\).*got \(2, 3, 4, 4\)"):
        nn.BatchNorm1d(3)(_x(2, 3, 4, 4))
    with pytest.raises(avalon.ShapeError, match=r"LayerNorm\(\(4,\).*\(\*, 4\).*got \(2, 5\)"):
        nn.LayerNorm(4)(_x(2, 5))
    with pytest.raises(avalon.ShapeError, match=r"GroupNorm\(2, 4.*\(N, 4, \*\)"):
        nn.GroupNorm(2, 4)(_x(2, 6, 3))
    with pytest.raises(avalon.ShapeError, match="more than one value per channel"):
        nn.BatchNorm1d(3)(_x(1, 3))


@pytest.mark.parametrize("weight_shape, axes", [
    (None, (0, 2)),            # batch norm without affine: no weight
    ((1, 3, 1), (0, 2)),       # batch norm: one weight per statistic (folded into σ⁻¹)
    ((1, 1, 4), (2,)),         # layer norm: the weight runs along the normalised axis
    ((1, 3, 1), (1, 2)),       # group norm: per channel, constant along the positions only
])
def test_normalize_grad_rule_passes_gradcheck_in_every_operand(weight_shape, axes):
    from avalon.ops import norm as nm

    # arbitrary operands (c need not be centred, nor var its mean square): the rule's partial
    # derivatives hold everywhere
    g, c, h = _x(2, 3, 4, dtype=np.float64), _x(2, 3, 4, seed=1, dtype=np.float64), _x(2, 3, 4, seed=2, dtype=np.float64)
    var = np.abs(_x(*[1 if i in axes else n for i, n in enumerate(c.shape)], seed=3, dtype=np.float64)) + 0.2
    args = (g, c, var) if weight_shape is None else (g, c, var, _x(*weight_shape, seed=4, dtype=np.float64))

    def f(g, c, var, weight=None):
        return (nm.normalize_grad(g, c, var, weight, eps=1e-3, axes=axes) * h).sum()

    assert avalon.gradcheck(f, *args)


def test_center_rule_passes_gradcheck():
    from avalon.ops import norm as nm

    x, h = _x(3, 4, 5, dtype=np.float64, shift=2.0), _x(3, 4, 5, seed=1, dtype=np.float64)
    for axes in [(2,), (0, 2), (1, 2)]:
        assert avalon.gradcheck(lambda x: (nm.center(x, nm.mean_over(x, axes), axes=axes) ** 2 * h).sum(), x)


@pytest.mark.parametrize("norm", [
    lambda x, w, b: F.layer_norm(x, (2,), w[:2], b[:2]),
    lambda x, w, b: F.layer_norm(x, (3, 2)),
    lambda x, w, b: F.group_norm(x, 1, w, b),
    lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
], ids=["layer_norm", "layer_norm without affine", "group_norm", "instance_norm"])
def test_gradient_of_layer_group_and_instance_norm_gradients_passes_gradcheck(norm):
    x, w, b = _x(4, 3, 2, dtype=np.float64, scale=2.0), _x(3, seed=1, dtype=np.float64), _x(3, seed=2, dtype=np.float64)
    c = _x(4, 3, 2, seed=3, dtype=np.float64)

    def penalty(x, w, b):
        _, grads = avalon.grad(lambda x, w, b: (norm(x, w, b) ** 3 * c).sum(), x, w, b)
        return sum((g ** 2).sum() for g in grads if g is not None)

    assert avalon.gradcheck(penalty, x, w, b)


def test_large_offsets_keep_float32_gradients_close_to_torch():
    # the variance and the gradients work on the centred input, so an offset 100x the spread costs no
    # more than the float32 rounding of the input itself (~1e-5 of the spread, in torch as here)
    torch = pytest.importorskip("torch")
    for make, shape in [(lambda nn: nn.LayerNorm(16), (8, 16)), (lambda nn: nn.BatchNorm1d(4), (16, 4, 8)),
                        (lambda nn: nn.GroupNorm(2, 4), (4, 4, 8))]:
        torch.manual_seed(0)
        layer, torch_layer = make(nn), make(torch.nn)
        check_layer(layer, torch_layer, _x(*shape, scale=1.0, shift=100.0), rtol=1e-3, atol=1e-4)
