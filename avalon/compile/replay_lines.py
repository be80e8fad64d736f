"""What each line of a compiled replay computes, so an error raised while replaying is told as the
user's: the node, its primitive and the user's line that recorded it.

The generated source is registered with `linecache` under its file name, so a traceback through a
replay shows the generated line itself (`v12 = take(v3, i1, axis=0)  # model.py:40 encoder`).
Only text is kept per line (not the nodes): a cached entry must not keep its tape alive.
"""
import linecache
import re

from ..errors import AvalonError, ReplayError

_ASSIGNMENT = re.compile(r"^    v(\d+) = ")


class ReplayLines:
    """The generated file's name and, per line number, a description of the node computed there."""

    def __init__(self, filename, source, tape):
        by_id = {n.id: n for n in tape.nodes}
        self.filename = filename
        self.nodes = {}
        for lineno, line in enumerate(source.splitlines(), start=1):
            node = by_id.get(int(match.group(1))) if (match := _ASSIGNMENT.match(line)) else None
            if node is not None and not node.prim.effect:  # a hook's own exceptions are the user's: unchanged
                self.nodes[lineno] = _describe(node)
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)

    def error(self, exc):
        """A `ReplayError` telling where `exc` was raised in this replay; None when it was not raised by
        a line of it (or is an AvalonError already, which says what it is)."""
        if isinstance(exc, (AvalonError, MemoryError)):
            return None
        tb, lineno = exc.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == self.filename:
                lineno = tb.tb_lineno
            tb = tb.tb_next
        if lineno not in self.nodes:
            return None
        return ReplayError(
            f"{type(exc).__name__} while replaying the compiled code of {self.nodes[lineno]}: {exc}\n"
            "  why: this call's values differ from the ones seen while tracing, where this node ran "
            "without error (an index out of range, a value outside the primitive's domain …)\n"
            "  fix: check this call's inputs at that line; avalon.check(f, *args) traces with these "
            "values and stops at the same line")


def _describe(node):
    where = f", recorded at {node.location}" if node.location else ""
    code = f"\n      {node.location.code}" if node.location and node.location.code else ""
    scope = f" in {node.scope}" if node.scope else ""
    return f"{node.label} = {node.describe()} (primitive {node.prim.name}{scope}){where}{code}"


def located(fn, lines):
    """`fn` (a replay), raising its failures as `ReplayError`s that name the node and the user's line."""
    def replay(*inputs):
        try:
            return fn(*inputs)
        except Exception as exc:
            error = lines.error(exc)
            if error is None:
                raise
            raise error from exc

    return replay
