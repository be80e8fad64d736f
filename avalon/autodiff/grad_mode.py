"""torch's grad-mode scopes: `no_grad`, `enable_grad`, `inference_mode`, `set_grad_enabled`,
`is_grad_enabled`.

Inside traced code the mode belongs to the trace being recorded (`Trace.grad_enabled`): calls
recorded while it is off carry no gradient (the backward pass treats them as constants, as torch
treats tensors made under `no_grad`). Every trace starts with gradients on, whatever the mode around
it, so a mode can never leak from one trace into another; this is torch.func's rule for its function
transforms: `grad` respects a `no_grad` inside the differentiated function, not one around the call.

Outside traced code nothing is recorded, so the scopes change nothing but what `is_grad_enabled()`
answers (kept per thread and per asyncio task).

Each scope works as a context manager and as a decorator (also bare, `@avalon.no_grad`, and on
generator functions, whose every step then runs in the scope):

>>> with avalon.no_grad():
...     target = teacher(x)            # recorded without gradient
>>> @avalon.no_grad()
... def generate(self, prompt): ...
"""
import contextlib
import contextvars
import functools
import inspect

import numpy as np

from ..errors import AvalonError
from ..tracing.context import current

_eager = contextvars.ContextVar("avalon_grad_enabled", default=True)


def is_grad_enabled():
    """Whether calls recorded now get gradients: the mode of the trace being recorded, or outside
    traced code the mode the enclosing scopes set (True by default)."""
    trace = current()
    return trace.grad_enabled if trace is not None else _eager.get()


def _switch(enabled):
    """Set the mode where it lives now (the active trace, else this thread); return how to undo it."""
    trace = current()
    if trace is None:
        previous = _eager.get()
        _eager.set(enabled)
    else:
        previous = trace.grad_enabled
        trace.grad_enabled = enabled
    return trace, previous


def _restore(undo):
    trace, previous = undo
    if trace is None:
        _eager.set(previous)
    else:
        trace.grad_enabled = previous


@contextlib.contextmanager
def _scope(enabled):
    undo = _switch(enabled)
    try:
        yield
    finally:
        _restore(undo)


class _GradMode:
    """A scope that runs code with gradients on or off (`self.enabled`): a context manager, and a
    decorator that enters a fresh scope at every call (so decorated functions may recurse, or run in
    several threads)."""

    enabled = True

    def __enter__(self):
        # a stack: one instance (a module-level `frozen = avalon.no_grad()`) may be entered again inside itself
        self.__dict__.setdefault("_undo", []).append(_switch(self.enabled))

    def __exit__(self, *exc):
        _restore(self._undo.pop())

    def __call__(self, fn):
        enabled = self.enabled
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def generator(*args, **kwargs):
                return (yield from _in_scope(fn(*args, **kwargs), enabled))
            return generator

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _scope(enabled):
                return fn(*args, **kwargs)
        return wrapper


def _in_scope(gen, enabled):
    """Drive `gen`, running each of its steps (and its closing) in the scope, but not the caller's
    code between them: torch's behaviour for decorated generators."""
    request, step = None, gen.send
    while True:
        try:
            with _scope(enabled):
                item = step(request)
        except StopIteration as done:
            return done.value
        try:
            request, step = (yield item), gen.send
        except GeneratorExit:
            with _scope(enabled):
                gen.close()
            raise
        except BaseException as error:  # thrown into the decorated generator: pass it on
            request, step = error, gen.throw


class _Bare(_GradMode):
    """A scope usable bare as a decorator: `@avalon.no_grad` as well as `@avalon.no_grad()`."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        if not callable(orig_func):
            raise AvalonError(f"{cls.__name__}() takes no arguments, got {orig_func!r}: use it as "
                              f"`with avalon.{cls.__name__}():`, `@avalon.{cls.__name__}()` or `@avalon.{cls.__name__}`")
        return cls()(orig_func)


class no_grad(_Bare):
    """Calls recorded inside carry no gradient (torch.no_grad): their results are constants to
    `grad`. A context manager and a decorator.

    >>> def loss_fn(model, x):
    ...     with avalon.no_grad():
    ...         target = model(x + noise)   # no gradient flows back through the target
    ...     return ((model(x) - target) ** 2).mean()
    """

    enabled = False


class enable_grad(_Bare):
    """Turn gradients back on inside a `no_grad` scope (torch.enable_grad)."""

    enabled = True


class inference_mode(_GradMode):
    """torch.inference_mode: `no_grad` for Avalon (traced code has no other bookkeeping to skip);
    `inference_mode(False)` turns gradients on, as torch's does."""

    def __new__(cls, mode=True):
        if callable(mode):  # bare decorator: @avalon.inference_mode
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode=True):
        self.enabled = not mode


class set_grad_enabled(_GradMode):
    """Switch gradients on or off (torch.set_grad_enabled): as a call it switches at once; as a
    context manager it also switches back on exit; as a decorator it switches only during calls.

    >>> avalon.set_grad_enabled(False)   # from here on, in this trace or this thread
    >>> with avalon.set_grad_enabled(is_training):
    ...     out = model(x)
    """

    def __init__(self, mode):
        if not isinstance(mode, (bool, np.bool_)):
            raise AvalonError(f"set_grad_enabled(mode): mode must be True or False, got {mode!r} "
                              f"({type(mode).__name__}); pass a bool, e.g. set_grad_enabled(phase == 'train')")
        self.enabled = bool(mode)
        self._before = _switch(self.enabled)

    def __enter__(self):
        pass  # already switched when made

    def __exit__(self, *exc):
        _restore(self._before)

    def __call__(self, fn):
        _restore(self._before)  # made for decorating: switch back, the wrapper switches per call
        return super().__call__(fn)
