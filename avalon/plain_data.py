"""Plain data objects: a user's config class, a dataclass, a `SimpleNamespace` or an argparse
`Namespace`. Traced code reads their fields (`self.config.scale`), so a cache key compares them by
their fields, not by identity: changing a field retraces instead of replaying a stale value.

Objects of library classes (a logger, a tokenizer, a lock) keep identity semantics: their state is
not the model's configuration, and walking it at every call would cost more than the call.
"""
import argparse
import dataclasses
import os
import sys
import types

_NAMESPACES = (types.SimpleNamespace, argparse.Namespace)
_by_class = {}  # class -> is it plain data (decided once per class)


def is_plain_data(x):
    """True for an instance of a user-defined class, a dataclass or a namespace whose equality is
    identity or absent (a class with its own `__eq__` already says what equal means)."""
    cls = type(x)
    verdict = _by_class.get(cls)
    if verdict is None:
        verdict = _by_class[cls] = _plain_class(cls)
    return verdict


def _plain_class(cls):
    if issubclass(cls, _NAMESPACES):
        return True
    if issubclass(cls, type) or not cls.__dictoffset__ and not dataclasses.is_dataclass(cls):
        return False  # classes themselves, and slotted objects other than dataclasses
    if getattr(cls, "_avalon_tracer", False) or cls.__eq__ is not object.__eq__ and \
            not dataclasses.is_dataclass(cls):
        return False
    if any("__call__" in vars(k) for k in cls.__mro__[:-1]) and not dataclasses.is_dataclass(cls):
        return False  # a callable object is code, not configuration
    return dataclasses.is_dataclass(cls) or is_user_class(cls)


def is_user_class(cls):
    """Is `cls` defined in the user's own code (not Avalon's, a library's or the standard library's)."""
    from .tracing.source import code_kind  # tracing imports this module's users: import on use
    module = sys.modules.get(cls.__module__)
    filename = getattr(module, "__file__", None)
    if filename is None:
        return cls.__module__ == "__main__"  # a notebook's or a REPL's class
    return code_kind(os.path.abspath(filename)) == "user"


def fields(x):
    """A plain data object's fields, name → value, in definition order."""
    if hasattr(x, "__dict__"):
        return vars(x)
    return {f.name: getattr(x, f.name) for f in dataclasses.fields(x)}
