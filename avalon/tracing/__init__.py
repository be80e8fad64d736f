"""Tracing: run user code on tracers and record a tape; refuse what cannot be traced faithfully."""
from .context import Trace, bind, current, scope
from .record import Recording, record, write_state
from .source import source_context, user_location
from .tracer import Tracer


def trace(f, *args, **kwargs):
    """Run `f(*args, **kwargs)` once with tracers and return its `Tape`.

    >>> tape = avalon.trace(lambda x, W: np.tanh(x @ W).sum(), x, W)
    >>> print(tape)
    """
    return record(f, args, kwargs).tape


def check(f, *args, **kwargs):
    """Every unsupported construct `f(*args)` runs into, each an `UnsupportedConstruct` with its
    location, instead of stopping at the first. An empty list means `f` traces cleanly."""
    recording = record(f, args, kwargs, collect=True)
    problems = recording.trace.problems
    recording.tape.meta["problems"] = problems
    return list(problems)


__all__ = ["trace", "check", "record", "Recording", "Trace", "Tracer", "bind", "current", "scope",
           "write_state", "source_context", "user_location"]
