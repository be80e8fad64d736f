"""The errors of nn's layers and functions, each pointing at the user's line."""
from ..errors import ShapeError
from ..tracing import user_location


def _with_user_line(message):
    where = user_location()
    if where is not None:
        message += f"\n  at {where}\n      {where.code}"
    return message


def input_error(who, expected, actual, why=""):
    """A `ShapeError` naming the layer or function `who`, the expected input shape (a readable pattern
    such as "(*, 4)" or "(N, 3, H, W)"), the actual one and the user's line."""
    message = f"{who} expected input of shape {expected}, got {tuple(actual)}"
    if why:
        message += f": {why}"
    return ShapeError(_with_user_line(message))


def fail(who, message, kind=ShapeError):
    """A `kind` error reading "who: message", with the user's line."""
    return kind(_with_user_line(f"{who}: {message}"))
