"""Checks the schedulers run before they change anything: constructor arguments that would make a later
`step()` divide by zero or give a negative or NaN learning rate, and the learning rates a step computed.

PyTorch checks some of these (its messages are kept, after ours) and applies the rest silently: a
negative or NaN learning rate from `ExponentialLR(gamma=-1)` ascends the loss or destroys the weights
with no error, and `StepLR(step_size=0)` fails with a bare ZeroDivisionError at its second step. Avalon
refuses them, and a refused step leaves the optimiser's learning rates and the scheduler's counters as
they were.
"""
import contextlib
import math
import numbers

from .optimizer import OptimizerError


@contextlib.contextmanager
def all_or_nothing(scheduler, optimizer):
    """Put the scheduler's attributes and the optimiser's group options back if the block raises: a step
    advances its counters before it computes (and may refuse) the new learning rates. Shallow copies: a
    step reassigns these values, it does not mutate them."""
    attributes = dict(scheduler.__dict__)
    groups = [dict(group) for group in optimizer.param_groups]
    try:
        yield
    except BaseException:
        scheduler.__dict__.clear()
        scheduler.__dict__.update(attributes)
        for group, saved in zip(optimizer.param_groups, groups):
            group.clear()
            group.update(saved)
        raise


def loadable(scheduler, state_dict):
    """Raise an OptimizerError unless `state_dict` is a dict of this scheduler's own attributes."""
    name = type(scheduler).__name__
    if not isinstance(state_dict, dict):
        raise OptimizerError(f"{name}.load_state_dict got a {type(state_dict).__name__}, not a state dict",
                             fix="pass what scheduler.state_dict() returned (avalon.load(path) of a saved one)")
    unknown = sorted(set(state_dict) - set(scheduler.__dict__))
    if unknown:
        raise OptimizerError(f"{name}.load_state_dict got unknown keys {unknown}",
                             "the state dict was saved by another kind of scheduler",
                             "load it into a scheduler of the class that saved it")


def _number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def nonnegative(owner, name, value, torch_message=None):
    """`value` is a finite real number >= 0 (a decay factor, a minimum lr)."""
    if not _number(value) or not math.isfinite(value) or value < 0:
        raise OptimizerError(f"{owner}: {name} is {value!r}; it must be a finite number >= 0",
                             "every step multiplies or shifts the learning rate by it, so a negative or NaN one "
                             "gives a negative or NaN learning rate" +
                             (f" (PyTorch: {torch_message})" if torch_message else ""),
                             f"pass {name} >= 0 (e.g. 0.1)")


def positive_int(owner, name, value, zero_ok=False, torch_message=None):
    """`value` is an integer > 0 (>= 0 with `zero_ok`): a step size, a period, a number of steps."""
    low = 0 if zero_ok else 1
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise OptimizerError(f"{owner}: {name} is {value!r}; it must be an integer >= {low}",
                             "step() divides by it or counts steps with it" +
                             (f" (PyTorch: {torch_message})" if torch_message else ""),
                             f"pass {name} as an integer >= {low}")


def positive(owner, name, value):
    """`value` is a finite real number > 0 (a period, a divisor)."""
    if not _number(value) or not math.isfinite(value) or value <= 0:
        raise OptimizerError(f"{owner}: {name} is {value!r}; it must be a finite number > 0",
                             "step() divides by it", f"pass {name} > 0")


def one_cycle_phases(phases, total_steps, pct_start):
    """A OneCycleLR phase a step can fall into but that has no length would divide by zero in that step:
    the first phase ending at step 0, or the last one starting where it ends (pct_start too close to 0
    or 1 for so few steps). `phases` are (end, ...) tuples, in order."""
    ends = [phase[0] for phase in phases]
    if ends[0] == 0 or ends[-1] == ends[-2]:  # (a middle phase of no length is never entered)
        raise OptimizerError(f"OneCycleLR: pct_start={pct_start} with total_steps={total_steps} leaves a phase "
                             "of the cycle with no steps",
                             "each step's learning rate is interpolated across its phase, dividing by the "
                             "phase's length (PyTorch fails there with a ZeroDivisionError)",
                             "use more total_steps, or a pct_start further from 0 and 1 (e.g. 0.3)")


def learning_rates(scheduler, values):
    """The list of `values` (one lr per group), or an OptimizerError when one is negative or not finite."""
    values = list(values)
    for i, lr in enumerate(values):
        number = float(lr) if _number(lr) or hasattr(lr, "__float__") else math.nan
        if not math.isfinite(number) or number < 0:
            raise OptimizerError(
                f"{type(scheduler).__name__}.step() computed the learning rate {lr!r} for parameter group {i}; "
                "it was not applied (the learning rates and the scheduler's counters are unchanged)",
                "a negative learning rate ascends the loss and a NaN or infinite one destroys the weights "
                "(PyTorch applies it silently)",
                "check the scheduler's arguments (gamma, factors, lr_lambda, max_lr, eta_min) for a negative or "
                "non-finite value")
    return values
