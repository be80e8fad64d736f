"""The rule registry: one vector-Jacobian product per primitive, written with primitives itself.

A rule is `vjp(g, out, *args, **params) -> tuple` with one gradient (or None) per positional argument:
`g` is the gradient arriving at the primitive's output, `out` its output, `args` its operands, all
tracers, so a rule's own operations are recorded on the tape (and can be differentiated again).
The engine sums gradients back over broadcast axes, so rules may return broadcast shapes.

A registration either takes effect everywhere or is refused, never ignored:
- a rule for a built-in primitive (`np.tanh`, `avalon.tanh` and `ops.elementwise.tanh` all name the
  primitive `tanh`) replaces its rule wherever that primitive is recorded, until `restore_rule`;
- a rule for a numpy function or ufunc makes it one recorded call (traced code calling it records the
  user's primitive, ahead of any built-in composition such as `np.sum`'s or `np.hypot`'s);
- a rule for anything else (Avalon's own composite functions, a plain Python function) could never be
  consulted, since calling it runs its body: it is refused with the rewrite.
Every registration forgets the compiled functions, so calls traced before retrace with the new rule.
"""
import numpy as np

from ..backend import namespace
from ..errors import AvalonError
from ..numpy_api import HANDLED
from ..numpy_ufuncs import UFUNCS
from ..ops.primitive import PRIMITIVES, Primitive
from ..tracing.source import public_name

_user_primitives = {}  # function -> the user primitive recorded for it
_builtin_rules = {}  # built-in primitive -> its own rule, kept while a user's rule replaces it


class RuleError(AvalonError, TypeError):
    """A rule or primitive registration that could not take effect: `construct` says what and why,
    `fix` what to do instead."""

    def __init__(self, construct, fix):
        self.construct = construct
        self.fix = fix
        super().__init__(f"{construct}\n  fix: {fix}")


def rule(target):
    """Decorator registering the differentiation rule of `target`.

    `target` is a primitive, or any function (e.g. a numpy function with no rule yet), which then
    becomes a primitive whose forward is the function itself:

    >>> @avalon.rule(np.sinc)
    ... def sinc_vjp(g, out, x):
    ...     px = np.pi * x
    ...     return (g * np.where(x == 0, 0.0, (np.cos(px) - out) / x),)

    A rule for a function Avalon already differentiates replaces the built-in one everywhere that
    primitive is used (`np.tanh`, `avalon.tanh`, `x.tanh()`, `nn.Tanh`, layers built on tanh), and
    compiled functions retrace; `avalon.restore_rule(np.tanh)` brings the built-in rule back.
    """
    prim = _primitive_for(target)

    def register(vjp):
        if _avalons(vjp):  # Avalon's own rules, registered while it imports
            prim.vjp = vjp
            return vjp
        if not prim.differentiable:
            raise RuleError(
                f"@avalon.rule({_called(target)}): {prim.name} is marked not differentiable (its "
                "outputs are integers, booleans or piecewise constant), so gradients never flow "
                "through it and a rule would never run",
                f"compute what you need with differentiable functions, or wrap your own function with "
                f"@avalon.primitive(name=...) and give that a rule")
        if prim.vjp is not None and _avalons(prim.impl):
            _builtin_rules.setdefault(prim, prim.vjp)
        prim.vjp = vjp
        _forget_compiled()
        return vjp

    return register


def restore_rule(target):
    """Undo `@avalon.rule(target)` for a function Avalon has its own rule for: the built-in rule is
    used again (compiled functions retrace).

    >>> avalon.restore_rule(np.tanh)
    """
    prim = _existing_primitive(target)
    if prim is not None and prim in _builtin_rules:
        prim.vjp = _builtin_rules.pop(prim)
    elif _hashable(target) and target in _user_primitives and _has_builtin(target):
        made = _user_primitives.pop(target)
        if PRIMITIVES.get(made.name) is made:
            del PRIMITIVES[made.name]
    else:
        raise RuleError(f"avalon.restore_rule({_called(target)}): no user rule replaces a built-in "
                        "one there, so there is nothing to restore",
                        "pass the function or primitive you registered with @avalon.rule(...)")
    _forget_compiled()


def primitive(fn=None, *, name=None):
    """Decorator: make `fn` (written for plain arrays) a primitive, recorded as one call on the tape.

    Give it a rule with `@avalon.rule(fn)`; without one, differentiating through it is an error.
    Its name (`name=`, else the function's) must not be a built-in primitive's.

    >>> @avalon.primitive
    ... def cube(x):
    ...     return x ** 3
    >>> @avalon.rule(cube)
    ... def cube_vjp(g, out, x):
    ...     return (3 * x ** 2 * g,)
    """
    def make(f):
        chosen = name or f.__name__
        builtin = PRIMITIVES.get(chosen)
        if builtin is not None and _avalons(builtin.impl):
            raise RuleError(
                f"avalon.primitive({_called(f)}): the name {chosen!r} is already Avalon's built-in "
                f"primitive avalon.ops.PRIMITIVES[{builtin.name!r}]; two primitives of one name would "
                "make tapes, profiles and avalon.ops.PRIMITIVES ambiguous",
                f"give yours a name of its own: avalon.primitive({_called(f)}, name='my_{chosen}')")
        prim = Primitive(chosen, f)
        _user_primitives[f] = prim
        _forget_compiled()  # a primitive that replaces an earlier one of the user's (a cell run again)
        return prim

    return make(fn) if fn is not None else make


def user_rule_for(fn):
    """The user primitive registered for a numpy function or ufunc, if any (tracing records it ahead
    of any built-in handling of that function)."""
    return _user_primitives.get(fn) if _hashable(fn) else None


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


def _primitive_for(target):
    """The primitive a rule for `target` belongs to, made for a numpy function or ufunc the first
    time; a `RuleError` where a rule could never be consulted."""
    builtin = _existing_primitive(target)
    if builtin is not None:
        return builtin
    if _hashable(target) and target in _user_primitives:
        return _user_primitives[target]
    if _dispatched_by_numpy(target):
        name = target.__name__
        if name in PRIMITIVES and _avalons(PRIMITIVES[name].impl):  # np.sum beside the built-in sum
            name = public_name(target)
        prim = _user_primitives[target] = Primitive(name, target)
        return prim
    module = getattr(target, "__module__", None) or ""
    if module.split(".")[0] == "avalon":
        same = PRIMITIVES.get(getattr(target, "__name__", None))
        on_primitive = (f"@avalon.rule(avalon.ops.PRIMITIVES[{same.name!r}]) changes the rule of the "
                        "primitive it records; " if same is not None else "")
        raise RuleError(
            f"@avalon.rule({_called(target)}): this is Avalon's own function, written with primitives "
            "that have rules; calling it runs its body, so a rule registered for it would never run",
            on_primitive + "to differentiate your own version differently, make it a primitive: "
            f"f = avalon.primitive(your_function, name=...), then @avalon.rule(f)")
    raise RuleError(
        f"@avalon.rule({_called(target)}): it is neither a primitive nor a numpy function or ufunc; "
        "calling it runs its Python body, so a rule registered for it would never run",
        f"make it a primitive first: {_short(target)} = avalon.primitive({_called(target)}) "
        f"(or @avalon.primitive on its definition), then @avalon.rule({_short(target)})")


def _existing_primitive(target):
    """The primitive `target` names: itself, the built-in one a ufunc maps to (np.tanh), or the one a
    torch-named function calls (avalon.tanh)."""
    if isinstance(target, Primitive):
        return target
    if _hashable(target) and isinstance(UFUNCS.get(target), Primitive):
        return UFUNCS[target]
    wrapped = getattr(target, "primitive", None)
    return wrapped if isinstance(wrapped, Primitive) else None


def _has_builtin(fn):
    return fn in UFUNCS or fn in HANDLED


def _dispatched_by_numpy(fn):
    """Whether tracers see calls of `fn` (ufuncs and numpy's array functions reach
    `__array_ufunc__` / `__array_function__`, where user rules are looked up)."""
    return isinstance(fn, np.ufunc) or hasattr(fn, "_implementation")


def _avalons(fn):
    """Whether `fn` (a rule, a primitive's forward) is defined inside Avalon: a built-in."""
    return (getattr(fn, "__module__", None) or "").split(".")[0] == "avalon"


def _hashable(obj):
    try:
        hash(obj)
    except TypeError:
        return False
    return True


def _called(target):
    if isinstance(target, Primitive):
        return target.name
    if _short(target) != getattr(target, "__name__", None):  # a lambda, a callable object
        return "f"
    return public_name(target)


def _short(target):
    name = getattr(target, "__name__", "")
    return name if name.isidentifier() else "f"


def _forget_compiled():
    # autodiff imports this module (vjp_of), so its cache is reached when a user registers, not at import
    from ..autodiff.cache import clear

    clear()
