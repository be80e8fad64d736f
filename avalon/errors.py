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
    """A gradient was asked for in a way that has no answer (e.g. a non-scalar output without a seed).
    The message names the user's line (their `grad` call, or the traced line) and, given, the `fix`."""

    def __init__(self, message, fix=None):
        from .tracing.source import user_location  # tracing builds on the modules that raise this

        lines = [message, *_where(user_location())]
        lines += [f"  fix: {fix}"] if fix else []
        super().__init__("\n".join(lines))


class DtypeError(AvalonError, TypeError):
    """A value has a dtype (or type) a function cannot take: `avalon.finfo(avalon.int32)`,
    `set_default_dtype(avalon.int64)` (a TypeError, as in PyTorch)."""


class ReplayError(AvalonError, RuntimeError):
    """A compiled replay failed on this call's values (they passed while tracing): names the node, its
    primitive and the user's line that recorded it; the original error is its `__cause__`."""


class CheckedValueError(_Located, AvalonError):
    """A value refused by a check recorded on the tape, so it runs at every call (an index or a
    probability out of range): raised without a location, then placed at the user's line by `at`."""

    def at(self, location, replayed=""):
        raise NotImplementedError


class IndexRangeError(CheckedValueError, IndexError):
    """An index array holds a value outside the range an operation accepts (checked at every call,
    cached replays included): names the operation, the first bad value and its position, the valid
    range and the user's line. An `IndexError`, as torch's and numpy's."""

    def __init__(self, op, value, position, low, high, ignore=None, location=None, replayed=""):
        self.op, self.value, self.position = op, value, position
        self.low, self.high, self.ignore = low, high, ignore
        self.location = location
        self.replayed = replayed
        self.node = None
        allowed = f"[{low}, {high})" + (f" or {ignore} (ignore_index)" if ignore is not None else "")
        self.construct = (f"{op}: index {value} at position {list(position)} is out of range: valid indices "
                          f"are {allowed}")
        self.why = "torch refuses it too" + ("; numpy would read a negative index from the end" if low == 0 else "")
        self.fix = f"keep the indices in {allowed} at this line"
        lines = [self.construct, *_where(location)]
        lines += [f"  on a cached replay (its node {replayed}): checked at every call"] if replayed else []
        lines += [f"  fix: {self.fix}" + (" (torch refuses negative indices here; numpy would read them from "
                                          "the end)" if low == 0 else "")]
        super().__init__("\n".join(lines))

    def at(self, location, replayed=""):
        """The same error, located at the user's line (and the replayed node that raised it)."""
        return IndexRangeError(self.op, self.value, self.position, self.low, self.high, self.ignore,
                               location, replayed)


class ValueRangeError(CheckedValueError, ValueError):
    """An operand holds a value outside the domain an operation accepts (checked at every call, cached
    replays included), as binary_cross_entropy's probabilities outside [0, 1]: names the operation,
    the first bad value and its position, the domain and the user's line. A `ValueError`, as torch's."""

    def __init__(self, op, value, position, low, high, fix, location=None, replayed=""):
        self.op, self.value, self.position, self.low, self.high = op, value, position, low, high
        self.location, self.replayed, self.node = location, replayed, None
        self.construct = f"{op}: value {value} at position {list(position)} is outside [{low}, {high}]"
        self.why = "torch refuses it too: outside that range the result is NaN"
        self.fix = fix
        lines = [self.construct, *_where(location)]
        lines += [f"  on a cached replay (its node {replayed}): checked at every call"] if replayed else []
        lines += [f"  why: {self.why}", f"  fix: {fix}"]
        super().__init__("\n".join(lines))

    def at(self, location, replayed=""):
        """The same error, located at the user's line (and the replayed node that raised it)."""
        return ValueRangeError(self.op, self.value, self.position, self.low, self.high, self.fix, location,
                               replayed)


class InternalError(_Located, AvalonError, RuntimeError):
    """A primitive's own implementation failed on operands that passed its checks: a bug in Avalon,
    not in the user's code. Names the primitive, its node, the operands' shapes and dtypes and the
    user's line; the original exception is its `__cause__`."""

    def __init__(self, primitive, operands, error, location=None, node=None):
        self.primitive = primitive
        self.location = location
        self.node = node
        self.construct = (f"internal error in Avalon's {primitive} (operands {operands}): "
                          f"{type(error).__name__}: {error}")
        self.why = "the operands passed the primitive's checks, and its implementation failed on them"
        self.fix = f"this is a bug in Avalon's {primitive}: please report it with this message"
        lines = [self.construct, *_where(location)]
        lines += [f"  node: {node}"] if node else []
        lines += [f"  this is a bug in Avalon's {primitive}, not in your code: please report it with this "
                  "message (the operands passed the primitive's checks)"]
        super().__init__("\n".join(lines))


class AnomalyError(_Located, AvalonError, RuntimeError):
    """Under `avalon.detect_anomaly()`, a call produced a non-finite value (NaN or infinity): names the
    node, its primitive, module scope, whether it is a forward or a backward call (for a backward
    call, the forward call it differentiates) and the user's line."""

    def __init__(self, message, location=None):
        self.location = location
        super().__init__(message)

