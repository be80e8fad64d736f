"""Floating-point operation counts of the primitives whose cost is arithmetic, not memory traffic:
matrix products, einsum and convolutions (forward and both adjoints). A multiply-add counts as 2."""
import math

from ..tape import Node


def _shape(arg):
    return tuple(arg.shape) if isinstance(arg, Node) else ()


def _matmul(node):
    a = _shape(node.args[0])
    k = a[-1] if a else 1
    return 2 * math.prod(node.shape) * k


def _einsum(node):
    subscripts = node.params.get("subscripts", "")
    inputs = subscripts.split("->")[0].split(",")
    sizes = {}
    for letters, arg in zip(inputs, node.args):
        for letter, size in zip(letters.strip(), _shape(arg)):
            sizes[letter] = size
    # every index combination is visited once: a multiply per extra operand, then one add
    return len(inputs) * math.prod(sizes.values())


def _conv(node):
    # conv(x, w): each output element is a dot product over C/groups × kernel
    return 2 * math.prod(node.shape) * math.prod(_shape(node.args[1])[1:])


def _conv_transpose(node):
    # the adjoint does the forward convolution's work, with `g` (the forward's output) as operand
    return 2 * math.prod(_shape(node.args[0])) * math.prod(_shape(node.args[1])[1:])


def _conv_weight_grad(node):
    return 2 * math.prod(_shape(node.args[1])) * math.prod(node.shape[1:])


COUNTS = {
    "matmul": _matmul,
    "einsum": _einsum,
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "conv_weight_grad": _conv_weight_grad,
}


def flops(node):
    """The floating-point operations of one Call node, or None for primitives not counted."""
    count = COUNTS.get(getattr(getattr(node, "prim", None), "name", None))
    return None if count is None else int(count(node))
