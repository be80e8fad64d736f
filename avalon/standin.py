"""`Standin`: what a hook is handed while tracing — a Tensor of a traced value's values that stands
in for the traced value until its trace ends (see `avalon.tracing.callbacks`)."""
import numpy as np

from .tensor import Tensor, nested, wrap_all


class Standin(Tensor):
    """What a hook is handed while tracing: a Tensor of the values a traced value had, which stands
    in for that traced value in traced computations until its trace ends.

    So a hook can read, print, convert or store it like any Tensor, and what it stores and the traced
    code uses later (the "intermediate features" recipe: a forward hook fills a dict that forward
    returns) still carries its gradient; a value the hook returns (`output * 2`) is recorded. After
    the trace it is an ordinary Tensor of that call's values.
    """

    @staticmethod
    def of(tracer):
        standin = np.ndarray.view(np.asarray(tracer._node.value), Standin)
        standin._tracer = tracer
        return standin

    def traced(self):
        """The traced value this stands for, while its trace is being recorded; else None."""
        tracer = self.__dict__.get("_tracer")
        return tracer if tracer is not None and tracer._trace.live else None

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return through_standins(getattr(ufunc, method), inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return through_standins(func, args, kwargs)

    def __getitem__(self, key):
        return through_standins(_getitem, (self, key), {})


def _getitem(x, key):
    return x[key] if not isinstance(x, np.ndarray) else np.ndarray.__getitem__(x, key)


def through_standins(fn, args, kwargs):
    """`fn(*args, **kwargs)` where Standins are among the arguments: while their trace is recorded,
    on the traced values they stand for, giving Standins of the traced results (so what a hook derives
    from its arguments is recorded, yet reads as values); after it, on their plain values."""
    live = []

    def swap(x):
        traced = as_traced(x)
        if traced is not x:
            live.append(traced)
        return traced

    traced_args, traced_kwargs = nested(args, swap), nested(kwargs, swap)
    if not live:  # their trace ended
        return wrap_all(fn(*nested(args, _ended), **nested(kwargs, _ended)))
    return nested(fn(*traced_args, **traced_kwargs), _standin_of)


def as_traced(x):
    """The traced value a live Standin stands for; anything else as it is."""
    if type(x) is Standin:
        tracer = x.traced()
        return x if tracer is None else tracer
    return x


def _ended(x):
    return np.ndarray.view(x, Tensor) if type(x) is Standin else x


def _standin_of(x):
    return Standin.of(x) if getattr(type(x), "_avalon_tracer", False) else x
