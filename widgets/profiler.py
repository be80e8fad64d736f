"""Profiler: per-node median times of the compiled forward+backward pass, as a sortable table, bar
charts by primitive and by module, a time overlay on the graph, and a Chrome trace export."""
import contextlib
import html

import ipywidgets as w

from avalon.errors import AvalonError
from avalon.profile import COLUMNS, profile_tape, seconds_text

from . import render
from .charts import bar_chart_svg
from .page import body, fragment
from .pane import SELECTED, GraphPane
from .view import Canvas, View, button, tape_of

_HEAD = {"op": "op", "module": "module", "shapes": "shapes", "median_s": "median", "share": "share",
         "flops": "FLOPs", "gflops": "GFLOP/s"}


_NUMERIC = {k: ' class="num"' for k in ("median_s", "share", "flops", "gflops")}
_SUMMARY_NOTE = ("Both time the same compiled code; each node's median drops its slow runs, so on a busy "
                 "machine the sum over the nodes is the smaller")


def _count(n):
    """An operation count with an SI prefix: `16.78 M`, `655.4 k`, `120`."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.4g} {prefix}"
    return str(n)


def _rate(gflops):
    return f"{gflops:.2f}" if gflops else ""


def _check_threads(threads):
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise AvalonError(f"Profiler(threads={threads!r}): threads must be a positive int (BLAS threads the "
                          "timed runs use) or None (the process's own setting)")


@contextlib.contextmanager
def _blas_threads(threads):
    """BLAS and OpenMP pools held to `threads` inside (threadpoolctl); None leaves them as they are."""
    if threads is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise AvalonError("Profiler(threads=...) needs threadpoolctl: pip install 'avalon[widgets]' (or "
                          "threadpoolctl), or pass threads=None to time with the process's own setting") from None
    with threadpool_limits(limits=threads):
        yield


class Profiler(View):
    """Times every node of the compiled forward and backward pass of `f(*args)` (median over
    `repeat` runs) on top of `avalon.profile`.

    The timed runs use `threads` BLAS threads (one by default; None: as the process is set). One
    thread gives per-node times that do not depend on what else the machine runs: BLAS's worker
    threads wait for work by spinning, so on a busy machine several of them took a ResNet-18's
    profile from 2 s to 13 s.

    >>> prof = Profiler(loss_fn, model, x, y, repeat=5)
    >>> prof.rows[0]; prof.sort("gflops"); prof.by_module(); prof.to_chrome_trace("trace.json")
    """

    kind = "profiler"
    title = "Avalon profile"

    def __init__(self, f_or_tape, *args, repeat=5, warmup=1, threads=1, max_rows=300, max_nodes=150,
                 selection=None):
        super().__init__(selection=selection)
        _check_threads(threads)  # before tracing
        tape = tape_of(f_or_tape, args)
        self.tape = tape
        self.threads = threads
        with _blas_threads(threads):
            self.profile = profile_tape(tape, repeat=repeat, warmup=warmup)
        self.max_rows = max_rows
        self.sort_key, self.descending = "median_s", True
        self._selected = None
        # The graph of the code that ran (the compiled tape): passes add nodes the recorded tape lacks
        # (matmul_layout's products), and every timed row must be a node one can select.
        self.pane = GraphPane(self.profile.tape, max_nodes=max_nodes)
        self.pane.times = self.profile.times()
        self.pane.overlay = "time"
        self.table = Canvas()
        self.table.add_class("avalon-profile-table")
        self.table.observe(self._on_event, names="event")
        self.sort_menu = w.Dropdown(options=[(v, k) for k, v in _HEAD.items()], value="median_s",
                                    description="sort by", layout=w.Layout(width="200px"))
        self.sort_menu.observe(lambda c: self.sort(c["new"], self.descending), names="value")
        self.order = w.ToggleButtons(options=[("descending", True), ("ascending", False)], value=True,
                                     style={"button_width": "auto"})
        self.order.observe(lambda c: self.sort(self.sort_key, c["new"]), names="value")
        self.trace_path = w.Text(value="avalon-trace.json", description="trace file",
                                 layout=w.Layout(width="300px"))
        save = button("save Chrome trace", "write a trace that Perfetto opens",
                      lambda: self.to_chrome_trace(self.trace_path.value))
        self.charts = w.HTML(self._charts_html())
        tools = w.HBox([self.sort_menu, self.order, self.trace_path, save], layout=w.Layout(flex_flow="row wrap"))
        self.children = [tools, self.status, self.table, self.charts, self.canvas]
        self.selection.observe(self._follow, names="label")
        self._draw()

    # --- data -----------------------------------------------------------------------------------

    @property
    def rows(self):
        """One dict per timed node (op, module, shapes, median_s, share, flops, gflops, id, phase …),
        in the table's current order."""
        return self.profile.sorted(self.sort_key, self.descending)

    def sort(self, key, descending=True):
        """Order the table by a column: op, module, shapes, median_s, share, flops or gflops."""
        if key not in COLUMNS:
            raise KeyError(f"no column {key!r}; columns are {', '.join(COLUMNS)}")
        self.sort_key, self.descending = key, descending
        if self.sort_menu.value != key:
            self.sort_menu.value = key
        if self.order.value != descending:
            self.order.value = descending
        self._draw()
        return self.rows

    def by_op(self):
        """Time per primitive, largest first."""
        return self.profile.by_op()

    def by_module(self, depth=None):
        """Time per module scope, largest first (`depth=1`: top-level modules)."""
        return self.profile.by_module(depth)

    def compare(self, other, labels=("before", "after")):
        """A `Compare` view of this profile (before) and `other` (after, a Profiler or a Profile)."""
        from .compare import Compare

        return Compare(self, other, labels=labels)

    def to_chrome_trace(self, path):
        """Write the Chrome trace JSON (open it in Perfetto); returns the path."""
        self.profile.to_chrome_trace(path)
        self.status.value = f"wrote {html.escape(str(path))} ({len(self.profile.rows)} events)"
        return path

    @property
    def svg(self):
        """The graph with the time overlay, as shown now."""
        return self.pane.svg({self._selected: SELECTED} if self._selected is not None else {})

    def select(self, target):
        """Select a node (label, name, op…): its row is marked and its panel shown under the graph."""
        kind, node = self.pane.resolve(target)
        if kind != "node":
            raise KeyError(f"{target!r} is a module, not a node")
        self._selected = node
        self.selection.label = node.label
        self._draw()
        return node

    @property
    def selected(self):
        return self._selected

    def _follow(self, change):
        if change["new"] and (self._selected is None or self._selected.label != change["new"]):
            try:
                self.select(change["new"])
            except KeyError:
                pass

    def handle(self, action, target):
        if action == "sort":
            self.sort(target, not self.descending if target == self.sort_key else True)
            return
        kind, what = self.pane.resolve(target)
        if kind == "node":
            self.select(what)
        elif action == "select":  # a module box: what it holds, and a link that opens it
            self.canvas.side = self.pane.panel((kind, what))
        elif self.pane.open_or_close(action, kind, what):
            self._draw()

    # --- drawing --------------------------------------------------------------------------------

    def table_html(self, rows=None, live=True):
        rows = self.rows if rows is None else rows
        arrow = "▼" if self.descending else "▲"
        head = "".join(
            f'<th{_NUMERIC.get(k, "")} data-sort="{k}" data-av-action="sort" data-av-target="{k}">{v}'
            f'{" " + arrow if live and k == self.sort_key else ""}</th>' for k, v in _HEAD.items())
        lines = []
        for row in rows[:self.max_rows]:
            sel = ' class="avalon-selected"' if self._selected is not None and row["id"] == self._selected.id else ""
            cells = [f'<td>{html.escape(row["op"])}</td>', f'<td>{html.escape(row["module"])}</td>',
                     f'<td>{html.escape(row["shapes"])}</td>',
                     f'<td class="num" data-value="{row["median_s"]}">{seconds_text(row["median_s"])}</td>',
                     f'<td class="num" data-value="{row["share"]}">{row["share"]:.1%}</td>',
                     f'<td class="num" data-value="{row["flops"] or ""}">{_count(row["flops"]) if row["flops"] else ""}</td>',
                     f'<td class="num" data-value="{row["gflops"] or ""}">{_rate(row["gflops"])}</td>']
            lines.append(f'<tr{sel} data-av-action="select" data-av-target="{row["label"]}" '
                         f'data-phase="{row["phase"]}">{"".join(cells)}</tr>')
        more = (f'<p class="avalon-muted">… {len(rows) - self.max_rows} more rows (sort to see others)</p>'
                if len(rows) > self.max_rows else "")
        p = self.profile
        summary = (f'<p class="avalon-status" title="{_SUMMARY_NOTE}">{len(p.rows)} calls: '
                   f'{seconds_text(p.total_s)} summed over the nodes, {seconds_text(p.compiled_s)} for the whole '
                   f'compiled call (medians of {p.repeat} runs{self._threads_text()})</p>')
        return (summary + f'<div style="max-height:320px;overflow:auto"><table class="avalon-table">'
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table></div>{more}")

    def _threads_text(self):
        if self.threads is None:
            return ""
        return f", {self.threads} BLAS thread{'s' if self.threads > 1 else ''}"

    def _charts_html(self):
        return (f'<div class="avalon-charts">{bar_chart_svg(self.by_op(), "time by primitive")}'
                f'{bar_chart_svg(self.by_module(), "time by module")}</div>')

    def _draw(self):
        self.table.main = self.table_html()
        try:
            legend = self.pane.overlay_rules()[1]
            self.canvas.main = legend + self.svg
        except render.CannotDraw as exc:  # Graphviz missing, or a layout stopped at its time limit
            self.canvas.main = exc.html()
        self.canvas.side = self.pane.panel(("node", self._selected)) if self._selected is not None else ""
        self.canvas.focus = self._focus() or ""

    def _focus(self):
        """The element the graph keeps in view: the selected node's, else the slowest node's."""
        node = self._selected
        if node is None:
            # compiler passes may add nodes the recorded tape does not draw: the slowest one drawn
            by_id = self.pane.graph.by_id
            node = next((by_id[r["id"]] for r in self.profile.sorted() if r["id"] in by_id), None)
        return self.pane.element_of(node) if node is not None else None

    def fragment(self):
        panels, ids = self.pane.static_panels()
        labels = {eid: label for label, eid in ids.items()}
        legend = self.pane.overlay_rules()[1]
        main = (self.table_html(self.profile.sorted("median_s"), live=False) + self._charts_html()
                + legend + body(self.pane.svg(), ""))
        return fragment(self.kind, main, {"panels": panels, "ids": ids, "labels": labels, "focus": self._focus()})
