"""Gradient checkpointing with torch.utils.checkpoint's names: `checkpoint` and `checkpoint_sequential`.

In traced code a checkpointed function is recorded as usual, but the backward pass does not read its
intermediate values: it recomputes them from the function's inputs just before it needs them (see
`avalon.autodiff.recompute`). A compiled training step then frees those intermediates after the
forward pass, and its peak memory drops, for the price of running the function's calls twice.
Gradients are exactly those of the plain code. Outside traced code nothing is recorded, so the
function is simply called.

>>> def forward(self, x):
...     for block in self.blocks:
...         x = checkpoint(block, x, use_reentrant=False)
...     return self.head(x)
"""
from ..autodiff.recompute import segment
from ..errors import AvalonError
from ..tracing.context import current

__all__ = ["checkpoint", "checkpoint_sequential"]


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check="default", debug=False,
               early_stop=True, preserve_rng_state=True, **kwargs):
    """`function(*args, **kwargs)`, its intermediate values recomputed in the backward pass instead of kept.

    Random draws inside `function` (dropout) are drawn once: the recomputation reuses them, which is
    what torch's `preserve_rng_state=True` ensures. torch's other options change nothing here (there
    is one implementation, and recomputing recorded calls is deterministic), except `context_fn`,
    which cannot be honoured and is refused.
    """
    if context_fn is not None:
        raise AvalonError("checkpoint(context_fn=...) is not supported: the backward pass recomputes the "
                          "recorded calls, it does not run Python code again, so no context can wrap the "
                          "recomputation; checkpoint a smaller function to choose what is recomputed")
    if determinism_check not in ("default", "none"):
        raise AvalonError(f"checkpoint(determinism_check={determinism_check!r}): use 'default' or 'none'")
    trace = current()
    if trace is None:
        return function(*args, **kwargs)
    with segment(trace):
        return function(*args, **kwargs)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, preserve_rng_state=True):
    """Run `functions` (an `nn.Sequential`, or a list of modules or functions) one after another on
    `input`, split into `segments` runs of equal length, every run but the last checkpointed.

    As torch does, the last run keeps its intermediates: its backward pass comes first and would
    recompute them at once.

    >>> out = checkpoint_sequential(model.layers, 4, x, use_reentrant=False)
    """
    functions = list(functions)
    if not isinstance(segments, int) or not 1 <= segments <= len(functions):
        raise AvalonError(f"checkpoint_sequential: segments={segments!r}, but it must be a whole number from 1 to "
                          f"the number of functions ({len(functions)}): the functions are split into that many runs")
    size = len(functions) // segments
    for start in range(0, size * (segments - 1), size):
        input = checkpoint(_in_turn(functions[start:start + size]), input, use_reentrant=use_reentrant,
                           preserve_rng_state=preserve_rng_state)
    return _in_turn(functions[size * (segments - 1):])(input)


def _in_turn(functions):
    def run(x):
        for f in functions:
            x = f(x)
        return x

    return run
