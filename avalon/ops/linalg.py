"""Linear algebra: batched matmul and einsum (dot, tensordot, outer, bmm are written with these)."""
import numpy as np

from ..backend import is_numpy_like, namespace
from ..kernels.onednn import gemm
from . import threads_split
from .primitive import primitive


def _matmul_operands(a, b, out=None):
    """Refuse operands matmul cannot combine (before it runs: what fails after is Avalon's bug)."""
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"the primitive takes matrices (2-D or more), got {a.ndim}-D and {b.ndim}-D")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"the inner dimensions differ: {a.shape[-1]} (the first's columns) and "
                         f"{b.shape[-2]} (the second's rows)")
    _broadcast(a.shape[:-2], b.shape[:-2], "the batch dimensions")


def _broadcast(s, t, what):
    for m, n in zip(reversed(s), reversed(t)):
        if m != n and 1 not in (m, n):
            raise ValueError(f"{what} {tuple(s)} and {tuple(t)} do not broadcast")


@primitive("matmul", out=True, check=_matmul_operands)
def matmul(a, b, out=None):
    """Matrix product of the last two axes, broadcast over the leading ones (both operands ≥ 2-D).

    A matrix applied over batch axes (x (…, m, k) @ W (k, n), every Linear on a sequence) is one
    (B·m, k)·(k, n) product when x's rows lie one after another: BLAS runs one large product faster
    than B small ones, and with several threads much faster (each small product waits for them all).
    """
    xp = namespace(a, b)
    done = gemm.matmul(a, b, out=out)
    if done is not None:
        return done
    if a.ndim > 2 and b.ndim == 2 and is_numpy_like(xp) and a.flags.c_contiguous \
            and (out is None or out.flags.c_contiguous):
        rows = xp.matmul(a.reshape(-1, a.shape[-1]), b, out=None if out is None else out.reshape(-1, b.shape[-1]))
        return rows.reshape(a.shape[:-1] + b.shape[-1:]) if out is None else out
    return xp.matmul(a, b) if out is None else xp.matmul(a, b, out=out)


def product(xp, a, b, out=None, alpha=1.0):
    """xp.matmul(a * alpha, b, out=out) for kernels that multiply matrices (convolutions, attention,
    scans): on oneDNN where it applies (float32 numpy arrays, oneDNN on: avalon/kernels/onednn/gemm.py;
    a batch scaled in the same pass), else the array module's own on a scaled copy of `a`."""
    done = gemm.matmul(a, b, out=out, alpha=alpha) if xp is np else None
    if done is not None:
        return done
    if alpha != 1.0:
        a = a * alpha
    return xp.matmul(a, b) if out is None else xp.matmul(a, b, out=out)


@primitive("einsum")
def einsum(*operands, subscripts):
    """Einstein summation with explicit output subscripts (`"ij,jk->ik"`)."""
    xp = namespace(*operands)
    if hasattr(xp, "einsum"):
        split = threads_split.batch_einsum(xp, subscripts, operands)  # a sum over a large batch: both cores
        return split if split is not None else xp.einsum(subscripts, *operands, optimize=len(operands) > 2)
    return _einsum_by_broadcasting(xp, operands, subscripts)


def _einsum_by_broadcasting(xp, operands, subscripts):
    """einsum where the namespace has none (the array API): each operand is laid out over all the
    indices (size 1 where it lacks one), the operands are multiplied, and the indices the output
    lacks are summed out."""
    inputs, output = subscripts.split("->")
    terms = inputs.split(",")
    letters = "".join(dict.fromkeys(inputs.replace(",", "")))
    product = None
    for term, x in zip(terms, operands):
        if len(set(term)) != len(term):
            raise NotImplementedError(f"einsum {subscripts!r}: an index repeated within one operand (a "
                                      f"diagonal) needs a namespace with einsum; {xp.__name__} has none")
        ordered = sorted(term, key=letters.index)
        x = xp.permute_dims(x, tuple(term.index(c) for c in ordered))
        x = xp.reshape(x, tuple(x.shape[ordered.index(c)] if c in term else 1 for c in letters))
        product = x if product is None else product * x
    summed = tuple(i for i, c in enumerate(letters) if c not in output)
    if summed:
        product = xp.sum(product, axis=summed)
    remaining = [c for c in letters if c in output]
    return xp.permute_dims(product, tuple(remaining.index(c) for c in output))
