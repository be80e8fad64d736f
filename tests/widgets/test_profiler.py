"""The timing engine (avalon.profile) and the Profiler view."""
import json
import math
import re

import numpy as np
import pytest

import avalon
from avalon.profile import flops, profile, profile_tape
from avalon.widgets import Profiler

from workbench_models import mse


def test_every_compiled_call_is_timed_and_shares_sum_to_one(small):
    f, W1, W2, x = small
    prof = profile(f, W1, W2, x, repeat=3)
    compiled = avalon.grad_tape(f, W1, W2, x).compile()
    assert len(prof.rows) == len(compiled.tape.calls)
    assert math.isclose(sum(r["share"] for r in prof.rows), 1.0)
    assert all(r["median_s"] > 0 for r in prof.rows)
    assert {r["phase"] for r in prof.rows} == {"forward", "backward"}
    assert math.isclose(sum(g["median_s"] for g in prof.by_op()), prof.total_s)
    assert prof.compiled_s > 0
    assert "matmul" in str(prof)


def test_without_optimize_every_recorded_call_is_timed(small):
    f, W1, W2, x = small
    tape = avalon.grad_tape(f, W1, W2, x)
    assert len(tape.compile().tape.calls) != len(tape.calls)  # the passes do change this tape
    prof = profile_tape(tape, repeat=1, optimize=False)
    assert [r["id"] for r in prof.rows] == [n.id for n in tape.calls]


def test_matmul_flops_and_rate(small):
    f, W1, W2, x = small
    prof = profile(f, W1, W2, x, repeat=2)
    row = next(r for r in prof.rows if r["op"] == "matmul" and r["shapes"] == "5×3, 3×4 → 5×4")
    assert row["flops"] == 2 * 5 * 4 * 3
    assert math.isclose(row["gflops"], row["flops"] / row["median_s"] / 1e9)
    assert all(r["flops"] is None for r in prof.rows if r["op"] not in ("matmul", "einsum"))


def test_einsum_and_conv_flops():
    A, B = np.ones((2, 3)), np.ones((3, 4))
    tape = avalon.trace(lambda a, b: np.einsum("ij,jk->ik", a, b), A, B)
    assert flops(tape.calls[-1]) == 2 * 2 * 3 * 4
    nn = pytest.importorskip("avalon.nn")
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = np.ones((2, 3, 6, 6), np.float32)
    tape = avalon.grad_tape(lambda m, x: m(x).sum(), conv, x)
    by_name = {n.prim.name: n for n in tape.calls if "conv" in n.prim.name}
    forward = 2 * (2 * 8 * 6 * 6) * (3 * 3 * 3)
    assert flops(by_name["conv"]) == forward
    assert flops(by_name["conv_weight_grad"]) == forward  # each adjoint costs what the forward does


def test_modules_and_chrome_trace(tmp_path, net):
    model, x, y = net
    prof = profile(mse, model, x, y, repeat=2)
    modules = {g["name"] for g in prof.by_module()}
    assert "head" in modules and "encoder.layers.0.fc" in modules
    top = {g["name"] for g in prof.by_module(depth=1)}
    assert top == {"encoder", "head", "(top level)"}
    path = tmp_path / "trace.json"
    prof.to_chrome_trace(path)
    trace = json.loads(path.read_text())
    events = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert len(events) == len(prof.rows)
    assert all(e["dur"] >= 0 and "ts" in e and e["pid"] == 1 for e in events)
    assert math.isclose(events[0]["dur"], round(prof.rows[0]["median_s"] * 1e6, 3))
    assert {e["tid"] for e in events} == {1, 2}


def test_profile_tape_needs_values(small):
    f, W1, W2, x = small
    tape = avalon.grad_tape(f, W1, W2, x)
    tape.drop_values()
    with pytest.raises(ValueError, match="inputs="):
        profile_tape(tape)
    prof = profile_tape(tape, inputs=[W1, W2, x], repeat=1)
    assert prof.rows


def test_profiler_view_sorts_selects_and_exports(tmp_path, net):
    model, x, y = net
    view = Profiler(mse, model, x, y, repeat=2)
    times = [r["median_s"] for r in view.rows]
    assert times == sorted(times, reverse=True)
    view.sort("op", descending=False)
    ops = [r["op"] for r in view.rows]
    assert ops == sorted(ops)
    # the graph with the time overlay, its legend in µs or ms, kept scrolled to the slowest node
    assert "time" in view.canvas.main and "fill:" in view.svg
    legend = re.search(r'<div class="avalon-legend">(.*?)</div>', view.canvas.main).group(1)
    assert re.search(r"\d (µs|ms)", legend) and "e-" not in legend
    slowest = view.pane.graph.by_id[view.profile.sorted()[0]["id"]]
    assert view.canvas.focus == view.pane.element_of(slowest) != ""
    # clicking a header sorts, clicking a row selects
    view.table.event = {"action": "sort", "target": "gflops", "stamp": 1}
    rates = [r["gflops"] for r in view.rows if r["gflops"] is not None]
    assert rates == sorted(rates, reverse=True) and view.rows[-1]["gflops"] is None
    label = view.rows[0]["label"]
    view.table.event = {"action": "select", "target": label, "stamp": 2}
    assert view.selected.label == label and 'class="avalon-selected"' in view.table.main
    assert view.table.main.count("<tr ") == len(view.rows)
    path = view.to_chrome_trace(tmp_path / "t.json")
    assert json.loads(path.read_text())["traceEvents"]
    page = view.to_html()
    assert page.count("<svg") >= 3  # two bar charts and the graph
    assert "<script src" not in page and "data-sort" in page
    assert '"focus": "%s"' % view.canvas.focus in page  # the static copy scrolls to it too
    assert len(view.by_op()) == len({r["op"] for r in view.rows})


def test_flops_read_with_an_si_prefix():
    rng = np.random.default_rng(0)
    W, x = rng.standard_normal((30, 40)), rng.standard_normal((20, 30))
    view = Profiler(lambda W, x: (x @ W).sum(), W, x, repeat=1)
    flops_cells = re.findall(r'<td class="num" data-value="(\d+)">([^<]*)</td>', view.table.main)
    assert ("48000", "48 k") in flops_cells  # 2 · 20 · 40 · 30


def test_bad_sort_column(small):
    f, W1, W2, x = small
    view = Profiler(f, W1, W2, x, repeat=1)
    with pytest.raises(KeyError, match="columns are"):
        view.sort("speed")


@pytest.fixture
def costly():
    """A primitive `costly(x)` that costs 1 tick of a fake clock when it allocates its result and
    0.25 when the compiled replay hands it a dead buffer (`out=`), as memory from the operating
    system costs more than memory reused; and the fake clock, read by the profiler."""
    from avalon.ops.primitive import PRIMITIVES, Primitive

    clock = {"t": 0.0}

    def impl(x, out=None):
        clock["t"] += 1.0 if out is None else 0.25
        return np.multiply(x, 2.0, out=out)

    prim = Primitive("test_profiler_costly", impl, out=True)
    yield prim, clock
    del PRIMITIVES[prim.name]


def test_node_times_are_what_the_compiled_replay_pays(costly, monkeypatch):
    prim, clock = costly
    x = np.ones((4, 3))
    tape = avalon.trace(lambda x: prim(prim(prim(x))).sum(), x)
    compiled = tape.compile()
    # the second call writes into a workspace kept between calls, the third into the first one's dead buffer
    assert "out=w0" in compiled.source and "out=v" in compiled.source
    monkeypatch.setattr("time.perf_counter", lambda: clock["t"])
    prof = profile_tape(tape, repeat=3)
    times = [r["median_s"] for r in prof.rows if r["op"] == prim.name]
    assert times == [1.0, 0.25, 0.25]
    assert prof.total_s == prof.compiled_s == 1.5
    plain = profile_tape(tape, repeat=3, optimize=False)  # no buffer reused, none kept
    assert [r["median_s"] for r in plain.rows if r["op"] == prim.name] == [1.0, 1.0, 1.0]


def test_a_click_on_a_module_box_shows_it_and_its_link_opens_it(net):
    model, x, y = net
    view = Profiler(mse, model, x, y, repeat=1, max_nodes=12)  # small budget: modules start closed
    closed = next(s for s in view.pane.graph.children if s and s not in view.pane.graph.expanded)
    box = view.pane.element_of(closed)
    view.canvas.event = {"action": "select", "target": box, "stamp": 1}
    assert f'data-av-action="expand" data-av-target="{closed}"' in view.canvas.side
    view.canvas.event = {"action": "expand", "target": closed, "stamp": 2}
    assert closed in view.pane.graph.expanded


def test_every_row_can_be_selected_including_nodes_the_passes_made(net):
    # The compiled tape has nodes the recorded one lacks (matmul_layout's row-major products): the
    # profiler draws the code that ran, so a click on any row finds its node.
    model, x, y = net
    view = Profiler(mse, model, x, y, repeat=1)
    recorded = {n.id for n in view.tape.nodes}
    assert any(r["id"] not in recorded for r in view.rows)
    for stamp, row in enumerate(view.rows, start=1):
        view.table.event = {"action": "select", "target": row["label"], "stamp": stamp}
        assert view.selected is not None and view.selected.label == row["label"]


def test_a_layout_stopped_at_its_time_limit_shows_its_message_in_the_profiler(monkeypatch, small):
    from avalon.widgets import render
    f, W1, W2, x = small
    monkeypatch.setattr(render, "_layouts", type(render._layouts)())
    monkeypatch.setattr(render, "LAYOUT_TIMEOUT_S", 1e-4)  # no `dot` run ends this fast
    view = Profiler(f, W1, W2, x, repeat=1)
    assert "did not lay out this graph" in view.canvas.main
    assert view.rows  # the timings are there all the same
