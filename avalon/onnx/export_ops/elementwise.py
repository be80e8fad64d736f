"""Elementwise primitives: arithmetic, comparisons, logic, unary math, where, clip, casts."""
import math

import numpy as np

from ...tape import Node
from . import emits

_BINARY = {"add": "Add", "subtract": "Sub", "multiply": "Mul", "divide": "Div", "power": "Pow",
           "maximum": "Max", "minimum": "Min"}
_COMPARE = {"equal": "Equal", "less": "Less", "less_equal": "LessOrEqual", "greater": "Greater",
            "greater_equal": "GreaterOrEqual"}
_LOGIC = {"logical_and": "And", "logical_or": "Or", "logical_xor": "Xor"}
_BITWISE = {"bitwise_and": ("And", "BitwiseAnd"), "bitwise_or": ("Or", "BitwiseOr"),
            "bitwise_xor": ("Xor", "BitwiseXor")}
_UNARY = {"exp": "Exp", "log": "Log", "sqrt": "Sqrt", "reciprocal": "Reciprocal", "abs": "Abs", "sin": "Sin",
          "cos": "Cos", "tan": "Tan", "arcsin": "Asin", "arccos": "Acos", "arctan": "Atan", "sinh": "Sinh",
          "cosh": "Cosh", "tanh": "Tanh", "arcsinh": "Asinh", "arccosh": "Acosh", "arctanh": "Atanh",
          "sign": "Sign", "floor": "Floor", "ceil": "Ceil", "rint": "Round", "negative": "Neg", "erf": "Erf",
          "sigmoid": "Sigmoid", "relu": "Relu", "isnan": "IsNaN", "isinf": "IsInf", "stop_gradient": "Identity",
          "checked_probability": "Identity"}  # the [0, 1] check has no ONNX form; the value passes


def _common(node, positions):
    """numpy's result dtype of the operands at `positions` (Python numbers weak, as numpy 2 has them)."""
    values = [node.args[i] for i in positions]
    return np.result_type(*[a.dtype if isinstance(a, Node) else a for a in values])


def _operands(g, node, dtype):
    return [g.arg(node, i, dtype) for i in range(len(node.args))]


_BOOLEAN = {"add": "Or", "multiply": "And", "maximum": "Or", "minimum": "And"}  # numpy's meaning on bools


@emits(*_BINARY)
def binary(g, node):
    table = _BOOLEAN if node.dtype == np.bool_ and node.prim.name in _BOOLEAN else _BINARY
    op_type = table[node.prim.name]
    if op_type in ("Max", "Min"):
        return g.extreme(op_type, *_operands(g, node, node.dtype), node.dtype)
    return g.op(op_type, _operands(g, node, node.dtype))


@emits("remainder", "floor_divide")
def floored(g, node):
    """Python's floored remainder and division: Mod(fmod=0) for integers (before opset 10, which has
    no Mod: the truncated remainder moved by y where its sign differs from y's); x - floor(x/y)·y for
    floats."""
    a, b = _operands(g, node, node.dtype if node.prim.name == "remainder" else _common(node, (0, 1)))
    if np.issubdtype(node.dtype, np.integer):
        if g.opset >= 10:
            mod = g.op("Mod", [a, b], fmod=0)
        else:
            zero = g.const(0, node.dtype)
            truncated = g.op("Sub", [a, g.op("Mul", [g.op("Div", [a, b]), b])])
            apart = g.op("Xor", [g.op("Less", [truncated, zero]), g.op("Less", [b, zero])])
            moved = g.op("And", [apart, g.op("Not", [g.op("Equal", [truncated, zero])])])
            mod = g.op("Where", [moved, g.op("Add", [truncated, b]), truncated])
        return mod if node.prim.name == "remainder" else g.op("Div", [g.op("Sub", [a, mod]), b])
    quotient = g.op("Floor", [g.op("Div", [a, b])])
    return quotient if node.prim.name == "floor_divide" else g.op("Sub", [a, g.op("Mul", [quotient, b])])


@emits(*_COMPARE, "not_equal")
def compare(g, node):
    dtype = _common(node, (0, 1))
    operands = _operands(g, node, dtype)
    if node.prim.name == "not_equal":
        return g.op("Not", [g.compare("Equal", *operands, dtype)])
    return g.compare(_COMPARE[node.prim.name], *operands, dtype)


@emits(*_LOGIC)
def logic(g, node):
    return g.op(_LOGIC[node.prim.name], _operands(g, node, np.bool_))


@emits("logical_not")
def logical_not(g, node):
    return g.op("Not", [g.arg(node, 0, np.bool_)])


def _bitwise_needs_18(node, opset):
    if node.dtype != np.bool_ and opset < 18:
        return "integer bitwise operators need opset 18 or newer"
    return None


@emits(*_BITWISE, refuse=_bitwise_needs_18)
def bitwise(g, node):
    logical, bitwise_op = _BITWISE[node.prim.name]
    operands = _operands(g, node, node.dtype)
    return g.op(logical if node.dtype == np.bool_ else bitwise_op, operands)


@emits("invert", refuse=_bitwise_needs_18)
def invert(g, node):
    return g.op("Not" if node.dtype == np.bool_ else "BitwiseNot", [g.arg(node, 0)])


@emits(*_UNARY)
def unary(g, node):
    return g.op(_UNARY[node.prim.name], [g.arg(node, 0, node.dtype if node.dtype != np.bool_ else None)])


@emits("arctan2")
def arctan2(g, node):
    """atan(y/x), moved by ±π where x < 0, ±π/2 (or 0) where x = 0. (A zero's sign is not read:
    numpy's arctan2(-0.0, -1) is -π, this gives π.)"""
    dt = node.dtype
    y, x = g.arg(node, 0, dt), g.arg(node, 1, dt)
    zero = g.const(0, dt)
    base = g.op("Atan", [g.op("Div", [y, g.op("Where", [g.compare("Equal", x, zero, dt), g.const(1, dt), x])])])
    turn = g.op("Where", [g.op("Less", [y, zero]), g.const(-np.pi, dt), g.const(np.pi, dt)])
    half = g.op("Mul", [g.op("Sign", [y]), g.const(np.pi / 2, dt)])
    left = g.op("Add", [base, turn])
    return g.op("Where", [g.op("Greater", [x, zero]), base,
                          g.op("Where", [g.op("Less", [x, zero]), left, half])])


@emits("square")
def square(g, node):
    x = g.arg(node, 0, node.dtype)
    return g.op("Mul", [x, x])


@emits("trunc")
def trunc(g, node):
    x = g.arg(node, 0)
    return g.op("Where", [g.op("Less", [x, g.const(0, node.dtype)]), g.op("Ceil", [x]), g.op("Floor", [x])])


@emits("exp2", "expm1", "log1p", "log2", "log10")
def exp_log(g, node):
    x, name, dt = g.arg(node, 0, node.dtype), node.prim.name, node.dtype
    if name == "exp2":
        return g.op("Pow", [g.const(2, dt), x])
    if name == "expm1":
        return g.op("Sub", [g.op("Exp", [x]), g.const(1, dt)])
    if name == "log1p":
        return g.op("Log", [g.op("Add", [x, g.const(1, dt)])])
    return g.op("Div", [g.op("Log", [x]), g.const(math.log(2 if name == "log2" else 10), dt)])


@emits("isfinite")
def isfinite(g, node):
    x = g.arg(node, 0)
    if not np.issubdtype(node.args[0].dtype, np.floating):
        return g.op("Equal", [x, x])  # integers are always finite
    return g.op("Less", [g.op("Abs", [x]), g.const(np.inf, node.args[0].dtype)])  # False for ±inf and NaN


@emits("where")
def where(g, node):
    return g.op("Where", [g.arg(node, 0, np.bool_), g.arg(node, 1, node.dtype), g.arg(node, 2, node.dtype)])


@emits("clip")
def clip(g, node):
    """np.clip: maximum with the lower bound, then minimum with the upper (either may be None)."""
    y = g.arg(node, 0, node.dtype)
    for i, op_type in ((1, "Max"), (2, "Min")):
        if node.args[i] is not None:
            y = g.extreme(op_type, y, g.arg(node, i, node.dtype), node.dtype)
    return y


@emits("astype")
def astype(g, node):
    return g.cast(g.arg(node, 0), node.args[0].dtype, node.dtype) if isinstance(node.args[0], Node) \
        else g.const(node.args[0], node.dtype)
