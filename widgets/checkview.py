"""CheckView: every unsupported construct `avalon.check` finds, at the user's line, with why and
the rewrite; and the part of the tape that was recorded, the node nearest each failure marked."""
import html

import avalon
from avalon.tracing import record

from . import render
from .page import body, fragment
from .pane import SELECTED, GraphPane
from .panel import source_html
from .view import Canvas, View

FAILURE = "stroke: #dc2626; stroke-width: 4px; stroke-dasharray: 5 2"


def nearest_node(tape, problem):
    """The node `avalon.check` attached to a problem, else the last node recorded on its line (or
    before it in the same file)."""
    node = getattr(problem, "node", None)
    if node is not None or tape is None or problem.location is None:
        return node
    loc = problem.location
    same_file = [n for n in tape.nodes if n.location is not None and n.location.filename == loc.filename]
    on_line = [n for n in same_file if n.location.lineno == loc.lineno]
    if on_line:
        return on_line[-1]
    before = [n for n in same_file if n.location.lineno < loc.lineno]
    return max(before, key=lambda n: n.location.lineno) if before else None


def problem_html(index, problem, node):
    """One problem: what, the source with its line highlighted, why, the rewrite, the nearest node."""
    mark = (f' <a href="#" class="avalon-link" data-av-action="select" data-av-target="{node.label}">'
            f"nearest node {node.label}</a>" if node is not None else "")
    return (f'<div class="avalon-problem" data-problem="{index}"><h4>{index + 1}. '
            f"{html.escape(problem.construct)}{mark}</h4>"
            f"{source_html(problem.location, before=3, after=2)}"
            f"<p><b>why:</b> {html.escape(problem.why)}</p><p><b>fix:</b> {html.escape(problem.fix)}</p></div>")


class CheckView(View):
    """Runs `avalon.check(f, *args)` and shows each unsupported construct at its line, with why
    and the suggested rewrite; the partial tape is drawn with the nodes nearest the failures ringed.

    >>> cv = CheckView(loss_fn, model, x, y)
    >>> cv.problems      # what avalon.check returned
    """

    kind = "checkview"
    title = "Avalon check"

    def __init__(self, f, *args, max_nodes=150, selection=None, **kwargs):
        super().__init__(selection=selection)
        self.problems = avalon.check(f, *args, **kwargs)
        self.tape = getattr(self.problems, "tape", None)
        if self.tape is None:  # an avalon.check that returns a plain list: record the tape here
            self.tape = record(f, args, kwargs, collect=True).tape
        self.nodes = [nearest_node(self.tape, p) for p in self.problems]
        self.pane = GraphPane(self.tape, max_nodes=max_nodes) if self.tape is not None and self.tape.nodes else None
        self._selected = None
        self.report = Canvas()
        self.report.add_class("avalon-check-report")
        self.report.observe(self._on_event, names="event")
        self.children = [self.status, self.report, self.canvas]
        if self.pane is not None:
            for n in self.nodes:
                if n is not None:
                    self.pane.graph.reveal(n)
        self.selection.observe(self._follow, names="label")
        self._draw()

    def report_html(self):
        if not self.problems:
            return '<p class="avalon-status">No unsupported constructs: this function traces cleanly.</p>'
        items = "".join(problem_html(i, p, n) for i, (p, n) in enumerate(zip(self.problems, self.nodes)))
        count = len(self.problems)
        return f'<p class="avalon-status"><b>{count} unsupported construct{"s" if count != 1 else ""}</b></p>{items}'

    def marks(self):
        out = {n: FAILURE for n in self.nodes if n is not None}
        if self._selected is not None:
            out[self._selected] = out.get(self._selected, "") + ("; " if self._selected in out else "") + SELECTED
        return out

    @property
    def svg(self):
        """The partial tape with the failure points ringed ('' when nothing was recorded)."""
        return self.pane.svg(self.marks()) if self.pane is not None else ""

    def select(self, target):
        """Select a node of the partial tape (its panel is shown beside the graph)."""
        if self.pane is None:
            raise KeyError("nothing was recorded, so there is no node to select")
        kind, node = self.pane.resolve(target)
        if kind != "node":
            raise KeyError(f"{target!r} is a module, not a node")
        self.pane.graph.reveal(node)
        self._selected = node
        self._draw()
        return node

    @property
    def selected(self):
        return self._selected

    def _follow(self, change):
        # the partial tape is recorded separately: a label from another view may name another node
        if self.pane is not None and change["new"] and self._selected is not None and \
                change["new"] != self._selected.label:
            self._selected = None
            self._draw()

    def handle(self, action, target):
        if self.pane is None:
            return
        kind, what = self.pane.resolve(target)
        if kind == "node":
            self.select(what)
        elif action == "select":  # a module box: what it holds, and a link that opens it
            self.canvas.side = self.pane.panel((kind, what))
        elif self.pane.open_or_close(action, kind, what):
            self._draw()

    def _draw(self):
        self.report.main = self.report_html()
        if self.pane is None:
            self.canvas.main = ""
            return
        try:
            self.canvas.main = self.svg
        except render.CannotDraw as exc:
            self.canvas.main = exc.html()
        self.canvas.side = self.pane.panel(("node", self._selected)) if self._selected is not None else ""
        self.canvas.focus = self._focus() or ""
        self.status.value = (f"partial tape: {len(self.tape.nodes)} nodes recorded; nodes nearest the "
                             "failures are ringed in red" if self.problems else "")

    def _focus(self):
        """The element the graph keeps in view: the selected node's, else the first failure's."""
        failures = [n for n in self.nodes if n is not None]
        node = self._selected or (failures[0] if failures else None)
        return self.pane.element_of(node) if node is not None else None

    def fragment(self):
        main = self.report_html()
        data = None
        if self.pane is not None:
            panels, ids = self.pane.static_panels()
            data = {"panels": panels, "ids": ids, "labels": {e: lab for lab, e in ids.items()}, "focus": self._focus()}
            main += body(self.pane.svg(self.marks()), "")
        return fragment(self.kind, main, data)
