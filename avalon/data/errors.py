"""The errors of avalon.data, each naming the user's line (where the loader was built or iterated)."""
from ..errors import AvalonError, _where


class DataError(AvalonError, ValueError):
    """A dataset, a loader or a batch was built from data that does not fit together."""

    def __init__(self, message, fix=None):
        from ..tracing.source import user_location  # tracing builds on modules that import this one

        lines = [message, *_where(user_location())]
        lines += [f"  fix: {fix}"] if fix else []
        super().__init__("\n".join(lines))


class CollateError(DataError):
    """Samples that cannot be stacked into one batch."""


class SampleIndexError(DataError, IndexError):
    """An index past a dataset's end (an IndexError too, so iterating a dataset by index still stops)."""
