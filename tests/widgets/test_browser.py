"""The workbench as a user sees it: JupyterLab on a loopback port, the demo notebook run in headless
Chromium (Debian's package, driven by Playwright), and assertions on the rendered page. Screenshots
of each view are saved under artifacts/."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from browser import LINK_COLOUR, launch, missing_browser, overflowing, ringed_in_view

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
ARTIFACTS = ROOT / "artifacts" / "browser"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _missing():
    reason = missing_browser()
    if reason is None and shutil.which("jupyter", path=os.path.dirname(sys.executable)) is None:
        reason = "jupyter lab is not installed in this environment"
    return reason


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab():
    """A fresh JupyterLab serving a temporary folder with the demo notebook; yields its URL."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    home = Path(tempfile.mkdtemp(prefix="avalon-lab-"))
    work = home / "work"
    work.mkdir()
    shutil.copy(HERE / "workbench_demo.ipynb", work)
    shutil.copy(HERE / "workbench_models.py", work)
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    cmd = [os.path.join(os.path.dirname(sys.executable), "jupyter"), "lab", "--no-browser", "--allow-root",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
           f"--ServerApp.root_dir={work}", f"--LabApp.user_settings_dir={home / 'settings'}",
           f"--LabApp.workspaces_dir={home / 'workspaces'}", "--LabApp.extension_manager=readonly",
           "--LabApp.expose_app_in_browser=True"]
    log = open(home / "lab.log", "w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 40
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise RuntimeError("JupyterLab did not start:\n" + (home / "lab.log").read_text()[-3000:])
            time.sleep(0.3)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(home, ignore_errors=True)


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
            page.goto(f"{lab}/lab/tree/workbench_demo.ipynb")
            expect(page.locator("#jp-main-statusbar")).to_contain_text("(ipykernel) | Idle", timeout=60_000)
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

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
