"""Graphviz layout (`dot -Tsvg`) and the styling laid over its SVG: highlights and overlay colours
are one `<style>` block keyed by element ids, so a selection or a step never needs a new layout."""
import html
import shutil
import subprocess
from collections import OrderedDict

from avalon.errors import AvalonError

INSTALL = ("sudo apt-get install graphviz   (Debian/Ubuntu; `bash scripts/setup.sh` does it)\n"
           "brew install graphviz           (macOS)\n"
           "conda install -c conda-forge graphviz")

_layouts = OrderedDict()
_MAX_LAYOUTS = 64
LAYOUT_TIMEOUT_S = 30  # a layout taking longer is stopped: the view says so instead of hanging


class CannotDraw(AvalonError):
    """A graph the workbench cannot draw; `html()` is what a view shows in its place."""

    def html(self):
        return f'<div class="avalon-error">{html.escape(str(self))}</div>'


class GraphvizNotFound(CannotDraw):
    """Graphviz's `dot` program, which lays out the workbench's graphs, is not installed."""

    def __init__(self):
        super().__init__("the workbench draws graphs with Graphviz, but its `dot` program is not on PATH.\n"
                         f"Install Graphviz (the system package, not only the Python one):\n{INSTALL}")

    def html(self):
        return missing_dot_html()


class LayoutTooSlow(CannotDraw):
    """Graphviz did not lay out a graph within `LAYOUT_TIMEOUT_S` seconds and was stopped."""

    def __init__(self, seconds, units):
        super().__init__(f"Graphviz did not lay out this graph ({units} nodes and boxes) within {seconds:g} s, "
                         "so it was stopped. Close modules (close all) or show the forward pass only, then "
                         "open the part you need.")


def require_dot():
    """The path of `dot`, or GraphvizNotFound with the install commands."""
    path = shutil.which("dot")
    if path is None:
        raise GraphvizNotFound()
    return path


def layout(dot_text):
    """SVG text of a DOT graph laid out by `dot` (XML prologue removed, ready to inline in HTML).
    Recent layouts are cached: closing a module again costs nothing."""
    svg = _layouts.get(dot_text)
    if svg is not None:
        _layouts.move_to_end(dot_text)
        return svg
    try:
        done = subprocess.run([require_dot(), "-Tsvg"], input=dot_text.encode(), capture_output=True,
                              timeout=LAYOUT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise LayoutTooSlow(LAYOUT_TIMEOUT_S, dot_text.count(' [id="')) from None
    if done.returncode != 0:
        raise AvalonError(f"Graphviz could not lay out the graph: {done.stderr.decode().strip()}")
    text = done.stdout.decode()
    svg = text[text.index("<svg"):]
    _layouts[dot_text] = svg
    if len(_layouts) > _MAX_LAYOUTS:
        _layouts.popitem(last=False)
    return svg


def css_text(rules):
    """CSS for {element id: declarations}, applied to the shape of each node."""
    return "\n".join(f"#{eid} > path, #{eid} > polygon, #{eid} > ellipse {{{decl}}}"
                     for eid, decl in rules.items())


def style_block(rules):
    """`<style>` element for {element id: css declarations} ('' when there are none)."""
    return f"<style>{css_text(rules)}</style>" if rules else ""


def decorate(svg, rules):
    """The SVG with a style block for `rules` placed right after its opening tag."""
    block = style_block(rules)
    if not block:
        return svg
    end = svg.index(">", svg.index("<svg")) + 1
    return svg[:end] + block + svg[end:]


def missing_dot_html():
    """The message a widget shows in place of its graph when Graphviz is missing."""
    lines = INSTALL.replace("&", "&amp;").replace("<", "&lt;")
    return ('<div class="avalon-error"><b>Graphviz is not installed.</b> The workbench lays out its '
            "graphs with Graphviz's <code>dot</code> program. Install it, then run the cell again:"
            f"<pre>{lines}</pre></div>")


# Colour scales for overlays: a number in [0, 1] to a fill colour (light yellow → dark red).
_RAMP = ["#fff7bc", "#fee391", "#fec44f", "#fe9929", "#ec7014", "#e6550d", "#d94801"]


def ramp(t):
    """The overlay colour of a position `t` in [0, 1]."""
    t = min(max(t, 0.0), 1.0)
    return _RAMP[min(int(t * len(_RAMP)), len(_RAMP) - 1)]


def legend_html(title, lo, hi, note=""):
    """A small colour legend (`title: lo ▭▭▭ hi`)."""
    swatches = "".join(f'<span style="background:{c}"></span>' for c in _RAMP)
    return (f'<div class="avalon-legend"><b>{title}</b> {lo} <span class="avalon-ramp">{swatches}</span> '
            f"{hi} {note}</div>")
