"""Affine maps: `linear` (x·Wᵀ + b) and `bilinear` (x₁ᵀ A_k x₂ + b_k)."""
from ...errors import ShapeError
from ...ops import linalg as la
from ..errors import array_input, input_error

__all__ = ["linear", "bilinear"]


def linear(input, weight, bias=None):
    """input @ weight.T + bias, over the last dimension of `input` (weight: (out, in))."""
    array_input("linear", input)
    if weight.ndim not in (1, 2) or input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise input_error("linear", f"(*, {weight.shape[-1]}) for a weight of shape {tuple(weight.shape)}",
                          input.shape, "the input's last dimension must be the weight's last (in_features)")
    out = input @ weight.T
    return out if bias is None else out + bias


def bilinear(input1, input2, weight, bias=None):
    """y_k = input1ᵀ · weight[k] · input2 + bias[k] over the last dimensions (weight: (out, in1, in2))."""
    if tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]):
        raise ShapeError(f"bilinear: inputs have different leading shapes {tuple(input1.shape)} and "
                         f"{tuple(input2.shape)}; all but the last dimension must agree")
    lead = tuple(input1.shape[:-1])
    x1 = input1.reshape((-1, input1.shape[-1]))
    x2 = input2.reshape((-1, input2.shape[-1]))
    out = la.einsum(x1, weight, x2, subscripts="ni,kij,nj->nk").reshape(lead + (weight.shape[0],))
    return out if bias is None else out + bias
