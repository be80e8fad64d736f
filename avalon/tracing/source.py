"""The user's line: the innermost stack frame outside Avalon (and outside numpy's dispatch)."""
import linecache
import os
import sys

import numpy as np

from ..tape import Location

_AVALON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SKIPPED = (_AVALON_DIR + os.sep, os.path.dirname(np.__file__) + os.sep)


def _is_internal(filename):
    return filename.startswith(_SKIPPED) or filename.startswith("<__array_function__")


def user_location(skip=1):
    """`Location` of the innermost frame that is user code, or None when there is none."""
    frame = sys._getframe(skip)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _is_internal(filename):
            code = linecache.getline(filename, frame.f_lineno, frame.f_globals).strip()
            return Location(filename, frame.f_lineno, frame.f_code.co_name, code)
        frame = frame.f_back
    return None


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
