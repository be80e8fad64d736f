"""Tracing: run user code on tracers and record a tape; refuse what cannot be traced faithfully."""
from .. import tree
from ..errors import CheckedValueError, InternalError, ShapeError
from .context import Trace, bind, current, scope
from .record import Recording, argument_names, record, write_back, write_state
from .source import source_context, user_location
from .tracer import Tracer


def _call(holder, *args, **kwargs):
    return holder(*args, **kwargs)


def _record(f, args, kwargs, **options):
    """`record`, where a holder called directly (`trace(model, x)`) counts as an argument, so its
    parameters are inputs of the tape, as when the model is passed to `grad`."""
    if tree.holder_of(f) is None:
        return record(f, args, kwargs, **options)
    names = ["self", *argument_names(getattr(f, "forward", f), args, kwargs)]  # a Module's forward(x)
    return record(_call, (f, *args), kwargs, names=names, **options)


def trace(f, *args, **kwargs):
    """Run `f(*args, **kwargs)` once with tracers and return its `Tape`.

    Every array in the arguments (inside lists, tuples, dicts and holders such as Modules) becomes an
    `Input` node; every primitive call a `Call` node with its shape, dtype, value, the user's line and
    the module scope.

    >>> tape = avalon.trace(lambda x, W: np.tanh(x @ W).sum(), x, W)
    >>> print(tape)
    """
    return _record(f, args, kwargs).tape


class Problems(list):
    """What `avalon.check` found: a list of `UnsupportedConstruct` (and, last, the `ShapeError`,
    `IndexRangeError` or `InternalError` that stopped the trace, if one did), in the order the code ran
    into them. Each has `construct`, `why`, `fix`, `location` (`filename`, `lineno`, `code`) and `node`.

    `tape` is the tape recorded on the way (partial when tracing stopped early); each problem's
    `node` is the last node recorded before it, so a drawing of the tape can mark the spot.
    """

    def __init__(self, problems, tape):
        super().__init__(problems)
        self.tape = tape

    def __str__(self):
        if not self:
            return "no problems: the function traces cleanly"
        return "\n\n".join(f"{i + 1}. {p}" for i, p in enumerate(self))


def check(f, *args, **kwargs):
    """Every unsupported construct `f(*args, **kwargs)` runs into, instead of stopping at the first.

    Tracing goes on past each refusal with the concrete values seen so far. Returns `Problems` (a
    list, empty when `f` traces cleanly) that also carries the recorded `tape`.

    >>> for problem in avalon.check(loss_fn, model, x, y):
    ...     print(problem.filename, problem.lineno, problem.construct)
    """
    recording_trace = Trace(collect=True)
    problems = recording_trace.problems
    try:
        _record(f, args, kwargs, trace=recording_trace)
    except (ShapeError, CheckedValueError, InternalError) as error:  # one that cannot be stepped over ends it
        if error.node is None:
            error.node = recording_trace.last_node()
        problems.append(error)
    found = Problems(problems, recording_trace.tape)
    recording_trace.tape.meta["problems"] = found
    return found


__all__ = ["trace", "check", "Problems", "record", "Recording", "Trace", "Tracer", "bind", "current",
           "scope", "write_back", "write_state", "source_context", "user_location"]
