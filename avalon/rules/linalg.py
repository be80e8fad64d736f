"""Rules of matmul and einsum."""
from .. import numpy_api as npa
from ..errors import AvalonError
from ..ops import linalg as la
from .registry import rule


@rule(la.matmul)
def _matmul(g, out, a, b):
    return la.matmul(g, npa.swapaxes(b, -1, -2)), la.matmul(npa.swapaxes(a, -1, -2), g)


@rule(la.einsum)
def _einsum(g, out, *operands, subscripts):
    inputs, output = subscripts.split("->")
    terms = inputs.split(",")
    grads = []
    for i, (term, x) in enumerate(zip(terms, operands)):
        if len(set(term)) != len(term):
            raise AvalonError(f"einsum {subscripts!r}: no rule for a repeated index within one operand")
        others = [t for j, t in enumerate(terms) if j != i]
        available = set(output).union(*others) if others else set(output)
        kept = "".join(c for c in term if c in available)
        spec = ",".join([output] + others) + "->" + kept
        gi = la.einsum(g, *[o for j, o in enumerate(operands) if j != i], subscripts=spec)
        if kept != term:  # indices summed within this operand alone: broadcast back
            shape = tuple(x.shape[term.index(c)] if c in kept else 1 for c in term)
            gi = npa.broadcast_to(npa.reshape(gi, shape), x.shape)
        grads.append(gi)
    return tuple(grads)
