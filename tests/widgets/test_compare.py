"""Compare: two profiles side by side; the numbers it shows are the two profiles' own totals."""
import html
import re

import pytest

import avalon
from avalon.profile import profile
from avalon.widgets import Compare, Profiler

from workbench_models import mse, net_and_data


@pytest.fixture(scope="module")
def two_profiles():
    """A 3-layer net, then the same net one layer deeper (encoder.layers.3 is new)."""
    model, x, y = net_and_data(width=8, depth=3)
    deeper, _, _ = net_and_data(width=8, depth=4)
    return Profiler(mse, model, x, y, repeat=2), Profiler(mse, deeper, x, y, repeat=2)


def shown(table_html):
    """{name: [before, after, change, change %]} as the table's cells read."""
    rows = re.findall(r'<tr data-name="[^"]*"><td>([^<]*)</td>(.*?)</tr>', table_html)
    return {html.unescape(name): re.findall(r"<td[^>]*>([^<]*)</td>", cells) for name, cells in rows}


def expected(name, before, after):
    """The cells for `name` computed from the two profiles' own lists of totals."""
    a = {g["name"]: g["median_s"] for g in before}
    b = {g["name"]: g["median_s"] for g in after}
    t0, t1 = a.get(name, 0.0), b.get(name, 0.0)
    pct = f"{100 * (t1 - t0) / t0:+.1f}%" if name in a else "new"
    return [f"{t0 * 1e3:.3f}", f"{t1 * 1e3:.3f}", f"{(t1 - t0) * 1e3:+.3f}", pct]


def test_per_primitive_rows_are_both_profiles_totals_largest_change_first(two_profiles):
    before, after = two_profiles
    view = Compare(before, after)
    a, b = before.profile.by_op(), after.profile.by_op()
    cells = shown(view.canvas.main)
    assert set(cells) == {g["name"] for g in a} | {g["name"] for g in b}
    for name, row in cells.items():
        assert row == expected(name, a, b), name
    changes = [abs(r["change_s"]) for r in view.by_op()]
    assert changes == sorted(changes, reverse=True)
    assert list(cells) == [r["name"] for r in view.by_op()]  # the table in that order
    row = view.by_op()[0]
    assert row["change_s"] == pytest.approx(row["after_s"] - row["before_s"])
    counts = {g["name"]: g["count"] for g in b}
    assert all(r["count_after"] == counts.get(r["name"], 0) for r in view.by_op())


def test_per_module_rows_and_a_module_only_the_second_has(two_profiles):
    before, after = two_profiles
    view = Compare(before, after)
    rows = view.show("module")
    a, b = before.by_module(), after.by_module()
    cells = shown(view.canvas.main)
    assert cells["encoder.layers.3"][0] == "0.000" and cells["encoder.layers.3"][3] == "new"
    for name, row in cells.items():
        assert row == expected(name, a, b), name
    assert [r["name"] for r in rows] == list(cells)
    top = {r["name"]: r for r in view.show("module", depth=1)}
    assert set(top) == {g["name"] for g in after.by_module(1)} | {g["name"] for g in before.by_module(1)}
    encoder = {g["name"]: g["median_s"] for g in after.by_module(1)}["encoder"]
    assert top["encoder"]["after_s"] == encoder
    assert view.group_menu.value == "module" and view.depth_menu.value == 1
    view.depth_menu.value = None  # the menu shows every scope again
    assert set(shown(view.canvas.main)) == {g["name"] for g in a} | {g["name"] for g in b}
    view.group_menu.value = "op"
    assert set(shown(view.canvas.main)) == {r["name"] for r in view.by_op()}


def test_summary_sorting_static_copy_and_profiler_compare(two_profiles):
    before, after = two_profiles
    view = before.compare(after, labels=("3 layers", "4 layers"))
    assert isinstance(view, Compare)
    summary = view.summary_html()
    b0, b1 = before.profile.compiled_s, after.profile.compiled_s
    assert f"3 layers {b0 * 1e3:.3f} ms, 4 layers {b1 * 1e3:.3f} ms, change {(b1 - b0) * 1e3:+.3f} ms" in summary
    assert "3 layers (ms)" in view.canvas.main
    view.canvas.event = {"action": "sort", "target": "after_s", "stamp": 1}
    after_times = [r["after_s"] for r in view.rows]
    assert after_times == sorted(after_times, reverse=True)
    view.canvas.event = {"action": "sort", "target": "after_s", "stamp": 2}  # again: ascending
    assert [r["after_s"] for r in view.rows] == sorted(after_times)
    page = view.to_html()
    assert page.startswith("<!DOCTYPE html>") and "<script src" not in page
    assert "per primitive" in page and "per module" in page
    assert set(shown(page)) == {r["name"] for r in view.by_op()} | {r["name"] for r in view.by_module()}


def test_plain_profiles_compare_too():
    model, x, y = net_and_data(width=4, depth=2)
    first, second = profile(mse, model, x, y, repeat=1), profile(mse, model, x, y, repeat=1)
    view = Compare(first, second)
    assert {r["name"] for r in view.by_op()} == {g["name"] for g in first.by_op()}
    assert all(r["change_pct"] is not None for r in view.by_op())  # the same primitives on both sides


def test_bad_arguments_say_what_to_pass(two_profiles):
    before, _ = two_profiles
    model, _, _ = net_and_data()
    with pytest.raises(avalon.AvalonError, match=r"second profile is a Net; pass a Profiler view"):
        Compare(before, model)
    with pytest.raises(avalon.AvalonError, match="labels names the two profiles"):
        Compare(before, before, labels=("only one",))
    view = Compare(before, before)
    with pytest.raises(avalon.AvalonError, match="show 'op'"):
        view.show("layer")
    with pytest.raises(KeyError, match="columns are"):
        view.sort("speed")
