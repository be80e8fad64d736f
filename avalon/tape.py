"""The tape: a flat SSA list of nodes, the one structure everything else reads or transforms.

A node is an `Input` (an argument array, a parameter, a buffer), a `Const` (an array captured from
outside the traced code) or a `Call` (a primitive applied to earlier nodes). Nodes refer to each other
by object, not position, so passes can insert and delete freely. This module imports nothing else from
Avalon: primitives are only required to have a `name`.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in the user's code a node was created: the innermost frame outside Avalon."""

    filename: str
    lineno: int
    function: str
    code: str = ""

    @property
    def short(self):
        return f"{self.filename.rsplit('/', 1)[-1]}:{self.lineno}"

    def __str__(self):
        return f"{self.filename}:{self.lineno} in {self.function}"


class Node:
    """One value of the tape: its shape, dtype, the value seen while tracing, and where it came from."""

    __slots__ = ("id", "shape", "dtype", "value", "location", "scope", "phase", "__weakref__")
    kind = "node"

    def __init__(self, shape, dtype, value=None, location=None, scope="", phase="forward"):
        self.id = None  # numbered by the tape it joins: %0, %1, … in the order they were recorded
        self.shape = tuple(shape)
        self.dtype = dtype
        self.value = value
        self.location = location
        self.scope = scope
        self.phase = phase

    @property
    def label(self):
        return f"%{self.id}"

    @property
    def type_str(self):
        """`f32[128,512]`: dtype and shape, as printed on the tape."""
        return f"{_short_dtype(self.dtype)}[{','.join(map(str, self.shape))}]"

    def __repr__(self):
        return f"<{type(self).__name__} {self.label} {self.type_str}>"


class Input(Node):
    """An array passed in: `role` is 'data', 'param' (trainable) or 'buffer' (state)."""

    __slots__ = ("name", "role")
    kind = "input"

    def __init__(self, name, shape, dtype, role="data", **kw):
        super().__init__(shape, dtype, **kw)
        self.name = name
        self.role = role

    def describe(self):
        return f"input {self.name!r}" + ("" if self.role == "data" else f" ({self.role})")


class Const(Node):
    """An array the traced code used without tracing it (a global, or a plain array built inside)."""

    __slots__ = ()
    kind = "const"

    def describe(self):
        return "const"


class Call(Node):
    """`prim(*args, **params)`: args are earlier nodes or Python literals, params are static."""

    __slots__ = ("prim", "args", "params")
    kind = "call"

    def __init__(self, prim, args, params, shape, dtype, **kw):
        super().__init__(shape, dtype, **kw)
        self.prim = prim
        self.args = tuple(args)
        self.params = dict(params)

    @property
    def inputs(self):
        """The argument nodes (literals left out)."""
        return [a for a in self.args if isinstance(a, Node)]

    def describe(self):
        parts = [a.label if isinstance(a, Node) else repr(a) for a in self.args]
        parts += [f"{k}={_short_param(v)}" for k, v in self.params.items()]
        return f"{self.prim.name}({', '.join(parts)})"


class Tape:
    """The recorded program: `nodes` in execution order, `inputs`, and `outputs`.

    New values of holder state (batch-norm running statistics) are ordinary outputs, last; which
    holder array each one updates is kept beside the tape (see `avalon.tracing.record`). `meta` holds
    what transforms note about the tape (the backward pass: which rule emitted each node).
    `print(tape)` lists one node per line; `tape.compile()` and `tape.interpret(*inputs)` run it.
    """

    def __init__(self):
        self.nodes = []
        self.inputs = []
        self.outputs = []
        self.meta = {}
        self._next_id = 0

    def append(self, node):
        if node.id is None:
            node.id = self._next_id
        self._next_id = max(self._next_id, node.id + 1)
        self.nodes.append(node)
        if isinstance(node, Input):
            self.inputs.append(node)
        return node

    def __len__(self):
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    @property
    def calls(self):
        return [n for n in self.nodes if isinstance(n, Call)]

    def consumers(self):
        """node -> list of Calls that use it (in tape order)."""
        users = {n: [] for n in self.nodes}
        for n in self.nodes:
            if isinstance(n, Call):
                for a in n.inputs:
                    users.setdefault(a, []).append(n)
        return users

    def find(self, label):
        """The node printed as `label` (`'%7'` or `7`), or an input/parameter by name."""
        for n in self.nodes:
            if label in (n.label, n.id) or getattr(n, "name", None) == label:
                return n
        raise KeyError(f"no node {label!r} on this tape")

    def drop_values(self):
        """Forget the values seen while tracing (they can be large)."""
        for n in self.nodes:
            if not isinstance(n, Const):
                n.value = None

    def copy(self, replace=None, drop=()):
        """A structural copy with new node objects (passes transform copies, never the original).

        `replace` maps nodes to their replacements: an earlier node of this tape (merging), or a node
        a pass made (folding, rewriting), which takes the replaced node's place after any new nodes
        among its own operands. Nodes in `drop` are left out; nothing kept may use them.
        """
        replace = replace or {}
        new = Tape()
        new.meta = dict(self.meta)
        new._next_id = self._next_id  # nodes a pass made are numbered after every node copied
        mapping = {}
        for n in self.nodes:
            if n in replace:
                mapping[n] = _place(replace[n], new, mapping)
            elif n not in drop:
                mapping[n] = new.append(_clone(n, mapping))
        new.outputs = [mapping[o] for o in self.outputs]
        return new

    def line(self, node):
        """One listing line: `%7 = matmul(%3, %5)  f32[128,512]  model.py:14  fc1`."""
        head = f"{node.label} = {node.describe()}"
        where = node.location.short if node.location else ""
        tail = "  ".join(x for x in (node.type_str, where, node.scope) if x)
        mark = "  [backward]" if node.phase == "backward" else ""
        return f"{head}  {tail}{mark}"

    def __str__(self):
        lines = [self.line(n) for n in self.nodes]
        outs = ", ".join(o.label for o in self.outputs)
        lines.append(f"return {outs}")
        return "\n".join(lines)

    def __repr__(self):
        return f"<Tape: {len(self.inputs)} inputs, {len(self.calls)} calls, {len(self.outputs)} outputs>"

    def source(self, **options):
        """The Python source this tape compiles to (one assignment per node)."""
        from .compile import compile_tape

        return compile_tape(self, **options).source

    def compile(self, **options):
        """A plain Python function computing the outputs from the inputs; see `avalon.compile`."""
        from .compile import compile_tape

        return compile_tape(self, **options)

    def interpret(self, *inputs):
        """Evaluate node by node with each primitive's reference implementation (no compilation):
        the meaning of the tape, which every compiled form of it must reproduce."""
        if len(inputs) != len(self.inputs):
            names = ", ".join(n.name for n in self.inputs)
            raise TypeError(f"this tape takes {len(self.inputs)} inputs ({names}), got {len(inputs)}")
        env = dict(zip(self.inputs, inputs))
        for n in self.nodes:
            if isinstance(n, Const):
                env[n] = n.value
            elif isinstance(n, Call):
                args = [env[a] if isinstance(a, Node) else a for a in n.args]
                env[n] = n.prim.impl(*args, **n.params)
        return [env[o] for o in self.outputs]

    def to_dot(self, rankdir="TB"):
        """Graphviz DOT text: one box per node, edges labelled with shapes, modules as clusters."""
        return _dot(self, rankdir)

    def to_svg(self):
        """The DOT graph laid out by Graphviz's `dot` (must be installed) as SVG text."""
        import shutil
        import subprocess

        if shutil.which("dot") is None:
            raise RuntimeError("Graphviz's `dot` is not installed: run `apt-get install graphviz`")
        done = subprocess.run(["dot", "-Tsvg"], input=self.to_dot().encode(), capture_output=True, check=True)
        return done.stdout.decode()

    def _repr_svg_(self):
        # Jupyter shows a bare tape as its graph; without Graphviz it falls back to the text listing.
        try:
            return self.to_svg()
        except (RuntimeError, OSError):
            return None

    def _repr_html_(self):
        # Jupyter prefers HTML: the same graph in a scrolling box, so a long tape stays on screen.
        svg = self._repr_svg_()
        return None if svg is None else f'<div style="max-height:600px;overflow:auto">{svg[svg.index("<svg"):]}</div>'


def _place(node, tape, mapping):
    """`node` on `tape`: found when already there (mapped), else added after its own new operands."""
    if node not in mapping:
        if isinstance(node, Call):
            for a in node.inputs:
                _place(a, tape, mapping)
        mapping[node] = tape.append(_clone(node, mapping))
    return mapping[node]


def _clone(n, mapping):
    # Fields copied as they are (shape is already a tuple), without __init__'s conversions: passes
    # copy whole tapes, so this runs once per node per pass.
    m = object.__new__(type(n))
    m.id, m.shape, m.dtype, m.value = n.id, n.shape, n.dtype, n.value
    m.location, m.scope, m.phase = n.location, n.scope, n.phase
    if isinstance(n, Input):
        m.name, m.role = n.name, n.role
    elif isinstance(n, Call):
        m.prim, m.params = n.prim, dict(n.params)
        m.args = tuple([mapping[a] if isinstance(a, Node) else a for a in n.args])
    return m


def _short_dtype(dtype):
    name = str(dtype)
    table = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16",
             "int64": "i64", "int32": "i32", "int16": "i16", "int8": "i8", "uint8": "u8",
             "bool": "bool", "complex64": "c64", "complex128": "c128"}
    return table.get(name, name)


def _short_param(v):
    if isinstance(v, (tuple, list)) and len(v) > 8:
        return f"({', '.join(map(repr, v[:4]))}, …)"
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        return f"<array {_short_dtype(v.dtype)}{list(v.shape)}>"
    if hasattr(v, "__name__"):
        return v.__name__
    return repr(v)


def _dot_escape(s):
    return s.replace("\\", "\\\\").replace('"', '\\"')


def _dot(tape, rankdir):
    fill = {"input": "#dbeafe", "const": "#f3f4f6", "forward": "#ffffff", "backward": "#fde68a"}
    lines = ["digraph tape {", f"  rankdir={rankdir};",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8, color="#6b7280"];']
    by_scope = {}
    for n in tape.nodes:
        by_scope.setdefault(n.scope, []).append(n)
    for scope, nodes in by_scope.items():
        indent = "  "
        if scope:
            lines.append(f'  subgraph "cluster_{_dot_escape(scope)}" {{')
            lines.append(f'    label="{_dot_escape(scope)}"; style="rounded,dashed"; color="#9ca3af";')
            indent = "    "
        for n in nodes:
            if isinstance(n, Input):
                text, color = (n.name, n.type_str), fill["input"]
            elif isinstance(n, Const):
                text, color = ("const", n.type_str), fill["const"]
            else:
                text, color = (n.prim.name, n.type_str), fill[n.phase]
            label = "\\n".join(map(_dot_escape, text))  # DOT's line break, not an escaped backslash
            lines.append(f'{indent}n{n.id} [label="{label}", fillcolor="{color}", tooltip="{n.label}"];')
        if scope:
            lines.append("  }")
    for n in tape.nodes:
        if isinstance(n, Call):
            for a in n.inputs:
                lines.append(f'  n{a.id} -> n{n.id} [label="{",".join(map(str, a.shape))}"];')
    for i, o in enumerate(tape.outputs):
        lines.append(f'  out{i} [label="output {i}", shape=oval, fillcolor="#dcfce7"];')
        lines.append(f"  n{o.id} -> out{i};")
    lines.append("}")
    return "\n".join(lines)
