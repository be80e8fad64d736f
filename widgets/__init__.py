"""The Avalon workbench: Jupyter widgets that read tapes and profiles (they never change them).

>>> from avalon.widgets import TapeView, BackwardStepper, Profiler, CheckView, Workbench
>>> TapeView(loss_fn, model, x, y)        # the forward+backward tape as a graph
>>> Workbench(loss_fn, model, x, y)       # all four views in tabs, one shared selection
>>> Compare(Profiler(loss_fn, model, x, y), Profiler(loss_fn, new_model, x, y))   # what changed

Graphs are laid out by Graphviz's `dot` (the system package: `sudo apt-get install graphviz`).
Every view also renders to one self-contained HTML document with `.to_html()`.
"""
from .checkview import CheckView
from .compare import Compare
from .profiler import Profiler
from .render import GraphvizNotFound, require_dot
from .stepper import BackwardStepper
from .tapeview import TapeView
from .workbench import Workbench

__all__ = ["TapeView", "BackwardStepper", "Profiler", "Compare", "CheckView", "Workbench", "GraphvizNotFound",
           "require_dot"]
