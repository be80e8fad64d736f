"""Every error Avalon raises on bad input is an `AvalonError`, so one `except` catches them all."""


class AvalonError(Exception):
    """Base class of the errors Avalon raises for problems a user can fix."""


class UnsupportedConstruct(AvalonError):
    """Traced code did something Avalon cannot differentiate correctly.

    Carries the construct, the user's source location and code, why it is refused and a rewrite.
    `avalon.check` collects these instead of raising the first.
    """

    def __init__(self, construct, why, fix, location=None):
        self.construct = construct
        self.why = why
        self.fix = fix
        self.location = location
        super().__init__(self._message())

    @property
    def filename(self):
        return self.location.filename if self.location else None

    @property
    def lineno(self):
        return self.location.lineno if self.location else None

    @property
    def code(self):
        return self.location.code if self.location else ""

    def _message(self):
        lines = [self.construct]
        if self.location is not None:
            lines.append(f"  at {self.location}")
            if self.location.code:
                lines.append(f"      {self.location.code}")
        lines.append(f"  why: {self.why}")
        lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


class ShapeError(AvalonError, ValueError):
    """A primitive was given operands whose shapes or dtypes it cannot combine."""


class GradientError(AvalonError):
    """A gradient was asked for in a way that has no answer (e.g. a non-scalar output without a seed)."""
