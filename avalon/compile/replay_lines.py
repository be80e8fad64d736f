"""What each line of a compiled replay computes, so an error raised while replaying is told as the
user's: the node, its primitive and the user's line that recorded it.

The generated source is registered with `linecache` under its file name, so a traceback through a
replay shows the generated line itself (`v12 = take(v3, i1, axis=0)  # model.py:40 encoder`).
Only text is kept per line (not the nodes): a cached entry must not keep its tape alive.
"""
import linecache
import re

from .. import anomaly
from ..errors import AvalonError, CheckedValueError, InternalError, ReplayError
from ..tape import Call

_ASSIGNMENT = re.compile(r"^    v(\d+) = ")


class ReplayLines:
    """The generated file's name and, per line number, a description of the node computed there, its
    user line, and (for a floating result) what an anomaly check of it reports."""

    def __init__(self, filename, source, tape):
        by_id = {n.id: n for n in tape.nodes}
        rule_of = tape.meta.get("rule_of", {})  # backward node id -> the forward node id it differentiates
        self.filename = filename
        self.nodes = {}
        self.locations = {}
        self.floating = {}  # line -> (what the anomaly check reports, user line), for floating results
        self.validated = {}  # line -> (primitive, operands) of a call whose operands its check passed
        for lineno, line in enumerate(source.splitlines(), start=1):
            node = by_id.get(int(match.group(1))) if (match := _ASSIGNMENT.match(line)) else None
            if node is None or node.prim.effect:  # a hook's own exceptions are the user's: unchanged
                continue
            what = anomaly.node_text(node)
            self.nodes[lineno] = what + _where(node)
            self.locations[lineno] = node.location
            if node.prim.check is not None:  # checked while tracing; a replay has the same shapes
                self.validated[lineno] = (node.prim.name, ", ".join(f"{a.dtype} {a.shape}" for a in node.inputs))
            if getattr(node.dtype, "kind", "") in ("f", "c"):
                origin = _short(by_id.get(rule_of.get(node.id)))
                self.floating[lineno] = (anomaly.head(what, node.phase, origin), node.location)
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)

    def renumbered(self, filename, source, old_line):
        """These lines for `source`, a copy of the generated code with lines inserted: `old_line` maps
        each of its line numbers to the original's."""
        lines = object.__new__(ReplayLines)
        lines.filename = filename
        lines.nodes = {k: self.nodes[o] for k, o in old_line.items() if o in self.nodes}
        lines.locations = {k: self.locations[o] for k, o in old_line.items() if o in self.locations}
        lines.validated = {k: self.validated[o] for k, o in old_line.items() if o in self.validated}
        lines.floating = {}
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        return lines

    def error(self, exc):
        """A `ReplayError` telling where `exc` was raised in this replay (an index out of range: the
        `CheckedValueError` placed at the user's line); None when it was not raised by a line of it (or
        is an AvalonError already, which says what it is)."""
        if isinstance(exc, MemoryError):
            return None
        tb, lineno = exc.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == self.filename:
                lineno = tb.tb_lineno
            tb = tb.tb_next
        if lineno not in self.nodes:
            return None
        if isinstance(exc, CheckedValueError) and exc.location is None:
            return exc.at(self.locations[lineno], self.nodes[lineno].split(" = ", 1)[0])
        if isinstance(exc, AvalonError):
            return None
        if lineno in self.validated and not isinstance(exc, ArithmeticError):  # not a value's fault
            return InternalError(*self.validated[lineno], exc, self.locations[lineno], self.nodes[lineno])
        return ReplayError(
            f"{type(exc).__name__} while replaying the compiled code of {self.nodes[lineno]}: {exc}\n"
            "  why: this call's values differ from the ones seen while tracing, where this node ran "
            "without error (an index out of range, a value outside the primitive's domain …)\n"
            "  fix: check this call's inputs at that line; avalon.check(f, *args) traces with these "
            "values and stops at the same line")


def _short(node):
    return f"{node.prim.name} {node.label}" if isinstance(node, Call) else None


def _where(node):
    where = f", recorded at {node.location}" if node.location else ""
    code = f"\n      {node.location.code}" if node.location and node.location.code else ""
    return where + code


def located(fn, lines, checked=None):
    """`fn` (a replay), raising its failures as `ReplayError`s that name the node and the user's line.
    Under `avalon.detect_anomaly()` it runs `checked()` instead: (the replay with a finiteness check
    after each floating result, its lines), made at its first use."""
    def replay(*inputs):
        run, where = (fn, lines) if checked is None or not anomaly.enabled() else checked()
        try:
            return run(*inputs)
        except Exception as exc:
            error = where.error(exc)
            if error is None:
                raise
            raise error from (None if isinstance(exc, CheckedValueError) else exc)

    return replay
