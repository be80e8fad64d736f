"""Compare: two profiles side by side, per primitive and per module, with the change in time.

The profiling notebook's loop (profile, change the model, profile again) ends here: which primitives
and which modules got faster or slower, by how many milliseconds and by what share.
"""
import html

import ipywidgets as w

from avalon.errors import AvalonError
from avalon.profile import Profile

from .page import fragment
from .view import View

_HEAD = {"name": "", "before_s": "before (ms)", "after_s": "after (ms)", "change_s": "change (ms)",
         "change_pct": "change (%)"}
_NUMERIC = ("before_s", "after_s", "change_s", "change_pct")


def profile_of(value, which):
    """The `avalon.profile.Profile` behind a Profiler view (or the Profile itself)."""
    found = getattr(value, "profile", value)
    if not isinstance(found, Profile):
        raise AvalonError(f"Compare: the {which} profile is a {type(value).__name__}; pass a Profiler view or an "
                          "avalon.profile.Profile, as in Compare(Profiler(loss_fn, model, x, y), "
                          "Profiler(loss_fn, new_model, x, y))")
    return found


def changes(before, after):
    """Rows {name, before_s, after_s, change_s, change_pct, count_before, count_after} from two lists
    of totals ([{name, median_s, count}], as `Profile.by_op()` gives), largest change first (by size:
    the slowdowns and the speedups that matter most come first). `change_pct` is None for a name
    the first profile lacks."""
    first = {g["name"]: g for g in before}
    second = {g["name"]: g for g in after}
    rows = []
    for name in list(first) + [n for n in second if n not in first]:
        a, b = first.get(name), second.get(name)
        before_s = a["median_s"] if a else 0.0
        after_s = b["median_s"] if b else 0.0
        change = after_s - before_s
        rows.append({"name": name, "before_s": before_s, "after_s": after_s, "change_s": change,
                     "change_pct": 100.0 * change / before_s if before_s > 0 else None,
                     "count_before": a["count"] if a else 0, "count_after": b["count"] if b else 0})
    return sorted(rows, key=lambda r: abs(r["change_s"]), reverse=True)


def _ms(seconds):
    return f"{seconds * 1e3:.3f}"


def _signed_ms(seconds):
    return f"{seconds * 1e3:+.3f}"


def _pct(row):
    if row["change_pct"] is not None:
        return f"{row['change_pct']:+.1f}%"
    return "new" if row["count_before"] == 0 else ""


class Compare(View):
    """Two profiles side by side (Profiler views or `avalon.profile.Profile`s): the time of each
    primitive and each module before and after, the change in ms and in %, largest change first.

    >>> before = Profiler(loss_fn, model, x, y)
    >>> after = Profiler(loss_fn, faster_model, x, y)
    >>> Compare(before, after)            # or before.compare(after)
    >>> Compare(before, after).by_module(depth=1)[0]   # {name, before_s, after_s, change_s, change_pct …}

    A primitive or module found in one profile only shows 0 on the other side ("new" when it is new).
    """

    kind = "compare"
    title = "Avalon profile comparison"

    def __init__(self, before, after, labels=("before", "after"), depth=None, max_rows=300):
        super().__init__()
        self.before, self.after = profile_of(before, "first"), profile_of(after, "second")
        if len(labels) != 2:
            raise AvalonError(f"Compare: labels names the two profiles, got {len(labels)} names: {labels!r}")
        self.labels = tuple(str(label) for label in labels)
        self.max_rows = max_rows
        self.grouping, self.depth = "op", depth
        self.sort_key, self.descending = "change", True
        self.group_menu = w.ToggleButtons(options=[("per primitive", "op"), ("per module", "module")], value="op",
                                          style={"button_width": "auto"})
        self.group_menu.observe(lambda c: self.show(c["new"], self.depth), names="value")
        self.depth_menu = w.Dropdown(options=[("all scopes", None), ("depth 1", 1), ("depth 2", 2), ("depth 3", 3)],
                                     value=depth if depth in (None, 1, 2, 3) else None, description="modules",
                                     layout=w.Layout(width="200px"))
        self.depth_menu.observe(lambda c: self.show(self.grouping, c["new"]), names="value")
        self.children = [w.HBox([self.group_menu, self.depth_menu], layout=w.Layout(flex_flow="row wrap")),
                         self.status, self.canvas]
        self._draw()

    # --- data -----------------------------------------------------------------------------------

    def by_op(self):
        """Per primitive: [{name, before_s, after_s, change_s, change_pct, count_before, count_after}],
        largest change (by size) first."""
        return changes(self.before.by_op(), self.after.by_op())

    def by_module(self, depth=None):
        """Per module scope (`depth=1`: top-level modules), as `by_op`."""
        return changes(self.before.by_module(depth), self.after.by_module(depth))

    @property
    def rows(self):
        """The rows shown now (per primitive or per module), in the table's order."""
        rows = self.by_op() if self.grouping == "op" else self.by_module(self.depth)
        if self.sort_key == "change":
            return rows if self.descending else rows[::-1]
        present = [r for r in rows if r[self.sort_key] is not None]
        missing = [r for r in rows if r[self.sort_key] is None]
        return sorted(present, key=lambda r: r[self.sort_key], reverse=self.descending) + missing

    def show(self, grouping, depth=None):
        """Show the rows per primitive (`"op"`) or per module (`"module"`, at `depth`)."""
        if grouping not in ("op", "module"):
            raise AvalonError(f"Compare.show({grouping!r}): show 'op' (per primitive) or 'module' (per module)")
        self.grouping, self.depth = grouping, depth
        if self.group_menu.value != grouping:
            self.group_menu.value = grouping
        if self.depth_menu.value != depth and depth in (None, 1, 2, 3):
            self.depth_menu.value = depth
        self._draw()
        return self.rows

    def sort(self, key, descending=True):
        """Order by a column: name, before_s, after_s, change_s, change_pct, or "change" (by size)."""
        if key not in _HEAD and key != "change":
            raise KeyError(f"no column {key!r}; columns are change, {', '.join(_HEAD)}")
        self.sort_key, self.descending = key, descending
        self._draw()
        return self.rows

    def handle(self, action, target):
        if action == "sort":
            self.sort(target, not self.descending if target == self.sort_key else True)

    # --- drawing --------------------------------------------------------------------------------

    def summary_html(self):
        a, b = self.before, self.after
        change = b.compiled_s - a.compiled_s
        pct = f" ({100 * change / a.compiled_s:+.1f}%)" if a.compiled_s > 0 else ""
        first, second = (html.escape(label) for label in self.labels)
        return (f'<p class="avalon-status">whole compiled call: {first} {_ms(a.compiled_s)} ms, {second} '
                f'{_ms(b.compiled_s)} ms, change {_signed_ms(change)} ms{pct}; summed over the nodes: '
                f'{_ms(a.total_s)} → {_ms(b.total_s)} ms ({len(a.rows)} → {len(b.rows)} calls)</p>')

    def table_html(self, rows, first_column, live=True):
        heads = dict(_HEAD, name=first_column, before_s=f"{self.labels[0]} (ms)", after_s=f"{self.labels[1]} (ms)")
        arrow = "▼" if self.descending else "▲"
        head = "".join(
            f'<th{" class=num" if k in _NUMERIC else ""} data-av-action="sort" data-av-target="{k}">'
            f'{html.escape(v)}{" " + arrow if live and k == self.sort_key else ""}</th>' for k, v in heads.items())
        lines = []
        for row in rows[:self.max_rows]:
            # slower in red (the views' "bad"), faster in green
            kind = (' class="num avalon-bad"' if row["change_s"] > 0 else
                    ' class="num" style="color:#15803d"' if row["change_s"] < 0 else ' class="num"')
            lines.append(f'<tr data-name="{html.escape(row["name"])}"><td>{html.escape(row["name"])}</td>'
                         f'<td class="num">{_ms(row["before_s"])}</td><td class="num">{_ms(row["after_s"])}</td>'
                         f'<td{kind}>{_signed_ms(row["change_s"])}</td><td{kind}>{_pct(row)}</td></tr>')
        more = (f'<p class="avalon-muted">… {len(rows) - self.max_rows} more rows</p>'
                if len(rows) > self.max_rows else "")
        return (f'<div style="max-height:420px;overflow:auto"><table class="avalon-table avalon-compare-table">'
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table></div>{more}")

    def _draw(self):
        first = "primitive" if self.grouping == "op" else "module"
        self.canvas.main = self.summary_html() + self.table_html(self.rows, first)

    def fragment(self):
        scopes = "module" if self.depth is None else f"module (depth {self.depth})"
        main = (self.summary_html() + "<h4>per primitive</h4>" + self.table_html(self.by_op(), "primitive", False)
                + "<h4>per module</h4>" + self.table_html(self.by_module(self.depth), scopes, False))
        return fragment(self.kind, main)
