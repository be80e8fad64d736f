"""BackwardStepper: the backward pass one rule at a time, with gradient statistics and flags.

Step k is one forward call being differentiated: the gradient arriving at it, the calls its rule
appended to the tape, and the gradients leaving it towards its operands. The link between the passes
is `tape.meta["rule_of"]` / `["grads"]`, recorded by the reverse-mode transform.
"""
import html

import ipywidgets as w

from avalon.errors import AvalonError
from avalon.tape import Call, Const

from . import render
from .graph import node_title
from .page import body, fragment
from .pane import GraphPane
from .panel import link, source_html, value_html
from .stats import fmt
from .view import View, button, tape_of

FORWARD = "stroke: #2563eb; stroke-width: 4px"
ARRIVING = "stroke: #16a34a; stroke-width: 4px"
LEAVING = "stroke: #ea580c; stroke-width: 4px"
RULE = "stroke: #a16207; stroke-width: 2px; stroke-dasharray: 4 2"


class Step:
    """One rule application: `forward` (the node differentiated), `calls` (what its rule appended),
    `arriving` (the gradient node reaching `forward`), `leaving` [(operand, gradient node)]."""

    def __init__(self, index, forward, calls, arriving, leaving):
        self.index = index
        self.forward = forward
        self.calls = calls
        self.arriving = arriving
        self.leaving = leaving

    def __repr__(self):
        return f"<Step {self.index}: rule of {self.forward.label} {node_title(self.forward)}>"


def backward_steps(tape):
    """The steps of the tape's backward pass in the order they ran."""
    by_id = {n.id: n for n in tape.nodes}
    rule_of = tape.meta.get("rule_of", {})
    grads = {f: g for f, g in tape.meta.get("grads", {}).items() if f in by_id and g in by_id}
    grad_for = {}
    for f, g in grads.items():
        grad_for.setdefault(g, []).append(by_id[f])
    consumers = tape.consumers()
    groups = []
    for n in tape.nodes:
        fwd = by_id.get(rule_of.get(n.id)) if n.phase == "backward" else None
        if fwd is None:
            continue
        if groups and groups[-1][0] is fwd:
            groups[-1][1].append(n)
        else:
            groups.append((fwd, [n]))
    outputs = set(tape.outputs)
    steps = []
    for index, (fwd, calls) in enumerate(groups):
        inside = set(calls)
        exits = [n for n in calls if isinstance(n, Call) and
                 (n in outputs or any(c not in inside for c in consumers.get(n, [])))]
        operands = fwd.inputs if isinstance(fwd, Call) else []
        leaving = []
        for e in exits:
            for target in _gradient_targets(e, grad_for, consumers):
                if target in operands and (target, e) not in leaving:
                    leaving.append((target, e))
        arriving = by_id.get(grads.get(fwd.id))
        steps.append(Step(index, fwd, calls, arriving, leaving))
    return steps


def _gradient_targets(node, grad_for, consumers, depth=0):
    """Forward nodes whose gradient `node` is, or becomes once later contributions are added to it."""
    if node.id in grad_for:
        return grad_for[node.id]
    if depth > 64:
        return []
    out = []
    for c in consumers.get(node, []):
        if c.phase == "backward" and isinstance(c, Call) and c.prim.name == "add":
            out.extend(_gradient_targets(c, grad_for, consumers, depth + 1))
    return out


class BackwardStepper(View):
    """Step through the backward pass of `f(*args)` (or of a forward+backward tape) rule by rule.

    >>> st = BackwardStepper(loss_fn, model, x, y)
    >>> st.step(); st.current; st.goto_first_nonfinite(); st.flags

    At each step the graph rings the forward node being differentiated (blue), the gradient
    arriving (green) and the gradients leaving (orange); gradients whose norm is below `vanishing`
    or above `exploding`, or not finite, are flagged with the forward op and line that made them.
    """

    kind = "stepper"
    title = "Avalon backward stepper"

    def __init__(self, f_or_tape, *args, vanishing=1e-7, exploding=1e3, max_nodes=150, selection=None):
        super().__init__(selection=selection)
        tape = tape_of(f_or_tape, args)
        self.steps = backward_steps(tape)
        if not self.steps:
            raise AvalonError("this tape has no backward pass to step through: give a function with a "
                              "scalar output, or a tape from `avalon.grad_tape(f, *args, seed=...)`")
        self.pane = GraphPane(tape, max_nodes=max_nodes)
        self.tape = tape
        self._opened = set(self.pane.graph.expanded)
        self.vanishing, self.exploding = vanishing, exploding
        self.position = 0
        # the slider counts steps from 1, as the status line and the panel do
        count = len(self.steps)
        self.slider = w.IntSlider(value=1, min=1, max=count, description="step", continuous_update=False,
                                  layout=w.Layout(width="320px"))
        self.player = w.Play(value=1, min=1, max=count, interval=600, description="play")
        w.jslink((self.player, "value"), (self.slider, "value"))
        self.slider.observe(lambda c: self.goto(c["new"] - 1), names="value")
        self.jump_box = w.Text(placeholder="jump to node (%7, op, name)", continuous_update=False,
                               layout=w.Layout(width="220px"))
        self.jump_box.observe(lambda c: self._jump(c["new"]), names="value")
        self.low = w.FloatText(value=vanishing, description="vanishing <", layout=w.Layout(width="180px"))
        self.high = w.FloatText(value=exploding, description="exploding >", layout=w.Layout(width="180px"))
        self.low.observe(lambda c: self.set_thresholds(vanishing=c["new"]), names="value")
        self.high.observe(lambda c: self.set_thresholds(exploding=c["new"]), names="value")
        self.next_button = button("next", "differentiate the next node", self.step, "step-forward")
        self.next_button.add_class("avalon-next")
        self.back_button = button("back", "previous step", self.back, "step-backward")
        self.back_button.add_class("avalon-back")
        self.flag_list = w.HTML("")
        row1 = w.HBox([button("first", "first step", lambda: self.goto(0), "fast-backward"), self.back_button,
                       self.next_button, self.player, self.slider,
                       button("first non-finite", "jump to the first non-finite gradient",
                              self.goto_first_nonfinite, "exclamation-triangle")],
                      layout=w.Layout(flex_flow="row wrap"))
        row2 = w.HBox([self.jump_box, self.low, self.high], layout=w.Layout(flex_flow="row wrap"))
        self.children = [row1, row2, self.status, self.canvas, self.flag_list]
        self.selection.observe(self._follow, names="label")
        self._draw()

    # --- stepping -------------------------------------------------------------------------------

    @property
    def current(self):
        """The forward node being differentiated at this step."""
        return self.steps[self.position].forward

    @property
    def step_now(self):
        """The current `Step` (forward node, rule calls, arriving and leaving gradients)."""
        return self.steps[self.position]

    def step(self):
        """Go to the next step (stays at the last). Returns the forward node now differentiated."""
        return self.goto(min(self.position + 1, len(self.steps) - 1))

    def back(self):
        """Go to the previous step (stays at the first)."""
        return self.goto(max(self.position - 1, 0))

    def play(self):
        """Step to the end, one rule at a time (the play button animates the same in the browser).
        Returns the flags met on the way."""
        while self.position < len(self.steps) - 1:
            self.step()
        return self.flags

    def goto(self, where):
        """Go to a step: its index, a forward node (Node, `%7`, name, op) whose rule it is, or a
        module scope (its first node differentiated)."""
        if isinstance(where, int) and not isinstance(where, bool):
            if not 0 <= where < len(self.steps):
                raise IndexError(f"step {where} out of range 0..{len(self.steps) - 1}")
            index = where
        else:
            kind, what = self.pane.resolve(where)
            index = self._step_of(what) if kind == "node" else self._first_in(what)
            if index is None:
                raise KeyError(f"{where!r} is not differentiated in this backward pass (no rule ran for it)")
        if index != self.position or not self.canvas.main:
            self.position = index
            self._draw()
            self.selection.label = self.current.label
        return self.current

    def _jump(self, text):
        # a typing slip must say so where the user looks, not raise into the kernel's log
        if not text.strip():
            return
        try:
            self.goto(text.strip())
        except KeyError as exc:
            self.status.value = f'<span class="avalon-bad">{html.escape(exc.args[0])}</span>'

    def _first_in(self, scope):
        """The first step differentiating a node of a module scope (or roll of blocks)."""
        g = self.pane.graph
        if scope in g.groups:
            return next((s.index for s in self.steps if g.group_of.get(s.forward.id) == scope), None)
        scopes = g.rolls[scope].members if scope in g.rolls else [scope]
        for s in self.steps:
            own = g.scope_of[s.forward.id]
            if any(own == sc or own.startswith(sc + ".") for sc in scopes):
                return s.index
        return None

    def _step_of(self, node):
        for s in self.steps:
            if s.forward is node or node in s.calls:
                return s.index
        return None

    def _follow(self, change):
        label = change["new"]
        if label and label != self.current.label:
            try:
                kind, node = self.pane.resolve(label)
            except KeyError:
                return
            index = self._step_of(node) if kind == "node" else None
            if index is not None:
                self.goto(index)

    def goto_first_nonfinite(self):
        """Go to the first step whose arriving or leaving gradient holds NaN or Inf; returns its
        forward node, or None (and stays) when every gradient is finite."""
        for f in self.flags:
            if f["kind"] == "non-finite":
                return self.goto(f["step"])
        self.status.value = "every gradient of this backward pass is finite"
        return None

    # --- flags ----------------------------------------------------------------------------------

    def set_thresholds(self, vanishing=None, exploding=None):
        """Change the norms below / above which a gradient is flagged vanishing / exploding."""
        if vanishing is not None:
            self.vanishing = vanishing
        if exploding is not None:
            self.exploding = exploding
        self._draw()

    def _gradients(self, s):
        # an arriving gradient is the sum of gradients already checked as they left earlier steps;
        # only the first step's (the seed) is new
        out = [("arriving", s.forward, s.arriving)] if s.arriving is not None and s.index == 0 else []
        out += [("leaving", operand, g) for operand, g in s.leaving]
        return out

    def _flags_of(self, s):
        flags = []
        for role, about, g in self._gradients(s):
            st = self.pane.stats_of(g)
            if st is None:
                continue
            if not st["finite"]:
                kind, why = "non-finite", f"{st['nan']} NaN, {st['inf']} Inf"
            elif st["norm"] < self.vanishing:
                kind, why = "vanishing", f"norm {fmt(st['norm'])} < {fmt(self.vanishing)}"
            elif st["norm"] > self.exploding:
                kind, why = "exploding", f"norm {fmt(st['norm'])} > {fmt(self.exploding)}"
            else:
                continue
            fwd = s.forward
            where = fwd.location
            flags.append({"step": s.index, "kind": kind, "role": role, "gradient": g, "of": about,
                          "forward": fwd, "why": why,
                          "location": f"{where.short}: {where.code}" if where else "",
                          "message": f"{kind} gradient {role} {'at' if role == 'arriving' else 'to'} "
                                     f"{about.label} {node_title(about)} ({why}); rule of "
                                     f"{fwd.label} {node_title(fwd)}"
                                     + (f" at {where.short}: {where.code}" if where else "")})
        return flags

    @property
    def flags(self):
        """Every flagged gradient, in step order: dicts with step, kind ('vanishing', 'exploding',
        'non-finite'), role ('arriving' / 'leaving'), gradient, of, forward, location, message."""
        return [f for s in self.steps for f in self._flags_of(s)]

    # --- drawing --------------------------------------------------------------------------------

    def marks(self, s):
        """{node: css} of a step's highlights."""
        out = {n: RULE for n in s.calls if not isinstance(n, Const)}
        for _, g in s.leaving:
            out[g] = LEAVING
        if s.arriving is not None:
            out[s.arriving] = ARRIVING
        out[s.forward] = FORWARD
        return out

    def panel(self, s):
        """The side panel of a step: the forward node, its source, the gradients and any flags."""
        fwd = s.forward
        parts = [f'<h3>step {s.index + 1} / {len(self.steps)}: rule of {link(fwd)}</h3>',
                 f'<p class="avalon-muted">{html.escape(fwd.type_str)}'
                 f'{" in " + html.escape(fwd.scope) if fwd.scope else ""}; the rule appended '
                 f"{len(s.calls)} node{'s' if len(s.calls) != 1 else ''}</p>"]
        for f in self._flags_of(s):
            cls = "avalon-flag avalon-nonfinite" if f["kind"] == "non-finite" else "avalon-flag"
            parts.append(f'<div class="{cls}">{html.escape(f["message"])}</div>')
        if fwd.location is not None:
            parts.append(source_html(fwd.location, before=2, after=2))
        if s.arriving is not None:
            parts.append(value_html(f"gradient arriving ({s.arriving.label})", s.arriving.value))
        for operand, g in s.leaving:
            parts.append(value_html(f"gradient leaving to {operand.label} {node_title(operand)} ({g.label})",
                                    g.value))
        calls = ", ".join(link(n, f"{n.label} {node_title(n)}") for n in s.calls[:30])
        parts.append(f'<div class="avalon-block"><h4>rule calls</h4>{calls}</div>')
        return f'<div class="avalon-step-panel" data-step="{s.index}">{"".join(parts)}</div>'

    def _reveal(self, s):
        """Open the modules around this step's forward node (and close those opened for other steps)."""
        g = self.pane.graph
        wanted = set(self._opened)
        scope = g.scope_of[s.forward.id]
        wanted.update(g.ancestors.get(scope, ()))
        unrolled = {g.roll_of[a].key for a in g.ancestors.get(scope, ()) if a in g.roll_of}
        if wanted != g.expanded or not unrolled <= g.unrolled:
            g.expanded = wanted
            g.unrolled = set(g.unrolled) | unrolled

    @property
    def svg(self):
        """The SVG shown now, the current step highlighted."""
        return self.pane.svg(self.marks(self.step_now))

    def _draw(self):
        s = self.step_now
        self._reveal(s)
        if self.slider.value != self.position + 1:
            self.slider.value = self.position + 1
        try:
            self.canvas.main = self.svg
        except render.CannotDraw as exc:
            self.canvas.main = exc.html()
        self.canvas.side = self.panel(s)
        self.canvas.focus = self.pane.element_of(s.forward) or ""
        self.status.value = (f"step {self.position + 1} / {len(self.steps)}: differentiating "
                             f"{s.forward.label} {node_title(s.forward)}")
        self.flag_list.value = self.flags_html()

    def flags_html(self):
        """The list of flagged gradients, under the graph."""
        flags = self.flags
        if not flags:
            return (f'<p class="avalon-status">No gradient flagged: every one is finite, with a norm between '
                    f"{fmt(self.vanishing)} and {fmt(self.exploding)}.</p>")
        items = "".join(f"<li>step {f['step'] + 1}: {html.escape(f['message'])}</li>" for f in flags[:50])
        more = f"<li>… {len(flags) - 50} more</li>" if len(flags) > 50 else ""
        return (f'<div class="avalon-flags"><b>{len(flags)} flagged gradient{"s" if len(flags) != 1 else ""}</b>'
                f"<ul>{items}{more}</ul></div>")

    def handle(self, action, target):
        if action == "step":
            self.goto(int(target))
            return
        kind, what = self.pane.resolve(target)
        # a node goes to the step that differentiates it, a module box to its first step (which opens it)
        index = self._step_of(what) if kind == "node" else self._first_in(what)
        if index is not None:
            self.goto(index)

    def fragment(self, limit=500):
        """Static copy: the graph and up to `limit` pre-rendered steps around the current one."""
        lo = max(0, min(self.position - limit // 2, len(self.steps) - limit))
        chosen = self.steps[lo:lo + limit]
        steps = [{"css": render.css_text(self.pane.rules(self.marks(s))), "panel": self.panel(s),
                  "focus": self.pane.element_of(s.forward)} for s in chosen]
        controls = ('<div class="avalon-controls">'
                    + "".join(f'<button data-av-step="{k}">{k}</button>' for k in ("first", "prev", "next", "last"))
                    + f' <span class="avalon-pos">step {self.position - lo + 1} / {len(chosen)}</span></div>')
        main = controls + body(self.pane.svg(), steps[self.position - lo]["panel"]) + self.flags_html()
        here = steps[self.position - lo]
        return fragment(self.kind, main, {"steps": steps, "position": self.position - lo, "focus": here["focus"]},
                        here["css"])

