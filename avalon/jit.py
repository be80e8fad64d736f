"""`avalon.jit`: Avalon's compile-cache decorator, and torch.jit's names for ported PyTorch code.

It is both, because two kinds of code reach for it:

- Avalon code calls it: `@avalon.jit` / `avalon.jit(f)` make calls of `f` on arrays trace once per
  signature and then replay compiled code (see `avalon.autodiff.cache.jit`).
- PyTorch code ported by renaming `torch` to `avalon` uses it as a namespace: `@avalon.jit.unused`,
  `@avalon.jit.ignore(drop=False)`, `if not avalon.jit.is_scripting():`, `avalon.jit.script(model)`.
  Avalon compiles by tracing whatever Python the model runs, so these keep the meaning torch gives
  them in eager mode: decorators and `script` / `trace` return what they are given, and
  `is_scripting()` / `is_tracing()` are False (TorchScript's restricted language never applies).

A function cannot be imported from, and a module cannot be called, so this module's class is a
`ModuleType` with `__call__` (Python lets a module assign its `__class__`): `import avalon.jit`,
`from avalon.jit import ignore` and `avalon.jit(f)` all work.
"""
import sys
import types
import typing

from .autodiff.cache import jit as _compile_cached

Final = typing.Final  # `x: avalon.jit.Final[int]` marks a constant attribute, as torch.jit.Final


def script(obj, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    """torch.jit.script: `obj` itself (a function, method, class or Module instance), since Avalon
    compiles by tracing.

    >>> model = avalon.jit.script(Net())        # the same Net
    """
    return obj


def trace(func, example_inputs=None, optimize=None, check_trace=True, check_inputs=None, check_tolerance=1e-5,
          strict=True, _force_outplace=False, _module_class=None, _compilation_unit=None,
          example_kwarg_inputs=None, _store_inputs=True):
    """torch.jit.trace: `func` itself (a function or Module); Avalon traces each call's signature on
    its own (`avalon.trace(f, *args)` gives the tape)."""
    return func


def script_if_tracing(fn):
    """torch.jit.script_if_tracing: `fn` itself."""
    return fn


def unused(fn):
    """torch.jit.unused: marks code TorchScript should not compile; `fn` itself here."""
    return fn


def ignore(drop=False, **kwargs):
    """torch.jit.ignore, bare (`@ignore`) or with arguments (`@ignore(drop=False)`): the function itself."""
    if callable(drop):
        return drop
    return lambda fn: fn


def export(fn):
    """torch.jit.export: marks a method to compile besides forward; `fn` itself here."""
    return fn


def interface(obj):
    """torch.jit.interface: a class decorator declaring a module interface; the class itself here."""
    return obj


def _overload(func):
    """torch.jit._overload: an overload declaration. Returned as it is: the undecorated definition
    after the declarations rebinds the name, so the implementation is what stays."""
    return func


def _overload_method(func):
    """torch.jit._overload_method: `_overload` for methods (the last, undecorated definition stays)."""
    return func


def is_scripting():
    """False: Avalon never runs code as TorchScript."""
    return False


def is_tracing():
    """False: torch.jit's tracer never runs; Avalon's tracing runs the same Python either way."""
    return False


def Attribute(value, type):  # noqa: N802 - torch's name
    """torch.jit.Attribute(value, type): `value`, what a ScriptModule's attribute holds (torch's eager
    function returns a (value, type) pair that ScriptModule unwraps; Avalon has no ScriptModule)."""
    return value


def annotate(the_type, the_value):
    """torch.jit.annotate(type, value): `the_value`."""
    return the_value


class Future:
    """The completed result of `fork` (torch.jit.Future's `wait`, `done`, `value`)."""

    def __init__(self, value):
        self._value = value

    def wait(self):
        return self._value

    def value(self):
        return self._value

    def done(self):
        return True


def fork(func, *args, **kwargs):
    """torch.jit.fork outside TorchScript: runs `func(*args, **kwargs)` now and returns its `Future`."""
    return Future(func(*args, **kwargs))


def wait(future):
    """torch.jit.wait: the value of a `fork`'s `Future`."""
    return future.wait()


class _CallableModule(types.ModuleType):
    def __call__(self, f):
        return _compile_cached(f)

    __call__.__doc__ = _compile_cached.__doc__


sys.modules[__name__].__class__ = _CallableModule
