"""The Avalon workbench: Jupyter widgets that read tapes and profiles (they never change them).

>>> from avalon.widgets import TapeView, BackwardStepper, Profiler, CheckView, Workbench
>>> TapeView(loss_fn, model, x, y)        # the forward+backward tape as a graph
>>> Workbench(loss_fn, model, x, y)       # all four views in tabs, one shared selection

Graphs are laid out by Graphviz's `dot` (the system package: `sudo apt-get install graphviz`).
Every view also renders to one self-contained HTML document with `.to_html()`.
"""
from .checkview import CheckView
from .profiler import Profiler
from .render import GraphvizNotFound, require_dot
from .stepper import BackwardStepper
from .tapeview import TapeView
from .workbench import Workbench

__all__ = ["TapeView", "BackwardStepper", "Profiler", "CheckView", "Workbench", "GraphvizNotFound",
           "require_dot"]
