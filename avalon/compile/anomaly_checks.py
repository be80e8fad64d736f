"""The checked replay that `avalon.detect_anomaly()` runs: the generated source with a finiteness check
after each line that makes a floating value. It is generated from the plain replay's text the first
time a replay runs in that mode, so the plain replay (all other calls) carries no check at all.
"""
from .. import anomaly
from ..backend import is_numpy_like


class CheckedReplay:
    """Callable: (the checked replay function, its `ReplayLines`), generated at the first call.
    Keeps the plain replay's source, globals and lines (text and arrays, never the tape)."""

    def __init__(self, source, env, lines, wrap, xp):
        self._parts = (source, env, lines, wrap, xp)
        self._made = None

    def __call__(self):
        if self._made is None:
            self._made = _generate(*self._parts)
        return self._made


def _generate(source, env, lines, wrap, xp):
    reports = []
    body, old_line = [], {}
    for lineno, text in enumerate(source.splitlines(), start=1):
        body.append(text)
        old_line[len(body)] = lineno
        if lineno in lines.floating:
            var = text.split(" = ", 1)[0].strip()
            body.append(f"    if not finite({var}): anomaly({var}, {len(reports)})")
            reports.append(lines.floating[lineno])
    checked_source = "\n".join(body) + "\n"

    def report(value, k):
        raise anomaly.error(*reports[k], anomaly.nonfinite(value))

    isfinite, every = xp.isfinite, xp.all
    if is_numpy_like(xp):
        def finite(value):
            return isfinite(value).all()  # the method: numpy's all() function costs a few µs more
    else:
        def finite(value):
            return bool(every(isfinite(value)))

    filename = lines.filename[:-1] + " detect_anomaly>"
    scope = dict(env, finite=finite, anomaly=report)
    exec(compile(checked_source, filename, "exec"), scope)
    return wrap(scope["replay"]), lines.renumbered(filename, checked_source, old_line)
