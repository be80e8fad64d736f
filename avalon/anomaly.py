"""Anomaly detection (torch's `detect_anomaly`): inside it, every call checks the floating values it
produces and the first NaN or infinity raises `AnomalyError`, naming the node, its primitive, module
scope, forward or backward (a backward call: the forward call it differentiates) and the user's line.

Calls are checked while tracing, eagerly, and in cached replays: a compiled tape keeps a second,
checked replay, generated the first time it runs in this mode (`avalon.compile.anomaly_checks`), so
outside the mode a replay costs what it did.
"""

from .backend import first_marked, namespace
from .errors import AnomalyError

_enabled = False  # process-wide, as torch's


def enabled():
    """Whether anomaly detection is on (`torch.is_anomaly_enabled`)."""
    return _enabled


class set_detect_anomaly:
    """Turn anomaly detection on or off (torch's): as a call, `avalon.autograd.set_detect_anomaly(True)`;
    as a context manager, the previous mode comes back on leaving. `check_nan` is torch's and must
    stay True (NaN and infinity are both checked)."""

    def __init__(self, mode, check_nan=True):
        global _enabled
        if not check_nan:
            raise ValueError("set_detect_anomaly(check_nan=False): Avalon always checks for NaN; "
                             "leave check_nan at True, or turn anomaly detection off")
        self.previous = _enabled
        _enabled = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _enabled
        _enabled = self.previous
        return False


class detect_anomaly:
    """Context manager (and decorator): every call inside checks the floating values it produces,
    forward and backward, traced or replayed, and raises `avalon.AnomalyError` at the first non-finite
    one.

    >>> with avalon.detect_anomaly():
    ...     loss, grads = avalon.grad(loss_fn, model, x, y)
    """

    def __init__(self, check_nan=True):
        self.check_nan = check_nan
        self._saved = []

    def __enter__(self):
        self._saved.append(set_detect_anomaly(True, self.check_nan))

    def __exit__(self, *exc):
        self._saved.pop().__exit__()
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def checked(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)

        return checked


def nonfinite(value):
    """(the first non-finite value, its position) in a floating array, or None."""
    dtype = getattr(value, "dtype", None)
    if getattr(dtype, "kind", "") not in ("f", "c") or not getattr(value, "size", 0):
        return None
    xp = namespace(value)
    finite = xp.isfinite(value)
    if bool(xp.all(finite)):
        return None
    found, position = first_marked(~finite, value)
    return (complex(found) if dtype.kind == "c" else float(found)), list(position)


def node_text(node):
    """`%12 = log(%3) (primitive log in encoder.fc1)`: a call as anomaly and replay errors name it."""
    scope = f" in {node.scope}" if node.scope else ""
    return f"{node.label} = {node.describe()} (primitive {node.prim.name}{scope})"


def head(text, phase, origin_text=None):
    """What a check reports of the call `text`: forward or backward (and, for a backward call, the
    forward call `origin_text` it differentiates)."""
    if phase != "backward":
        return f"a forward call {text}"
    return f"a backward call {text}" + (f", part of the gradient of {origin_text}" if origin_text else "")


def error(head, location, found):
    """The `AnomalyError` of the value `found` (nonfinite's answer) that the call `head` produced."""
    value, position = found
    lines = [f"detect_anomaly: {head} produced {value} at position {position}"]
    if location is not None:
        lines.append(f"  at {location}" + (f"\n      {location.code}" if location.code else ""))
    backward = head.startswith("a backward")
    lines.append("  why: " + ("the derivative of the forward call at this line is not finite for these values "
                              "(sqrt's at 0, log's at 0, a division by 0 …), although its value may be"
                              if backward else "the first value that is not finite in this call: it came from "
                              "finite operands (a log or sqrt of a negative, an overflow, 0/0 …)"))
    lines.append("  fix: " + ("keep the forward operand away from where the derivative is infinite "
                              "(clamp it, add a small eps), or mask it out before this line"
                              if backward else "clamp or mask the operands at this line (x.clamp(min=eps), "
                              "np.where), or find where they went out of range in the tape"))
    return AnomalyError("\n".join(lines), location)


def check_traced(node, origin=None):
    """Raise at `node`'s value (recorded just now; a backward call's `origin` is the forward call it
    differentiates) if it is not finite."""
    found = nonfinite(node.value)
    if found is not None:
        origin = origin and node_text(origin)
        raise error(head(node_text(node), node.phase, origin), node.location, found)


def check_eager(value, prim):
    """Raise at an eager call's result if it is not finite."""
    found = nonfinite(value)
    if found is not None:
        from .tracing.source import user_location

        raise error(f"an eager call of {prim.name}", user_location(), found)
