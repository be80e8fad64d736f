"""The errors of avalon.data."""
from ..errors import AvalonError


class DataError(AvalonError, ValueError):
    """A dataset, a loader or a batch was built from data that does not fit together."""


class CollateError(DataError):
    """Samples that cannot be stacked into one batch."""
