"""Hooks in traced code: user functions that see every call's values, and gradient hooks.

A hook cannot just run while tracing: a cached call replays compiled code, and no Python of the
traced function runs then. So `call_hook(fn, prefix, args)`, called where the hook belongs in traced
code, calls `fn(*prefix, *args)` once, on `Standin`s of the traced values (Tensors of the values seen
while tracing, the trace suspended so avalon calls on plain arrays compute at once), and records a
`host_callback` node that calls it again on each replay's values, where it stands on the tape. A
Standin stands in for its traced value until the trace ends: what the hook returns (`output * 2`),
and what it stores that the traced code uses later, is recorded and differentiated; what it stores for
the user holds that call's values. So a hook runs exactly once per call, traced or replayed.

Gradient hooks (`Tensor.register_hook`, a module's backward hooks) are registered on a tape node in
`trace.grad_hooks`; the backward pass runs them when the gradient into that node is complete, and they
use `call_hook` in turn, so they see every `avalon.grad` call's gradients.
"""
import itertools
import threading

from .. import tree
from ..errors import AvalonError
from ..ops.callback import DONE, host_callback
from ..standin import Standin, as_traced
from ..tensor import nested, wrap
from .binding import through_views
from .context import current, suspended
from .tracer import Tracer


class HookError(AvalonError, RuntimeError):
    """A hook returned something that cannot take the place of what it was given."""


_ids = itertools.count()


class RemovableHandle:
    """What registering a hook returns (torch's `RemovableHandle`): `handle.remove()` unregisters the
    hook; as a context manager it removes it on leaving the block.

    >>> with model.fc1.register_forward_hook(save):
    ...     model(x)
    """

    def __init__(self, remove):
        self.id = next(_ids)
        self._remove = remove

    def remove(self):
        """Unregister the hook (again: nothing)."""
        if self._remove is not None:
            self._remove()
            self._remove = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()


class HostCallback:
    """The `callback` of a `host_callback` node: rebuilds the hook's arguments from the node's operands
    (arrays become Tensors, everything else comes back as it was when traced) and calls the hook."""

    __slots__ = ("fn", "prefix", "spec", "holders", "label")

    def __init__(self, fn, prefix, spec, holders, label):
        self.fn, self.prefix, self.spec, self.holders, self.label = fn, prefix, spec, holders, label

    def __call__(self, *arrays):
        """The call at a replay."""
        _replaying.stack.append(self)
        try:
            return self.call([wrap(a) for a in arrays])
        finally:
            _replaying.stack.pop()

    def call(self, tensors):
        args = tree.unflatten(self.spec, tensors, self.holders, _as_it_is)
        with suspended():
            return self.fn(*self.prefix, *args)

    def __repr__(self):
        return self.label


def _as_it_is(obj, values, roles):
    return obj


def call_hook(fn, prefix, args, label):
    """`fn(*prefix, *args)` in traced code, at every call: see the module docstring. `args` is a tuple
    that may hold tracers (in tuples, lists and dicts); `prefix` what is passed as it is (the module).
    Returns what `fn` returned, traced (None when it returned nothing)."""
    leaves, _, holders, spec = tree.flatten(args, names=False)
    traced = [leaf for leaf in leaves if isinstance(leaf, Tracer)]
    trace = traced[0]._trace if traced else current()
    if trace is None:  # nothing traced: an ordinary call
        return fn(*prefix, *args)
    originals = tuple(trace.original(p) for p in prefix)  # the user's module, not the traced view
    callback = HostCallback(fn, originals, spec, holders, label)
    with through_views(zip(originals, prefix)):  # what the hook reads and sets on it is traced
        result = callback.call([Standin.of(leaf) if isinstance(leaf, Tracer) else leaf for leaf in leaves])
    trace.record(host_callback, leaves, {"callback": callback}, value=DONE)
    return nested(result, as_traced)  # its Standins replaced by the traced values they stand for


class _Replaying(threading.local):
    """The callbacks this thread is running in a replay, innermost last (another thread's replay
    does not make this thread's calls replays)."""

    def __init__(self):
        self.stack = []


_replaying = _Replaying()


def register_hook(x, hook):
    """`x.register_hook(hook)` (torch's): `hook(grad)` is called with the gradient flowing into `x` at
    every `avalon.grad` call (traced or replayed); a returned array replaces that gradient. `x` is a
    traced value (or a Tensor a hook was given for one). Returns a `RemovableHandle`."""
    x = as_traced(x)  # a Tensor a forward hook was handed stands for the traced output
    if not isinstance(x, Tracer):
        if _replaying.stack:
            return RemovableHandle(None)  # registered on the tape when this hook ran while tracing
        else:
            raise AvalonError(
                "register_hook on an array outside traced code: no gradient flows into it here\n"
                "  fix: register the hook inside the function you pass to avalon.grad, on the traced "
                "value (in forward, or in a forward hook on the output it is given)")
    node, trace = x._node, x._trace
    who = f"gradient hook {describe(hook)}"

    def fire(grads):
        if node not in grads:
            return  # no gradient flows into x (torch does not call the hook then either)
        result = call_hook(hook, (), (grads[node],), f"<{who}>")
        if result is not None:
            grads[node] = as_gradient(result, node, trace, who)

    return on_gradient(trace, node, fire)


def on_gradient(trace, node, fire):
    """Run `fire(grads)` when the backward pass reaches `node` (see `avalon.autodiff.backward`);
    a handle whose `remove()` takes it off again."""
    fires = trace.grad_hooks.setdefault(node, [])
    fires.append(fire)
    return RemovableHandle(lambda: fires.remove(fire))


def describe(fn):
    """A hook's name and where it is defined (`save_grad (model.py:12)`), for the tape and errors."""
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    code = getattr(fn, "__code__", None) or getattr(getattr(fn, "__func__", None), "__code__", None)
    return f"{name} ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})" if code else name


def as_gradient(value, node, trace, who):
    """A hook's replacement for the gradient of `node`: a tracer of the node's shape and dtype."""
    if not isinstance(value, Tracer):
        if not hasattr(value, "shape"):
            raise HookError(f"the {who} returned {type(value).__name__}, not an array\n"
                            "  fix: return the new gradient (an array shaped like the one it was given), "
                            "or None to keep it")
        value = Tracer(trace.const(value), trace)
    if tuple(value.shape) != tuple(node.shape):
        raise HookError(f"the {who} returned a gradient of shape {tuple(value.shape)} for a value of "
                        f"shape {tuple(node.shape)}\n  why: a gradient has the shape of its value\n"
                        "  fix: return an array of the shape of the gradient the hook was given")
    return value if value.dtype == node.dtype else value.astype(node.dtype)
