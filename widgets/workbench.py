"""Workbench: the four views in tabs on one model, sharing one selection. The profile tab is measured
when it is first shown (or `profiler` is read): timing a ResNet-18's step five times would otherwise
triple the time the workbench takes to open."""
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

    PENDING = ('<div class="avalon-muted" style="padding:8px">The profile times every node of the compiled '
               'step {repeat} times; it is measured when this tab is first opened.</div>')

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
        self._profiler = None
        self._profiler_args = dict(repeat=repeat, max_nodes=max_nodes)
        self._pending = w.HTML(self.PENDING.format(repeat=repeat))
        self.check_view = CheckView(f, *args, max_nodes=max_nodes, selection=self.selection)
        views += [("profile", self._pending), ("check", self.check_view)]
        self.children = [v for _, v in views]
        self._profile_tab = len(views) - 2
        for i, (name, _) in enumerate(views):
            self.set_title(i, name)
        self.observe(self._on_tab, names="selected_index")

    @property
    def profiler(self):
        """The Profiler tab, measured on first use."""
        if self._profiler is None:
            profiler = Profiler(self.tape, selection=self.selection, **self._profiler_args)
            if self.selection.label:
                profiler.select(self.selection.label)
            if self.tape_view.profile is None:
                self.tape_view.profile = profiler.profile
            self._profiler = profiler
            children = list(self.children)
            children[self._profile_tab] = profiler
            self.children = children
        return self._profiler

    @property
    def views(self):
        """Every view, the profiler measured if it was not yet."""
        self.profiler
        return list(self.children)

    def _on_tab(self, change):
        if change["new"] == self._profile_tab:
            self.profiler

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
