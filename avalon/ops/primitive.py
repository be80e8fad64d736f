"""Primitives: the operations a tape is made of. One `Primitive` = a forward implementation + a rule.

`prim(*arrays, **params)` runs the primitive: on plain arrays outside traced code it simply computes;
inside traced code (any argument is a tracer, or a trace is active) it records a `Call` on the tape.
Array operands are positional, static parameters are keywords.
"""
from ..backend import namespace

PRIMITIVES = {}


class Primitive:
    """A named operation with a namespace-generic forward `impl` and, once registered, a `vjp` rule.

    Flags tell the compiler what it may do: `random` (drawn afresh at every replay: never folded or
    merged), `effect` (calls back into Python at every replay, as a hook does: never removed, folded
    or merged, and its operands' buffers are never recycled, since that code may keep them), `view`
    (may return a view of an argument: its buffer is never recycled), `out` (accepts `out=`: buffer
    reuse may write into a dead buffer), `fresh` (always returns new memory, never an operand or a
    view of one, though it takes no `out=`: the compiler need not assume its result shares its
    operands' buffers, so those may live in a workspace), `partial` (may leave parts of its result
    unwritten, a buffer sized for a worst case: a workspace holding it is mapped without huge pages,
    so those parts cost no memory; avalon/pages.py). `linear_in` lists operand positions that carry no gradient
    (integer indices), so differentiation skips them.

    `check(*operands, **params)`, when given, validates the operands before `impl` runs (raising
    TypeError, ValueError or IndexError for operands that do not agree: the user's `ShapeError`); an
    exception from `impl` after it passed is then Avalon's own bug (`InternalError`). A primitive
    that is one namespace function lets that function validate (its refusals are the user's).
    """

    def __init__(self, name, impl, *, xp_name=None, random=False, effect=False, view=False, out=False,
                 fresh=False, partial=False, differentiable=True, doc=None, check=None):
        self.name = name
        self.impl = impl
        self.xp_name = xp_name
        self.random = random
        self.effect = effect
        self.view = view
        self.out = out
        self.fresh = fresh
        self.partial = partial
        self.differentiable = differentiable
        self.check = check
        self.builtin = getattr(impl, "__module__", "").startswith("avalon.")  # not a user's primitive
        self.vjp = None
        self.__doc__ = doc or impl.__doc__
        PRIMITIVES[name] = self

    @property
    def pinned(self):
        """Whether every replay must run this call where it stands: a random draw advances the
        generator, an effect calls into Python; neither may be removed, folded or merged."""
        return self.random or self.effect

    def __call__(self, *args, **params):
        from ..tracing.context import bind

        return bind(self, args, params)

    def specialize(self, xp):
        """The fastest callable for arrays of namespace `xp` (the namespace function itself when the
        primitive is one), used by generated code."""
        if self.xp_name is not None:
            for name in self.xp_name:
                fn = getattr(xp, name, None)
                if fn is not None:
                    return fn
        return self.impl

    def __repr__(self):
        return f"<primitive {self.name}>"


def primitive(name, **flags):
    """Decorator: make `impl` the forward of a new primitive called `name`."""

    def make(impl):
        return Primitive(name, impl, **flags)

    return make


def namespace_function(name, *xp_names, **flags):
    """A primitive that is one namespace function (`np.tanh`, `cupy.tanh`, `xp.atan2` …).

    `xp_names` are tried in order (array-API spelling first, then numpy's).
    """
    names = xp_names or (name,)

    def impl(*args, **params):
        xp = namespace(*args)
        for attr in names:
            fn = getattr(xp, attr, None)
            if fn is not None:
                return fn(*args, **params)
        raise NotImplementedError(f"{name}: the array module {xp.__name__} has none of {names}")

    impl.__name__ = name
    return Primitive(name, impl, xp_name=names, **flags)
