"""Losses: functions and modules against PyTorch (values, input and target gradients, every reduction
and option), the fused primitives against finite differences (and grad of grad), and the errors."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
from avalon.ops import loss as L

RTOL, ATOL = 1e-5, 1e-6
REDUCTIONS = ["mean", "sum", "none"]


def _float(a):
    return isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating)


def _cotangent(out):
    return np.random.default_rng(7).standard_normal(np.shape(out)).astype(np.float32)


def compare(avalon_fn, torch_fn, *args, grad=None, rtol=RTOL, atol=ATOL):
    """avalon_fn(*args) and torch_fn(*tensors) agree on the value and on the gradients (of a random
    weighting of the output) with respect to the float arguments (or those listed in `grad`)."""
    torch = pytest.importorskip("torch")
    grad = [i for i, a in enumerate(args) if _float(a)] if grad is None else grad
    out = avalon_fn(*args)
    w = _cotangent(out)
    value, grads = avalon.grad(lambda *a: (avalon_fn(*a) * w).sum(), *args)
    tensors = [torch.tensor(a, requires_grad=i in grad) if isinstance(a, np.ndarray) else a
               for i, a in enumerate(args)]
    expected = torch_fn(*tensors)
    np.testing.assert_allclose(np.asarray(out), expected.detach().numpy(), rtol=rtol, atol=atol)
    (expected * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(value, (expected * torch.tensor(w)).sum().item(), rtol=rtol, atol=atol)
    for i in grad:
        np.testing.assert_allclose(grads[i], tensors[i].grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"gradient of argument {i}")
        assert grads[i].dtype == args[i].dtype


@pytest.fixture
def torch_F():
    torch = pytest.importorskip("torch")
    return torch.nn.functional


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# regression losses

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
def test_mse_l1_match_torch(name, reduction, rng, torch_F):
    x, y = randn(rng, 3, 4), randn(rng, 3, 4)
    compare(lambda x, y: getattr(F, name)(x, y, reduction=reduction),
            lambda x, y: getattr(torch_F, name)(x, y, reduction=reduction), x, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_elementwise_weight_matches_torch(name, reduction, rng, torch_F):
    x, y, w = randn(rng, 3, 4), randn(rng, 3, 4), rng.uniform(0.5, 2, (3, 4)).astype(np.float32)
    compare(lambda x, y, w: getattr(F, name)(x, y, reduction=reduction, weight=w),
            lambda x, y, w: getattr(torch_F, name)(x, y, reduction=reduction, weight=w), x, y, w, grad=[0, 1])


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_smooth_l1_matches_torch(beta, reduction, rng, torch_F):
    x, y = randn(rng, 4, 5) * 2, randn(rng, 4, 5)
    compare(lambda x, y: F.smooth_l1_loss(x, y, reduction=reduction, beta=beta),
            lambda x, y: torch_F.smooth_l1_loss(x, y, reduction=reduction, beta=beta), x, y)


@pytest.mark.parametrize("delta", [0.3, 1.0, 2.5])
def test_huber_matches_torch(delta, rng, torch_F):
    x, y = randn(rng, 4, 5) * 2, randn(rng, 4, 5)
    for reduction in REDUCTIONS:
        compare(lambda x, y: F.huber_loss(x, y, reduction=reduction, delta=delta),
                lambda x, y: torch_F.huber_loss(x, y, reduction=reduction, delta=delta), x, y)


def test_legacy_size_average_and_reduce(rng, torch_F):
    x, y = randn(rng, 3, 4), randn(rng, 3, 4)
    for size_average, reduce in [(False, None), (None, False), (True, True)]:
        compare(lambda x, y: F.mse_loss(x, y, size_average=size_average, reduce=reduce),
                lambda x, y: torch_F.mse_loss(x, y, size_average=size_average, reduce=reduce), x, y)
    assert nn.L1Loss(size_average=False).reduction == "sum"


# cross-entropy and nll

CE_OPTIONS = [dict(), dict(weight=True), dict(ignore_index=2), dict(label_smoothing=0.2),
              dict(weight=True, ignore_index=1, label_smoothing=0.3)]


def _ce_args(opts, rng, C):
    opts = dict(opts)
    if opts.pop("weight", False):
        opts["weight"] = rng.uniform(0.2, 2.0, C).astype(np.float32)
    return opts


def _torch_opts(opts):
    import torch

    return {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in opts.items()}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", CE_OPTIONS)
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2, 3)])
def test_cross_entropy_class_indices_match_torch(shape, opts, reduction, rng, torch_F):
    x = randn(rng, *shape) * 2
    target = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    target.reshape(-1)[0] = opts.get("ignore_index", 0)
    kw = _ce_args(opts, rng, shape[1])
    compare(lambda x, t: F.cross_entropy(x, t, reduction=reduction, **kw),
            lambda x, t: torch_F.cross_entropy(x, t, reduction=reduction, **_torch_opts(kw)), x, target)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", [dict(), dict(weight=True), dict(label_smoothing=0.25),
                                  dict(weight=True, label_smoothing=0.1)])
@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3)])
def test_cross_entropy_class_probabilities_match_torch(shape, opts, reduction, rng, torch_F):
    x = randn(rng, *shape)
    p = rng.uniform(0.1, 1.0, shape).astype(np.float32)
    p = p / p.sum(axis=1, keepdims=True)
    kw = _ce_args(opts, rng, shape[1])
    compare(lambda x, p: F.cross_entropy(x, p, reduction=reduction, **kw),
            lambda x, p: torch_F.cross_entropy(x, p, reduction=reduction, **_torch_opts(kw)), x, p)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_unbatched_matches_torch(reduction, rng, torch_F):
    x = randn(rng, 6)
    for target in (np.array(3), rng.dirichlet(np.ones(6)).astype(np.float32)):
        compare(lambda x, t: F.cross_entropy(x, t, reduction=reduction, label_smoothing=0.1),
                lambda x, t: torch_F.cross_entropy(x, t, reduction=reduction, label_smoothing=0.1), x, target)


def test_cross_entropy_is_stable_for_huge_logits(torch_F):
    x = np.array([[1000.0, -1000.0, 0.0], [-5e4, 5e4, 1.0]], np.float32)
    t = np.array([1, 0])
    compare(lambda x: F.cross_entropy(x, t, label_smoothing=0.1),
            lambda x: torch_F.cross_entropy(x, __import__("torch").tensor(t), label_smoothing=0.1), x)
    assert np.isfinite(F.cross_entropy(x, t))


def test_cross_entropy_all_ignored_gives_nan_like_torch(rng):
    x = randn(rng, 3, 4)
    assert np.isnan(F.cross_entropy(x, np.full(3, -100)))
    assert F.cross_entropy(x, np.full(3, -100), reduction="sum") == 0


@pytest.mark.parametrize("opts", [dict(), dict(weight=True), dict(label_smoothing=0.1),
                                  dict(weight=True, label_smoothing=0.2), dict(zero_weights=True)])
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("shape", [(3, 4), (2, 4, 3)])
def test_mean_over_no_counted_target_matches_torch_value_and_gradient(shape, name, opts, rng):
    """'mean' with every target ignored: value 0/0 = NaN, gradient 0 (not NaN), as PyTorch. With
    targets counted but all class weights zero, PyTorch's gradient is NaN (at the targets, for
    nll_loss): that agrees too."""
    torch = pytest.importorskip("torch")
    if name == "nll_loss" and "label_smoothing" in opts:
        pytest.skip("nll_loss has no label smoothing")
    x = randn(rng, *shape)
    if opts.get("zero_weights"):
        target, kw = rng.integers(0, 4, shape[:1] + shape[2:]), dict(weight=np.zeros(4, np.float32))
    else:
        target, kw = np.full(shape[:1] + shape[2:], -100), _ce_args(opts, rng, 4)
    ours, theirs = getattr(F, name), getattr(torch.nn.functional, name)
    with np.errstate(divide="ignore", invalid="ignore"):
        value, (gx,) = avalon.grad(lambda x: ours(x, target, **kw), x)
    tx = torch.tensor(x, requires_grad=True)
    expected = theirs(tx, torch.tensor(target), **_torch_opts(kw))
    expected.backward()
    assert np.isnan(value) and np.isnan(expected.item())
    np.testing.assert_array_equal(np.isnan(gx), np.isnan(tx.grad.numpy()))
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=RTOL, atol=ATOL)
    if not opts.get("zero_weights"):
        assert np.all(gx == 0)


def test_cross_entropy_is_one_call_on_the_tape(rng):
    x, t = randn(rng, 4, 5), rng.integers(0, 5, 4)
    tape = avalon.trace(lambda x: F.cross_entropy(x, t, reduction="none"), x)
    assert [n.prim.name for n in tape.calls] == ["cross_entropy"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", [dict(), dict(weight=True), dict(ignore_index=0), dict(weight=True, ignore_index=3)])
@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 3), (4,)])
def test_nll_loss_matches_torch(shape, opts, reduction, rng, torch_F):
    x = randn(rng, *shape)
    target = rng.integers(0, 4, shape[:1] + shape[2:]) if len(shape) > 1 else np.array(2)
    if target.ndim:
        target.reshape(-1)[0] = opts.get("ignore_index", 1)
        target.reshape(-1)[-1] = 2  # at least one target counts (all ignored: 0/0, nan)
    kw = _ce_args(opts, rng, 4)
    compare(lambda x, t: F.nll_loss(x, t, reduction=reduction, **kw),
            lambda x, t: torch_F.nll_loss(x, t, reduction=reduction, **_torch_opts(kw)), x, target)


def test_log_softmax_then_nll_equals_cross_entropy(rng):
    x, t = randn(rng, 6, 5), rng.integers(0, 5, 6)
    w = rng.uniform(0.5, 1.5, 5).astype(np.float32)
    a = F.nll_loss(avalon.log_softmax(x, dim=1), t, weight=w)
    np.testing.assert_allclose(a, F.cross_entropy(x, t, weight=w), rtol=1e-6)


# binary cross-entropy

@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_matches_torch(weighted, reduction, rng, torch_F):
    x = rng.uniform(0.05, 0.95, (4, 3)).astype(np.float32)
    y = rng.uniform(0, 1, (4, 3)).astype(np.float32)
    w = rng.uniform(0.5, 2, (3,)).astype(np.float32) if weighted else None
    compare(lambda x, y: F.binary_cross_entropy(x, y, weight=w, reduction=reduction),
            lambda x, y: torch_F.binary_cross_entropy(x, y, weight=None if w is None else __import__("torch").tensor(w),
                                                      reduction=reduction), x, y)


def test_binary_cross_entropy_clamps_log_at_minus_100(torch_F):
    import torch

    x = np.array([0.0, 1.0, 0.5], np.float32)
    y = np.array([1.0, 0.0, 1.0], np.float32)
    expected = torch_F.binary_cross_entropy(torch.tensor(x), torch.tensor(y), reduction="none").numpy()
    np.testing.assert_allclose(F.binary_cross_entropy(x, y, reduction="none"), expected, rtol=1e-6)
    assert expected[0] == 100


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos", [False, True])
def test_binary_cross_entropy_with_logits_matches_torch(pos, weighted, reduction, rng, torch_F):
    import torch

    x, y = randn(rng, 4, 3) * 3, rng.uniform(0, 1, (4, 3)).astype(np.float32)
    w = rng.uniform(0.5, 2, (4, 1)).astype(np.float32) if weighted else None
    pw = rng.uniform(0.5, 3, (3,)).astype(np.float32) if pos else None
    t = lambda a: None if a is None else torch.tensor(a)  # noqa: E731
    compare(lambda x, y: F.binary_cross_entropy_with_logits(x, y, weight=w, reduction=reduction, pos_weight=pw),
            lambda x, y: torch_F.binary_cross_entropy_with_logits(x, y, weight=t(w), reduction=reduction,
                                                                  pos_weight=t(pw)), x, y)


def test_binary_cross_entropy_with_logits_is_stable(torch_F):
    x = np.array([-200.0, 200.0, 90.0, -90.0], np.float32)
    y = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    compare(lambda x: F.binary_cross_entropy_with_logits(x, y, reduction="none"),
            lambda x: torch_F.binary_cross_entropy_with_logits(x, __import__("torch").tensor(y), reduction="none"), x)


# divergences and embeddings

@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(log_target, reduction, rng, torch_F):
    x = np.log(rng.dirichlet(np.ones(5), 3)).astype(np.float32)
    p = rng.dirichlet(np.ones(5), 3).astype(np.float32)
    target = np.log(p) if log_target else p
    compare(lambda x, t: F.kl_div(x, t, reduction=reduction, log_target=log_target),
            lambda x, t: torch_F.kl_div(x, t, reduction=reduction, log_target=log_target), x, target)


def test_kl_div_zero_target_contributes_nothing(rng, torch_F):
    x = np.log(rng.dirichlet(np.ones(4), 2)).astype(np.float32)
    p = np.array([[0.5, 0.5, 0, 0], [0, 1, 0, 0]], np.float32)
    compare(lambda x: F.kl_div(x, p, reduction="sum"),
            lambda x: torch_F.kl_div(x, __import__("torch").tensor(p), reduction="sum"), x)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.3])
def test_cosine_embedding_matches_torch(margin, reduction, rng, torch_F):
    a, b = randn(rng, 6, 4), randn(rng, 6, 4)
    y = np.array([1, -1, 1, -1, -1, 1], np.float32)
    compare(lambda a, b: F.cosine_embedding_loss(a, b, y, margin=margin, reduction=reduction),
            lambda a, b: torch_F.cosine_embedding_loss(a, b, __import__("torch").tensor(y), margin=margin,
                                                       reduction=reduction), a, b)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_margin_ranking_matches_torch(reduction, rng, torch_F):
    a, b = randn(rng, 7), randn(rng, 7)
    y = np.sign(randn(rng, 7))
    compare(lambda a, b, y: F.margin_ranking_loss(a, b, y, margin=0.2, reduction=reduction),
            lambda a, b, y: torch_F.margin_ranking_loss(a, b, y, margin=0.2, reduction=reduction), a, b, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("p,swap", [(2, False), (2, True), (1, False), (3, True)])
def test_triplet_margin_matches_torch(p, swap, reduction, rng, torch_F):
    a, pos, neg = randn(rng, 5, 4), randn(rng, 5, 4), randn(rng, 5, 4)
    compare(lambda a, b, c: F.triplet_margin_loss(a, b, c, margin=0.7, p=p, swap=swap, reduction=reduction),
            lambda a, b, c: torch_F.triplet_margin_loss(a, b, c, margin=0.7, p=p, swap=swap, reduction=reduction),
            a, pos, neg)


# modules

MODULES = [
    ("MSELoss", dict(reduction="sum"), "regression"),
    ("L1Loss", dict(), "regression"),
    ("SmoothL1Loss", dict(beta=0.5), "regression"),
    ("HuberLoss", dict(delta=0.7, reduction="none"), "regression"),
    ("CrossEntropyLoss", dict(weight=True, ignore_index=1, label_smoothing=0.1), "classes"),
    ("NLLLoss", dict(weight=True, reduction="sum"), "classes"),
    ("BCELoss", dict(weight=True), "probabilities"),
    ("BCEWithLogitsLoss", dict(weight=True, pos_weight=True), "binary"),
    ("KLDivLoss", dict(reduction="batchmean", log_target=True), "distributions"),
    ("CosineEmbeddingLoss", dict(margin=0.2), "pairs"),
    ("MarginRankingLoss", dict(margin=0.1), "ranking"),
    ("TripletMarginLoss", dict(margin=0.5, p=1.0, swap=True), "triplets"),
]


def _module_inputs(kind, rng):
    if kind == "regression":
        return [randn(rng, 3, 4), randn(rng, 3, 4)], [0, 1]
    if kind == "classes":
        return [randn(rng, 5, 4), rng.integers(0, 4, 5)], [0]
    if kind == "probabilities":
        return [rng.uniform(0.1, 0.9, (5, 4)).astype(np.float32), rng.uniform(0, 1, (5, 4)).astype(np.float32)], [0, 1]
    if kind == "binary":
        return [randn(rng, 5, 4), rng.uniform(0, 1, (5, 4)).astype(np.float32)], [0, 1]
    if kind == "distributions":
        return [np.log(rng.dirichlet(np.ones(4), 3)).astype(np.float32),
                np.log(rng.dirichlet(np.ones(4), 3)).astype(np.float32)], [0, 1]
    if kind == "pairs":
        return [randn(rng, 4, 3), randn(rng, 4, 3), np.array([1, -1, -1, 1], np.float32)], [0, 1]
    if kind == "ranking":
        return [randn(rng, 4), randn(rng, 4), np.array([1, -1, -1, 1], np.float32)], [0, 1]
    return [randn(rng, 4, 3), randn(rng, 4, 3), randn(rng, 4, 3)], [0, 1, 2]


@pytest.mark.parametrize("name,opts,kind", MODULES, ids=[m[0] for m in MODULES])
def test_loss_modules_load_state_dict_and_match_torch(name, opts, kind, rng):
    torch = pytest.importorskip("torch")
    buffers = {}
    if opts.pop("weight", False):
        buffers["weight"] = rng.uniform(0.5, 2, 4).astype(np.float32)
    if opts.pop("pos_weight", False):
        buffers["pos_weight"] = rng.uniform(0.5, 2, 4).astype(np.float32)
    theirs = getattr(torch.nn, name)(**{k: torch.tensor(v) for k, v in buffers.items()}, **opts)
    ours = getattr(nn, name)(**{k: np.ones_like(v) for k, v in buffers.items()}, **opts)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    args, grad = _module_inputs(kind, rng)
    compare(lambda *a: ours(*a), lambda *a: theirs(*a), *args, grad=grad)


def test_loss_module_repr_and_reduction_default():
    assert repr(nn.MSELoss()) == "MSELoss()"
    assert nn.CrossEntropyLoss().reduction == "mean"
    assert nn.CrossEntropyLoss().weight is None


# primitives: finite differences in float64, grad of grad

def test_cross_entropy_primitive_gradcheck(rng):
    x = rng.standard_normal((4, 5, 2))
    t = rng.integers(0, 5, (4, 2))
    t[1, 0] = -1
    w = rng.uniform(0.5, 2, 5)
    for extra in ((), (w,)):
        f = lambda x: (L.cross_entropy(x, t, *extra, axis=1, ignore_index=-1, label_smoothing=0.15)  # noqa: E731
                       * np.arange(1.0, 9.0).reshape(4, 2)).sum()
        assert avalon.gradcheck(f, x)


def test_cross_entropy_grad_of_grad(rng):
    x, t = rng.standard_normal((3, 4)), rng.integers(0, 4, 3)
    w = rng.uniform(0.5, 2, 4)

    def gradient_norm(x, g):
        _, (gx, _) = avalon.grad(lambda x, g: (L.cross_entropy(x, t, w, axis=1, ignore_index=-100,
                                                               label_smoothing=0.1) * g).sum(), x, g)
        return (gx * gx).sum() + (gx * x).sum()

    assert avalon.gradcheck(gradient_norm, x, rng.standard_normal(3))


def test_cross_entropy_backward_ignores_any_gradient_at_ignored_targets(rng):
    """An ignored sample's loss is the constant 0, so neither the gradient nor its own gradient
    (grad of grad) may pick up the 1/0 a 'mean' over no counted targets sends back there."""
    x, t = rng.standard_normal((3, 4)), np.array([1, -100, 2])
    g = np.array([0.5, np.inf, -1.0])
    gx = L.cross_entropy_backward(g, x, t, axis=1, ignore_index=-100)
    assert np.all(gx[1] == 0) and np.all(np.isfinite(gx))
    np.testing.assert_allclose(gx[[0, 2]], L.cross_entropy_backward(g[[0, 2]], x[[0, 2]], t[[0, 2]]), rtol=1e-12)
    h = rng.standard_normal((3, 4))
    _, (ggx, gg) = avalon.grad(lambda x, g: (L.cross_entropy_backward(g, x, t, axis=1) * h).sum(), x, g)
    assert np.all(np.isfinite(ggx)) and gg[1] == 0
    finite = np.where(np.isfinite(g), g, 0.0)
    _, (expected, _) = avalon.grad(lambda x, g: (L.cross_entropy_backward(g, x, t, axis=1) * h).sum(), x, finite)
    np.testing.assert_allclose(ggx, expected, rtol=1e-12)


def test_soft_cross_entropy_gradcheck_and_grad_of_grad(rng):
    x, p = rng.standard_normal((3, 4)), rng.dirichlet(np.ones(4), 3)
    assert avalon.gradcheck(lambda x, p: (L.soft_cross_entropy(x, p, axis=1) * np.arange(3.0)).sum(), x, p)

    def second(x, p):
        _, (gx, gp) = avalon.grad(lambda x, p: L.soft_cross_entropy(x, p, axis=1).sum(), x, p)
        return (gx * gx).sum() + (gp * x).sum()

    assert avalon.gradcheck(second, x, p)


def test_sigmoid_cross_entropy_gradcheck(rng):
    x, y = rng.standard_normal((3, 4)) * 3, rng.uniform(0, 1, (3, 4))
    pw = rng.uniform(0.5, 3, 4)
    assert avalon.gradcheck(lambda x, y: (L.sigmoid_cross_entropy(x, y) ** 2).sum(), x, y)
    assert avalon.gradcheck(lambda x, y, pw: (L.sigmoid_cross_entropy(x, y, pw) ** 2).sum(), x, y, pw)

    def second(x, y):
        _, (gx, _) = avalon.grad(lambda x, y: L.sigmoid_cross_entropy(x, y, pw).sum(), x, y)
        return (gx * gx).sum()

    assert avalon.gradcheck(second, x, y)


def test_class_weight_gets_no_gradient(rng):
    x, t = randn(rng, 4, 3), rng.integers(0, 3, 4)
    w = rng.uniform(0.5, 2, 3).astype(np.float32)
    _, (gx, gw) = avalon.grad(lambda x, w: F.cross_entropy(x, t, weight=w), x, w)
    assert np.all(gw == 0)


# errors

def test_cross_entropy_wrong_target_shape_names_shapes_and_line(rng):
    x, t = randn(rng, 4, 5), rng.integers(0, 5, 3)
    with pytest.raises(avalon.ShapeError) as err:
        F.cross_entropy(x, t)  # the line the error points at
    message = str(err.value)
    assert "(3,)" in message and "(4, 5)" in message and "(4,)" in message
    assert "test_loss.py" in message and "F.cross_entropy(x, t)  # the line" in message


def test_module_wrong_target_shape_inside_grad_points_at_user_line(rng):
    x, t = randn(rng, 4, 5), rng.integers(0, 5, (4, 2))
    criterion = nn.CrossEntropyLoss()
    with pytest.raises(avalon.ShapeError, match=r"test_loss.py.*\n.*criterion\(x, t\)"):
        avalon.grad(lambda x: criterion(x, t), x)


def test_cross_entropy_bad_targets_are_refused(rng):
    x = randn(rng, 4, 5)
    with pytest.raises(avalon.IndexRangeError, match=r"cross_entropy: index 5 at position \[2\] is out of range: "
                                                     r"valid indices are \[0, 5\) or -100 \(ignore_index\)"):
        F.cross_entropy(x, np.array([0, 1, 5, 2]))
    with pytest.raises(avalon.ShapeError, match="integer array"):
        F.cross_entropy(x, np.zeros(4, np.float32))
    with pytest.raises(avalon.AvalonError, match="integer array"):
        F.nll_loss(x, np.zeros(4, np.float32))
    with pytest.raises(avalon.AvalonError, match="ignore_index"):
        F.cross_entropy(x, np.full((4, 5), 0.2, np.float32), ignore_index=0)
    with pytest.raises(avalon.ShapeError, match=r"weight .* \(5,\)"):
        F.cross_entropy(x, np.zeros(4, np.int64), weight=np.ones(4, np.float32))
    with pytest.raises(avalon.AvalonError, match="label_smoothing"):
        F.cross_entropy(x, np.zeros(4, np.int64), label_smoothing=1.5)


def test_bad_reduction_and_options_are_refused(rng):
    x = randn(rng, 3)
    with pytest.raises(avalon.AvalonError, match="reduction='avg'"):
        F.mse_loss(x, x, reduction="avg")
    with pytest.raises(avalon.AvalonError, match="reduction='avg'"):
        nn.MSELoss(reduction="avg")(x, x)
    with pytest.raises(avalon.AvalonError, match="batchmean"):
        F.l1_loss(x, x, reduction="batchmean")
    with pytest.raises(avalon.AvalonError, match="margin"):
        F.triplet_margin_loss(x, x, x, margin=0)
    with pytest.raises(avalon.ShapeError, match="target of shape"):
        F.binary_cross_entropy_with_logits(x, randn(rng, 4))


def test_broadcasting_target_warns_like_torch(rng):
    with pytest.warns(UserWarning, match="broadcast"):
        F.mse_loss(randn(rng, 3, 1), randn(rng, 3))
