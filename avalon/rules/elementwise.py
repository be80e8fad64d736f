"""Rules of the elementwise primitives."""
import math
import numbers

from ..backend import is_inexact
from ..ops import elementwise as ew
from ..tape import Const
from .registry import array_module, rule


def _zero(g):
    return array_module(g).zeros((), dtype=g.dtype)


def select(cond, g):
    """g where cond holds, 0 elsewhere (keeps g's dtype)."""
    return ew.where(cond, g, _zero(g))


def _traced(x):
    """Whether `x` may need a gradient: a tracer of anything but a constant (a constant exponent's
    gradient would take the log of a negative base, for nothing)."""
    return hasattr(x, "_node") and not isinstance(x._node, Const)


rule(ew.add)(lambda g, out, a, b: (g, g))
rule(ew.subtract)(lambda g, out, a, b: (g, -g))
rule(ew.multiply)(lambda g, out, a, b: (g * b, g * a))
rule(ew.negative)(lambda g, out, x: (-g,))


@rule(ew.divide)
def _divide(g, out, a, b):
    ga = g / b
    return ga, (-ga * out if _traced(b) else None)


@rule(ew.power)
def _power(g, out, a, b):
    ga = None
    if _traced(a) and not (isinstance(b, numbers.Number) and b == 0):  # a ** 0 is constant
        ga = g * b * a ** (b - 1)
        if not isinstance(b, numbers.Number):  # where b == 0, b * a**(b-1) is 0 * inf at a == 0: torch gives 0
            ga = select(b != 0, ga)
    gb = None
    if _traced(b):
        # torch's convention: no gradient to the exponent where the base is 0
        safe = ew.where(a == 0, array_module(out).ones((), dtype=out.dtype), a)
        gb = select(a != 0, g * out * ew.log(safe))
    return ga, gb


@rule(ew.remainder)
def _remainder(g, out, a, b):
    return g, (-g * ew.floor_divide(a, b) if _traced(b) else None)


def _extreme_rule(strict):
    def vjp(g, out, a, b):
        half = g * 0.5  # ties split the gradient, as torch
        ga = ew.where(strict(a, b), g, ew.where(a == b, half, _zero(g)))
        gb = ew.where(strict(b, a), g, ew.where(a == b, half, _zero(g)))
        return ga, gb

    return vjp


rule(ew.maximum)(_extreme_rule(lambda a, b: a > b))
rule(ew.minimum)(_extreme_rule(lambda a, b: a < b))


@rule(ew.arctan2)
def _arctan2(g, out, a, b):
    denom = a * a + b * b
    return g * b / denom, -g * a / denom


rule(ew.exp)(lambda g, out, x: (g * out,))
rule(ew.exp2)(lambda g, out, x: (g * out * math.log(2.0),))
rule(ew.log)(lambda g, out, x: (g / x,))
rule(ew.log2)(lambda g, out, x: (g / (x * math.log(2.0)),))
rule(ew.log10)(lambda g, out, x: (g / (x * math.log(10.0)),))
rule(ew.log1p)(lambda g, out, x: (g / (x + 1),))
rule(ew.expm1)(lambda g, out, x: (g * (out + 1),))
rule(ew.sqrt)(lambda g, out, x: (g / (out * 2),))
rule(ew.square)(lambda g, out, x: (g * x * 2,))
rule(ew.reciprocal)(lambda g, out, x: (-g * out * out,))
rule(ew.absolute)(lambda g, out, x: (g * ew.sign(x),))
rule(ew.sin)(lambda g, out, x: (g * ew.cos(x),))
rule(ew.cos)(lambda g, out, x: (-g * ew.sin(x),))
rule(ew.tan)(lambda g, out, x: (g * (out * out + 1),))
rule(ew.arcsin)(lambda g, out, x: (g / ew.sqrt(1 - x * x),))
rule(ew.arccos)(lambda g, out, x: (-g / ew.sqrt(1 - x * x),))
rule(ew.arctan)(lambda g, out, x: (g / (x * x + 1),))
rule(ew.sinh)(lambda g, out, x: (g * ew.cosh(x),))
rule(ew.cosh)(lambda g, out, x: (g * ew.sinh(x),))
rule(ew.tanh)(lambda g, out, x: (g * (1 - out * out),))
rule(ew.arcsinh)(lambda g, out, x: (g / ew.sqrt(x * x + 1),))
rule(ew.arccosh)(lambda g, out, x: (g / ew.sqrt(x * x - 1),))
rule(ew.arctanh)(lambda g, out, x: (g / (1 - x * x),))
rule(ew.sigmoid)(lambda g, out, x: (g * out * (1 - out),))
rule(ew.relu)(lambda g, out, x: (select(out > 0, g),))  # out > 0 where x > 0: x need not be kept
rule(ew.where)(lambda g, out, c, a, b: (None, select(c, g), select(ew.logical_not(c), g)))


@rule(ew.clip)
def _clip(g, out, x, lo, hi):
    inside = None
    if lo is not None:
        inside = x >= lo
    if hi is not None:
        inside = (x <= hi) if inside is None else ew.logical_and(inside, x <= hi)
    gx = g if inside is None else select(inside, g)
    glo = select(x < lo, g) if _traced(lo) else None
    ghi = select(x > hi, g) if _traced(hi) else None
    return gx, glo, ghi


@rule(ew.astype)
def _astype(g, out, x, dtype):
    return (ew.astype(g, dtype=x.dtype) if is_inexact(x.dtype) else None),
