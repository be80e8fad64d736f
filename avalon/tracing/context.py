"""A trace in progress: the tape being recorded, the module scope, and `bind`, which records calls."""
import contextlib
import sys
import threading

from ..backend import is_array, namespace
from .. import anomaly
from ..errors import AvalonError, InternalError, ShapeError, UnsupportedConstruct
from ..ops.primitive import PRIMITIVES
from ..tape import Call, Const, Input, Tape
from ..standin import Standin, as_traced, through_standins
from ..tensor import is_torch_tensor, plain, wrap
from .. import tree
from .binding import Bindings
from .source import library_call, user_location


class _Traces(threading.local):
    """The traces this thread is recording, innermost last: another thread's calls stay eager (a
    plain `avalon.exp(x)` there computes, instead of recording onto this thread's tape)."""

    def __init__(self):
        self.stack = []


_traces = _Traces()

# What numpy and cupy raise for operands a function cannot combine (AxisError is a ValueError).
_OPERAND_ERRORS = (TypeError, ValueError, IndexError)


def current():
    """The innermost active trace, or None outside traced code."""
    stack = _traces.stack
    return stack[-1] if stack else None


class Trace:
    """Records primitive calls onto `tape` while user code runs on tracers.

    With `collect=True` (what `avalon.check` uses) unsupported constructs are recorded in `problems`
    and tracing goes on with the concrete values, so one run finds them all.
    """

    def __init__(self, collect=False):
        self.tape = Tape()
        self.collect = collect
        self.problems = []
        self.phase = "forward"
        self.scopes = [""]
        self.scope_names = {}
        self.origin = None  # a forward node whose location backward calls inherit
        self.live = False
        self.captured = []  # Captured holders, bound by `adopt`
        self.originals = {}  # id(view) -> (view, what it is a view of), for every view this trace made
        self.bindings = [Bindings(self.originals)]  # holders its code sees with tracers; a grad inside adds its own
        self.grad_enabled = True  # torch's grad mode (avalon.no_grad): calls recorded while off get no gradient
        self.no_grad = set()  # the nodes recorded while it was off
        self.checkpoints = {}  # forward call -> the checkpointed segment holding it (avalon.utils.checkpoint)
        self.writable = set()  # data inputs in-place writes may go to (they alias no other argument)
        self.written = {}  # such an input -> the tracer a write rebound: its value is written back
        self.grad_hooks = {}  # node -> [fire(grads)]: gradient hooks, run when the backward walk reaches it
        self._consts = {}

    @contextlib.contextmanager
    def active(self):
        _traces.stack.append(self)
        self.live = True
        try:
            yield self
        finally:
            _traces.stack.pop()
            self.live = self in _traces.stack

    @contextlib.contextmanager
    def scope(self, obj_or_name):
        """Nodes recorded inside belong to a module scope.

        A holder (a Module) is named by its dotted path from the traced arguments (`encoder.layers.0`;
        an argument holder itself is the root, ''); a holder built inside the traced code gets its
        class name under the current scope. A string is a name under the current scope.
        """
        parent = self.scopes[-1]
        if not isinstance(obj_or_name, str) and id(obj_or_name) not in self.scope_names:
            self.adopt(obj_or_name, in_place=True)  # the caller goes on using this very object
        if isinstance(obj_or_name, str):
            name = f"{parent}.{obj_or_name}" if parent and obj_or_name else obj_or_name or parent
        else:
            name = self.scope_names.get(id(obj_or_name))
            if name is None:
                leaf = type(obj_or_name).__name__.lower()
                name = f"{parent}.{leaf}" if parent else leaf
        self.scopes.append(name)
        try:
            yield
        finally:
            self.scopes.pop()

    def view(self, obj):
        """`obj` as this thread's traced code sees it: its view holding tracers (`binding`), adopted
        when the code uses a holder it did not receive."""
        found = False
        for bindings in self.bindings:  # a grad inside binds its holders into views of the outer ones
            seen = bindings.find(obj)
            if seen is not None:
                obj, found = seen, True
        return obj if found else self.adopt(obj)

    def original(self, obj):
        """The user's object behind `obj` (a view, even one a finished grad inside made, or the object
        itself)."""
        while id(obj) in self.originals:
            obj = self.originals[id(obj)][1]
        return obj

    def adopt(self, obj, in_place=False):
        """Bind a holder the traced code uses without receiving it (a model in a closure); return
        what the code is to use for it (its view, or with `in_place` the object itself). Its arrays
        become inputs that every replay reads afresh from the object, so an optimiser's in-place step
        and its state updates reach the replay instead of freezing as constants; they get no gradient
        (pass the holder as an argument for that)."""
        from .tracer import Tracer

        holder = tree.holder_of(obj)
        if holder is None:
            return obj
        with tree.IN_PLACE if in_place or holder.view is None else contextlib.nullcontext():
            arrays = holder.named_arrays(obj)  # (under the lock: no other thread's binding is in it)
            if any(isinstance(a, Tracer) for _, a, _ in arrays):
                return obj  # already bound (in place, by an enclosing grad's arguments)
            where = user_location(2)
            tracers = {name: Tracer(self.input(name, array, role, where), self) for name, array, role in arrays}
            self.captured.append(Captured(obj, {n: a for n, a, _ in arrays}, tracers, holder.static(obj)))
            bindings = self.bindings[0]
            seen = bindings.bind_in_place(obj, tracers) if in_place else bindings.bind(obj, tracers)
        self.scope_names[id(obj)] = ""
        for path, part in holder.named_parts(obj):
            self.scope_names.setdefault(id(part), path)
        self.name_view(seen, obj)
        return seen

    def name_view(self, view, obj):
        """Give `view` and its parts the scope names of `obj` and its parts (they mirror each other)."""
        if view is obj:
            return
        names, holder = self.scope_names, tree.holder_of(obj)
        pairs = [(obj, view)] + [(part, copy) for (_, part), (_, copy) in
                                 zip(holder.named_parts(obj), holder.named_parts(view))]
        for part, copy in pairs:
            if id(part) in names:
                names.setdefault(id(copy), names[id(part)])

    def location(self):
        """Where a node recorded now comes from: the user's line (a backward node: its forward's)."""
        if self.origin is not None:
            return self.origin.location
        return user_location(2)

    def _new(self, node):
        if self.origin is not None:
            node.scope = self.origin.scope
        elif not node.scope:
            node.scope = self.scopes[-1]
        node.phase = self.phase
        if not self.grad_enabled:
            self.no_grad.add(node)
        return self.tape.append(node)

    def last_node(self):
        """The node recorded last (None on an empty tape)."""
        return self.tape.nodes[-1] if self.tape.nodes else None

    def input(self, name, value, role="data", location=None):
        """An `Input` node; a parameter or buffer belongs to the scope of the holder that owns it."""
        value = plain(value)  # the tape holds plain arrays; Tensors are for the user's side
        node = Input(name, value.shape, value.dtype, role, value=value, location=location)
        if role != "data" and "." in name:
            node.scope = name.rsplit(".", 1)[0]
        return self._new(node)

    def const(self, value):
        """The `Const` node of an array used by traced code (one per array object; a Tensor's node
        holds its plain array)."""
        traced = as_traced(value)
        if traced is not value and traced._trace is self:
            return traced._node
        seen = self._consts.get(id(value))
        if seen is not None and seen[0] is value:
            return seen[1]
        node = self._new(Const(getattr(value, "shape", ()), value.dtype, value=plain(value),
                               location=self.location()))
        self._consts[id(value)] = (value, node)  # holding `value` keeps its id from being reused
        return node

    def record(self, prim, args, params, value=None):
        """Run `prim` on the values behind `args` and append its `Call`; a tracer of the result.

        `value` is the result when the caller already has it (a host callback that ran its hook
        itself, so that the hook's own errors reach the user as they are): `prim` is not run again."""
        hook = sys.gettrace()
        if hook is None or not getattr(hook, "skips_avalon", False) or not prim.builtin or prim.effect:
            return self._record(prim, args, params, value)
        # A Python trace hook (the compile cache's watch of the user's code) makes the interpreter run
        # every line slower while it is set, and a built-in primitive runs none of the user's code. The
        # trace in a 57-layer GPT's first gradient call: 0.55 s of CPU with no hook, 1.1 s with the
        # hook on throughout, 0.9 s with it off here.
        sys.settrace(None)
        try:
            return self._record(prim, args, params, value)
        finally:
            sys.settrace(hook)

    def _record(self, prim, args, params, value):
        from .tracer import Tracer

        nodes, values = [], []
        for a in args:
            if is_torch_tensor(a):
                a = plain(a)
            if isinstance(a, Tracer):
                if a._trace is not self:
                    raise escaped_tracer(prim)
                nodes.append(a._node)
                values.append(a._node.value)
            elif is_array(a):
                nodes.append(self.const(a))
                values.append(plain(a))
            else:
                nodes.append(a)
                values.append(a)
        location = self.location()
        out = run(prim, values, params, location, self.last_node()) if value is None else value
        if not is_array(out):
            out = namespace(*values).asarray(out)
        node = Call(prim, nodes, params, out.shape, out.dtype, value=out, location=location)
        traced = Tracer(self._new(node), self)
        if anomaly.enabled():
            anomaly.check_traced(node, self.origin)
        return traced

    def refuse(self, construct, why, fix, fallback):
        """Raise `UnsupportedConstruct` at the user's line, or in collecting mode note it and go on
        with `fallback()` (a concrete value).

        When it happens inside a library function the user's line called (scipy, sklearn …), the
        user cannot rewrite that code: the fix is then to make the function one recorded call.
        """
        called = library_call(2)
        if called is not None:
            short = called.rsplit(".", 1)[-1]
            # a primitive may not take a built-in one's name (scipy's logsumexp beside Avalon's)
            named = f", name={called!r}" if short in PRIMITIVES else ""
            construct = f"{construct}, inside {called}"
            fix = (f"make {called} one recorded call with a rule, and call that in traced code:\n"
                   f"        {short} = avalon.primitive({called}{named})\n"
                   f"        @avalon.rule({called})\n"
                   f"        def {short}_vjp(g, out, *args, **params):\n"
                   "            return (g * ...,)   # one gradient per array argument\n"
                   "      or compute the same thing with numpy functions on the traced arrays")
        problem = UnsupportedConstruct(construct, why, fix, user_location(2), self.last_node())
        if not self.collect:
            raise problem
        self.problems.append(problem)
        return fallback()


class Captured:
    """A holder bound by `Trace.adopt`: its own arrays, the tracers bound in their place (in its
    view), and its static key when traced (a replay checks it is unchanged)."""

    def __init__(self, obj, originals, tracers, static):
        self.obj = obj
        self.originals = originals
        self.tracers = tracers
        self.static = static


def run(prim, values, params, location=None, node=None):
    """`prim`'s result on `values`, its failures told as whose they are: operands its `check` (or, for
    a primitive without one, its implementation) refuses are the user's `ShapeError`; an AvalonError
    the implementation raises (an index out of range) is placed at the user's line; anything else a
    built-in implementation raises is Avalon's `InternalError`. A user's primitive's own exceptions
    pass unchanged, as do deliberate refusals (NotImplementedError), MemoryError and floating-point
    errors the user asked numpy to raise (np.errstate). `location` is the
    user's line (found on failure when None)."""
    if prim.check is not None:
        try:
            prim.check(*values, **params)
        except _OPERAND_ERRORS as exc:
            raise operand_error(prim, values, params, exc, node, location) from None
    try:
        return prim.impl(*values, **params)
    except AvalonError as exc:
        if getattr(exc, "location", True) is None and hasattr(exc, "at"):
            raise exc.at(location or user_location()) from None
        raise
    except (NotImplementedError, MemoryError, ArithmeticError):  # a refusal, or numpy's errstate(all="raise")
        raise
    except Exception as exc:
        if prim.check is None and isinstance(exc, _OPERAND_ERRORS):
            raise operand_error(prim, values, params, exc, node, location) from None
        if not prim.builtin:
            raise
        raise InternalError(prim.name, _operands(values, params), exc, location or user_location(), node) from exc


def _operands(values, params):
    described = ", ".join(f"{v.dtype} {tuple(v.shape)}" if is_array(v) else repr(v) for v in values)
    detail = f" with {', '.join(f'{k}={v!r}' for k, v in params.items())}" if params else ""
    return described + detail


def operand_error(prim, values, params, exc, node=None, location=None):
    """The `ShapeError` of a primitive that could not combine its operands: names the primitive, the
    operands' dtypes and shapes, the static parameters and the user's line."""
    shapes = [tuple(v.shape) for v in values if is_array(v)]
    return ShapeError(f"{prim.name} cannot combine operands {_operands(values, params)}", prim.name, shapes,
                      location or user_location(), node, why=str(exc),
                      fix="make the operands agree at this line (print their .shape and .dtype, or the "
                          "tape, to see where each came from)")


def escaped_tracer(prim):
    return AvalonError(
        f"{prim.name}: a traced array was used outside the traced function that made it (kept in a "
        "global, an attribute or a closure); return arrays from traced code instead of storing them")


def bind(prim, args, params):
    """Run `prim`: record it when a tracer is among `args` or a trace is active, else just compute."""
    from .tracer import Tracer

    if any(type(a) is Standin for a in args):  # a hook's Tensor standing in for a traced value
        return through_standins(lambda *args: bind(prim, args, params), args, {})
    for a in args:
        if isinstance(a, Tracer):
            if not a._trace.live:
                raise escaped_tracer(prim)
            return a._trace.record(prim, args, params)
    trace = current()
    if trace is not None:
        return trace.record(prim, args, params)
    args = [plain(a) for a in args]  # implementations see plain arrays; the user gets a Tensor back
    out = run(prim, args, params)
    if anomaly.enabled():
        anomaly.check_eager(out, prim)
    return wrap(out)


@contextlib.contextmanager
def suspended():
    """Run Python code eagerly in the middle of a trace: inside, `current()` is None, so avalon calls
    on concrete arrays compute at once instead of recording (a hook called with the values seen while
    tracing). Tracers used inside still record onto their own trace."""
    saved, _traces.stack = _traces.stack, []
    try:
        yield
    finally:
        _traces.stack = saved


def refuse(construct, why, fix, fallback):
    """`Trace.refuse` on the active trace; outside traced code, raise `UnsupportedConstruct`."""
    trace = current()
    if trace is not None:
        return trace.refuse(construct, why, fix, fallback)
    raise UnsupportedConstruct(construct, why, fix, user_location(2))


def scope(obj_or_name):
    """Context manager: calls traced inside belong to a module scope (a no-op outside tracing).

    >>> class Block:
    ...     def __call__(self, x):
    ...         with avalon.tracing.scope(self):
    ...             return np.tanh(x @ self.weight)
    """
    trace = current()
    return trace.scope(obj_or_name) if trace is not None else contextlib.nullcontext()
