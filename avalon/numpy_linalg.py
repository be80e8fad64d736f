"""numpy's linear algebra on tracers: matmul (with numpy's 1-D rules), dot, vdot, inner, outer,
tensordot, einsum and linalg.norm, all written with the `matmul` and `einsum` primitives."""
import builtins
import string

import numpy as np

from . import numpy_api as npa
from .errors import ShapeError
from .numpy_api import _refuse_keywords, _refuse, implements
from .ops import elementwise as ew
from .ops import linalg as la


def matmul(a, b):
    """numpy's matmul (`@`, the np.matmul ufunc), 1-D cases included: a 1-D operand is promoted to a
    matrix, then its axis dropped from the result."""
    squeeze_axes = []
    if a.ndim == 1:
        a = npa.reshape(a, (1, a.shape[0]))
        squeeze_axes.append(-2)
    if b.ndim == 1:
        b = npa.reshape(b, (b.shape[0], 1))
        squeeze_axes.append(-1)
    out = la.matmul(a, b)
    if squeeze_axes:
        out = npa.squeeze(out, tuple(ax % out.ndim for ax in squeeze_axes))
    return out


@implements(np.dot)
def dot(a, b, out=None):
    _refuse_keywords("dot", out)
    if npa.ndim(a) == 0 or npa.ndim(b) == 0:  # a Python number counts as a float64 array, as numpy
        return (a if hasattr(a, "shape") else np.asarray(a)) * (b if hasattr(b, "shape") else np.asarray(b))
    if b.ndim <= 2:
        return matmul(a, b)
    return tensordot(a, b, axes=([a.ndim - 1], [b.ndim - 2]))


@implements(np.vdot)
def vdot(a, b):
    return npa.sum(npa.ravel(a) * npa.ravel(b))


@implements(np.inner)
def inner(a, b):
    return tensordot(a, b, axes=([a.ndim - 1], [b.ndim - 1]))


@implements(np.outer)
def outer(a, b, out=None):
    _refuse_keywords("outer", out)
    return npa.reshape(a, (-1, 1)) * npa.reshape(b, (1, -1))


@implements(np.tensordot)
def tensordot(a, b, axes=2):
    if isinstance(axes, int):
        axes = (list(range(a.ndim - axes, a.ndim)), list(range(axes)))
    ax_a, ax_b = ([axes[0]] if isinstance(axes[0], int) else list(axes[0]),
                  [axes[1]] if isinstance(axes[1], int) else list(axes[1]))
    letters = iter(string.ascii_letters)
    sa = [next(letters) for _ in range(a.ndim)]
    sb = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(ax_a, ax_b):
        sb[j % b.ndim] = sa[i % a.ndim]
    contracted = {sa[i % a.ndim] for i in ax_a}
    out = [c for c in sa if c not in contracted] + [c for c in sb if c not in contracted]
    return la.einsum(a, b, subscripts=f"{''.join(sa)},{''.join(sb)}->{''.join(out)}")


@implements(np.einsum)
def einsum(subscripts, *operands, out=None, optimize=False, **kw):
    _refuse_keywords("einsum", out, **kw)
    if not isinstance(subscripts, str):
        return _refuse("np.einsum with sublists (einsum(a, [0, 1], b, [1, 2])) in traced code",
                       "Avalon's einsum takes the subscripts as a string", "write them as a string: 'ij,jk->ik'")
    return la.einsum(*operands, subscripts=normalize_einsum(subscripts, [o.ndim for o in operands]))


def normalize_einsum(subscripts, ndims):
    """Explicit subscripts without spaces or ellipses: 'ij,jk' → 'ij,jk->ik'."""
    subscripts = subscripts.replace(" ", "")
    inputs, arrow, output = subscripts.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(ndims):
        raise ShapeError(f"einsum: {len(terms)} subscript terms for {len(ndims)} operands")
    used = set(subscripts) - set(".,->")
    spare = (c for c in string.ascii_letters if c not in used)
    width = builtins.max([n - len(t.replace("...", "")) for t, n in zip(terms, ndims) if "..." in t], default=0)
    ellipsis = "".join(next(spare) for _ in range(width))
    expanded = []
    for t, n in zip(terms, ndims):
        if "..." in t:
            own = n - len(t.replace("...", ""))
            t = t.replace("...", ellipsis[width - own:])
        expanded.append(t)
    if arrow:
        output = output.replace("...", ellipsis)
    else:
        counts = {}
        for t in expanded:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        output = ellipsis + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ellipsis))
    return ",".join(expanded) + "->" + output


@implements(np.linalg.norm)
def norm(x, ord=None, axis=None, keepdims=False):
    if ord not in (None, 2, "fro") or (ord == 2 and (axis is None and x.ndim > 1)):
        _refuse(f"np.linalg.norm(..., ord={ord!r}) in traced code",
                "only the 2-norm of vectors and the Frobenius norm of matrices have a rule",
                "write the norm out: `np.abs(x).sum(axis)` for ord=1, `np.abs(x).max(axis)` for ord=inf")
    return ew.sqrt(npa.sum(x * x, axis=axis, keepdims=keepdims))
