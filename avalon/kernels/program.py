"""A fused elementwise expression, parsed once into steps every backend reads.

The text is a Python expression over named inputs: numpy's ufunc names as functions
(`exp(x)`, `maximum(a, b)`), the operators `+ - * / ** > >= < <= == != & | ~` (`&`, `|`, `~` are
logical on booleans), `where(c, a, b)`, and Python numbers, which follow numpy's rules for Python
scalars (weak: `x * 0.5` keeps float32 `x` float32).

`Program.dtypes` infers, for given input dtypes, the dtype and shape of every step exactly as numpy
computes them (by running each step on 0-d arrays), so a backend can plan its buffers and casts once
per signature.
"""
import ast
import warnings

import numpy as np

from ..errors import AvalonError

UNARY = ("negative", "exp", "log", "log2", "log10", "log1p", "expm1", "sqrt", "square", "absolute", "sin",
         "cos", "tan", "sinh", "cosh", "tanh", "arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh",
         "logical_not", "reciprocal")
BINARY = ("add", "subtract", "multiply", "divide", "power", "maximum", "minimum", "arctan2", "greater",
          "greater_equal", "less", "less_equal", "equal", "not_equal", "logical_and", "logical_or")
ARITY = {**{op: 1 for op in UNARY}, **{op: 2 for op in BINARY}, "where": 3}
ALIASES = {"abs": "absolute"}

_BINOPS = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply", ast.Div: "divide", ast.Pow: "power",
           ast.BitAnd: "logical_and", ast.BitOr: "logical_or"}
_COMPARE = {ast.Gt: "greater", ast.GtE: "greater_equal", ast.Lt: "less", ast.LtE: "less_equal",
            ast.Eq: "equal", ast.NotEq: "not_equal"}
_UNOPS = {ast.USub: "negative", ast.Invert: "logical_not"}


class KernelError(AvalonError, ValueError):
    """An elementwise expression the kernel library cannot compile, or operands it cannot run on."""


class Input:
    """Operand: the k-th input array."""
    __slots__ = ("k",)

    def __init__(self, k):
        self.k = k


class Step:
    """Operand: the result of an earlier step."""
    __slots__ = ("j",)

    def __init__(self, j):
        self.j = j


class Program:
    """`text` over `names`, as steps `(op, operands)`; an operand is an `Input`, a `Step` or a Python
    number. The last step is the result."""

    def __init__(self, text, names):
        self.text = text
        self.names = tuple(names)
        if len(set(self.names)) != len(self.names) or not all(n.isidentifier() for n in self.names):
            raise KernelError(f"kernel inputs must be distinct identifiers, got {list(self.names)}")
        try:
            tree = ast.parse(text, mode="eval").body
        except SyntaxError as e:
            raise KernelError(f"kernel expression {text!r} is not a Python expression: {e.msg}") from None
        self.steps = []
        root = self._operand(tree)
        if not isinstance(root, Step):
            raise KernelError(f"kernel expression {text!r} computes nothing (it is a bare input or number)")
        self._signatures = {}

    def _operand(self, node):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in self.names:
                raise KernelError(f"kernel expression {self.text!r} reads {node.id!r}, which is not one of "
                                  f"its inputs {list(self.names)}")
            return Input(self.names.index(node.id))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return self._step(_BINOPS[type(node.op)], [node.left, node.right])
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            return self._step(_COMPARE[type(node.ops[0])], [node.left, node.comparators[0]])
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNOPS:
            if isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
                return -self._operand(node.operand)  # -1.5 is a number, not a negation
            return self._step(_UNOPS[type(node.op)], [node.operand])
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            op = ALIASES.get(node.func.id, node.func.id)
            if op not in ARITY:
                raise KernelError(f"kernel expression {self.text!r} calls {node.func.id!r}, which is not an "
                                  f"elementwise operation of the kernel library (known: {sorted(ARITY)})")
            if len(node.args) != ARITY[op]:
                raise KernelError(f"{op} takes {ARITY[op]} operand(s), got {len(node.args)} in {self.text!r}")
            return self._step(op, node.args)
        raise KernelError(f"kernel expression {self.text!r}: {ast.unparse(node)!r} is not supported (use "
                          "inputs, numbers, arithmetic, comparisons and elementwise functions)")

    def _step(self, op, nodes):
        operands = tuple(self._operand(n) for n in nodes)
        self.steps.append((op, operands))
        return Step(len(self.steps) - 1)

    def last_uses(self):
        """{step j: index of the last step that reads it}."""
        last = {}
        for i, (_, operands) in enumerate(self.steps):
            for a in operands:
                if isinstance(a, Step):
                    last[a.j] = i
        return last

    def dtypes(self, inputs):
        """[(shape, dtype)] of every step for inputs of these (shape, dtype) pairs, as numpy computes
        them. Raises KernelError when the shapes do not broadcast."""
        key = tuple(inputs)
        if key not in self._signatures:
            self._signatures[key] = self._infer(inputs)
        return self._signatures[key]

    def number_dtype(self, number, operands, inputs):
        """The dtype numpy gives a Python `number` operand next to the step's array `operands`, for
        inputs of these (shape, dtype) pairs (backends that spell numbers as literals type them so)."""
        steps = self.dtypes(inputs)
        dtypes = [inputs[o.k][1] if isinstance(o, Input) else steps[o.j][1] for o in operands
                  if isinstance(o, (Input, Step))]
        return np.result_type(*dtypes, number)

    def _infer(self, inputs):
        if len(inputs) != len(self.names):
            raise KernelError(f"kernel {self.text!r} takes {len(self.names)} arrays ({', '.join(self.names)}), "
                              f"got {len(inputs)}")
        out = []

        def probe(a):
            if isinstance(a, Input):
                return np.ones((), inputs[a.k][1]), inputs[a.k][0]
            if isinstance(a, Step):
                return np.ones((), out[a.j][1]), out[a.j][0]
            return a, ()

        for op, operands in self.steps:
            values, shapes = zip(*(probe(a) for a in operands))
            try:
                shape = np.broadcast_shapes(*shapes)
            except ValueError:
                raise KernelError(f"kernel {self.text!r}: the operands of {op} have shapes {list(shapes)}, "
                                  "which do not broadcast") from None
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                dtype = np.asarray(numpy_function(op)(*values)).dtype
            out.append((shape, dtype))
        return out


def numpy_function(op):
    """numpy's function for a step's op."""
    return np.where if op == "where" else getattr(np, op)
