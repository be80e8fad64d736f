"""Linear algebra: matmul (batched, broadcast, 1-D cases), dot, einsum, tensordot, outer."""
import numpy as np
import pytest
from opcheck import check_fd, check_torch, sample

import avalon


def torch():
    """PyTorch, imported only by the parity tests (which are skipped without it)."""
    return pytest.importorskip("torch")


MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((2, 3, 4), (4, 5)),
    ((2, 2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 4, 3)),
    ((1, 1), (1, 1)),
]
MATMULS = [
    ("@", lambda a, b: a @ b),
    ("np.matmul", np.matmul),
    ("avalon.matmul", avalon.matmul),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
@pytest.mark.parametrize("name, fn", MATMULS, ids=[m[0] for m in MATMULS])
def test_matmul(name, fn, shapes, rng):
    a, b = sample("real", shapes[0], rng), sample("real", shapes[1], rng)
    check_fd(fn, a, b)
    # float32 sums of a few products: the summation order differs from torch's
    check_torch(fn, lambda a, b: a @ b, a, b, rtol=1e-5, atol=1e-5)


def test_matmul_with_a_constant_operand(rng):
    a, w = sample("real", (3, 4), rng), sample("real", (4, 2), rng)
    check_fd(lambda a: a @ w, a)
    check_fd(lambda a: w.T @ a.T, a)


def test_a_matrix_over_batch_axes_gets_its_gradient_from_one_product(rng):
    """x (…, m, k) @ W (k, n): W's gradient is one (B·m, k)ᵀ·(B·m, n) product, not B products and a sum
    over a B-times larger array; a transposed (non-contiguous) x too."""
    x, w = sample("real", (3, 2, 5, 4), rng), sample("real", (4, 6), rng)
    tape = avalon.grad_tape(lambda x, w: np.tanh(x.transpose(1, 0, 2, 3) @ w).sum(), x, w)
    names = [n.prim.name for n in tape.nodes if hasattr(n, "prim")]
    assert "sum_to" not in names
    assert any(n.prim.name == "matmul" and tuple(n.shape) == (4, 6) for n in tape.nodes if hasattr(n, "prim"))
    check_fd(lambda x, w: x.transpose(1, 0, 2, 3) @ w, x, w)
    check_torch(lambda x, w: x.transpose(1, 0, 2, 3) @ w, lambda x, w: x.permute(1, 0, 2, 3) @ w, x, w,
                rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_matmul_primitive_over_batch_axes_into_out(layout, rng):
    """The primitive computes x (…, m, k) @ W as one product over all rows when x's rows lie one after
    another, and as numpy's batched product otherwise; both equal numpy's, with or without `out=`
    (where compiled replays put the result)."""
    from avalon.ops import linalg

    x = sample("real", (3, 2, 5, 4), rng)
    x = x if layout == "contiguous" else x.transpose(1, 0, 2, 3)
    w = sample("real", (4, 6), rng)
    expected = np.matmul(x, w)
    np.testing.assert_allclose(linalg.matmul(x, w), expected, rtol=1e-6)
    out = np.full(expected.shape, np.nan, dtype=expected.dtype)
    assert linalg.matmul.impl(x, w, out=out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_torch_style_products(rng):
    a, b = sample("real", (2, 3, 4), rng), sample("real", (2, 4, 5), rng)
    with pytest.raises(avalon.AvalonError, match="bmm expects .*3-D"):
        avalon.bmm(a[0], b[0])
    check_torch(avalon.bmm, lambda a, b: a.bmm(b), a, b, atol=1e-5)
    check_torch(avalon.mm, lambda a, b: a.mm(b), a[0], b[0], atol=1e-5)


DOTS = [
    ("dot 1-D", np.dot, lambda a, b: a.dot(b), (4,), (4,)),
    ("dot 2-D 1-D", np.dot, lambda a, b: a @ b, (3, 4), (4,)),
    ("dot 2-D", np.dot, lambda a, b: a @ b, (3, 4), (4, 5)),
    ("dot N-D", np.dot, lambda a, b: torch().tensordot(a, b, dims=([2], [1])), (2, 3, 4), (5, 4, 2)),
    ("dot scalar", np.dot, lambda a, b: a * b, (), (3, 2)),
    ("inner", np.inner, lambda a, b: torch().inner(a, b), (2, 4), (3, 4)),
    ("vdot", np.vdot, lambda a, b: (a * b).sum(), (3, 4), (3, 4)),
    ("outer", np.outer, lambda a, b: torch().outer(a, b), (3,), (4,)),
    ("outer of 2-D (flattens)", np.outer, lambda a, b: torch().outer(a.flatten(), b.flatten()), (2, 2), (3,)),
    ("avalon.outer", avalon.outer, lambda a, b: torch().outer(a, b), (3,), (2,)),
    ("tensordot axes=2", np.tensordot, lambda a, b: torch().tensordot(a, b, dims=2), (2, 3, 4), (3, 4, 5)),
    ("tensordot axes=1", lambda a, b: np.tensordot(a, b, axes=1), lambda a, b: torch().tensordot(a, b, dims=1),
     (2, 3), (3, 4)),
    ("tensordot axes=0", lambda a, b: np.tensordot(a, b, axes=0), lambda a, b: torch().tensordot(a, b, dims=0),
     (2, 3), (2,)),
    ("tensordot axis lists", lambda a, b: np.tensordot(a, b, axes=([1, 0], [0, 2])),
     lambda a, b: torch().tensordot(a, b, dims=([1, 0], [0, 2])), (3, 2, 4), (2, 5, 3)),
    ("tensordot negative axes", lambda a, b: np.tensordot(a, b, axes=([-1], [0])),
     lambda a, b: torch().tensordot(a, b, dims=([2], [0])), (2, 3, 4), (4, 2)),
]


@pytest.mark.parametrize("name, fn, torch_fn, sa, sb", DOTS, ids=[d[0] for d in DOTS])
def test_dot_family(name, fn, torch_fn, sa, sb, rng):
    a, b = sample("real", sa, rng), sample("real", sb, rng)
    check_fd(fn, a, b)
    check_torch(fn, torch_fn, a, b, atol=1e-5)


EINSUMS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),  # implicit output: sorted once-used indices
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("...ij,...jk", [(2, 1, 3, 4), (5, 4, 2)]),
    ("i...,i->...", [(3, 2, 2), (3,)]),
    ("ij,kl->i", [(2, 3), (4, 5)]),  # indices summed out within one operand
    ("ij,kl->ik", [(2, 3), (4, 5)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij->", [(3, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ijk->kj", [(2, 3, 4)]),
    ("ijk,ik->j", [(2, 3, 4), (2, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("ab,bc,ca->", [(2, 3), (3, 4), (4, 2)]),
    ("i,i->", [(5,), (5,)]),
    ("ii->i", [(3, 3)]),  # diagonal
    ("ii->", [(3, 3)]),  # trace
    ("iij->j", [(3, 3, 2)]),
    ("ij,jj->i", [(2, 3), (3, 3)]),
    ("iji->j", [(2, 3, 2)]),
]


@pytest.mark.parametrize("subscripts, shapes", EINSUMS, ids=[e[0] for e in EINSUMS])
def test_einsum(subscripts, shapes, rng):
    args = [sample("real", s, rng) for s in shapes]
    fn = lambda *xs: np.einsum(subscripts, *xs)  # noqa: E731
    check_fd(fn, *args)
    check_torch(fn, lambda *ts: torch().einsum(subscripts, *ts), *args, atol=1e-5)


def test_avalon_einsum_takes_torch_arguments(rng):
    a, b = sample("real", (3, 4), rng), sample("real", (4, 2), rng)
    check_torch(lambda a, b: avalon.einsum("ij,jk->ik", a, b), lambda a, b: torch().einsum("ij,jk->ik", a, b),
                a, b, atol=1e-5)
    check_torch(lambda a, b: avalon.einsum("ij,jk->ik", [a, b]), lambda a, b: torch().einsum("ij,jk->ik", [a, b]),
                a, b, atol=1e-5)


def test_matmul_differentiates_twice(rng):
    a, b = sample("real", (2, 3, 4), rng), sample("real", (4, 2), rng)

    def gradient(a, b):
        _, (ga, gb) = avalon.grad(lambda a, b: np.tanh(a @ b).sum(), a, b)
        return ga, gb

    check_fd(gradient, a, b)
