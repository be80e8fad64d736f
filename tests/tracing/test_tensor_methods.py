"""torch.Tensor's methods on tracers, each against torch on the same data (value, dtype, shape), a
few gradients against torch's backward, and numpy's spellings where they do not collide."""
import numpy as np
import pytest

import avalon
from avalon.tensor import wrap
from tracing_parity import DATA, assert_like_torch, torch_grad, traced

torch = pytest.importorskip("torch")

F64 = np.float64
DATA["flatpos"] = np.array([5, 0, -1])  # distinct flat positions (put without accumulate)

# (id, method call, inputs); the same call runs on torch tensors and on tracers
SAME = [
    ("view", lambda a: a.view(3, 8), "A"),
    ("view-tuple", lambda a: a.view((4, -1)), "A"),
    ("reshape", lambda a: a.reshape(-1), "A"),
    ("reshape-tuple", lambda a: a.reshape((6, 4)), "A"),
    ("view_as", lambda n, b: n.view_as(b[0]), "N", "B"),
    ("reshape_as", lambda a, b: a.reshape_as(b), "A", "A2"),
    ("permute", lambda a: a.permute(2, 0, 1), "A"),
    ("permute-tuple", lambda a: a.permute((1, 2, 0)), "A"),
    ("permute-negative", lambda a: a.permute(-1, 0, 1), "A"),
    ("transpose", lambda a: a.transpose(0, 2), "A"),
    ("transpose-negative", lambda a: a.transpose(-1, -2), "A"),
    ("t", lambda m: m.t(), "M"),
    ("T", lambda m: m.T, "M"),
    ("mT", lambda a: a.mT, "A"),
    ("size", lambda a: a.size(), "A"),
    ("size-dim", lambda a: a.size(1), "A"),
    ("size-negative", lambda a: a.size(-1), "A"),
    ("shape", lambda a: a.shape, "A"),
    ("dim", lambda a: a.dim(), "A"),
    ("ndim", lambda a: a.ndim, "A"),
    ("numel", lambda a: a.numel(), "A"),
    ("len", lambda a: len(a), "A"),
    ("unsqueeze", lambda a: a.unsqueeze(0), "A"),
    ("unsqueeze-negative", lambda a: a.unsqueeze(-1), "A"),
    ("unsqueeze-middle", lambda a: a.unsqueeze(-2), "A"),
    ("squeeze", lambda r: r.squeeze(), "R"),
    ("squeeze-dim", lambda r: r.squeeze(2), "R"),
    ("squeeze-non-unit", lambda r: r.squeeze(1), "R"),
    ("squeeze-dims", lambda r: r.squeeze((0, 2)), "R"),
    ("flatten", lambda a: a.flatten(), "A"),
    ("flatten-start", lambda a: a.flatten(1), "A"),
    ("flatten-range", lambda a: a.flatten(0, 1), "A"),
    ("flatten-negative", lambda a: a.flatten(-2, -1), "A"),
    ("unflatten", lambda a: a.unflatten(2, (2, 2)), "A"),
    ("unflatten-minus-one", lambda a: a.unflatten(-1, (-1, 2)), "A"),
    ("expand", lambda r: r.expand(2, -1, 4), "R"),
    ("expand-new-axis", lambda v: v.expand(3, 4), "V"),
    ("expand_as", lambda r, a: r.expand_as(a), "R", "A"),
    ("broadcast_to", lambda r: r.broadcast_to((2, 2, 3, 4)), "R"),
    ("repeat", lambda m: m.repeat(2, 1), "M"),
    ("repeat-new-axis", lambda v: v.repeat(2, 1, 2), "V"),
    ("repeat_interleave", lambda m: m.repeat_interleave(2, dim=1), "M"),
    ("repeat_interleave-flat", lambda m: m.repeat_interleave(2), "M"),
    ("flip", lambda a: a.flip(0), "A"),
    ("flip-dims", lambda a: a.flip((0, 2)), "A"),
    ("chunk", lambda a: a.chunk(2, dim=1), "A"),
    ("chunk-uneven", lambda a: a.chunk(3, 2), "A"),
    ("chunk-negative", lambda a: a.chunk(2, -1), "A"),
    ("split", lambda a: a.split(2, dim=-1), "A"),
    ("split-uneven", lambda a: a.split(2, 1), "A"),
    ("split-sizes", lambda a: a.split([1, 3], dim=2), "A"),
    ("unbind", lambda a: a.unbind(1), "A"),
    ("narrow", lambda a: a.narrow(2, 1, 2), "A"),
    ("narrow-negative-start", lambda a: a.narrow(-1, -3, 2), "A"),
    ("contiguous", lambda a: a.contiguous(), "A"),
    ("clone", lambda a: a.clone(), "A"),
    ("float", lambda x: x.float(), "X"),
    ("double", lambda a: a.double(), "A"),
    ("half", lambda a: a.half(), "A"),
    ("long", lambda a: (a * 3).long(), "A"),
    ("int", lambda a: (a * 3).int(), "A"),
    ("bool", lambda a: a.bool(), "A"),
    ("type_as", lambda a, x: a.type_as(x), "A", "X"),
    ("to-tensor", lambda a, x: a.to(x), "A", "X"),
    ("is_floating_point", lambda a: a.is_floating_point(), "A"),
    ("sum", lambda a: a.sum(), "A"),
    ("sum-dim", lambda a: a.sum(1), "A"),
    ("sum-keepdim", lambda a: a.sum(1, keepdim=True), "A"),
    ("sum-dims", lambda a: a.sum(dim=(0, 2)), "A"),
    ("sum-negative", lambda a: a.sum(-1, True), "A"),
    ("mean", lambda a: a.mean(), "A"),
    ("mean-dim", lambda a: a.mean(dim=-2, keepdim=True), "A"),
    ("prod", lambda p: p.prod(1), "P"),
    ("max", lambda a: a.max(), "A"),
    ("max-dim", lambda a: a.max(1), "A"),
    ("max-keepdim", lambda a: a.max(dim=-1, keepdim=True), "A"),
    ("max-other", lambda a, b: a.max(b), "A", "A2"),
    ("min-dim", lambda a: a.min(0), "A"),
    ("amax", lambda a: a.amax(1), "A"),
    ("amin-dims", lambda a: a.amin((0, 2)), "A"),
    ("argmax", lambda a: a.argmax(), "A"),
    ("argmax-dim", lambda a: a.argmax(1), "A"),
    ("argmin-keepdim", lambda a: a.argmin(2, keepdim=True), "A"),
    ("var", lambda a: a.var(), "A"),
    ("var-dim", lambda a: a.var(1), "A"),
    ("var-biased", lambda a: a.var(1, unbiased=False), "A"),
    ("var-correction", lambda a: a.var(dim=2, correction=0, keepdim=True), "A"),
    ("std", lambda a: a.std(0, keepdim=True), "A"),
    ("logsumexp", lambda a: a.logsumexp(1), "A"),
    ("logsumexp-keepdim", lambda a: a.logsumexp(-1, keepdim=True), "A"),
    ("cumsum", lambda a: a.cumsum(1), "A"),
    ("cumprod", lambda p: p.cumprod(-1), "P"),
    ("all", lambda c: c.all(), "cond"),
    ("any-dim", lambda c: c.any(1), "cond"),
    ("all-keepdim", lambda c: c.all(dim=0, keepdim=True), "cond"),
    ("norm", lambda a: a.norm(), "A"),
    ("norm-dim", lambda a: a.norm(dim=1), "A"),
    ("abs", lambda a: a.abs(), "A"),
    ("exp", lambda a: a.exp(), "A"),
    ("log", lambda p: p.log(), "P"),
    ("log1p", lambda p: p.log1p(), "P"),
    ("sqrt", lambda p: p.sqrt(), "P"),
    ("rsqrt", lambda p: p.rsqrt(), "P"),
    ("square", lambda a: a.square(), "A"),
    ("sin", lambda a: a.sin(), "A"),
    ("cos", lambda a: a.cos(), "A"),
    ("tanh", lambda a: a.tanh(), "A"),
    ("sigmoid", lambda a: a.sigmoid(), "A"),
    ("relu", lambda a: a.relu(), "A"),
    ("neg", lambda a: a.neg(), "A"),
    ("reciprocal", lambda p: p.reciprocal(), "P"),
    ("sign", lambda a: a.sign(), "A"),
    ("floor", lambda a: (a * 3).floor(), "A"),
    ("ceil", lambda a: (a * 3).ceil(), "A"),
    ("round", lambda a: (a * 3).round(), "A"),
    ("round-decimals", lambda a: a.round(decimals=1), "A"),
    ("isnan", lambda a: a.log().isnan(), "A"),
    ("isfinite", lambda a: (1 / (a * 0)).isfinite(), "A"),
    ("isinf", lambda a: (1 / (a * 0)).isinf(), "A"),
    ("pow", lambda a: a.pow(2), "A"),
    ("pow-operator", lambda p: p ** 1.5, "P"),
    ("clamp", lambda a: a.clamp(-0.5, 0.5), "A"),
    ("clamp-min", lambda a: a.clamp(min=0), "A"),
    ("clip-max", lambda a: a.clip(max=0.1), "A"),
    ("softmax", lambda a: a.softmax(1), "A"),
    ("softmax-negative", lambda a: a.softmax(-1), "A"),
    ("log_softmax", lambda a: a.log_softmax(-1), "A"),
    ("maximum", lambda a, b: a.maximum(b), "A", "A2"),
    ("minimum", lambda a, b: a.minimum(b), "A", "A2"),
    ("matmul", lambda m, n: m.matmul(n), "M", "N"),
    ("matmul-operator", lambda a, b: a @ b, "A", "B"),
    ("mm", lambda m, n: m.mm(n), "M", "N"),
    ("bmm", lambda a, b: a.bmm(b), "A", "B"),
    ("dot", lambda v, w: v.dot(w), "V", "W"),
    ("masked_fill", lambda m, k: m.masked_fill(k, -1.5), "M", "mask"),
    ("masked_fill-inf", lambda m, k: m.masked_fill(k, float("-inf")).softmax(-1), "M", "mask"),
    ("where", lambda a, c, b: a.where(c, b), "A", "cond", "A2"),
    ("gather", lambda m, i: m.gather(1, i), "M", "idx"),
    ("take", lambda m, i: m.take(i), "M", "rows"),
    ("take_along_dim", lambda m, i: m.take_along_dim(i, 1), "M", "idx"),
    ("take_along_dim-flat", lambda m, i: m.take_along_dim(i), "M", "idx"),
    ("diagonal", lambda s: s.diagonal(), "S"),
    ("diagonal-offset-dims", lambda a: a.diagonal(1, 1, 2), "A"),
    ("trace", lambda s: s.trace(), "S"),
    ("sort", lambda a: a.sort(), "A"),
    ("sort-dim-descending", lambda a: a.sort(0, descending=True), "A"),
    ("sort-stable-ties", lambda t: t.sort(stable=True), "T"),
    ("argsort", lambda a: a.argsort(1), "A"),
    ("argsort-descending", lambda a: a.argsort(dim=-1, descending=True), "A"),
    ("put", lambda m, i, w: m.put(i, w[:3]), "M", "flatpos", "W"),
    ("put-accumulate", lambda m, i, w: m.put(i, w[:3], accumulate=True), "M", "rows", "W"),
    ("conj", lambda a: a.conj(), "A"),
    ("index_select", lambda m, i: m.index_select(0, i), "M", "rows"),
    ("index_add", lambda m, i, n: m.index_add(0, i, n[:3, :4] * 2), "M", "rows", "N"),
    ("scatter_add", lambda m, i, n: m.scatter_add(0, i, n), "M", "scat", "N"),
    ("tril", lambda s: s.tril(), "S"),
    ("triu-diagonal", lambda s: s.triu(1), "S"),
    ("tril-batched", lambda a: a.tril(-1), "A"),
    ("eq", lambda t: t.eq(3.0), "T"),
    ("ne", lambda t: t.ne(3.0), "T"),
    ("lt", lambda a, b: a.lt(b), "A", "A2"),
    ("le", lambda t: t.le(2.0), "T"),
    ("gt", lambda a: a.gt(0), "A"),
    ("ge", lambda t: t.ge(3.0), "T"),
    ("add-alpha", lambda a, b: a.add(b, alpha=2), "A", "A2"),
    ("sub", lambda a, b: a.sub(b), "A", "A2"),
    ("mul", lambda a, b: a.mul(b), "A", "A2"),
    ("div", lambda a, p: a.div(p), "A", "P"),
    ("floor-divide-operator", lambda a: (a * 4) // 1.5, "A"),
    ("remainder-operator", lambda a: (a * 4) % 1.5, "A"),
    ("comparison-operators", lambda a, b: ((a < b) & (a > -1)) | ~(b >= 0), "A", "A2"),
    ("detach", lambda a: a.detach(), "A"),
    ("getitem", lambda a: a[1, ::2, -1], "A"),
    ("getitem-ellipsis-none", lambda a: a[..., None, 1:3], "A"),
    ("getitem-index-array", lambda m, i: m[i], "M", "rows"),
    ("getitem-index-and-slice", lambda m, i: m[i, 1:], "M", "rows"),
    ("getitem-two-index-arrays", lambda m, i: m[i, i + 1], "M", "rows"),
]

# (id, on tracers, on torch tensors, inputs): numpy's spellings, and torch's arguments that numpy's
# dtypes stand in for
DIFFERENT = [
    ("sum-axis-keepdims", lambda a: a.sum(axis=1, keepdims=True), lambda a: a.sum(dim=1, keepdim=True), "A"),
    ("mean-axis", lambda a: a.mean(axis=(0, 1)), lambda a: a.mean(dim=(0, 1)), "A"),
    ("var-ddof", lambda a: a.var(axis=0, ddof=0), lambda a: a.var(dim=0, unbiased=False), "A"),
    ("max-axis", lambda a: a.max(axis=2), lambda a: a.amax(dim=2), "A"),
    ("amax-axis-keepdims", lambda a: a.amax(axis=0, keepdims=True), lambda a: a.amax(0, keepdim=True), "A"),
    ("astype", lambda a: a.astype(np.float64), lambda a: a.to(torch.float64), "A"),
    ("to-dtype", lambda a: a.to(np.int64), lambda a: a.to(torch.int64), "A"),
    ("to-device-dtype", lambda a: a.to("cpu", np.float64), lambda a: a.to("cpu", torch.float64), "A"),
    ("sum-dtype", lambda a: a.sum(1, dtype=np.float64), lambda a: a.sum(1, dtype=torch.float64), "A"),
    ("transpose-no-args", lambda m: m.transpose(), lambda m: m.permute(1, 0), "M"),
    ("transpose-axes", lambda a: a.transpose((2, 0, 1)), lambda a: a.permute(2, 0, 1), "A"),
    ("swapaxes", lambda a: a.swapaxes(0, 1), lambda a: a.swapaxes(0, 1), "A"),
    ("size-attribute", lambda a: a.size, lambda a: a.numel(), "A"),
    ("copy", lambda a: a.copy(), lambda a: a.clone(), "A"),
    ("ravel", lambda a: a.ravel(), lambda a: a.ravel(), "A"),
    ("cumsum-flat", lambda a: a.cumsum(), lambda a: a.flatten().cumsum(0), "A"),
    ("clip-numpy", lambda a: a.clip(a_min=-0.2, a_max=0.3), lambda a: a.clip(-0.2, 0.3), "A"),
]

# creation methods give constants of the tape (tracers inside traced code, Tensors outside), as avalon.zeros does
CREATION = [
    ("new_zeros", lambda a: a.new_zeros(2, 3), lambda a: a.new_zeros(2, 3), "A"),
    ("new_ones", lambda x: x.new_ones((2,)), lambda x: x.new_ones((2,)), "X"),
    ("new_full", lambda a: a.new_full((2, 2), 7.0), lambda a: a.new_full((2, 2), 7.0), "A"),
    ("new_tensor", lambda a: a.new_tensor([1.5, 2.0]), lambda a: a.new_tensor([1.5, 2.0]), "A"),
    ("new_zeros-dtype", lambda a: a.new_zeros(2, dtype=np.int64), lambda a: a.new_zeros(2, dtype=torch.int64), "A"),
    ("new_empty", lambda a: a.new_empty(2, 3).shape, lambda a: a.new_empty(2, 3).shape, "A"),
]


def _cases():
    for case in SAME:
        yield pytest.param(case[1], case[1], case[2:], True, id=case[0])
    for case in DIFFERENT:
        yield pytest.param(case[1], case[2], case[3:], True, id=case[0])
    for case in CREATION:
        yield pytest.param(case[1], case[2], case[3:], False, id=case[0])


@pytest.mark.parametrize("ours, theirs, names, on_tape", list(_cases()))
def test_method_matches_torch(ours, theirs, names, on_tape):
    arrays = [DATA[n] for n in names]
    with np.errstate(all="ignore"):  # isnan / isinf cases make NaNs and infinities on purpose
        result, recorded = traced(ours, *arrays)
    assert recorded or not on_tape, "an array result was computed off the tape"
    expected = theirs(*(torch.from_numpy(a) for a in arrays))
    assert_like_torch(result, expected, torch)


@pytest.mark.parametrize("ours, theirs, names, on_tape", list(_cases()))
def test_method_on_tensors_matches_torch(ours, theirs, names, on_tape):
    arrays = [DATA[n] for n in names]
    with np.errstate(all="ignore"):
        result = ours(*(wrap(a) for a in arrays))
    expected = theirs(*(torch.from_numpy(a) for a in arrays))
    assert_like_torch(result, expected, torch)


# gradients: avalon.grad of sum(method(x) * weights) against torch's backward
GRADIENTS = [
    ("view-permute", lambda a: a.view(6, 4).t().permute(1, 0), "A"),
    ("transpose-flatten", lambda a: a.transpose(0, 2).flatten(1), "A"),
    ("expand", lambda r: r.expand(2, 3, 4), "R"),
    ("chunk", lambda a: a.chunk(3, 2)[1], "A"),
    ("split", lambda a: a.split([1, 3], dim=-1)[1], "A"),
    ("narrow", lambda a: a.narrow(-1, -3, 2), "A"),
    ("repeat", lambda m: m.repeat(2, 3), "M"),
    ("masked_fill", lambda m, k: m.masked_fill(k, 0.5), "M", "mask"),
    ("sum-keepdim", lambda a: a.sum(1, keepdim=True), "A"),
    ("max-dim-values", lambda t: t.max(1)[0], "T"),
    ("min-dim-keepdim", lambda t: t.min(dim=0, keepdim=True).values, "T"),
    ("max-whole-tie", lambda t: t.clamp(max=3.0).max(), "T"),
    ("amax-tie", lambda t: t.amax(1), "T"),
    ("var", lambda a: a.var(2), "A"),
    ("std", lambda a: a.std(0, keepdim=True), "A"),
    ("norm", lambda a: a.norm(dim=1), "A"),
    ("softmax", lambda a: a.softmax(-1), "A"),
    ("log_softmax", lambda a: a.log_softmax(1), "A"),
    ("gather", lambda m, i: m.gather(1, i), "M", "idx"),
    ("sort-values", lambda a: a.sort(1, descending=True).values, "A"),
    ("take", lambda m, i: m.take(i), "M", "rows"),
    ("put", lambda m, i, w: m.put(i, w[:3]), "M", "flatpos", "W"),
    ("diagonal", lambda a: a.diagonal(-1, 0, 2), "A"),
    ("index_add", lambda m, i, n: m.index_add(0, i, n[:3, :4]), "M", "rows", "N"),
    ("bmm", lambda a, b: a.bmm(b), "A", "B"),
    ("clamp", lambda a: a.clamp(-0.5, 0.5), "A"),
    ("cumprod", lambda p: p.cumprod(1), "P"),
    ("where", lambda a, c, b: a.where(c, b), "A", "cond", "A2"),
]


@pytest.mark.parametrize("fn, names", [pytest.param(c[1], c[2:], id=c[0]) for c in GRADIENTS])
def test_method_gradient_matches_torch(fn, names):
    arrays = [DATA[n] for n in names]
    expected, weights = torch_grad(torch, fn, arrays)

    def loss(*xs):
        return (fn(*xs) * weights).sum()

    _, grads = avalon.grad(loss, *arrays)
    for ours, theirs in zip(grads, expected):
        if theirs is not None:
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_collisions_are_documented():
    doc = avalon.tracing.methods.__doc__
    for name in ("transpose(d0, d1)", "repeat(*sizes)", "flatten(start_dim=0, end_dim=-1)", "max(dim)",
                 "var()", "view(*shape)", "sum(dim, keepdim, dtype)", "x.size"):
        assert name in doc


def test_in_place_methods_exist_but_are_refused_when_called():
    def f(x):
        assert hasattr(x, "add_") and hasattr(x, "zero_") and not hasattr(x, "no_such_method_")
        first = x[0]  # a live view: the write would have to change it too
        return x.mul_(2) + first

    with pytest.raises(avalon.UnsupportedConstruct, match=r"in-place method \.mul_\(\)"):
        avalon.trace(f, DATA["A"])


def test_unknown_attribute_is_an_attribute_error():
    def f(x):
        return x.no_such_attribute

    with pytest.raises(AttributeError, match="no_such_attribute"):
        avalon.trace(f, DATA["A"])
