"""Linear algebra: batched matmul and einsum (dot, tensordot, outer, bmm are written with these)."""
from ..backend import namespace
from .primitive import primitive


@primitive("matmul", xp_name=("matmul",), out=True)
def matmul(a, b):
    """Matrix product of the last two axes, broadcast over the leading ones (both operands ≥ 2-D)."""
    return namespace(a, b).matmul(a, b)


@primitive("einsum")
def einsum(*operands, subscripts):
    """Einstein summation with explicit output subscripts (`"ij,jk->ik"`)."""
    return namespace(*operands).einsum(subscripts, *operands, optimize=len(operands) > 2)
