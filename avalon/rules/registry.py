"""The rule registry: one vector-Jacobian product per primitive, written with primitives itself.

A rule is `vjp(g, out, *args, **params) -> tuple` with one gradient (or None) per positional argument:
`g` is the gradient arriving at the primitive's output, `out` its output, `args` its operands, all
tracers, so a rule's own operations are recorded on the tape (and can be differentiated again).
The engine sums gradients back over broadcast axes, so rules may return broadcast shapes.
"""
from ..backend import namespace
from ..errors import AvalonError
from ..ops.primitive import Primitive

_user_primitives = {}


def rule(target):
    """Decorator registering the differentiation rule of `target`.

    `target` is a primitive, or any function (e.g. a numpy function with no rule yet), which then
    becomes a primitive whose forward is the function itself:

    >>> @avalon.rule(np.sinc)
    ... def sinc_vjp(g, out, x):
    ...     px = np.pi * x
    ...     return (g * np.where(x == 0, 0.0, (np.cos(px) - out) / x),)
    """
    if isinstance(target, Primitive):
        prim = target
    else:
        prim = _user_primitives.get(target)
        if prim is None:
            name = getattr(target, "__name__", repr(target))
            prim = Primitive(name, target)
            _user_primitives[target] = prim

    def register(vjp):
        prim.vjp = vjp
        return vjp

    return register


def primitive(fn=None, *, name=None):
    """Decorator: make `fn` (written for plain arrays) a primitive, recorded as one call on the tape.

    Give it a rule with `@avalon.rule(fn)`; without one, differentiating through it is an error.

    >>> @avalon.primitive
    ... def cube(x):
    ...     return x ** 3
    >>> @avalon.rule(cube)
    ... def cube_vjp(g, out, x):
    ...     return (3 * x ** 2 * g,)
    """
    def make(f):
        prim = Primitive(name or f.__name__, f)
        _user_primitives[f] = prim
        return prim

    return make(fn) if fn is not None else make


def user_rule_for(fn):
    """The primitive registered for a numpy function or ufunc, if any."""
    return _user_primitives.get(fn)


def vjp_of(prim, node):
    if prim.vjp is None:
        raise AvalonError(
            f"{prim.name} has no differentiation rule, so no gradient can flow through it"
            + (f" (at {node.location})" if node.location else "")
            + f"; register one with @avalon.rule(...) for {prim.name}")
    return prim.vjp


def array_module(x):
    """The array module (numpy, cupy, an array-API namespace) of a traced value, so the constants a
    rule creates live beside its operands."""
    node = getattr(x, "_node", None)
    return namespace(node.value if node is not None else x)
