"""The workbench as a user sees it: JupyterLab on a loopback port, the demo notebook run in headless
Chromium (Debian's package, driven by Playwright), and assertions on the rendered page. Screenshots
of each view are saved under artifacts/."""
import sys
from pathlib import Path

import pytest

from browser import LINK_COLOUR, jupyter_lab, launch, missing_lab, overflowing, ringed_in_view, run_notebook

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
ARTIFACTS = ROOT / "artifacts" / "browser"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab():
    """A fresh JupyterLab serving the demo notebook; yields its URL."""
    reason = missing_lab()
    if reason:
        pytest.skip(reason)
    with jupyter_lab([HERE / "workbench_demo.ipynb", HERE / "workbench_models.py"]) as url:
        yield url


def _expected_node_count():
    """What the first view should draw: the same TapeView built here, counted in its SVG."""
    sys.path.insert(0, str(HERE))
    from workbench_models import mse, net_and_data

    from avalon.widgets import TapeView

    model, x, y = net_and_data(depth=3)
    return TapeView(mse, model, x, y).svg.count('class="node')


def test_workbench_views_in_jupyterlab(lab):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    expected_nodes = _expected_node_count()
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            run_notebook(page, lab, "workbench_demo.ipynb")

            # TapeView: the SVG graph with the expected number of nodes
            tape_view = page.locator(".avalon-tapeview").first
            nodes = tape_view.locator(".avalon-graph svg g.node")
            expect(nodes).to_have_count(expected_nodes, timeout=60_000)
            # a click on a node fills the side panel
            call = tape_view.locator(".avalon-graph svg g.node.call").first
            call.scroll_into_view_if_needed()
            call.click()
            panel = tape_view.locator(".avalon-panel")
            expect(panel).to_contain_text("primitive", timeout=15_000)
            expect(panel).to_contain_text("producers")
            expect(panel.locator("svg.avalon-hist")).to_have_count(2)  # value and gradient histograms
            assert overflowing(panel) == []
            tape_view.screenshot(path=str(ARTIFACTS / "tapeview.png"))

            # links in the panel look like links (JupyterLab unsets the colour of every <a>)
            link_colour = panel.locator("a.avalon-link").first.evaluate("(a) => getComputedStyle(a).color")
            assert link_colour == LINK_COLOUR

            # BackwardStepper: the next button moves the highlight
            stepper = page.locator(".avalon-stepper").first
            stepper.scroll_into_view_if_needed()
            side = stepper.locator(".avalon-panel .avalon-step-panel")
            expect(side).to_have_attribute("data-step", "0", timeout=60_000)
            # the graph opened scrolled to the node differentiated (drawn before it was on the page)
            graph = stepper.locator(".avalon-graph").first
            assert ringed_in_view(graph) is True  # opens fitted: the whole graph
            for _ in range(4):  # zoomed in, most of the graph is out of view
                graph.locator(".avalon-zoom-ui button[data-zoom='in']").click()
            highlight = stepper.locator(".avalon-graph svg style").first
            before = highlight.inner_html()
            stepper.locator(".avalon-next button, button.avalon-next").first.click()
            expect(side).to_have_attribute("data-step", "1", timeout=15_000)
            assert highlight.inner_html() != before
            assert ringed_in_view(graph) is True
            stepper.screenshot(path=str(ARTIFACTS / "stepper.png"))

            # Profiler: one table row per timed node
            profiler = page.locator(".avalon-profiler").first
            rows = profiler.locator(".avalon-profile-table table.avalon-table tbody tr")
            expect(rows.first).to_be_visible(timeout=60_000)
            assert rows.count() >= 20
            assert "matmul" in profiler.locator(".avalon-profile-table").inner_text()
            profiler.scroll_into_view_if_needed()
            profiler.screenshot(path=str(ARTIFACTS / "profiler.png"))

            # CheckView: the three problems and the partial tape
            check = page.locator(".avalon-checkview").first
            expect(check.locator(".avalon-problem")).to_have_count(3, timeout=60_000)
            expect(check.locator(".avalon-graph svg g.node").first).to_be_visible()
            check.scroll_into_view_if_needed()
            check.screenshot(path=str(ARTIFACTS / "checkview.png"))
        finally:
            browser.close()
