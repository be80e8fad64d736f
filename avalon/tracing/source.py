"""The user's line: the innermost stack frame that is the user's own code.

Frames inside Avalon and numpy are never the user's. Frames of installed libraries (the standard
library, site-packages) are skipped too, so a node recorded inside `einops.rearrange` or a
`contextlib` wrapper points at the user's line that called it; only when the whole stack is library
code does the innermost library frame count.
"""
import linecache
import os
import site
import sys
import sysconfig
import warnings

import numpy as np

from ..tape import Location

_AVALON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
# avalon.widgets lives in the top-level widgets/ folder in a source checkout: it is Avalon too.
_WIDGETS_DIR = os.path.join(os.path.dirname(os.path.dirname(_AVALON_DIR)), "widgets") + os.sep
_NUMPY_DIR = os.path.dirname(np.__file__) + os.sep


def _library_dirs():
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(getattr(site, "getsitepackages", lambda: [])())
    paths.add(getattr(site, "getusersitepackages", lambda: "")())
    return tuple(os.path.abspath(p) + os.sep for p in paths if p)


_LIBRARIES = _library_dirs()


def _kind(filename):
    """'avalon', 'library' (numpy, the standard library, site-packages) or 'user'."""
    if filename.startswith((_AVALON_DIR, _WIDGETS_DIR)):
        return "avalon"
    if filename.startswith((_NUMPY_DIR, "<__array_function__", "<frozen")) or filename.startswith(_LIBRARIES):
        return "library"
    return "user"


code_kind = _kind  # public: the cache's guards watch the user's code only


def _location(frame):
    filename = frame.f_code.co_filename
    code = linecache.getline(filename, frame.f_lineno, frame.f_globals).strip()
    return Location(filename, frame.f_lineno, frame.f_code.co_name, code)


def _outside_avalon(skip):
    """(frame, is_library) for each frame outside Avalon, innermost first."""
    frame = sys._getframe(skip + 1)
    while frame is not None:
        kind = _kind(frame.f_code.co_filename)
        if kind != "avalon":
            yield frame, kind == "library"
        frame = frame.f_back


def user_location(skip=1):
    """`Location` of the innermost frame of user code, or None when there is none.

    `skip` counts frames to pass over first: 1 starts at the caller of `user_location`.
    """
    innermost_library = None
    for frame, library in _outside_avalon(skip):
        if not library:
            return _location(frame)
        if innermost_library is None and not frame.f_code.co_filename.startswith(_NUMPY_DIR):
            innermost_library = frame
    return _location(innermost_library) if innermost_library is not None else None


def library_call(skip=1):
    """The public name (`scipy.linalg.expm`, `np.testing.assert_allclose`) of the library function
    that the user's line called (and that led to this point), or None when the user's code got here
    directly (numpy's C functions and its dispatch to tracers leave no frame)."""
    called = None
    for frame, library in _outside_avalon(skip):
        if not library:
            break
        called = frame
    if called is None:
        return None
    code = called.f_code
    function = called.f_globals.get(code.co_name)
    if getattr(function, "__code__", None) is code:
        return public_name(function)
    return f"{called.f_globals.get('__name__', '?')}.{getattr(code, 'co_qualname', code.co_name)}"


def public_name(obj):
    """How user code reaches a function or ufunc: `np.tanh`, `np.linalg.inv`, `scipy.special.erf`:
    its own module when that exports it, else the shortest public module path among the loaded
    modules that do, else its bare name."""
    name = obj.__name__
    own = getattr(obj, "__module__", None)
    found = [own] if _public(own) and getattr(sys.modules.get(own), name, None) is obj else []
    if not found:
        with warnings.catch_warnings():  # deprecated alias modules (numpy.core …) warn on access
            warnings.simplefilter("ignore")
            found = [module_name for module_name, module in list(sys.modules.items())
                     if _public(module_name) and getattr(module, name, None) is obj]
    if not found:
        return f"{own}.{name}" if own else name
    best = min(found, key=lambda m: (m.count("."), len(m)))
    return ("np" + best[5:] if best.split(".")[0] == "numpy" else best) + f".{name}"


def _public(module_name):
    return bool(module_name) and not any(part.startswith("_") for part in module_name.split("."))


def source_context(location, before=3, after=3):
    """[(lineno, text)] around a location, for error panels and the workbench."""
    if location is None:
        return []
    first = max(1, location.lineno - before)
    lines = []
    for lineno in range(first, location.lineno + after + 1):
        text = linecache.getline(location.filename, lineno)
        if not text and lineno > location.lineno:
            break
        lines.append((lineno, text.rstrip("\n")))
    return lines
