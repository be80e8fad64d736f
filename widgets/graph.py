"""The drawable graph of a tape: module scopes as boxes that open and close, repeated blocks rolled
up, and the DOT text of what is visible now.

A *unit* is one thing drawn: a node of the tape, a closed module (one box for its forward and
backward parts together), a roll of identical sibling blocks (`layers.0` … `layers.11` as one box
marked ×12), or a group of the ops written outside any module, one per function (`loss_fn()`). Open
modules are drawn as clusters around their units. A tape that does not fit in `max_nodes` units opens
as an overview: its top-level modules closed, the ops outside them grouped, the gradient outputs one
`gradients ×62` node. Opening a module lays out at most `max_layout` units: a module with more ops of
its own than that opens partly, its own ops one box, its child modules open one at a time.
"""
from avalon.errors import AvalonError
from avalon.tape import Call, Const, Input

FILL = {"input": "#dbeafe", "param": "#e0e7ff", "buffer": "#ede9fe", "const": "#f3f4f6",
        "forward": "#ffffff", "backward": "#fef3c7", "box": "#eef2ff", "output": "#dcfce7"}
BOX_CLASS = {"s": "module", "r": "roll", "g": "group", "p": "partial"}
GROUP_OUTPUTS = 8  # more gradient (or other) outputs than this are drawn as one node


class TooLargeToOpen(AvalonError, KeyError):
    """Opening a roll of blocks or the ops outside modules would lay out more units than Graphviz
    draws quickly (`max_layout`); nothing was opened. (A KeyError too, so a view's status line shows
    it like any other target it cannot open.)"""

    def __str__(self):
        return self.args[0]


def group_scope(node):
    """The module a node is drawn in: its scope; a parameter or buffer goes with its module
    (`layer1.0.conv1.weight` in `layer1.0.conv1`), so closing a module hides its weights too."""
    if isinstance(node, Input) and node.role != "data" and "." in node.name:
        return node.name.rsplit(".", 1)[0]
    return node.scope or ""


def dims(shape):
    """`5×3` (or `scalar`): a shape as edges and tables print it."""
    return "×".join(map(str, shape)) if shape else "scalar"


def node_title(node):
    """What a node is called in the graph and in lists: `W1`, `matmul`, `const`."""
    if isinstance(node, Input):
        return node.name
    if isinstance(node, Const):
        return "const"
    return node.prim.name


def _ancestors(scope):
    parts = scope.split(".") if scope else []
    return [".".join(parts[:i + 1]) for i in range(len(parts))]


class Roll:
    """Consecutive identical sibling blocks drawn as one box: `members` are their scopes."""

    def __init__(self, parent, members):
        self.parent = parent
        self.members = members
        first, last = members[0].rsplit(".", 1)[-1], members[-1].rsplit(".", 1)[-1]
        stem = members[0].rsplit(".", 1)[0] if "." in members[0] else ""
        self.key = f"{stem}[{first}-{last}]" if stem else f"[{first}-{last}]"
        self.label = f"{members[0]} … {members[-1]}"


class TapeGraph:
    """Which units of a tape are visible, and their DOT text.

    State: `expanded` (open scopes), `unrolled` (roll keys shown as separate blocks), `grouped`
    (whether the ops outside modules are drawn as one box per function), `partial` (open scopes
    whose own ops are one box), `phase` ('both' or 'forward'). `units()` lists what is drawn; `dot()`
    writes it with element ids `{uid}_…` so styles and clicks can find them.
    """

    def __init__(self, tape, uid, max_nodes=150, roll=True, max_layout=400):
        self.tape = tape
        self.uid = uid
        self.max_nodes = max_nodes
        self.max_layout = max_layout
        self.roll = roll
        self.nodes = list(tape.nodes)
        self.by_id = {n.id: n for n in self.nodes}
        self.consumers = tape.consumers()
        self.has_backward = any(n.phase == "backward" for n in self.nodes)
        self.phase = "both" if self.has_backward else "forward"
        self.scope_of = {n.id: group_scope(n) for n in self.nodes}
        self._build_tree()
        self._find_rolls()
        self._find_groups()
        self.expanded, self.unrolled, self.partial = set(), set(), set()
        self.grouped = False
        self.open_at_start()

    # --- structure ------------------------------------------------------------------------------

    def _build_tree(self):
        self.children = {"": []}
        self.direct = {"": []}
        self.subtree = {"": []}
        self.scope_index = {"": 0}
        for n in self.nodes:
            scope = self.scope_of[n.id]
            parent = ""
            for anc in _ancestors(scope):
                if anc not in self.children:
                    self.children[anc] = []
                    self.direct[anc] = []
                    self.subtree[anc] = []
                    self.scope_index[anc] = len(self.scope_index)
                    self.children[parent].append(anc)
                self.subtree[anc].append(n)
                parent = anc
            self.direct[scope].append(n)
        self.subtree[""] = self.nodes
        self.parent_of = {s: (s.rsplit(".", 1)[0] if "." in s else "") for s in self.children if s}
        self.ancestors = {s: _ancestors(s) for s in self.children}

    def _signature(self, scope):
        cut = len(scope)
        return tuple((n.kind, node_title(n) if not isinstance(n, Input) else n.name[cut:], n.shape,
                      str(n.dtype), n.phase, self.scope_of[n.id][cut:]) for n in self.subtree[scope])

    def _find_rolls(self):
        """Runs of ≥2 consecutive numbered siblings (`layers.3`, `layers.4` …) with identical contents."""
        self.rolls, self.roll_of = {}, {}
        for parent, kids in self.children.items():
            run, last_sig, last_num = [], None, None
            for kid in kids + [None]:
                leaf = kid.rsplit(".", 1)[-1] if kid else ""
                num = int(leaf) if leaf.isdigit() else None
                sig = self._signature(kid) if num is not None else None
                if num is not None and run and sig == last_sig and num == last_num + 1:
                    run.append(kid)
                else:
                    if len(run) >= 2:
                        roll = Roll(parent, run)
                        self.rolls[roll.key] = roll
                        for member in run:
                            self.roll_of[member] = roll
                    run = [kid] if num is not None else []
                last_sig, last_num = sig, num

    def _find_groups(self):
        """The ops outside every module, by the function that wrote them (a backward op goes with the
        forward op whose rule made it): `loss_fn()`, `forward()`."""
        rule_of = self.tape.meta.get("rule_of", {})

        def origin(n):
            if isinstance(n, Const):  # a constant (the loss's seed 1.0) goes with what reads it
                return next((origin(c) for c in self.consumers.get(n, ()) if not self.scope_of[c.id]), n)
            return self.by_id.get(rule_of.get(n.id), n) if n.phase == "backward" else n

        self.groups, self.group_of = {}, {}
        for n in self.nodes:
            if isinstance(n, Input) or self.scope_of[n.id]:
                continue
            where = origin(n).location
            key = f"{where.function}()" if where is not None else "(top level)"
            self.groups.setdefault(key, []).append(n)
            self.group_of[n.id] = key

    # --- state ----------------------------------------------------------------------------------

    def visible_node(self, node):
        if self.phase == "both":
            return True
        if isinstance(node, Const) and self.consumers.get(node):
            # a constant only the backward pass reads (the seed 1.0 of the loss) would float unconnected
            return any(user.phase == "forward" for user in self.consumers[node])
        return node.phase == "forward"

    def _draws(self, scope):
        """How many boxes a closed scope draws: one, or none when the phase filter hides all it holds."""
        return int(any(self.visible_node(n) for n in self.subtree[scope]))

    def _rolled(self, scope):
        roll = self.roll_of.get(scope) if self.roll else None
        return roll if roll is not None and roll.key not in self.unrolled else None

    def _cost_open(self, scope):
        cost = sum(1 for n in self.direct[scope] if self.visible_node(n))
        seen = set()
        for kid in self.children[scope]:
            roll = self._rolled(kid)
            if roll is not None:
                if roll.key not in seen:
                    seen.add(roll.key)
                    cost += self._draws(kid)
            else:
                cost += self._draws(kid)
        return cost

    def open_at_start(self):
        """The opening view: everything when it fits in `max_nodes` units, else the overview (the
        top-level modules closed, the ops outside them grouped by function)."""
        self.grouped, self.partial = False, set()
        self.expanded = set(self.children) - {""}
        self.unrolled = set(self.rolls)
        if len(self.units()) > self.max_nodes:
            self.expanded, self.unrolled, self.grouped = set(), set(), True

    def open_to_budget(self, budget=None):
        """Open scopes, widest first, while at most `budget` (default `max_nodes`) units are visible.
        When everything fits with every block shown, nothing is rolled up."""
        budget = self.max_nodes if budget is None else budget
        self.grouped, self.partial = False, set()
        self.expanded = set(self.children) - {""}
        self.unrolled = set(self.rolls)
        if len(self.units()) <= budget:
            return
        self.expanded, self.unrolled = set(), set()
        count = self._cost_open("")
        queue = list(self.children[""])
        while queue:
            scope = queue.pop(0)
            if self._rolled(scope) is not None or not self._draws(scope):
                continue
            new = count - self._draws(scope) + self._cost_open(scope)
            if new <= budget:
                self.expanded.add(scope)
                count = new
                queue.extend(self.children[scope])

    def expand(self, key):
        """Open a scope (and the scopes around it), unroll a roll of blocks, or show the ops of the
        groups outside modules. A scope whose opening would lay out more than `max_layout` units opens
        partly (its own ops one box, see `partial`)."""
        if key in self.rolls:
            self.unrolled.add(key)
            self._undo_if_too_large(lambda: self.unrolled.discard(key), f"the {len(self.rolls[key].members)} "
                                    f"blocks of {key}", "open one block at a time (select it, or expand "
                                    f"{self.rolls[key].members[0]})")
            return
        if key in self.groups:
            self.grouped = False
            self._undo_if_too_large(lambda: setattr(self, "grouped", True), "the ops outside modules",
                                    "select one (search it) to see its panel")
            return
        if key not in self.children:
            raise KeyError(f"no module scope {key!r} on this tape; scopes are "
                           f"{', '.join(sorted(s for s in self.children if s)[:12]) or '(none)'}")
        for anc in self.ancestors[key]:
            if anc not in self.expanded:
                self.expanded.add(anc)
                if len(self.units()) > self.max_layout:
                    self.partial.add(anc)
            roll = self.roll_of.get(anc)
            if roll is not None:
                self.unrolled.add(roll.key)

    def _undo_if_too_large(self, undo, what, instead):
        count = len(self.units())
        if count > self.max_layout:
            undo()
            raise TooLargeToOpen(f"{what} would draw {count} units, more than Graphviz lays out quickly "
                                 f"(max_layout={self.max_layout}); nothing was opened: {instead}")

    def collapse(self, key):
        """Close a scope, roll its blocks back up (a member's roll, or the roll itself), or group the
        ops outside modules again."""
        if key in self.rolls:
            self.unrolled.discard(key)
            return
        if key in self.groups:
            self.grouped = True
            return
        if key not in self.children:
            raise KeyError(f"no module scope {key!r} on this tape")
        self.expanded.discard(key)
        self.partial.discard(key)

    def reveal(self, node):
        """Open whatever hides `node` (and show the backward pass if it is a backward node)."""
        if node.phase == "backward":
            self.phase = "both"
        scope = self.scope_of[node.id]
        if scope:
            self.expand(scope)
        elif node.id in self.group_of:
            self.grouped = False
            if len(self.units()) > self.max_layout:
                self.grouped = True  # too many to draw one by one: the node's group box stands for it

    # --- what is drawn --------------------------------------------------------------------------

    def box_of(self, scope):
        """The closed scope or roll that hides nodes of `scope`, as ('s', scope) / ('r', key), or None."""
        for anc in self.ancestors.get(scope, ()):
            roll = self._rolled(anc)
            if roll is not None:
                return ("r", roll.key)
            if anc not in self.expanded:
                return ("s", anc)
        return None

    def unit_of(self, node):
        """The unit drawing `node`: ('n', id), or a box: ('s', scope), ('r', roll key), ('g', group
        key) or ('p', scope) (the own ops of a partly open scope)."""
        scope = self.scope_of[node.id]
        box = self.box_of(scope)
        if box is not None:
            return box
        if scope in self.partial and not isinstance(node, Input):
            return ("p", scope)
        if self.grouped and node.id in self.group_of:
            return ("g", self.group_of[node.id])
        return ("n", node.id)

    def units(self):
        """{unit: [nodes]} of everything visible, in tape order."""
        out = {}
        for n in self.nodes:
            if self.visible_node(n):
                out.setdefault(self.unit_of(n), []).append(n)
        return out

    def dot_name(self, unit):
        kind, key = unit
        if kind == "n":
            return f"n{key}"
        index = (self.scope_index[key] if kind in "sp" else list(self.rolls).index(key) if kind == "r"
                 else list(self.groups).index(key))
        return f"{kind}{index}"

    def element_id(self, unit):
        """The SVG element id of a unit (`{uid}_n12`)."""
        return f"{self.uid}_{self.dot_name(unit)}"

    def cluster_id(self, scope):
        return f"{self.uid}_c{self.scope_index[scope]}"

    def target_of(self, element_id):
        """What an SVG element id names: ('node', Node), ('scope', name) or ('roll', key)."""
        name = element_id[len(self.uid) + 1:] if element_id.startswith(self.uid + "_") else element_id
        kind, rest = name[:1], name[1:]
        if kind == "n" and rest.isdigit():
            return ("node", self.by_id[int(rest)])
        if kind in "scp" and rest.isdigit():
            scope = next(s for s, i in self.scope_index.items() if i == int(rest))
            return ("scope", scope)
        if kind == "r" and rest.isdigit():
            return ("roll", list(self.rolls)[int(rest)])
        if kind == "g" and rest.isdigit():
            return ("group", list(self.groups)[int(rest)])
        if kind == "o" and rest.isdigit():  # an output's oval: the node it shows
            return ("node", self.tape.outputs[int(rest)])
        if name in ("og", "oo"):
            raise KeyError("this oval stands for many outputs of the tape: select a parameter (or search "
                           "its name) to see its gradient, or a module to see what it holds")
        raise KeyError(f"no graph element {element_id!r}")

    def _output_names(self):
        grads = self.tape.meta.get("grads", {})
        grad_to = {}
        for fwd, g in grads.items():
            node = self.by_id.get(fwd)
            if isinstance(node, Input):
                grad_to.setdefault(g, node.name)
        return grad_to

    def dot(self, rankdir="TB"):
        """DOT text of the visible units, laid out top to bottom."""
        units = self.units()
        lines = ["digraph tape {", f"  rankdir={rankdir}; newrank=true; nodesep=0.25; ranksep=0.35;",
                 '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, '
                 'height=0.3, margin="0.08,0.03"];',
                 '  edge [fontname="Helvetica", fontsize=8, color="#6b7280", fontcolor="#4b5563", '
                 'arrowsize=0.6];']
        if len(units) > 60:
            # dot's network simplex passes (ranking, then x positions) are unbounded by default: on a
            # 300-node chain reading one weight 30 times they took 283 s; two passes take 2 s
            lines.append("  nslimit=2; nslimit1=2;")
        placed = {}
        for unit, members in units.items():
            placed.setdefault(self._cluster_of(unit, members[0]), []).append(unit)
        self._write_cluster("", placed, units, lines, "  ")
        edges = {}
        for n in self.nodes:
            if not isinstance(n, Call) or not self.visible_node(n):
                continue
            head = self.unit_of(n)
            for a in n.inputs:
                if not self.visible_node(a):
                    continue
                tail = self.unit_of(a)
                if tail != head:
                    edges.setdefault((tail, head), []).append((a.shape, n.phase == "backward"))
        # an edge label is a node to `dot`'s ranking and costs most of the layout time of a big
        # graph; external labels (xlabel) are placed after the layout instead
        attr = "label" if len(units) <= 60 else "xlabel"
        for (tail, head), found in edges.items():
            backward = all(b for _, b in found)
            if backward and tail[0] != "n" and head[0] != "n":
                continue  # gradients between boxes go back along the forward edges drawn
            shapes = [shape for shape, b in found if b == backward]
            label = dims(shapes[0]) + (f" (+{len(shapes) - 1})" if len(shapes) > 1 else "")
            # a gradient entering a box would pull the box below its consumers: it does not rank it
            rank = ", constraint=false" if backward and head[0] != "n" else ""
            lines.append(f'  {self.dot_name(tail)} -> {self.dot_name(head)} [{attr}="{label}"{rank}];')
        self._write_outputs(lines)
        lines.append("}")
        return "\n".join(lines)

    def _write_outputs(self, lines):
        """The tape's outputs as ovals: the first one each, the gradients (and the other outputs)
        grouped into one `gradients ×62` node when there are many."""
        names = self._output_names()
        gradients, others = [], []
        for i, o in enumerate(self.tape.outputs):
            if self.visible_node(o):
                (gradients if o.id in names and o.phase == "backward" else others).append((i, o))
        kept = others[:1]
        groups = [(gradients, "gradients", "og"), (others[1:], "outputs", "oo")]
        for members, word, name in groups:
            if len(members) <= GROUP_OUTPUTS:
                kept += members
                continue
            lines.append(f'  {name} [id="{self.uid}_{name}", label="{word} ×{len(members)}", shape=oval, '
                         f'fillcolor="{FILL["output"]}", class="output group", fontsize=12];')
            for tail in dict.fromkeys(self.dot_name(self.unit_of(o)) for _, o in members):
                lines.append(f'  {tail} -> {name} [color="#d1d5db", arrowsize=0.4];')
        for i, o in sorted(kept, key=lambda item: item[0]):
            text = f"∂/∂{names[o.id]}" if o.id in names and o.phase == "backward" else f"output {i}"
            lines.append(f'  out{i} [id="{self.uid}_o{i}", label="{_esc(text)}", shape=oval, '
                         f'fillcolor="{FILL["output"]}", class="output"];')
            lines.append(f"  {self.dot_name(self.unit_of(o))} -> out{i};")

    def _cluster_of(self, unit, first):
        """The open scope whose cluster a unit sits in."""
        kind, key = unit
        if kind == "n":
            return self.scope_of[first.id]
        if kind == "s":
            return self.parent_of.get(key, "")
        if kind == "r":
            return self.rolls[key].parent
        return key if kind == "p" else ""

    def _write_cluster(self, scope, placed, units, lines, indent):
        if scope:
            lines.append(f'{indent}subgraph cluster_{self.scope_index[scope]} {{')
            lines.append(f'{indent}  id="{self.cluster_id(scope)}"; label="{_esc(scope)}"; '
                         'style="rounded,dashed"; color="#9ca3af"; fontname="Helvetica"; fontsize=9; '
                         'labeljust=l;')
            indent += "  "
        for unit in placed.get(scope, ()):
            lines.append(f"{indent}{self._unit_line(unit, units[unit])}")
        for kid in self.children.get(scope, ()):
            if kid in self.expanded and self._has_content(kid, placed):
                self._write_cluster(kid, placed, units, lines, indent)
        if scope:
            lines.append(indent[:-2] + "}")

    def _has_content(self, scope, placed):
        if placed.get(scope):
            return True
        return any(kid in self.expanded and self._has_content(kid, placed) for kid in self.children[scope])

    def _unit_line(self, unit, members):
        name, eid = self.dot_name(unit), self.element_id(unit)
        if unit[0] == "n":
            n = members[0]
            if isinstance(n, Input):
                fill, cls = FILL["param" if n.role == "param" else "buffer" if n.role == "buffer" else "input"], "input"
            elif isinstance(n, Const):
                fill, cls = FILL["const"], "const"
            else:
                fill, cls = FILL[n.phase], "call"
            return (f'{name} [id="{eid}", label="{_esc(node_title(n))}\\n{_esc(n.type_str)}", '
                    f'fillcolor="{fill}", class="{cls} {n.phase}"];')
        kind, key = unit
        forward = sum(n.phase == "forward" for n in members)
        count = f"{forward} + {len(members) - forward} ∇ nodes" if forward < len(members) else f"{forward} nodes"
        shape = "box"
        if kind == "r":
            roll = self.rolls[key]
            label, shape = f"{roll.label}\\n×{len(roll.members)}  ({count})", 'box3d, margin="0.16,0.06"'
        elif kind == "p":
            label = f"{key}: its own ops\\n{count} (too many to lay out)"
        else:
            label = f"{key}\\n{count}"
        return (f'{name} [id="{eid}", label="{_esc_label(label)}", shape={shape}, peripheries=2, fontsize=12, '
                f'style="filled,bold", fillcolor="{FILL["box"]}", class="box {BOX_CLASS[kind]}"];')


def _esc(text):
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _esc_label(text):
    # labels keep their \n line breaks; only quotes need escaping
    return text.replace('"', '\\"')

