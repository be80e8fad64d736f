"""Side-panel HTML: what one node is (primitive, shapes, dtype, value and gradient statistics, the
user's source line, producers and consumers), what a module box holds, and the source around a line.

Links carry `data-av-action` / `data-av-target`; the live widget and the static page both turn a
click on them into the same action (select a node, open a module).
"""
import html
import linecache
import re
from collections import Counter

from avalon.tape import Call, Const, Input, Node

from .graph import dims, node_title
from .stats import histogram_svg, stats, stats_table


def esc(text):
    return html.escape(str(text), quote=True)


def link(node, text=None):
    """A clickable reference to a node: `%7 matmul`."""
    text = text if text is not None else f"{node.label} {node_title(node)}"
    return (f'<a href="#" class="avalon-link" data-av-action="select" data-av-target="{esc(node.label)}">'
            f"{esc(text)}</a>")


def _code(text):
    # a narrow panel wraps long lines: after an opening bracket or a comma, not inside a name
    return re.sub(r"([(\[{,])", r"\1<wbr>", esc(text))


def source_html(location, before=3, after=3, mark=True):
    """The user's source around `location`, its line highlighted ('' when the file cannot be read)."""
    if location is None:
        return ""
    lines = []
    for lineno in range(max(1, location.lineno - before), location.lineno + after + 1):
        text = linecache.getline(location.filename, lineno)
        if not text and lineno > location.lineno:
            break
        cls = ' class="avalon-hot"' if mark and lineno == location.lineno else ""
        lines.append(f'<span{cls}><span class="avalon-lineno">{lineno:>4}</span> {_code(text.rstrip())}</span>')
    if not lines and location.code:
        lines.append(f'<span class="avalon-hot"><span class="avalon-lineno">{location.lineno:>4}</span> '
                     f"{_code(location.code)}</span>")
    head = f'<div class="avalon-where">{esc(location.filename)}:{location.lineno} in {esc(location.function)}</div>'
    return head + '<pre class="avalon-source">' + "\n".join(lines) + "</pre>"


def value_html(title, value, bad_if_nonfinite=True):
    """A titled block with the statistics table and the histogram of an array."""
    s = stats(value)
    flag = ""
    if s is not None and not s["finite"] and bad_if_nonfinite:
        flag = ' <span class="avalon-badge avalon-bad">non-finite</span>'
    return (f'<div class="avalon-block"><h4>{esc(title)}{flag}</h4>{stats_table(s)}'
            f"{histogram_svg(value)}</div>")


def _describe_params(node):
    parts = [f"{esc(k)}={esc(_short(v))}" for k, v in node.params.items()]
    literals = [esc(_short(a)) for a in node.args if not isinstance(a, Node)]
    return ", ".join(literals + parts)


def _short(v):
    text = repr(v) if not hasattr(v, "shape") else f"<array {getattr(v, 'dtype', '')}{list(v.shape)}>"
    return text if len(text) <= 60 else text[:57] + "…"


def node_panel(tape, node, consumers, grad=None):
    """The panel of one node. `grad` is the node of its gradient on the tape (or None)."""
    kind = "backward" if node.phase == "backward" else "forward"
    head = (f'<h3><span class="avalon-label">{esc(node.label)}</span> {esc(node_title(node))} '
            f'<span class="avalon-badge avalon-{kind}">{kind}</span></h3>')
    facts = [("type", f"{esc(str(node.dtype))} [{esc(dims(node.shape))}]")]
    if isinstance(node, Input):
        facts.insert(0, ("input", f"{esc(node.name)} ({esc(node.role)})"))
    elif isinstance(node, Const):
        facts.insert(0, ("constant", "captured array"))
    else:
        facts.insert(0, ("primitive", esc(node.prim.name)))
        extra = _describe_params(node)
        if extra:
            facts.append(("params", extra))
    if node.scope:
        facts.append(("module", f'<a href="#" class="avalon-link" data-av-action="expand" '
                                f'data-av-target="{esc(node.scope)}">{esc(node.scope)}</a>'))
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts)
    parts = [head, f'<table class="avalon-facts">{rows}</table>']
    parts.append(value_html("value", node.value))
    if grad is not None:
        parts.append(value_html(f"gradient ({grad.label})", grad.value))
    if node.location is not None:
        parts.append('<div class="avalon-block"><h4>source</h4>' + source_html(node.location) + "</div>")
    if isinstance(node, Call):
        producers, _ = _node_items(node.inputs)
        parts.append(f'<div class="avalon-block"><h4>producers</h4><ul>{producers or "<li>–</li>"}</ul></div>')
    shown, users = _node_items(consumers.get(node, []), limit=20)
    outs = [i for i, o in enumerate(tape.outputs) if o is node]
    out_note = f"<li>output {', '.join(map(str, outs))} of the tape</li>" if outs else ""
    parts.append(f'<div class="avalon-block"><h4>consumers</h4><ul>{shown}{out_note}'
                 f'{"" if users or outs else "<li>–</li>"}</ul></div>')
    return f'<div class="avalon-node-panel" data-node="{esc(node.label)}">{"".join(parts)}</div>'


def _node_items(nodes, limit=None):
    """`<li>` links to `nodes`, each once (`multiply(h, h)` reads h twice: one line, "×2"), and how
    many distinct nodes there are."""
    uses = Counter(nodes)
    items = [f"<li>{link(n)} <span class='avalon-muted'>{esc(n.type_str)}"
             f"{f' (×{uses[n]})' if uses[n] > 1 else ''}</span></li>" for n in uses]
    more = [f"<li>… {len(items) - limit} more</li>"] if limit is not None and len(items) > limit else []
    return "".join(items[:limit] + more), len(uses)


def box_panel(title, members, key, action="expand"):
    """The panel of a closed module or roll: what it holds and a link that opens it."""
    phases = Counter(n.phase for n in members)
    ops = Counter(node_title(n) for n in members if isinstance(n, Call))
    params = [n for n in members if isinstance(n, Input) and n.role != "data"]
    top = "".join(f"<tr><td>{esc(op)}</td><td>{c}</td></tr>" for op, c in ops.most_common(10))
    plist = "".join(f"<li>{link(p, p.name)} <span class='avalon-muted'>{esc(p.type_str)}</span></li>"
                    for p in params[:20])
    opener = (f'<a href="#" class="avalon-link avalon-button" data-av-action="{action}" '
              f'data-av-target="{esc(key)}">open {esc(key)}</a>')
    counts = ", ".join(f"{c} {p}" for p, c in phases.items())
    return (f'<div class="avalon-node-panel"><h3>{esc(title)}</h3><p>{counts} nodes. {opener}</p>'
            f'<table class="avalon-facts"><tr><th>op</th><th>count</th></tr>{top}</table>'
            + (f'<div class="avalon-block"><h4>parameters</h4><ul>{plist}</ul></div>' if plist else "")
            + "</div>")
