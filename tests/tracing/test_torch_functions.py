"""avalon.* under PyTorch's names: each function against torch on the same data, on plain arrays (a
plain array comes back) and on tracers, and its gradient inside avalon.grad against torch's backward."""
import numpy as np
import pytest

import avalon
from avalon import torch_api
from tracing_parity import DATA, assert_like_torch, torch_grad, traced

torch = pytest.importorskip("torch")

# (id, call with the module `m` (avalon or torch) first, inputs, differentiable)
G, N = True, False
FUNCTIONS = [
    ("cat", lambda m, a, b: m.cat([a, b], dim=1), "A A2", G),
    ("cat-negative", lambda m, a, b: m.cat((a, b), -1), "A A2", G),
    ("concat", lambda m, a, b: m.concat([a, b]), "A A2", G),
    ("concatenate", lambda m, a, b: m.concatenate([a, b], 2), "A A2", G),
    ("stack", lambda m, a, b: m.stack([a, b], dim=-2), "A A2", G),
    ("hstack", lambda m, a, b: m.hstack([a, b]), "M M", G),
    ("vstack", lambda m, v, w: m.vstack([v, w]), "V W", G),
    ("split", lambda m, a: m.split(a, 3, dim=2), "A", G),
    ("split-sizes", lambda m, a: m.split(a, [2, 1], 1), "A", G),
    ("chunk", lambda m, a: m.chunk(a, 2, -1), "A", G),
    ("unbind", lambda m, a: m.unbind(a, 2), "A", G),
    ("reshape", lambda m, a: m.reshape(a, (4, -1)), "A", G),
    ("flatten", lambda m, a: m.flatten(a), "A", G),
    ("flatten-start", lambda m, a: m.flatten(a, 1), "A", G),
    ("flatten-range", lambda m, a: m.flatten(a, start_dim=0, end_dim=-2), "A", G),
    ("unflatten", lambda m, a: m.unflatten(a, 1, (3, 1)), "A", G),
    ("transpose", lambda m, a: m.transpose(a, 0, -1), "A", G),
    ("swapaxes", lambda m, a: m.swapaxes(a, 1, 2), "A", G),
    ("swapdims", lambda m, a: m.swapdims(a, -1, 0), "A", G),
    ("t", lambda m, x: m.t(x), "M", G),
    ("permute", lambda m, a: m.permute(a, (2, 0, 1)), "A", G),
    ("movedim", lambda m, a: m.movedim(a, 0, -1), "A", G),
    ("movedim-many", lambda m, a: m.movedim(a, (0, 1), (2, 0)), "A", G),
    ("moveaxis", lambda m, a: m.moveaxis(a, -1, 0), "A", G),
    ("unsqueeze", lambda m, a: m.unsqueeze(a, -2), "A", G),
    ("squeeze", lambda m, r: m.squeeze(r), "R", G),
    ("squeeze-dim", lambda m, r: m.squeeze(r, -1), "R", G),
    ("squeeze-non-unit", lambda m, r: m.squeeze(r, 1), "R", G),
    ("broadcast_to", lambda m, r: m.broadcast_to(r, (2, 2, 3, 4)), "R", G),
    ("broadcast_tensors", lambda m, r, v: m.broadcast_tensors(r, v), "R V", G),
    ("flip", lambda m, a: m.flip(a, (0, 2)), "A", G),
    ("roll", lambda m, a: m.roll(a, 1, 2), "A", G),
    ("roll-flat", lambda m, a: m.roll(a, -5), "A", G),
    ("roll-many", lambda m, a: m.roll(a, (1, -2), (0, 2)), "A", G),
    ("tile", lambda m, x: m.tile(x, (2, 1, 2)), "M", G),
    ("tril", lambda m, s: m.tril(s), "S", G),
    ("triu", lambda m, a: m.triu(a, -1), "A", G),
    ("diagonal", lambda m, x: m.diagonal(x), "M", G),
    ("diagonal-offset", lambda m, a: m.diagonal(a, 1, 1, 2), "A", G),
    ("diagonal-negative-offset", lambda m, a: m.diagonal(a, -1, -1, 1), "A", G),
    ("repeat_interleave", lambda m, x: m.repeat_interleave(x, 2, dim=0), "M", G),
    ("gather", lambda m, x, i: m.gather(x, 1, i), "M idx", G),
    ("gather-smaller-index", lambda m, x, i: m.gather(x, 1, i[:2]), "M idx", G),
    ("take_along_dim", lambda m, x, i: m.take_along_dim(x, i, dim=1), "M idx", G),
    ("index_select", lambda m, x, i: m.index_select(x, 0, i), "M rows", G),
    ("narrow", lambda m, a: m.narrow(a, 1, 1, 2), "A", G),
    ("narrow-negative", lambda m, a: m.narrow(a, -1, -2, 2), "A", G),
    ("index_add", lambda m, x, i, n: m.index_add(x, 0, i, n[:3, :4], alpha=2), "M rows N", G),
    ("scatter_add", lambda m, x, i, n: m.scatter_add(x, 0, i, n[:2, :4]), "M scat N", G),
    ("scatter_add-larger-src", lambda m, x, i, n: m.scatter_add(x, 0, i, n), "M scat N", N),
    ("masked_fill", lambda m, x, k: m.masked_fill(x, k, 0.25), "M mask", G),
    ("where", lambda m, c, a, b: m.where(c, a, b), "cond A A2", G),
    ("where-scalar", lambda m, c, a: m.where(c, a, 0.0), "cond A", G),
    ("sum", lambda m, a: m.sum(a), "A", G),
    ("sum-dim-keepdim", lambda m, a: m.sum(a, dim=-1, keepdim=True), "A", G),
    ("sum-dims", lambda m, a: m.sum(a, (0, 2)), "A", G),
    ("sum-dtype", lambda m, a: m.sum(a, 1, dtype=m.float64), "A", G),
    ("mean", lambda m, a: m.mean(a, 1), "A", G),
    ("prod", lambda m, p: m.prod(p, -1, keepdim=True), "P", G),
    ("max", lambda m, a: m.max(a), "A", G),
    ("max-dim", lambda m, a: m.max(a, 1), "A", G),
    ("max-dim-keepdim", lambda m, t: m.max(t, dim=-1, keepdim=True), "T", G),
    ("max-elementwise", lambda m, a, b: m.max(a, b), "A A2", G),
    ("min-dim", lambda m, t: m.min(t, 0), "T", G),
    ("amax", lambda m, t: m.amax(t, 1), "T", G),
    ("amin", lambda m, a: m.amin(a, (1, 2), keepdim=True), "A", G),
    ("argmax", lambda m, a: m.argmax(a), "A", N),
    ("argmax-dim", lambda m, a: m.argmax(a, -1), "A", N),
    ("argmin-keepdim", lambda m, a: m.argmin(a, 1, keepdim=True), "A", N),
    ("all", lambda m, c: m.all(c), "cond", N),
    ("any-dim", lambda m, c: m.any(c, 2), "cond", N),
    ("var", lambda m, a: m.var(a), "A", G),
    ("var-dim-biased", lambda m, a: m.var(a, 1, unbiased=False), "A", G),
    ("var-correction", lambda m, a: m.var(a, dim=(0, 2), correction=0), "A", G),
    ("std", lambda m, a: m.std(a, -1, keepdim=True), "A", G),
    ("logsumexp", lambda m, a: m.logsumexp(a, 1), "A", G),
    ("cumsum", lambda m, a: m.cumsum(a, -1), "A", G),
    ("cumprod", lambda m, p: m.cumprod(p, 1), "P", G),
    ("numel", lambda m, a: m.numel(a), "A", N),
    ("relu", lambda m, a: m.relu(a), "A", G),
    ("sigmoid", lambda m, a: m.sigmoid(a), "A", G),
    ("tanh", lambda m, a: m.tanh(a), "A", G),
    ("exp", lambda m, a: m.exp(a), "A", G),
    ("exp2", lambda m, a: m.exp2(a), "A", G),
    ("log", lambda m, p: m.log(p), "P", G),
    ("log2", lambda m, p: m.log2(p), "P", G),
    ("log10", lambda m, p: m.log10(p), "P", G),
    ("log1p", lambda m, p: m.log1p(p), "P", G),
    ("expm1", lambda m, a: m.expm1(a), "A", G),
    ("sqrt", lambda m, p: m.sqrt(p), "P", G),
    ("rsqrt", lambda m, p: m.rsqrt(p), "P", G),
    ("square", lambda m, a: m.square(a), "A", G),
    ("reciprocal", lambda m, p: m.reciprocal(p), "P", G),
    ("abs", lambda m, a: m.abs(a), "A", G),
    ("absolute", lambda m, a: m.absolute(a), "A", G),
    ("neg", lambda m, a: m.neg(a), "A", G),
    ("sign", lambda m, a: m.sign(a), "A", N),
    ("sin", lambda m, a: m.sin(a), "A", G),
    ("cos", lambda m, a: m.cos(a), "A", G),
    ("tan", lambda m, u: m.tan(u), "U", G),
    ("asin", lambda m, u: m.asin(u), "U", G),
    ("acos", lambda m, u: m.acos(u), "U", G),
    ("atan", lambda m, a: m.atan(a), "A", G),
    ("arcsin", lambda m, u: m.arcsin(u), "U", G),
    ("arccos", lambda m, u: m.arccos(u), "U", G),
    ("arctan", lambda m, a: m.arctan(a), "A", G),
    ("arcsinh", lambda m, a: m.arcsinh(a), "A", G),
    ("arccosh", lambda m, p: m.arccosh(p + 1), "P", G),
    ("arctanh", lambda m, u: m.arctanh(u), "U", G),
    ("sinh", lambda m, a: m.sinh(a), "A", G),
    ("cosh", lambda m, a: m.cosh(a), "A", G),
    ("asinh", lambda m, a: m.asinh(a), "A", G),
    ("acosh", lambda m, p: m.acosh(p + 1), "P", G),
    ("atanh", lambda m, u: m.atanh(u), "U", G),
    ("floor", lambda m, a: m.floor(a * 3), "A", N),
    ("ceil", lambda m, a: m.ceil(a * 3), "A", N),
    ("trunc", lambda m, a: m.trunc(a * 3), "A", N),
    ("round", lambda m, a: m.round(a * 3), "A", N),
    ("round-decimals", lambda m, a: m.round(a, decimals=2), "A", N),
    ("isfinite", lambda m, a: m.isfinite(a / (a > 0)), "A", N),
    ("isnan", lambda m, a: m.isnan(m.sqrt(a)), "A", N),
    ("isinf", lambda m, a: m.isinf(a / (a > 0)), "A", N),
    ("logical_not", lambda m, c: m.logical_not(c), "cond", N),
    ("maximum", lambda m, a, b: m.maximum(a, b), "A A2", G),
    ("minimum", lambda m, a, b: m.minimum(a, b), "A A2", G),
    ("atan2", lambda m, a, b: m.atan2(a, b), "A A2", G),
    ("arctan2", lambda m, a, b: m.arctan2(a, b), "A A2", G),
    ("remainder", lambda m, a, p: m.remainder(a * 3, p), "A P", G),
    ("floor_divide", lambda m, a, p: m.floor_divide(a * 3, p), "A P", N),
    ("logaddexp", lambda m, a, b: m.logaddexp(a, b), "A A2", G),
    ("eq", lambda m, t: m.eq(t, 3.0), "T", N),
    ("ne", lambda m, a, b: m.ne(a, b), "A A2", N),
    ("lt", lambda m, a, b: m.lt(a, b), "A A2", N),
    ("le", lambda m, t: m.le(t, 2.0), "T", N),
    ("gt", lambda m, a: m.gt(a, 0), "A", N),
    ("ge", lambda m, t: m.ge(t, 3.0), "T", N),
    ("logical_and", lambda m, c, d: m.logical_and(c, d), "cond cond", N),
    ("logical_or", lambda m, a, b: m.logical_or(a > 0, b > 0), "A A2", N),
    ("logical_xor", lambda m, a, b: m.logical_xor(a > 0, b > 0), "A A2", N),
    ("add", lambda m, a, b: m.add(a, b, alpha=-2), "A A2", G),
    ("sub", lambda m, a, b: m.sub(a, b), "A A2", G),
    ("subtract", lambda m, a, b: m.subtract(a, b, alpha=3), "A A2", G),
    ("mul", lambda m, a, b: m.mul(a, b), "A A2", G),
    ("multiply", lambda m, a: m.multiply(a, 2.5), "A", G),
    ("div", lambda m, a, p: m.div(a, p), "A P", G),
    ("divide", lambda m, a, p: m.divide(a, p), "A P", G),
    ("true_divide", lambda m, a, p: m.true_divide(a, p), "A P", G),
    ("pow", lambda m, p: m.pow(p, 2.5), "P", G),
    ("pow-tensor", lambda m, p, a: m.pow(p, a), "P A", G),
    ("clamp", lambda m, a: m.clamp(a, -0.5, 0.5), "A", G),
    ("clamp-min", lambda m, a: m.clamp(a, min=0.1), "A", G),
    ("clamp-tensor", lambda m, a, b: m.clamp(a, max=b), "A A2", G),
    ("clip", lambda m, a: m.clip(a, max=0.2), "A", G),
    ("lerp", lambda m, a, b: m.lerp(a, b, 0.3), "A A2", G),
    ("lerp-tensor", lambda m, a, b, p: m.lerp(a, b, p), "A A2 P", G),
    ("addcmul", lambda m, a, b, p: m.addcmul(a, b, p, value=0.5), "A A2 P", G),
    ("addcdiv", lambda m, a, b, p: m.addcdiv(a, b, p, value=2), "A A2 P", G),
    ("matmul", lambda m, x, n: m.matmul(x, n), "M N", G),
    ("matmul-batched", lambda m, a, b: m.matmul(a, b), "A B", G),
    ("matmul-vector", lambda m, a, v: m.matmul(a, v), "A V", G),
    ("matmul-vector-left", lambda m, v, b: m.matmul(v, b), "V B", G),
    ("mm", lambda m, x, n: m.mm(x, n), "M N", G),
    ("spmm", lambda m, x, n: m.spmm(x, n), "M N", G),
    ("bmm", lambda m, a, b: m.bmm(a, b), "A B", G),
    ("mv", lambda m, x, v: m.mv(x, v), "M V", G),
    ("dot", lambda m, v, w: m.dot(v, w), "V W", G),
    ("addmm", lambda m, n, x, y: m.addmm(n[:3, :4], x, y[:4, :4], beta=0.5, alpha=2), "N M N", G),
    ("einsum", lambda m, a, b: m.einsum("bij,bjk->bik", a, b), "A B", G),
    ("einsum-list", lambda m, x, n: m.einsum("ij,jk", [x, n]), "M N", G),
    ("einsum-ellipsis", lambda m, a, v: m.einsum("...j,j->...", a, v), "A V", G),
    ("outer", lambda m, v, w: m.outer(v, w), "V W", G),
    ("meshgrid", lambda m, v, w: m.meshgrid(v, w, indexing="xy"), "V W", G),
    ("topk", lambda m, a: m.topk(a, 2, 1, largest=False), "A", G),
    ("norm", lambda m, a: m.norm(a), "A", G),
    ("norm-dim", lambda m, a: m.norm(a, dim=-1, keepdim=True), "A", G),
    ("softmax", lambda m, a: m.softmax(a, dim=1), "A", G),
    ("softmax-negative", lambda m, a: m.softmax(a, -1), "A", G),
    ("softmax-dtype", lambda m, a: m.softmax(a, 0, dtype=m.float64), "A", G),
    ("log_softmax", lambda m, a: m.log_softmax(a, 2), "A", G),
    ("detach", lambda m, a: m.detach(a) * a, "A", G),
]


def _cases(grad_only=False):
    for name, fn, inputs, differentiable in FUNCTIONS:
        if differentiable or not grad_only:
            yield pytest.param(fn, inputs.split(), id=name)


def _is_plain(x):
    leaves = x if isinstance(x, (tuple, list)) else [x]
    return all(isinstance(v, (np.ndarray, np.generic, int)) for v in leaves)


@pytest.mark.parametrize("fn, names", list(_cases()))
def test_function_matches_torch_on_arrays_and_tracers(fn, names):
    arrays = [DATA[n] for n in names]
    with np.errstate(all="ignore"):
        expected = fn(torch, *(torch.from_numpy(a) for a in arrays))
        on_arrays = fn(avalon, *arrays)
        on_tracers, recorded = traced(lambda *xs: fn(avalon, *xs), *arrays)
    assert _is_plain(on_arrays)
    assert_like_torch(on_arrays, expected, torch)
    assert_like_torch(on_tracers, expected, torch)
    assert recorded


@pytest.mark.parametrize("fn, names", list(_cases(grad_only=True)))
def test_gradient_matches_torch(fn, names):
    arrays = [DATA[n] for n in names]
    expected, weights = torch_grad(torch, lambda *ts: fn(torch, *ts), arrays)

    def loss(*xs):
        out = fn(avalon, *xs)
        return avalon.sum((out[0] if isinstance(out, tuple) else out) * weights)

    _, grads = avalon.grad(loss, *arrays)
    for ours, theirs in zip(grads, expected):
        if theirs is not None:
            assert ours.dtype == theirs.dtype
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


# creation: plain arrays with torch's dtypes (float32 by default)
CREATION = [
    ("zeros", lambda m: m.zeros(2, 3)),
    ("zeros-tuple", lambda m: m.zeros((2, 3), dtype=m.int64)),
    ("ones", lambda m: m.ones(4)),
    ("full-float", lambda m: m.full((2, 2), 1.5)),
    ("full-int", lambda m: m.full((3,), 7)),
    ("full-bool", lambda m: m.full((2,), True)),
    ("arange", lambda m: m.arange(5)),
    ("arange-start-step", lambda m: m.arange(1, 10, 3)),
    ("arange-float", lambda m: m.arange(0, 1, 0.25)),
    ("arange-dtype", lambda m: m.arange(4, dtype=m.float64)),
    ("linspace", lambda m: m.linspace(0, 1, 5)),
    ("eye", lambda m: m.eye(3)),
    ("eye-rect", lambda m: m.eye(2, 3)),
    ("tensor-floats", lambda m: m.tensor([[1.0, 2.0], [3.0, 4.0]])),
    ("tensor-ints", lambda m: m.tensor([1, 2, 3])),
    ("tensor-dtype", lambda m: m.tensor([1, 2], dtype=m.float64)),
    ("zeros_like", lambda m: m.zeros_like(m.ones(2, 3))),
    ("ones_like-dtype", lambda m: m.ones_like(m.ones(2), dtype=m.int32)),
    ("full_like", lambda m: m.full_like(m.ones(2, 2), 3.0)),
]


@pytest.mark.parametrize("fn", [pytest.param(c[1], id=c[0]) for c in CREATION])
def test_creation_matches_torch(fn):
    ours = fn(avalon)
    assert isinstance(ours, np.ndarray)
    assert_like_torch(ours, fn(torch), torch)


@pytest.mark.parametrize("make", [
    lambda m: m.rand(3, 4), lambda m: m.randn((2, 5)), lambda m: m.rand(2, dtype=m.float64),
    lambda m: m.randint(0, 5, (3, 3)), lambda m: m.empty(2, 3), lambda m: m.empty_like(m.ones(2, dtype=m.int64)),
    lambda m: m.rand_like(m.ones((2, 2))), lambda m: m.randn_like(m.ones(3, dtype=m.float64)),
], ids=["rand", "randn", "rand-f64", "randint", "empty", "empty_like", "rand_like", "randn_like"])
def test_random_and_empty_have_torchs_shapes_and_dtypes(make):
    ours, theirs = make(avalon), make(torch)
    assert isinstance(ours, np.ndarray) and ours.shape == tuple(theirs.shape)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")


def test_random_draws_are_recorded_and_redrawn_on_replay():
    @avalon.jit
    def noisy(x):
        return x + avalon.rand(*x.shape)

    x = np.zeros(1000, np.float32)
    first, second = noisy(x), noisy(x)
    assert 0 <= first.min() and first.max() < 1 and first.dtype == np.float32
    assert not np.array_equal(first, second)
    assert "uniform" in [n.prim.name for n in avalon.trace(noisy.__wrapped__, x).calls]


def test_seeded_draws_repeat():
    avalon.manual_seed(3)
    a = avalon.randn(4)
    avalon.manual_seed(3)
    np.testing.assert_array_equal(a, avalon.randn(4))


def test_every_function_has_a_case():
    covered = {word for case in FUNCTIONS + CREATION for word in case[0].split("-")}
    covered |= {"rand", "randn", "randint", "empty", "empty_like", "rand_like", "randn_like", "manual_seed",
                "values_indices", "is_tensor", "stop_gradient",
                "as_tensor", "from_numpy", "randint_like", "randperm"}  # tested below and in tests/test_tensor*.py
    assert set(torch_api.__all__) <= covered


def test_is_tensor_and_stop_gradient():
    assert avalon.is_tensor(DATA["A"]) and not avalon.is_tensor([1.0]) and not avalon.is_tensor(2.0)
    assert traced(lambda a: avalon.is_tensor(a), DATA["A"])[0] is True
    _, (g,) = avalon.grad(lambda a: (avalon.stop_gradient(a) * a).sum(), DATA["A"])
    np.testing.assert_allclose(g, DATA["A"])


def test_names_follow_torch_and_have_docstrings():
    ours_only = {"values_indices", "stop_gradient"}
    for name in torch_api.__all__:
        assert hasattr(avalon, name), name
        assert name in ours_only or hasattr(torch, name), f"avalon.{name} is not a torch name"
        assert (getattr(avalon, name).__doc__ or "").strip(), f"avalon.{name} has no docstring"
    for name in ("cat", "stack", "flatten", "matmul", "bmm", "einsum", "where", "zeros", "ones", "full",
                 "arange", "randn", "rand", "zeros_like", "softmax", "relu", "tanh", "sigmoid", "exp", "log",
                 "clamp", "tril", "triu", "gather", "masked_fill"):
        assert name in torch_api.__all__


def test_errors_name_the_problem():
    with pytest.raises(avalon.ShapeError, match=r"bmm expects 3-D arrays, got shapes \(3, 4\) and \(4, 5\)"):
        avalon.bmm(DATA["M"], DATA["N"])
    with pytest.raises(avalon.ShapeError, match="start_dim 2 comes after end_dim 1"):
        avalon.flatten(DATA["A"], 2, 1)
    with pytest.raises(avalon.ShapeError, match="outside dimension 1 of length 3"):
        avalon.narrow(DATA["A"], 1, 2, 2)
    with pytest.raises(avalon.ShapeError, match="do not add up"):
        avalon.split(DATA["A"], [1, 1], dim=1)
