"""TapeView: a tape as a Graphviz graph with module boxes, search, overlays and a side panel."""
import ipywidgets as w

from . import render
from .page import body, fragment
from .pane import OVERLAYS, SELECTED, GraphPane
from .view import View, button, tape_of


class TapeView(View):
    """The tape of `f(*args)` (forward and backward) or a given tape, drawn by Graphviz.

    >>> view = TapeView(loss_fn, model, x, y)     # or TapeView(tape)
    >>> view.select("matmul"); view.expand("encoder.layers.0"); view.to_html()

    Click a node to see its panel; double-click a module box to open it, a module's frame to close
    it. `svg` is the picture shown now.
    """

    kind = "tapeview"
    title = "Avalon tape"

    def __init__(self, f_or_tape, *args, max_nodes=150, max_layout=400, roll=True, profile=None,
                 selection=None):
        super().__init__(selection=selection)
        self.max_layout = max_layout
        self.pane = GraphPane(tape_of(f_or_tape, args), max_nodes=max_nodes, roll=roll, max_layout=max_layout)
        self.tape = self.pane.tape
        self.profile = profile
        self._target = None
        self._matches, self._match_at = [], 0
        g = self.pane.graph
        self.phase_toggle = w.ToggleButtons(options=[("forward + backward", "both"), ("forward", "forward")],
                                            value=g.phase, disabled=not g.has_backward,
                                            style={"button_width": "auto"})
        self.phase_toggle.observe(lambda c: self.show_phase(c["new"]), names="value")
        self.overlay_menu = w.Dropdown(options=OVERLAYS, value="none", description="colour by",
                                       layout=w.Layout(width="210px"))
        self.overlay_menu.observe(lambda c: self.set_overlay(c["new"]), names="value")
        self.search_box = w.Text(placeholder="search: name, op, module, %id", continuous_update=False,
                                 layout=w.Layout(width="240px"))
        self.search_box.add_class("avalon-search")
        self.search_box.observe(lambda c: self.find(c["new"]), names="value")
        self.exports = w.HTML("")
        tools = w.HBox([self.phase_toggle, self.overlay_menu, self.search_box,
                        button("next match", "select the next search match", self.next_match),
                        button("open all", "open every module", self.expand_all),
                        button("close all", "close modules down to a readable size", self.collapse_all),
                        button("export", "SVG and DOT download links", self.show_exports)],
                       layout=w.Layout(flex_flow="row wrap"))
        self.children = [tools, self.status, self.exports, self.canvas]
        self.selection.observe(self._follow, names="label")
        self.refresh()

    # --- state ----------------------------------------------------------------------------------

    @property
    def svg(self):
        """The SVG shown now (layout, overlay colours, the selection ringed)."""
        return self.pane.svg(self._marks())

    @property
    def dot(self):
        """The DOT text of what is shown now."""
        return self.pane.dot()

    @property
    def selected(self):
        """The selected Node, a module scope name, a roll key, or None."""
        return None if self._target is None else self._target[1]

    def _marks(self):
        if self._target is None:
            return {}
        kind, what = self._target
        return {what: SELECTED}

    def select(self, target):
        """Select a node (Node, `%7`, input name, op, module scope, search text): it is revealed
        (its modules opened), ringed, and its panel shown. Returns the selection."""
        kind, what = self.pane.resolve(target)
        if kind == "node":
            was = (set(self.pane.graph.expanded), set(self.pane.graph.unrolled), self.pane.graph.phase)
            self.pane.graph.reveal(what)
            if self.pane.graph.phase != self.phase_toggle.value:
                self.phase_toggle.value = self.pane.graph.phase
            changed = was != (self.pane.graph.expanded, self.pane.graph.unrolled, self.pane.graph.phase)
            self._target = ("node", what)
            self.selection.label = what.label
            if changed:
                self.refresh()
            else:
                self._redraw_marks()
        else:
            self._target = (kind, what)
            self._redraw_marks()
        return self.selected

    def _follow(self, change):
        label = change["new"]
        current = self._target[1].label if self._target and self._target[0] == "node" else None
        if label and label != current:
            try:
                self.select(label)
            except KeyError:
                pass  # another view's node that this tape does not have

    def find(self, query):
        """Search (name, op, module, label) and select the first match; `next_match()` goes on."""
        self._matches = self.pane.search(query)
        self._match_at = 0
        if not self._matches:
            self.status.value = f"no node matches {query!r}" if query else ""
            return []
        self.select(self._matches[0])
        self.status.value = f"match 1 of {len(self._matches)} for {query!r}"
        return self._matches

    def next_match(self):
        """Select the next match of the last search (they cycle)."""
        if not self._matches:
            self.status.value = "type a search first (a name, an op, a module or a %id, then Enter)"
            return None
        self._match_at = (self._match_at + 1) % len(self._matches)
        self.select(self._matches[self._match_at])
        self.status.value = f"match {self._match_at + 1} of {len(self._matches)}"
        return self.selected

    def expand(self, scope):
        """Open a module scope (`encoder.layers.0`) or unroll a roll of blocks (`layers[0-11]`).
        A module too large to lay out whole opens partly: its own ops stay one box, and the status
        line and side panel offer its child modules to open one at a time."""
        g = self.pane.graph
        before = set(g.partial)
        g.expand(scope)
        self.refresh()
        for part in sorted(g.partial - before):
            own, kids = len(g.direct[part]), g.children[part]
            self.status.value = (f"{part} is too large to open whole ({own} ops of its own, more than "
                                 f"{g.max_layout} units to lay out): its own ops are one box"
                                 + (f"; open its parts one at a time: {', '.join(kids[:8])}" if kids else ""))
            self.canvas.side = self.pane.panel(("scope", part))

    def collapse(self, scope):
        """Close a module scope, or roll unrolled blocks back up."""
        self.pane.graph.collapse(scope)
        if self._target and self._target[0] == "node" and self.pane.element_of(self._target[1]) is None:
            self._target = None
        self.refresh()

    def expand_all(self):
        """Open every module, as far as `max_layout` units: Graphviz takes seconds per few hundred
        nodes and minutes for a thousand, so past that the widest modules stay closed."""
        g = self.pane.graph
        g.open_to_budget(self.max_layout)
        self.refresh()
        if len(g.units()) < sum(g.visible_node(n) for n in g.nodes):
            self.status.value += (f" (opened as far as {self.max_layout} units: open single modules, or "
                                  "show the forward pass only, to see more)")

    def collapse_all(self):
        """Close modules back to the opening view (at most `max_nodes` units)."""
        self.pane.graph.open_at_start()
        self.refresh()

    def show_phase(self, phase):
        """'both' (forward and backward) or 'forward' only."""
        if phase not in ("both", "forward"):
            raise ValueError(f"phase must be 'both' or 'forward', got {phase!r}")
        self.pane.graph.phase = phase
        if self.phase_toggle.value != phase:
            self.phase_toggle.value = phase
        if phase == "forward" and self._target and self._target[0] == "node" and \
                self._target[1].phase == "backward":
            self._target = None
        self.refresh()

    def set_overlay(self, overlay):
        """Colour nodes by 'grad norm', 'time' (profiles the tape if no profile was given),
        'nan/inf', or 'none'."""
        if overlay not in OVERLAYS:
            raise ValueError(f"overlay must be one of {OVERLAYS}, got {overlay!r}")
        if overlay == "time" and self.pane.times is None:
            if self.profile is None:
                from avalon.profile import profile_tape

                self.profile = profile_tape(self.tape, repeat=3)
            self.pane.times = self.profile.times()
        self.pane.overlay = overlay
        if self.overlay_menu.value != overlay:
            self.overlay_menu.value = overlay
        self.refresh()

    # --- events and drawing ---------------------------------------------------------------------

    def handle(self, action, target):
        kind, what = self.pane.resolve(target)
        if action == "select":
            self.select(what if kind == "node" else target)
        elif action in ("toggle", "expand", "collapse"):
            if kind == "node":
                self.select(what)
            elif action == "collapse" or (action == "toggle" and kind == "scope" and what in self.pane.graph.expanded):
                self.collapse(what)
            else:
                self.expand(what)
                self.select(what)

    def refresh(self):
        """Lay out again (after opening, closing, a phase or overlay change) and redraw."""
        try:
            self.pane.base_svg()
        except render.CannotDraw as exc:
            self.canvas.main = exc.html()
            self.canvas.side = ""
            return
        self._redraw_marks()
        units = self.pane.graph.units()
        self.status.value = (self.status.value if self.status.value.startswith("match") else
                             f"{len(units)} shown of {len(self.tape.nodes)} nodes")

    def _redraw_marks(self):
        legend = self.pane.overlay_rules()[1]
        self.canvas.main = legend + self.svg
        self.canvas.side = self.pane.panel(self._target) if self._target else ""
        self.canvas.focus = (self.pane.element_of(self._target[1]) or "") if self._target else ""

    def show_exports(self):
        """Download links for the SVG and DOT shown now (data URLs: no server involved)."""
        import base64

        svg = base64.b64encode(self.export_svg().encode()).decode()
        dot = base64.b64encode(self.export_dot().encode()).decode()
        self.exports.value = (f'<a download="tape.svg" href="data:image/svg+xml;base64,{svg}">tape.svg</a> · '
                              f'<a download="tape.dot" href="data:text/vnd.graphviz;base64,{dot}">tape.dot</a>')

    def export_svg(self, path=None):
        """The SVG shown now as a standalone file's text (written to `path` when given)."""
        text = '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + self.svg
        if path is not None:
            with open(path, "w") as fh:
                fh.write(text)
        return text

    def export_dot(self, path=None):
        """The DOT text shown now (written to `path` when given); `dot -Tpdf` renders it."""
        text = self.dot
        if path is not None:
            with open(path, "w") as fh:
                fh.write(text)
        return text

    def fragment(self):
        panels, ids = self.pane.static_panels()
        labels = {eid: label for label, eid in ids.items()}
        current = self.pane.panel(self._target) if self._target else ""
        legend = self.pane.overlay_rules()[1]
        eid = self.pane.element_of(self._target[1]) if self._target is not None else None
        css = render.css_text({eid: SELECTED}) if eid else ""
        return fragment(self.kind, legend + body(self.pane.svg(), current),
                        {"panels": panels, "ids": ids, "labels": labels, "focus": eid}, css)
