"""The errors of nn's layers and functions, each pointing at the user's line."""
import numpy as np

from ..errors import ShapeError
from ..tracing import current, user_location


def _last_node():
    """The node recorded last in the active trace (where `avalon.check` and the workbench mark the
    error on the tape), or None outside traced code."""
    trace = current()
    return trace.last_node() if trace is not None else None


def input_error(who, expected, actual, why=""):
    """A `ShapeError` naming the layer or function `who`, the expected input shape (a readable pattern
    such as "(*, 4)" or "(N, 3, H, W)"), the actual one, `why` it does not fit and the user's line.

    Its fields are those of a primitive's shape error: `primitive` (here the layer or function),
    `shapes`, `location` (`filename`, `lineno`, `code`), `node`, `why` and `fix`, so `avalon.check`
    and the workbench place it as they place any other.
    """
    actual = tuple(actual)
    return ShapeError(f"{who} expected input of shape {expected}, got {actual}", who, [actual],
                      user_location(), _last_node(), why=why,
                      fix=f"pass an input of shape {expected} (print the input's .shape at this line, "
                          f"or the tape, to see where it came from)")


def fail(who, message, kind=ShapeError, fix=""):
    """A `kind` error reading "who: message", with the user's line (a `ShapeError` carries it as its
    `location`, with `primitive` set to `who`) and the `fix`, when given."""
    where = user_location()
    if kind is ShapeError:
        return ShapeError(f"{who}: {message}", who, location=where, node=_last_node(), fix=fix)
    text = f"{who}: {message}"
    if where is not None:
        text += f"\n  at {where}\n      {where.code}"
    return kind(text + (f"\n  fix: {fix}" if fix else ""))


def array_input(who, input, floating=True, name="input"):
    """Refuse, at the user's line, an input that is not an array (a list, None, a Python number …) or,
    when `floating`, an integer or bool array (torch refuses both: a layer's weights are floating)."""
    from ..errors import DtypeError

    where = user_location()
    at = f"\n  at {where}\n      {where.code}" if where is not None else ""
    if not hasattr(input, "ndim") or not hasattr(input, "dtype") or isinstance(input, (np.generic, str)):
        raise DtypeError(f"{who} expects an array as {name}, got {type(input).__name__}{at}\n"
                         f"  why: Avalon's layers and functions compute on arrays (torch's take only Tensors)\n"
                         f"  fix: pass an array, e.g. np.asarray(x, dtype=np.float32) or avalon.tensor(x)")
    if floating and np.dtype(input.dtype).kind not in "fc":
        raise DtypeError(f"{who} expects a floating-point {name}, got dtype {input.dtype}{at}\n"
                         f"  why: its weights are floating point (torch refuses mixing them with integers)\n"
                         f"  fix: convert the input first: x.float() or x.astype(np.float32)")
