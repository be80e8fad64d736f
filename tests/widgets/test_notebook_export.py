"""The demo notebook executed headless (nbclient) and exported to HTML still shows the graphs."""
import re
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbconvert")

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


def test_executed_notebook_exports_with_static_graphs(tmp_path):
    from avalon.widgets.export import notebook_to_html

    nb = nbformat.read(HERE / "workbench_demo.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(HERE)}}).execute()
    assert "widgets" in nb.metadata  # widget state was saved: plain nbconvert would need the CDN
    page = notebook_to_html(nb, tmp_path / "demo.html")
    assert (tmp_path / "demo.html").read_text(encoding="utf-8") == page
    for kind in ("tapeview", "stepper", "profiler", "checkview"):
        assert f'class="avalon-static avalon-{kind}"' in page
    graphs = re.findall(r'<div class="avalon-graph">\s*(?:<div class="avalon-legend">.*?</div>)?<svg', page)
    assert len(graphs) >= 4
    assert "application/vnd.jupyter.widget-view+json" not in page
    assert "@jupyter-widgets/html-manager" not in page


def test_exported_views_read_well_in_a_browser(tmp_path):
    """The export opened in Chromium: nbconvert's table styles (right-aligned, striped) do not reach
    the views, a click fills the panel without overflowing it, and the stepper keeps its node in view."""
    from browser import FORWARD_RING, LINK_COLOUR, launch, missing_browser, overflowing, ringed_in_view

    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    from avalon.widgets.export import notebook_to_html

    nb = nbformat.read(HERE / "workbench_demo.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(HERE)}}).execute()
    path = tmp_path / "demo.html"
    notebook_to_html(nb, path)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(path.as_uri())
            tape = page.locator(".avalon-static.avalon-tapeview").first
            tape.locator("g.node.call").first.click()
            panel = tape.locator(".avalon-panel")
            expect(panel).to_contain_text("primitive")
            assert overflowing(panel) == []
            facts = panel.locator("table.avalon-facts th").first
            assert facts.evaluate("(th) => getComputedStyle(th).textAlign") == "left"
            assert panel.locator("a.avalon-link").first.evaluate("(a) => getComputedStyle(a).color") == LINK_COLOUR

            rows = page.locator(".avalon-static.avalon-profiler table.avalon-table tbody tr")
            op_cell = rows.first.locator("td").first
            assert op_cell.evaluate("(td) => getComputedStyle(td).textAlign") == "left"
            assert len({rows.nth(i).evaluate("(tr) => getComputedStyle(tr).backgroundColor")
                        for i in range(4)}) == 1  # no stripes
            # columns as wide as their text (nbconvert fixes table layouts: long shapes overlapped the times)
            table = page.locator(".avalon-static.avalon-profiler table.avalon-table")
            assert table.evaluate("(t) => getComputedStyle(t).tableLayout") == "auto"
            assert table.evaluate("(t) => [...t.querySelectorAll('td')].filter((c) => c.scrollWidth > c.clientWidth).length") == 0

            stepper = page.locator(".avalon-static.avalon-stepper").first
            graph = stepper.locator(".avalon-graph")
            assert ringed_in_view(graph, FORWARD_RING) is True  # opens fitted: the whole graph
            for _ in range(4):  # zoomed in, most of the graph is out of view
                graph.locator(".avalon-zoom-ui button[data-zoom='in']").click()
            assert graph.evaluate("(g) => g.querySelector('.avalon-minimap').style.display") != "none"
            stepper.locator("button[data-av-step='last']").click()
            assert ringed_in_view(graph, FORWARD_RING) is True  # the view moved to the step
        finally:
            browser.close()
