"""Random draws the tape cannot see: numpy's and Python's own generators used inside traced code.

`np.random.rand(3)` or `random.random()` inside a traced function runs once, while tracing, and its
numbers become constants of the tape: every cached replay would reuse them, silently. Avalon's own
draws (`avalon.rand`, dropout, `torch.randn` in ported code) are recorded and fresh at every call.
So a trace that advanced a host generator is refused: the watch snapshots numpy's global generator,
Python's `random`, and the generators the traced code can reach (globals of the user's modules that
ran, the traced function's closure, models' attributes) before they are used, and compares after;
a refused trace gives them their states back.
"""
import random

import numpy as np

from ..errors import UnsupportedConstruct
from ..tape import Location

_TYPES = (np.random.Generator, np.random.RandomState, random.Random)


def _state(generator):
    if isinstance(generator, np.random.Generator):
        return generator.bit_generator.state
    return generator.get_state() if isinstance(generator, np.random.RandomState) else generator.getstate()


def _restore(generator, state):
    if isinstance(generator, np.random.Generator):
        generator.bit_generator.state = state
    elif isinstance(generator, np.random.RandomState):
        generator.set_state(state)
    else:
        generator.setstate(state)


def _same(a, b):
    """States are dicts, tuples, ints and arrays (RandomState's key)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


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

    def refuse_draws(self, shown):
        """Raise `UnsupportedConstruct` (located at `shown`, the traced function) when the trace drew
        from any of them, after giving them back their states: a refused call changes nothing."""
        drawn = [(g, name, before) for g, name, before in self._before.values() if not _same(_state(g), before)]
        if not drawn:
            return
        for generator, _, before in drawn:
            _restore(generator, before)
        code = getattr(shown, "__code__", None)
        where = Location(code.co_filename, code.co_firstlineno, code.co_name) if code else None
        raise UnsupportedConstruct(
            f"random numbers drawn from {', '.join(name for _, name, _ in drawn)} inside traced code",
            "they are drawn once, while tracing, and become constants: every cached call would reuse "
            "the same numbers",
            "draw with Avalon's generator (avalon.rand, avalon.randn, avalon.randint, dropout: recorded, "
            "fresh at every call and seeded by avalon.manual_seed), or draw outside and pass the "
            "numbers as an argument", where)
