"""The numexpr backend: the whole expression is one numexpr program, evaluated block by block in
cache-sized pieces (and on numexpr's threads), so no intermediate array of the full size exists.

numexpr types Python numbers its own way (a float literal is double, and turns a float32 expression
into float64), so every number becomes a named 0-d array of the dtype numpy would give it next to the
step's other operands. Where numexpr would still compute in another dtype than numpy, or a dtype
numexpr does not handle well appears (integers, float16, complex), the signature runs on the numpy
backend instead: the result always has numpy's dtype.
"""
import numpy as np

from . import numpy_backend
from .program import Input, Step

try:
    import numexpr
except ImportError:  # the optional extra `fast` is not installed
    numexpr = None

_DTYPES = (np.dtype(np.bool_), np.dtype(np.float32), np.dtype(np.float64))
_OPERATORS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "power": "**", "greater": ">",
              "greater_equal": ">=", "less": "<", "less_equal": "<=", "equal": "==", "not_equal": "!=",
              "logical_and": "&", "logical_or": "|"}
_FUNCTIONS = {"exp", "log", "log10", "log1p", "expm1", "sqrt", "sin", "cos", "tan", "sinh", "cosh", "tanh",
              "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh", "arctan2", "where"}
SUPPORTED = set(_OPERATORS) | _FUNCTIONS | {"negative", "absolute", "square", "reciprocal", "logical_not",
                                            "maximum", "minimum"}


def available():
    return numexpr is not None


def text(program, signature):
    """(numexpr source, {name: 0-d array} of its numbers) for inputs named a0, a1, …, or None when the
    signature is not one numexpr computes as numpy does."""
    infos = program.dtypes(signature)
    if any(op not in SUPPORTED for op, _ in program.steps) or \
            any(d not in _DTYPES for _, d in [*signature, *infos]):
        return None
    numbers, parts = {}, []

    def operand(a, others):
        if isinstance(a, Input):
            return f"a{a.k}"
        if isinstance(a, Step):
            return parts[a.j]
        name = f"k{len(numbers)}"
        numbers[name] = np.asarray(a, program.number_dtype(a, others, signature))
        return name

    for op, operands in program.steps:
        if op == "reciprocal":  # 1 / x with a 1 of x's dtype
            op, operands = "divide", (1, *operands)
        args = [operand(a, operands) for a in operands]
        parts.append(_spelled(op, args))
    return parts[-1], numbers


def _spelled(op, args):
    if op in _OPERATORS:
        return f"({args[0]} {_OPERATORS[op]} {args[1]})"
    if op in _FUNCTIONS:
        return f"{op}({', '.join(args)})"
    x = args[0]
    if op == "negative":
        return f"(-{x})"
    if op == "absolute":
        return f"abs({x})"
    if op == "square":
        return f"({x} * {x})"
    if op == "logical_not":
        return f"(~{x})"
    # numpy's maximum and minimum return NaN when either operand is NaN; a comparison alone would not
    y = args[1]
    compare = ">" if op == "maximum" else "<"
    return f"where(({x} {compare} {y}) | ({x} != {x}), {x}, {y})"


def runner(program, signature, out_shape, out_dtype, scratch_out):
    """A function `run(arrays, out)`, on numexpr where it computes in numpy's dtypes, else numpy's."""
    spelled = text(program, signature) if numexpr is not None else None
    if spelled is None:
        return numpy_backend.runner(program, signature, out_shape, out_dtype, scratch_out)
    source, numbers = spelled
    names = [f"a{k}" for k in range(len(signature))]
    probe = {n: np.ones((1,) * len(s), d) for n, (s, d) in zip(names, signature)}
    if numexpr.evaluate(source, local_dict={**probe, **numbers}, global_dict={}).dtype != program.dtypes(signature)[-1][1]:
        return numpy_backend.runner(program, signature, out_shape, out_dtype, scratch_out)

    def run(arrays, out):
        local = dict(zip(names, arrays))
        local.update(numbers)
        return numexpr.evaluate(source, local_dict=local, global_dict={}, out=out, casting="unsafe")

    return run
