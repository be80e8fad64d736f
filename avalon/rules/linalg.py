"""Rules of matmul and einsum."""
import string

from .. import numpy_api as npa
from ..ops import linalg as la
from .registry import array_module, rule


@rule(la.matmul)
def _matmul(g, out, a, b):
    if a.ndim > 2 and b.ndim == 2:  # a matrix applied over batch axes (every Linear on a sequence)
        return la.matmul(g, npa.swapaxes(b, -1, -2)), _shared_matrix_grad(g, a)
    return la.matmul(g, npa.swapaxes(b, -1, -2)), la.matmul(npa.swapaxes(a, -1, -2), g)


def _shared_matrix_grad(g, a):
    """Σ over the batch axes of aᵀ·g, as one GEMM over the rows of every batch: (B·m, k)ᵀ·(B·m, n).
    The batched product would compute B (k, n) matrices and then sum them, a B-times larger
    intermediate and B small GEMMs."""
    rows_a = npa.reshape(a, (-1, a.shape[-1]))
    rows_g = npa.reshape(g, (-1, g.shape[-1]))
    return la.matmul(npa.swapaxes(rows_a, -1, -2), rows_g)


@rule(la.einsum)
def _einsum(g, out, *operands, subscripts):
    inputs, output = subscripts.split("->")
    terms = inputs.split(",")
    grads = []
    for i, (term, x) in enumerate(zip(terms, operands)):
        others = [t for j, t in enumerate(terms) if j != i]
        sizes = dict(zip(term, x.shape))
        unique = "".join(dict.fromkeys(term))
        available = set(output).union(*others)
        kept = "".join(c for c in unique if c in available)
        spec = ",".join([output] + others) + "->" + kept
        gi = la.einsum(g, *[o for j, o in enumerate(operands) if j != i], subscripts=spec)
        if kept != unique:  # indices summed within this operand alone: broadcast back
            shape = tuple(sizes[c] if c in kept else 1 for c in unique)
            gi = npa.broadcast_to(npa.reshape(gi, shape), tuple(sizes[c] for c in unique))
        if unique != term:
            gi = _onto_diagonals(gi, unique, term, sizes)
        grads.append(gi)
    return tuple(grads)


# What the rule reads of a call (avalon.tracing.release): each operand's gradient reads the other
# operands, so a lone operand's value (a mean taken with einsum) is read by no one.
_einsum.reads = lambda call: (False, frozenset(range(len(call.args)) if len(call.args) > 1 else ()))


def _onto_diagonals(gi, unique, term, sizes):
    """A gradient over `unique` placed on the diagonals of `term`, where an index repeats ('ii', 'iji'):
    each repeat gets a fresh index tied to the first by an identity matrix."""
    fresh = (c for c in string.ascii_letters if c not in term)
    xp = array_module(gi)
    target, ties, seen = [], [], set()
    for c in term:
        if c in seen:
            d = next(fresh)
            target.append(d)
            ties.append(c + d)
        else:
            seen.add(c)
            target.append(c)
    eyes = [xp.eye(sizes[t[0]], dtype=gi.dtype) for t in ties]
    return la.einsum(gi, *eyes, subscripts=",".join([unique] + ties) + "->" + "".join(target))
