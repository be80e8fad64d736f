"""Workbench: the four views in tabs on one model, sharing one selection."""
import ipywidgets as w

from .checkview import CheckView
from .page import document
from .profiler import Profiler
from .stepper import BackwardStepper
from .tapeview import TapeView
from .view import Selection, tape_of


class Workbench(w.Tab):
    """TapeView, BackwardStepper, Profiler and CheckView of `f(*args)` in tabs. Selecting a node in
    any of them selects it in the others (`selection.label`).

    >>> wb = Workbench(loss_fn, model, x, y)
    >>> wb.tape_view.select("matmul"); wb.stepper.current
    """

    def __init__(self, f, *args, repeat=5, max_nodes=150):
        super().__init__()
        self.add_class("avalon-workbench")
        self.selection = Selection()
        tape = tape_of(f, args)
        self.tape = tape
        self.tape_view = TapeView(tape, max_nodes=max_nodes, selection=self.selection)
        views = [("tape", self.tape_view)]
        if tape.meta.get("rule_of"):
            self.stepper = BackwardStepper(tape, max_nodes=max_nodes, selection=self.selection)
            views.append(("backward", self.stepper))
        else:
            self.stepper = None
        self.profiler = Profiler(tape, repeat=repeat, max_nodes=max_nodes, selection=self.selection)
        self.check_view = CheckView(f, *args, max_nodes=max_nodes, selection=self.selection)
        views += [("profile", self.profiler), ("check", self.check_view)]
        self.views = [v for _, v in views]
        self.children = self.views
        for i, (name, _) in enumerate(views):
            self.set_title(i, name)
        self.tape_view.profile = self.profiler.profile

    def select(self, target):
        """Select a node in every view (it is revealed in the graph, the stepper goes to its rule)."""
        return self.tape_view.select(target)

    @property
    def selected(self):
        return self.tape_view.selected

    def fragment(self):
        """The static copy: every view, one after another, each under its tab's name."""
        return "".join(f'<h3 class="avalon-view-title">{self.get_title(i)}</h3>{v.fragment()}'
                       for i, v in enumerate(self.views))

    def to_html(self):
        """All views, one after another, in one self-contained HTML document."""
        return document("Avalon workbench", self.fragment())

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data["text/html"] = self.fragment()
        return bundle
