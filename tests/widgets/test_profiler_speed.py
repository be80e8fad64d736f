"""The Profiler's charts (plain SVG, no matplotlib) and the BLAS threads its timed runs use."""
import re
import sys

import pytest

import avalon
import avalon.profile
from avalon.widgets import Profiler
from avalon.widgets.charts import bar_chart_svg

from workbench_models import mse

threadpoolctl = pytest.importorskip("threadpoolctl")


def bars(svg):
    """(name shown in the tooltip, value text, bar width) of each bar of a chart."""
    return [(name, float(value), float(width)) for name, value, width in re.findall(
        r'<title>([^<:]*): ([0-9.e+-]+) (?:ms|µs)</title>.*?<rect [^>]*width="([0-9.]+)"', svg)]


def test_a_chart_draws_each_group_with_its_time_and_a_bar_in_proportion():
    groups = [{"name": "matmul", "median_s": 4e-3}, {"name": "layer1.0.conv1", "median_s": 1e-3},
              {"name": "x" * 40, "median_s": 5e-4}]
    svg = bar_chart_svg(groups, "time by primitive")
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "median time (ms)" in svg
    drawn = bars(svg)
    assert [(n, v) for n, v, _ in drawn] == [("matmul", 4.0), ("layer1.0.conv1", 1.0), ("x" * 40, 0.5)]
    assert drawn[0][2] == pytest.approx(4 * drawn[1][2]) == pytest.approx(8 * drawn[2][2])
    assert "…" + "x" * 27 in svg  # long names keep their end, the full name in the tooltip
    assert "median time (µs)" in bar_chart_svg([{"name": "add", "median_s": 3e-6}], "t")
    assert len(bars(bar_chart_svg(groups * 10, "t", limit=15))) == 15


def test_the_profilers_charts_show_its_own_totals_without_matplotlib(net, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # importing it would fail
    model, x, y = net
    view = Profiler(mse, model, x, y, repeat=2)
    charts = view.charts.value
    by_op, by_module = charts.split("time by module")
    scale = 1e3 if view.by_op()[0]["median_s"] >= 1e-3 else 1e6
    assert [(n, round(v, 3)) for n, v, _ in bars(by_op)] == \
        [(g["name"], round(float(f"{g['median_s'] * scale:.4g}"), 3)) for g in view.by_op()[:15]]
    assert [n for n, _, _ in bars(by_module)] == [g["name"] for g in view.by_module()[:15]]


def test_timed_runs_use_one_blas_thread_by_default_and_the_setting_is_restored(net, monkeypatch):
    import avalon.profile.engine as engine

    seen, seen_blas = [], []
    timed = engine.profile_tape

    def watched(*args, **kwargs):
        pools = threadpoolctl.threadpool_info()
        seen.append({pool["internal_api"]: pool["num_threads"] for pool in pools})
        seen_blas.append([pool["num_threads"] for pool in pools if pool["user_api"] == "blas"])
        return timed(*args, **kwargs)

    monkeypatch.setattr("avalon.widgets.profiler.profile_tape", watched)
    before = [pool["num_threads"] for pool in threadpoolctl.threadpool_info()]
    model, x, y = net
    view = Profiler(mse, model, x, y, repeat=1)
    assert seen[-1] and set(seen[-1].values()) == {1}
    assert "1 BLAS thread)" in view.table.main
    assert [pool["num_threads"] for pool in threadpoolctl.threadpool_info()] == before
    # threads=None leaves numpy's BLAS as it is (OpenMP's count is oneDNN's calls' to set, per call)
    blas = [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    seen_blas.clear()
    Profiler(mse, model, x, y, repeat=1, threads=None)
    assert seen_blas[-1] == blas


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2", True])
def test_a_bad_thread_count_says_what_it_takes(net, threads):
    model, x, y = net
    with pytest.raises(avalon.AvalonError, match="threads must be a positive int"):
        Profiler(mse, model, x, y, repeat=1, threads=threads)


def test_on_a_device_every_clock_read_waits_for_the_queued_work_first(small, monkeypatch):
    import avalon.profile.engine as engine

    waits = []
    monkeypatch.setattr(engine, "_needs_sync", lambda xp: True)  # as on cupy
    monkeypatch.setattr(engine, "_synchronize", lambda xp: waits.append(1))
    f, W1, W2, x = small
    prof = avalon.profile.profile(f, W1, W2, x, repeat=2, warmup=1)
    runs = 3  # warmup + repeat, each a clocked and a plain call
    assert len(waits) == runs * (len(prof.rows) + 1) + runs  # a mark after each line, one on entry
    assert all(row["median_s"] >= 0 for row in prof.rows)
