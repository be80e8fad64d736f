"""Every error Avalon raises on bad input is an `AvalonError`, so one `except` catches them all."""


class AvalonError(Exception):
    """Base class of the errors Avalon raises for problems a user can fix."""


class _Located:
    """`filename`, `lineno` and `code` of an error's `location` (the user's line), when it has one."""

    location = None

    @property
    def filename(self):
        return self.location.filename if self.location else None

    @property
    def lineno(self):
        return self.location.lineno if self.location else None

    @property
    def code(self):
        return self.location.code if self.location else ""


def _where(location):
    if location is None:
        return []
    lines = [f"  at {location}"]
    if location.code:
        lines.append(f"      {location.code}")
    return lines


class UnsupportedConstruct(_Located, AvalonError):
    """Traced code did something Avalon cannot differentiate correctly.

    Carries the `construct`, the user's `location` (`filename`, `lineno`, `code`), `why` it is refused
    and a rewrite (`fix`). `node` is the last node recorded before it (None at the very start), so the
    workbench can mark the spot on the tape. `avalon.check` collects these instead of raising the first.
    """

    def __init__(self, construct, why, fix, location=None, node=None):
        self.construct = construct
        self.why = why
        self.fix = fix
        self.location = location
        self.node = node
        super().__init__(self._message())

    def _message(self):
        lines = [self.construct, *_where(self.location), f"  why: {self.why}", f"  fix: {self.fix}"]
        return "\n".join(lines)


class ShapeError(_Located, AvalonError, ValueError):
    """A primitive was given operands whose shapes or dtypes it cannot combine.

    The message says what (`construct`), where (`location`: the user's line), `why` and the `fix`.
    When raised by a primitive, `primitive` names it and `shapes` lists the operands' shapes; `node`
    is the last node recorded before it, if any (as for `UnsupportedConstruct`, so `avalon.check` can
    list it beside them).
    """

    def __init__(self, message, primitive=None, shapes=(), location=None, node=None, why="", fix=""):
        self.construct = message
        self.primitive = primitive
        self.shapes = list(shapes)
        self.location = location
        self.node = node
        self.why = why
        self.fix = fix
        lines = [message, *_where(location)]
        lines += [f"  why: {why}"] if why else []
        lines += [f"  fix: {fix}"] if fix else []
        super().__init__("\n".join(lines))


class GradientError(AvalonError):
    """A gradient was asked for in a way that has no answer (e.g. a non-scalar output without a seed)."""


class DtypeError(AvalonError, TypeError):
    """A value has a dtype (or type) a function cannot take: `avalon.finfo(avalon.int32)`,
    `set_default_dtype(avalon.int64)` (a TypeError, as in PyTorch)."""


class ReplayError(AvalonError, RuntimeError):
    """A compiled replay failed on this call's values (they passed while tracing): names the node, its
    primitive and the user's line that recorded it; the original error is its `__cause__`."""
