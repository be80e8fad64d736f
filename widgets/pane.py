"""A tape's picture with everything the views lay over it: the graph state (`TapeGraph`), overlays
that colour nodes by a number, highlights, node lookup and search, and side panels. Every view
draws through one of these; it holds no widgets, so it is what tests and scripts can drive too."""
import html
import math

from avalon.profile import seconds_text
from avalon.tape import Node

from . import render
from .graph import TapeGraph, node_title
from .page import new_uid
from .panel import box_panel, node_panel
from .stats import fmt, stats

OVERLAYS = ("none", "grad norm", "time", "nan/inf")
SELECTED = "stroke: #2563eb; stroke-width: 3px"


def ring(color, width=3):
    return f"stroke: {color}; stroke-width: {width}px"


class GraphPane:
    """The picture of one tape. `svg(marks)` draws the visible units with overlay colours and extra
    `marks` ({node or unit: css}); `panel(target)` is the side panel of a node or a box."""

    def __init__(self, tape, max_nodes=150, roll=True, max_layout=400):
        self.tape = tape
        self.uid = new_uid()
        self.graph = TapeGraph(tape, self.uid, max_nodes=max_nodes, roll=roll, max_layout=max_layout)
        self.consumers = self.graph.consumers
        by_id = self.graph.by_id
        self.grad_of = {by_id[f]: by_id[g] for f, g in tape.meta.get("grads", {}).items()
                        if f in by_id and g in by_id}
        self.overlay = "none"
        self.times = None  # {node id: seconds}, set by the profiler
        self._stats = {}

    # --- lookup ---------------------------------------------------------------------------------

    def search(self, query):
        """Nodes matching `query`: a label (`%7`), an input name, a primitive, or a module scope
        (the scope and everything inside it); exact matches first."""
        q = str(query).strip()
        if not q:
            return []
        exact, partial = [], []
        for n in self.graph.nodes:
            names = [n.label, node_title(n)]
            if n.scope:
                names.append(n.scope)
            if any(q == name for name in names) or (n.scope and n.scope.startswith(q + ".")):
                exact.append(n)
            elif any(q.lower() in name.lower() for name in names):
                partial.append(n)
        return exact + partial

    def resolve(self, target):
        """What `target` names: ('node', Node), ('scope', name), ('roll', key) or ('group', key).

        Accepts a Node, a node id, `'%7'`, an SVG element id, an input name, a scope, a roll key,
        or any search text (the first match)."""
        g = self.graph
        if isinstance(target, Node):
            if target.id not in g.by_id:
                raise KeyError(f"{target!r} is not on this tape")
            return ("node", g.by_id[target.id])
        if isinstance(target, int):
            return ("node", g.by_id[target])
        text = str(target)
        if text.startswith(self.uid + "_"):
            return g.target_of(text)
        if text.startswith("%") and text[1:].isdigit() and int(text[1:]) in g.by_id:
            return ("node", g.by_id[int(text[1:])])
        if text in g.rolls:
            return ("roll", text)
        if text in g.groups:
            return ("group", text)
        if text in g.children and text:
            return ("scope", text)
        for n in self.tape.inputs:
            if n.name == text:
                return ("node", n)
        found = self.search(text)
        if not found:
            raise KeyError(f"nothing on this tape is called {text!r}: give a node label (%7), an input "
                           "or parameter name, a primitive (matmul) or a module scope (encoder.layers.0)")
        return ("node", found[0])

    def open_or_close(self, action, kind, what):
        """Apply a click on a box or its panel's link to a resolved scope or roll: 'expand' opens
        it, 'collapse' closes it, 'toggle' (a double click) does whichever fits. Returns whether
        the picture changed."""
        g = self.graph
        if action == "collapse" or (action == "toggle" and kind == "scope" and what in g.expanded):
            g.collapse(what)
        elif action in ("expand", "toggle"):
            g.expand(what)
        else:
            return False
        return True

    # --- drawing --------------------------------------------------------------------------------

    def dot(self):
        return self.graph.dot()

    def base_svg(self):
        return render.layout(self.graph.dot())

    def element_of(self, item):
        """The SVG element id drawing a node, a unit tuple, a scope or a roll key."""
        g = self.graph
        if isinstance(item, Node):
            if not g.visible_node(item):
                return None
            return g.element_id(g.unit_of(item))
        if isinstance(item, tuple):
            return g.element_id(item)
        if item in g.rolls:
            for unit in g.units():
                if unit[0] == "r" and unit[1] == item:
                    return g.element_id(unit)
            return None
        if item in g.groups:
            return g.element_id(("g", item)) if g.grouped else None
        box = g.box_of(item)
        if box is not None:
            return g.element_id(box)
        return g.cluster_id(item) if item in g.expanded else None

    def rules(self, marks):
        """{element id: css} for `marks` ({node / unit / scope: css}); boxes take the first mark."""
        out = {}
        for item, decl in marks.items():
            eid = self.element_of(item)
            if eid is not None and eid not in out:
                out[eid] = decl
            elif eid is not None:
                out[eid] += "; " + decl
        return out

    def svg(self, marks=None):
        """The SVG shown now: layout, overlay colours, then `marks`."""
        rules = self.overlay_rules()[0]
        for eid, decl in self.rules(marks or {}).items():
            rules[eid] = rules[eid] + "; " + decl if eid in rules else decl
        return render.decorate(self.base_svg(), rules)

    # --- overlays -------------------------------------------------------------------------------

    def stats_of(self, node):
        if node not in self._stats:
            self._stats[node] = stats(node.value)
        return self._stats[node]

    def numbers(self, overlay=None):
        """{node: number} for an overlay: gradient norm, seconds, or 2/1 for a non-finite value/gradient."""
        overlay = overlay or self.overlay
        out = {}
        if overlay == "grad norm":
            for n, g in self.grad_of.items():
                s = self.stats_of(g)
                if s is not None and s["norm"] is not None:
                    out[n] = s["norm"]
        elif overlay == "time":
            by_id = self.graph.by_id
            out = {by_id[i]: t for i, t in (self.times or {}).items() if i in by_id}
        elif overlay == "nan/inf":
            for n in self.graph.nodes:
                s = self.stats_of(n)
                if s is not None and not s["finite"]:
                    out[n] = 2.0
                elif n in self.grad_of:
                    gs = self.stats_of(self.grad_of[n])
                    if gs is not None and not gs["finite"]:
                        out[n] = 1.0
        return out

    def overlay_rules(self):
        """({element id: fill css}, legend html) of the current overlay; boxes show the total time,
        the largest gradient norm, or the worst non-finite flag of what they hold."""
        if self.overlay == "none":
            return {}, ""
        numbers = self.numbers()
        per_unit = {}
        for n, x in numbers.items():
            if not self.graph.visible_node(n):
                continue
            unit = self.graph.unit_of(n)
            if self.overlay == "time":
                per_unit[unit] = per_unit.get(unit, 0.0) + x
            else:
                prev = per_unit.get(unit)
                per_unit[unit] = x if prev is None or (not math.isfinite(x) or x > prev) else prev
        rules = {}
        if self.overlay == "nan/inf":
            for unit, x in per_unit.items():
                rules[self.graph.element_id(unit)] = "fill: #f87171" if x >= 2 else "fill: #fdba74"
            legend = ('<div class="avalon-legend"><b>NaN/Inf</b> <span style="background:#f87171">&nbsp;value&nbsp;'
                      '</span> <span style="background:#fdba74">&nbsp;gradient&nbsp;</span> '
                      f"{len(numbers)} nodes</div>")
            return rules, legend
        finite = [x for x in per_unit.values() if math.isfinite(x) and x > 0]
        if not finite:
            return {}, f'<div class="avalon-legend"><b>{self.overlay}</b>: no values on this tape</div>'
        lo, hi = math.log10(min(finite)), math.log10(max(finite))
        for unit, x in per_unit.items():
            if not math.isfinite(x):
                color = "#7f1d1d"
            elif x <= 0:
                color = render.ramp(0)
            else:
                color = render.ramp((math.log10(x) - lo) / (hi - lo) if hi > lo else 1.0)
            rules[self.graph.element_id(unit)] = f"fill: {color}"
        text = seconds_text if self.overlay == "time" else fmt
        legend = render.legend_html(self.overlay, text(min(finite)), text(max(finite)), "(log scale)")
        return rules, legend

    # --- panels ---------------------------------------------------------------------------------

    def panel(self, target):
        """Side panel of a resolved target (see `resolve`)."""
        kind, what = target
        if kind == "node":
            return node_panel(self.tape, what, self.consumers, self.grad_of.get(what))
        g = self.graph
        if kind == "roll":
            roll = g.rolls[what]
            members = [n for m in roll.members for n in g.subtree[m]]
            return box_panel(f"{roll.label}  ×{len(roll.members)}", members, what)
        if kind == "group":
            return box_panel(f"{what}: ops outside modules", g.groups[what], what,
                             "expand" if g.grouped else "collapse")
        action = "collapse" if what in g.expanded else "expand"
        text = box_panel(what, g.subtree[what], what, action)
        if what in g.partial:  # too large to lay out whole: offer its parts one at a time
            parts = "".join(f'<li><a href="#" class="avalon-link" data-av-action="expand" '
                            f'data-av-target="{html.escape(kid)}">open {html.escape(kid)}</a></li>'
                            for kid in g.children[what])
            text += (f'<div class="avalon-flag">{html.escape(what)} is too large to lay out whole: its '
                     f"{len(g.direct[what])} own ops are one box."
                     + (f" Open its parts one at a time:<ul>{parts}</ul>" if parts else "") + "</div>")
        return text

    def static_panels(self, limit=400):
        """Panels of the visible nodes and boxes (what a box holds), for the static page:
        ({label or box key: html}, {label or box key: element id})."""
        panels, ids = {}, {}
        kinds = {"s": "scope", "p": "scope", "r": "roll", "g": "group"}
        for unit, members in self.graph.units().items():
            if len(panels) >= limit:
                break
            kind, key = unit
            name, target = (members[0].label, ("node", members[0])) if kind == "n" else (key, (kinds[kind], key))
            panels[name] = self.panel(target)
            ids[name] = self.graph.element_id(unit)
        return panels, ids

