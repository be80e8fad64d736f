"""Tracers: stand-ins for arrays while a function is traced.

A tracer carries a tape node (whose value is the concrete array seen while tracing). Operators,
numpy functions and ufuncs (through `__array_function__` / `__array_ufunc__`) and torch-style methods
(`TorchMethods`) record primitive calls. What cannot be traced faithfully is refused here, at the
user's line: iteration, bool/int/float, in-place writes, coercion to ndarray, functions without rules.
"""
import math
import weakref

import numpy as np

from .. import numpy_api as npa
from .. import torch_api as ta
from .. import numpy_ufuncs
from ..backend import device_of, is_inexact
from ..ops import elementwise as ew
from ..tape import Call, Input
from ..tensor import device
from . import release
from .methods import TorchMethods
from .source import public_name

_REGISTER_HINT = (
    "give it a rule with one decorator:\n"
    "        @avalon.rule({fn})\n"
    "        def {short}_vjp(g, out, *args, **params):\n"
    "            return (g * ...,)   # one gradient per array argument\n"
    "      or rewrite the code with functions that have rules (see avalon.ops.PRIMITIVES)")


class Tracer(TorchMethods):
    """An array being traced: has `shape`, `dtype`, numpy operators and torch methods; no data access.

    Shapes and dtypes are static (part of the compile cache's key: a new shape traces again), so what
    depends only on them is plain Python: `x.shape`, `x.ndim`, `x.size`, `len(x)` (the first axis's
    length) and Python control flow on those. What depends on the values is refused with
    `avalon.UnsupportedConstruct`: `bool(x)`, `float(x)`, `if x > 0:`, `for row in x:`, in-place writes,
    and converting to a plain ndarray.
    """

    __slots__ = ("_node", "_trace", "__weakref__")
    __array_priority__ = 1000
    _avalon_tracer = True

    def __init__(self, node, trace):
        self._node = node
        self._trace = trace
        _holding(trace, node).add(self)
        release.tick(trace, node)

    # what a tracer knows statically

    @property
    def shape(self):
        return self._node.shape

    @property
    def dtype(self):
        return self._node.dtype

    @property
    def ndim(self):
        return len(self._node.shape)

    @property
    def device(self):
        """`avalon.device('cpu')` or `device('cuda:N')`: where the traced values live."""
        return device(device_of(self._node.value))

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    @property
    def T(self):
        return npa.transpose(self)

    @property
    def mT(self):
        return npa.swapaxes(self, -1, -2)

    @property
    def node(self):
        """The tape node this tracer stands for."""
        return self._node

    @property
    def requires_grad(self):
        """torch's flag, as eager PyTorch would set it here: a floating value that depends, through
        differentiable calls recorded with gradients enabled, on a trainable parameter."""
        return _requires_grad(self._trace, self._node)

    # torch's in-place methods and `x[key] = v`. On a value nothing else shares memory with in torch's
    # terms (`_is_fresh`: made by the traced code, no live view of it, no view of a live value) the
    # write is exact as a new node that the tracer now stands for; calls that read the old value ran
    # before the write, as in torch. So `x.new_empty(shape).bernoulli_(p).div_(p)` (stochastic depth)
    # traces, drawing afresh at each replay, and so does `outputs[t] = output` into
    # `outputs = torch.zeros(...)` in a decoder loop. Anything else is refused
    # (TorchMethods.__getattr__, __setitem__).

    def __getattr__(self, name):
        if name.endswith("_") and not name.startswith("_") and _is_fresh(self):
            compute = _FRESH_INPLACE.get(name)
            stem = getattr(type(self), name[:-1], None)
            if compute is not None or callable(stem):
                def method(*args, **kwargs):
                    result = (compute or stem)(self, *args, **kwargs)
                    return _rebind(self, result, name)

                return method
        return super().__getattr__(name)


    def __repr__(self):
        return f"Tracer({self._node.type_str}, {self._node.label})"

    def __hash__(self):
        return id(self)

    def __len__(self):
        # Shapes are static (a new shape retraces), so the length is not data-dependent.
        if not self.shape:
            raise TypeError("len() of a 0-d traced array")
        return self.shape[0]

    # arithmetic

    def __add__(self, o): return ew.add(self, o)
    def __radd__(self, o): return ew.add(o, self)
    def __sub__(self, o): return ew.subtract(self, o)
    def __rsub__(self, o): return ew.subtract(o, self)
    def __mul__(self, o): return ew.multiply(self, o)
    def __rmul__(self, o): return ew.multiply(o, self)
    def __truediv__(self, o): return ew.divide(self, o)
    def __rtruediv__(self, o): return ew.divide(o, self)
    def __floordiv__(self, o): return ew.floor_divide(self, o)
    def __rfloordiv__(self, o): return ew.floor_divide(o, self)
    def __mod__(self, o): return ew.remainder(self, o)
    def __rmod__(self, o): return ew.remainder(o, self)
    def __pow__(self, o): return ew.power(self, o)
    def __rpow__(self, o): return ew.power(o, self)
    def __matmul__(self, o): return npa.matmul(self, o)
    def __rmatmul__(self, o): return npa.matmul(o, self)
    def __neg__(self): return ew.negative(self)
    def __pos__(self): return self
    def __abs__(self): return ew.absolute(self)
    def __round__(self, ndigits=None): return npa.round(self, ndigits or 0)
    def __invert__(self): return ew.invert(self)
    def __and__(self, o): return ew.bitwise_and(self, o)
    def __rand__(self, o): return ew.bitwise_and(o, self)
    def __or__(self, o): return ew.bitwise_or(self, o)
    def __ror__(self, o): return ew.bitwise_or(o, self)
    def __xor__(self, o): return ew.bitwise_xor(self, o)
    def __rxor__(self, o): return ew.bitwise_xor(o, self)
    def __eq__(self, o): return ew.equal(self, o)
    def __ne__(self, o): return ew.not_equal(self, o)
    def __lt__(self, o): return ew.less(self, o)
    def __le__(self, o): return ew.less_equal(self, o)
    def __gt__(self, o): return ew.greater(self, o)
    def __ge__(self, o): return ew.greater_equal(self, o)

    # In-place operators rebind the name to a new value. On inputs and parameters they are refused:
    # numpy would change the caller's array, which a traced function cannot do.

    def _inplace(self, op, other, symbol):
        node = self._node
        if isinstance(node, Input):
            what = {"param": "a parameter", "buffer": "a buffer"}.get(node.role, "an input")
            short = node.name.rsplit(".", 1)[-1]
            rewrite = f"`x = x {symbol[:-1]} ...`" if node.role == "data" else \
                f"`{short} = self.{short} {symbol[:-1]} ...` and use that"
            return self._trace.refuse(
                f"in-place update `{symbol}` of the traced {what.split()[1]} {node.name!r}",
                f"{what} cannot be changed by traced code: the change would not reach the caller's "
                "array, and the gradient would be of a different function",
                f"make a new array: write {rewrite}",
                lambda: op(self, other))
        return op(self, other)

    def __iadd__(self, o): return self._inplace(ew.add, o, "+=")
    def __isub__(self, o): return self._inplace(ew.subtract, o, "-=")
    def __imul__(self, o): return self._inplace(ew.multiply, o, "*=")
    def __itruediv__(self, o): return self._inplace(ew.divide, o, "/=")
    def __ifloordiv__(self, o): return self._inplace(ew.floor_divide, o, "//=")
    def __imod__(self, o): return self._inplace(ew.remainder, o, "%=")
    def __ipow__(self, o): return self._inplace(ew.power, o, "**=")
    def __imatmul__(self, o): return self._inplace(npa.matmul, o, "@=")
    def __iand__(self, o): return self._inplace(ew.bitwise_and, o, "&=")
    def __ior__(self, o): return self._inplace(ew.bitwise_or, o, "|=")
    def __ixor__(self, o): return self._inplace(ew.bitwise_xor, o, "^=")

    # indexing

    def __getitem__(self, key):
        for k in key if isinstance(key, tuple) else (key,):
            if isinstance(k, Tracer) and k.dtype == bool:
                return self._trace.refuse(
                    "boolean-mask indexing with a traced mask",
                    "the result's shape depends on the mask's values, which a recorded tape cannot follow",
                    "keep the shape: `np.where(mask, x, 0)` (or `x.masked_fill(~mask, 0)`), then reduce",
                    lambda: Tracer(self._trace.const(self._node.value[_value(key)]), self._trace))
        return npa.getitem(self, key)

    def __setitem__(self, key, value):
        if _is_fresh(self):  # a value the traced code made and nothing read yet: exact as a new node
            _rebind(self, _written(self, key, value), "[...] =")
            return
        self._trace.refuse(
            "in-place assignment `x[...] = v` to a traced array that is an input or shares memory with "
            "another array still in use (a view of it, or the array it is a view of)",
            "the write would also have to change that other array (or the caller's), which a recorded "
            "tape cannot follow",
            "write into a copy (`x = x.clone(); x[i] = v`), or build the new array functionally: "
            "`x = np.where(mask, v, x)`, `x.masked_fill(mask, v)`, `avalon.cat([x[:i], v, x[i + 1:]])`",
            lambda: None)

    def __delitem__(self, key):
        self._trace.refuse("del x[...] on a traced array", "an array cannot lose elements in place",
                           "select what stays instead: `x = x[keep]`", lambda: None)

    # data-dependent Python: refused

    def __iter__(self):
        return self._trace.refuse(
            "Python iteration over a traced array",
            "a Python loop over an array's rows unrolls into one recorded operation per row, fixed to "
            "this length, and usually means element-wise Python code that should be one array operation",
            "vectorise: write `A + 1` instead of `[a + 1 for a in A]`, `A.sum(0)` instead of "
            "`sum(a for a in A)`; to split into pieces use `A.unbind(0)` or `np.split`",
            lambda: iter([self[i] for i in range(len(self))]))

    def _data_dependent(self, what, fallback):
        return self._trace.refuse(
            f"{what} of a traced value (data-dependent control flow)",
            "the tape records one path through the code; the value decides the path, so a replay with "
            "other data would silently follow the wrong branch and the gradient would be wrong",
            "compute both branches and select with `np.where(cond, a, b)` or a mask; keep numbers as "
            "arrays instead of converting them to Python",
            fallback)

    def __bool__(self):
        return self._data_dependent("bool()", lambda: bool(self._node.value))

    def __int__(self):
        return self._data_dependent("int()", lambda: int(self._node.value))

    def __float__(self):
        return self._data_dependent("float()", lambda: float(self._node.value))

    def __complex__(self):
        return self._data_dependent("complex()", lambda: complex(self._node.value))

    def __index__(self):
        return self._data_dependent("use as an index or size", lambda: int(self._node.value))

    def __format__(self, spec):
        if not spec:
            return repr(self)
        return self._trace.refuse(
            f"format(x, {spec!r}) of a traced value",
            "the text is made once, while tracing; a compiled replay runs no Python code, so it would "
            "never show other numbers (and a value turned into text has no gradient)",
            "return the value from the traced function and format it outside, or look at it in the "
            "workbench",
            lambda: format(self._node.value, spec))

    @property
    def data(self):
        """torch's `.data`: the same values, cut from differentiation."""
        return self.detach()

    def item(self, *index):
        return self._data_dependent(".item()", lambda: self._node.value.item(*index))

    def tolist(self):
        return self._data_dependent(".tolist()", lambda: self._node.value.tolist())

    def __array__(self, dtype=None, copy=None):
        value = self._node.value
        return self._trace.refuse(
            "np.asarray / np.array (or another conversion to a plain ndarray) of a traced array",
            "the plain array is a frozen copy of this trace's values: the tape would lose track of it, "
            "so later replays would reuse stale numbers and no gradient would flow back through it",
            "keep it a traced array: call numpy functions on it directly (np.tanh(x), x.sum()); to "
            "join traced arrays use np.stack / avalon.stack instead of np.array([...]); a numpy "
            "function that has no rule gets one with @avalon.rule(np.the_function)",
            lambda: np.asarray(value, dtype=dtype))

    # numpy protocols

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = numpy_ufuncs.name(ufunc)
        if kwargs.get("out") is not None or method == "at":
            call = f"{name}.at(x, ...)" if method == "at" else f"{name}(..., out=...)"
            return self._trace.refuse(
                f"{call} writing into an array",
                "in-place writes into traced arrays change values other recorded operations already read",
                f"use a returned value instead: `y = {name}(...)`" if method != "at" else
                "add out of place: `x = avalon.index_add(x, 0, index, values)` (repeats accumulate)",
                lambda: _concrete(ufunc, method, inputs, kwargs))
        kwargs.pop("out", None)
        from ..rules import user_rule_for

        # a user's rule for the ufunc comes first: registering it is how a user overrides a built-in
        elementwise = user_rule_for(ufunc) or numpy_ufuncs.UFUNCS.get(ufunc)
        result = numpy_ufuncs.apply(ufunc, method, inputs, kwargs, elementwise)
        if isinstance(result, numpy_ufuncs.Unsupported):
            return self._trace.refuse(*result, lambda: _concrete(ufunc, method, inputs, kwargs))
        if result is None:
            call = name + ("" if method == "__call__" else f".{method}")
            return self._no_rule(call, name, lambda: _concrete(ufunc, method, inputs, kwargs))
        return result

    def __array_function__(self, func, types, args, kwargs):
        from ..rules import user_rule_for

        # a user's rule for the function comes first: registering it is how a user overrides a built-in
        handler = user_rule_for(func) or npa.HANDLED.get(func)
        if handler is not None:
            return handler(*args, **kwargs)
        name = public_name(func)
        return self._no_rule(name, name, lambda: func(*_value(args), **_value(kwargs)))

    def _no_rule(self, name, ref, fallback):
        short = ref.rsplit(".", 1)[-1]
        return self._trace.refuse(
            f"{name} has no differentiation rule",
            "Avalon only differentiates functions it has a rule for, rather than guessing (a guess "
            "could give a silently wrong gradient)",
            _REGISTER_HINT.format(fn=ref, short=short),
            fallback)


def _requires_grad(trace, node):
    if isinstance(node, Input):
        return node.role == "param"
    return node in _index(trace).requiring(trace)


class _TapeIndex:
    """What tracers ask of their trace's tape, kept up to date by reading only the nodes recorded
    since the last question (a tape being recorded only grows), so that asking at every call, or for
    every parameter of a large model, stays linear in the tape's length instead of quadratic.

    `views[n]`: the view calls of `n`. `requiring()`: the calls that require a gradient (they depend,
    through differentiable calls recorded with gradients on, on a parameter); read again from the
    start when a node was cut from differentiation after it was recorded (a gradient taken inside
    traced code under `no_grad`).
    """

    def __init__(self):
        self.views = {}
        self._viewed = 0
        self._requiring = set()
        self._required = 0
        self._cut = 0  # how many of the nodes read so far are in trace.no_grad

    def update_views(self, trace):
        nodes = trace.tape.nodes
        for c in nodes[self._viewed:]:
            if isinstance(c, Call) and c.prim.view:
                for a in dict.fromkeys(c.inputs):
                    self.views.setdefault(a, []).append(c)
        self._viewed = len(nodes)

    def requiring(self, trace):
        nodes, no_grad = trace.tape.nodes, trace.no_grad
        new = nodes[self._required:]
        cut = self._cut + sum(n in no_grad for n in new)
        if cut != len(no_grad):  # a node read before was cut since: read them all again
            self._requiring, self._required, new = set(), 0, nodes
            cut = sum(n in no_grad for n in nodes)
        requiring = self._requiring
        for n in new:
            if isinstance(n, Input):
                if n.role == "param":
                    requiring.add(n)
            elif isinstance(n, Call) and n.prim.differentiable and n not in no_grad and \
                    is_inexact(n.dtype) and any(a in requiring for a in n.inputs):
                requiring.add(n)
        self._required, self._cut = len(nodes), cut
        return requiring


_indices = weakref.WeakKeyDictionary()  # trace -> its _TapeIndex (which must not refer to the trace)


def _index(trace):
    index = _indices.get(trace)
    if index is None:
        index = _indices[trace] = _TapeIndex()
    return index


# trace -> {node: the tracers standing for it}, held weakly: whether user code can still reach a value
_tracers = weakref.WeakKeyDictionary()


def _holding(trace, node):
    by_node = _tracers.get(trace)
    if by_node is None:
        by_node = _tracers[trace] = {}
    held = by_node.get(node)
    if held is None:
        held = by_node[node] = weakref.WeakSet()
    return held


def is_held(trace, node):
    """Whether a tracer standing for `node` is still alive (so code can still compute with its value)."""
    by_node = _tracers.get(trace)
    return bool(by_node and by_node.get(node))


def _is_fresh(tracer):
    """Whether an in-place write to `tracer` is exact as a new node it stands for: nothing else the
    user can reach shares its memory in torch's terms — it is no parameter, no argument that aliases
    another (an argument's new value is written back into the caller's array), no live view of it
    exists, and it is no view of a value still reachable. (Calls that already read it read the old value, as
    torch's did: they ran before the write.)"""
    node, trace = tracer._node, tracer._trace
    tape = trace.tape
    if isinstance(node, Input) and node not in trace.writable or node in tape.outputs:
        return False
    rewritten = tape.meta.get("rewritten", ())

    def reachable(n):
        return any(t is not tracer for t in _holding(trace, n))

    base = node
    while isinstance(base, Call) and base.prim.view and base not in rewritten:
        base = base.inputs[0]
        if isinstance(base, Input) or reachable(base):
            return False  # a view of a value the user still holds (`col = out[:, 0]`)
    index = _index(trace)
    index.update_views(trace)
    views, seen = [node], set()
    while views:
        n = views.pop()
        for c in index.views.get(n, ()):
            if c not in seen:
                if reachable(c):
                    return False  # a live view of it
                seen.add(c)
                views.append(c)
    return True


def _rebind(tracer, result, name):
    """Make `tracer` stand for `result` (what its in-place method computed), with torch's rules: the
    shape stays, and the dtype too when the result can be cast to it."""
    if not isinstance(result, Tracer):
        result = Tracer(tracer._trace.const(result), tracer._trace)
    if tuple(np.broadcast_shapes(result.shape, tracer.shape)) != tuple(tracer.shape):
        return tracer._trace.refuse(
            f"in-place .{name}() whose result has shape {tuple(result.shape)}, not the array's {tuple(tracer.shape)}",
            "an in-place method cannot change the shape of the array it writes into", "use the "
            "out-of-place form and bind the result", lambda: tracer)
    if result.dtype != tracer.dtype:
        if not np.can_cast(result.dtype, tracer.dtype, casting="same_kind"):
            return tracer._trace.refuse(
                f"in-place .{name}() giving {result.dtype} into a {tracer.dtype} array", "torch refuses "
                "results that cannot be stored in the array's dtype", "convert first (x = x.float())",
                lambda: tracer)
        result = result.astype(tracer.dtype)
    if tuple(result.shape) != tuple(tracer.shape):
        result = npa.broadcast_to(result, tracer.shape)
    if isinstance(tracer._node, Input):  # an argument: the caller's array gets the new values
        tracer._trace.written[tracer._node] = tracer
    tracer._node = result._node
    _holding(tracer._trace, result._node).add(tracer)
    # An in-place write gives the same tensor new values, aliasing nothing the user holds, even when
    # the node computing them is a view (a reshape) on the tape.
    tracer._trace.tape.meta.setdefault("rewritten", set()).add(result._node)
    return tracer


def _written(x, key, value):
    """`x` with `x[key] = value`, as new values: a boolean mask of x's shape selects with `where`;
    any other key picks the flat positions it addresses from a constant grid (so traced indices work
    too), clears them and adds the values there."""
    if getattr(key, "dtype", None) == np.bool_ and tuple(key.shape) == tuple(x.shape):
        return ew.where(key, value, x)
    size = math.prod(x.shape)
    grid = Tracer(x._trace.const(np.arange(size).reshape(x.shape)), x._trace)
    positions = grid[key]
    flat_positions = npa.reshape(positions, (-1,))
    values = ta.as_tensor(value) if not isinstance(value, Tracer) else value
    values = npa.reshape(npa.broadcast_to(values.astype(x.dtype), positions.shape), (-1,))
    hits = ta.ones(flat_positions.shape[0], dtype=np.bool_)
    written = ta.index_add(ta.zeros(size, dtype=np.bool_), 0, flat_positions, hits)
    cleared = ew.where(written, ta.zeros((), dtype=x.dtype), npa.reshape(x, (-1,)))
    return npa.reshape(ta.index_add(cleared, 0, flat_positions, values), x.shape)


def _random_like(tracer, draw):
    return draw(ta.rand(*tracer.shape, dtype=tracer.dtype if is_inexact(tracer.dtype) else np.float32))


# In-place methods that are not `name_` of a method, on fresh tracers (recorded, so a replay draws
# its random numbers afresh).
_FRESH_INPLACE = {
    "zero_": lambda t: ta.zeros(*t.shape, dtype=t.dtype),
    "fill_": lambda t, value: ta.full(t.shape, value, dtype=t.dtype) if not isinstance(value, Tracer)
    else npa.broadcast_to(value.astype(t.dtype), t.shape),
    "copy_": lambda t, src, non_blocking=False: npa.broadcast_to(ta.as_tensor(src) if not isinstance(src, Tracer)
                                                                 else src, t.shape),
    "uniform_": lambda t, a=0.0, b=1.0, generator=None: _random_like(t, lambda u: u * (b - a) + a),
    "normal_": lambda t, mean=0.0, std=1.0, generator=None: ta.randn(*t.shape, dtype=t.dtype) * std + mean,
    "bernoulli_": lambda t, p=0.5, generator=None: _random_like(t, lambda u: (u < p).astype(t.dtype)),
}


def _value(x):
    """The concrete values behind tracers in a nested structure (collecting mode goes on with them)."""
    if isinstance(x, Tracer):
        return x._node.value
    if isinstance(x, tuple) and hasattr(type(x), "_fields"):
        return type(x)(*(_value(v) for v in x))
    if isinstance(x, (list, tuple)):
        return type(x)(_value(v) for v in x)
    if isinstance(x, dict):
        return {k: _value(v) for k, v in x.items()}
    return x


def _concrete(ufunc, method, inputs, kwargs):
    kwargs = {k: v for k, v in kwargs.items() if k != "out"}
    return getattr(ufunc, method)(*_value(inputs), **_value(kwargs))
