"""A trace in progress: the tape being recorded, the module scope, and `bind`, which records calls."""
import contextlib

from ..backend import is_array, namespace
from ..errors import AvalonError, ShapeError, UnsupportedConstruct
from ..tape import Call, Const, Input, Tape
from .source import user_location

_active = []


def current():
    """The innermost active trace, or None outside traced code."""
    return _active[-1] if _active else None


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
        self._consts = {}

    @contextlib.contextmanager
    def active(self):
        _active.append(self)
        try:
            yield self
        finally:
            _active.pop()

    @contextlib.contextmanager
    def scope(self, obj_or_name):
        """Nodes recorded inside belong to the module scope `obj_or_name` (a holder or a dotted name)."""
        if isinstance(obj_or_name, str):
            name = obj_or_name
        else:
            name = self.scope_names.get(id(obj_or_name))
            if name is None:
                parent = self.scopes[-1]
                leaf = type(obj_or_name).__name__.lower()
                name = f"{parent}.{leaf}" if parent else leaf
        self.scopes.append(name)
        try:
            yield
        finally:
            self.scopes.pop()

    def location(self):
        if self.origin is not None:
            return self.origin.location
        return user_location(2)

    def _new(self, node):
        node.scope = self.origin.scope if self.origin is not None else self.scopes[-1]
        node.phase = self.phase
        return self.tape.append(node)

    def input(self, name, value, role="data"):
        node = Input(name, value.shape, value.dtype, role, value=value)
        return self._new(node)

    def const(self, value):
        node = self._consts.get(id(value))
        if node is None or node.value is not value:
            node = self._new(Const(getattr(value, "shape", ()), value.dtype, value=value,
                                   location=self.location()))
            self._consts[id(value)] = node
        return node

    def record(self, prim, args, params):
        from .tracer import Tracer

        nodes, values = [], []
        for a in args:
            if isinstance(a, Tracer):
                if a._trace is not self:
                    raise AvalonError(f"{prim.name}: a tracer from another trace was used here; "
                                      "do not keep tracers after the traced function returns")
                nodes.append(a._node)
                values.append(a._node.value)
            elif is_array(a):
                nodes.append(self.const(a))
                values.append(a)
            else:
                nodes.append(a)
                values.append(a)
        try:
            out = prim.impl(*values, **params)
        except (AvalonError, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise self._operand_error(prim, values, params, exc) from None
        if not is_array(out):
            out = namespace(*values).asarray(out)
        node = Call(prim, nodes, params, out.shape, out.dtype, value=out, location=self.location())
        return Tracer(self._new(node), self)

    def _operand_error(self, prim, values, params, exc):
        shapes = ", ".join(f"{v.dtype}{list(v.shape)}" if is_array(v) else repr(v) for v in values)
        where = user_location(2)
        detail = f" with {', '.join(f'{k}={v!r}' for k, v in params.items())}" if params else ""
        return ShapeError(f"{prim.name} cannot combine operands ({shapes}){detail}: {exc}"
                          + (f"\n  at {where}\n      {where.code}" if where else ""))

    def refuse(self, construct, why, fix, fallback):
        """Raise `UnsupportedConstruct` at the user's line, or in collecting mode note it and go on
        with `fallback()` (a concrete value)."""
        problem = UnsupportedConstruct(construct, why, fix, user_location(2))
        if not self.collect:
            raise problem
        self.problems.append(problem)
        return fallback()


def bind(prim, args, params):
    """Run `prim`: record it when a tracer is among `args` or a trace is active, else just compute."""
    from .tracer import Tracer

    trace = None
    for a in args:
        if isinstance(a, Tracer):
            trace = a._trace
            break
    else:
        trace = current()
        if trace is None:
            return prim.impl(*args, **params)
    return trace.record(prim, args, params)


def scope(obj_or_name):
    """Context manager: calls traced inside belong to a module scope (a no-op outside tracing)."""
    trace = current()
    return trace.scope(obj_or_name) if trace is not None else contextlib.nullcontext()
