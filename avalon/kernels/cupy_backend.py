"""The GPU backend: the expression becomes the body of one cupy `ElementwiseKernel`, one CUDA thread
per output element, intermediates in registers. Source is generated per signature (concrete C types),
numbers are written as literals of the C type numpy would give them, and the kernel is built once.
"""
import numpy as np

from .program import Input, Step

_C_TYPES = {np.dtype(np.bool_): "bool", np.dtype(np.float16): "float16", np.dtype(np.float32): "float",
            np.dtype(np.float64): "double", np.dtype(np.int8): "signed char", np.dtype(np.int16): "short",
            np.dtype(np.int32): "int", np.dtype(np.int64): "long long", np.dtype(np.uint8): "unsigned char"}
_OPERATORS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "greater": ">", "greater_equal": ">=",
              "less": "<", "less_equal": "<=", "equal": "==", "not_equal": "!=", "logical_and": "&&",
              "logical_or": "||"}
_CALLS = {"exp": "exp", "log": "log", "log2": "log2", "log10": "log10", "log1p": "log1p", "expm1": "expm1",
          "sqrt": "sqrt", "sin": "sin", "cos": "cos", "tan": "tan", "sinh": "sinh", "cosh": "cosh", "tanh": "tanh",
          "arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh", "arccosh": "acosh",
          "arctanh": "atanh", "arctan2": "atan2", "power": "pow"}


def c_type(dtype):
    return _C_TYPES[np.dtype(dtype)]


def source(program, signature, out_dtype):
    """(input parameters, output parameter, body) of the ElementwiseKernel for these input (shape,
    dtype) pairs: inputs are a0, a1, …, the result `out`, steps t0, t1, … in registers."""
    infos = program.dtypes(signature)
    lines = []

    def operand(a, others):
        if isinstance(a, Input):
            return f"a{a.k}"
        if isinstance(a, Step):
            return f"t{a.j}"
        return _literal(a, program.number_dtype(a, others, signature))

    for i, (op, operands) in enumerate(program.steps):
        dtype = infos[i][1]
        args = [operand(a, operands) for a in operands]
        lines.append(f"{c_type(dtype)} t{i} = {_expression(op, args, dtype)};")
    lines.append(f"out = t{len(program.steps) - 1};")
    params = ", ".join(f"{c_type(d)} a{k}" for k, (_, d) in enumerate(signature))
    return params, f"{c_type(out_dtype)} out", "\n".join(lines)


def _literal(value, dtype):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return "true" if value else "false"
    value = dtype.type(value)
    if dtype.kind == "f":
        text = repr(float(value))
        text = text if text not in ("inf", "-inf", "nan") else {"inf": "INFINITY", "-inf": "-INFINITY",
                                                                 "nan": "NAN"}[text]
        return f"(({c_type(dtype)}){text})"
    return f"(({c_type(dtype)}){int(value)})"


def _expression(op, args, dtype):
    cast = f"({c_type(dtype)})"
    if op in _OPERATORS:
        return f"{cast}({args[0]} {_OPERATORS[op]} {args[1]})"
    if op in _CALLS:
        return f"{cast}{_CALLS[op]}({', '.join(args)})"
    x = args[0]
    if op == "where":
        return f"{args[0]} ? {cast}({args[1]}) : {cast}({args[2]})"
    if op == "absolute":  # fabs has float and double overloads; abs is the integers'
        return f"{cast}{'fabs' if np.dtype(dtype).kind == 'f' else 'abs'}({x})"
    if op == "negative":
        return f"{cast}(-{x})"
    if op == "square":
        return f"{cast}({x} * {x})"
    if op == "reciprocal":
        return f"{cast}(1 / {x})"
    if op == "logical_not":
        return f"!{x}"
    y = args[1]  # maximum, minimum: NaN when either operand is NaN, as numpy's
    compare = ">" if op == "maximum" else "<"
    return f"{cast}((({x}) {compare} ({y}) || ({x}) != ({x})) ? ({x}) : ({y}))"


def runner(program, signature, out_shape, out_dtype, scratch_out):
    """A function `run(arrays, out)` launching the generated kernel (built at the first launch)."""
    import cupy

    params, result, body = source(program, signature, out_dtype)
    kernel = cupy.ElementwiseKernel(params, result, body, "avalon_fused")

    def run(arrays, out):
        return kernel(*arrays, out)

    return run
