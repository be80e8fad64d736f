"""Random draws the tape cannot see: numpy's and Python's own generators used inside traced code.

`np.random.rand(3)` or `random.random()` inside a traced function runs while tracing, and its
numbers become constants of the tape: a cached replay would reuse them, silently. (Avalon's own draws
— `avalon.rand`, dropout, `torch.randn` in ported code — are recorded and fresh at every call.) So
the watch snapshots numpy's global generator, Python's `random`, and the generators the traced code
can reach (globals of the user's modules that ran, the traced function's closure, models'
attributes) before they are used; a trace that advanced one is never replayed: such a function is
traced at every call, as if its Python ran again (a seq2seq model's `random.random() <
teacher_forcing_ratio` decides afresh each step), and a warning says how to have it compiled once.
"""
import random
import warnings

import numpy as np

from .retraces import RetraceWarning

_TYPES = (np.random.Generator, np.random.RandomState, random.Random)
_warned = set()


def _state(generator):
    if isinstance(generator, np.random.Generator):
        return generator.bit_generator.state
    return generator.get_state() if isinstance(generator, np.random.RandomState) else generator.getstate()


def _same(a, b):
    """States are dicts, tuples, ints and arrays (RandomState's key)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def forget():
    """Warn again (with the cache: `avalon.clear_cache()`)."""
    _warned.clear()


class HostGenerators:
    """Host generators and their states before the trace used them."""

    def __init__(self):
        self._before = {}
        self.add(np.random.mtrand._rand, "numpy's global generator (np.random.rand, randn, normal …)")
        self.add(random._inst, "Python's random module (random.random, choice, shuffle …)")

    def add(self, generator, name):
        if id(generator) not in self._before:
            self._before[id(generator)] = (generator, name, _state(generator))

    def add_from(self, values, where):
        """The generators among `values` (a dict of globals, attributes or closure variables)."""
        for name, value in values.items():
            if isinstance(value, _TYPES):
                self.add(value, f"`{name}` ({where})")

    def drawn(self, shown):
        """The names of the generators the trace drew from (warning once per traced function, `shown`)."""
        names = [name for g, name, before in self._before.values() if not _same(_state(g), before)]
        code = getattr(shown, "__code__", None)
        if names and code not in _warned:
            _warned.add(code)
            warnings.warn_explicit(
                f"avalon: {code.co_name if code else shown} draws random numbers from {', '.join(names)} while "
                "traced; a replay would reuse them, so it is traced again at every call (slow). Draw with "
                "avalon.rand, avalon.randn, avalon.randint or dropout instead (recorded: compiled once, fresh at "
                "every call), or draw outside and pass the numbers as an argument.", RetraceWarning,
                code.co_filename if code else "<avalon>", code.co_firstlineno if code else 0)
        return names
