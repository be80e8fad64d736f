"""Headless Chromium for the widget tests (Debian's package, driven by Playwright; never a downloaded
browser), a JupyterLab on a loopback port, and checks on what a rendered view shows."""
import contextlib
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

ROOT = Path(__file__).parent.parent.parent

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FORWARD_RING = "rgb(37, 99, 235)"  # the stepper's current node and a selection
LINK_COLOUR = "rgb(29, 78, 216)"


def missing_browser():
    """Why the browser cannot run here, or None."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not installed (apt-get install chromium; never a downloaded browser)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (the Python package) is not installed"
    return None


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def missing_lab():
    """Why a browser test in JupyterLab cannot run here, or None."""
    reason = missing_browser()
    if reason is None and shutil.which("jupyter", path=os.path.dirname(sys.executable)) is None:
        reason = "jupyter lab is not installed in this environment"
    return reason


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_lab(files):
    """A fresh JupyterLab serving a temporary folder holding `files` (paths copied in); yields its
    URL. Every cell renders (no windowing) and no news toast covers the screenshots."""
    home = Path(tempfile.mkdtemp(prefix="avalon-lab-"))
    work = home / "work"
    work.mkdir()
    for f in files:
        shutil.copy(f, work)
    settings = home / "settings" / "@jupyterlab"
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
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


def run_notebook(page, url, name):
    """Open a notebook of the lab at `url` and run all its cells (the waits that follow see them run)."""
    from playwright.sync_api import expect

    page.goto(f"{url}/lab/tree/{name}")
    expect(page.locator("#jp-main-statusbar")).to_contain_text("(ipykernel) | Idle", timeout=60_000)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


# What sticks out of a side panel: statistics tables and source listings wider than the panel, or
# table cells whose text does not fit them.
_OVERFLOW_JS = """(panel) => {
  const edge = panel.getBoundingClientRect().right - parseFloat(getComputedStyle(panel).paddingRight);
  const out = [];
  if (panel.scrollWidth > panel.clientWidth) out.push("the panel scrolls sideways");
  for (const el of panel.querySelectorAll("table.avalon-stats, pre.avalon-source")) {
    const right = el.getBoundingClientRect().right;
    if (right > edge + 0.5 || el.scrollWidth > el.clientWidth) out.push(el.className + " ends at " + right + " > " + edge);
  }
  for (const cell of panel.querySelectorAll("table.avalon-stats th, table.avalon-stats td"))
    if (cell.scrollWidth > cell.clientWidth) out.push("clipped cell " + cell.textContent);
  return out;
}"""


def overflowing(panel):
    """What sticks out of a side panel (a Playwright locator): [] when everything fits."""
    return panel.evaluate(_OVERFLOW_JS)


_RINGED_IN_VIEW_JS = """(graph, color) => {
  const view = graph.getBoundingClientRect();
  for (const g of graph.querySelectorAll("g.node")) {
    const shape = g.querySelector(":scope > path, :scope > polygon, :scope > ellipse");
    if (!shape || getComputedStyle(shape).stroke !== color) continue;
    const box = g.getBoundingClientRect();
    return box.top >= view.top && box.bottom <= view.bottom && box.left >= view.left && box.right <= view.right;
  }
  return null;
}"""


def ringed_in_view(graph, color=FORWARD_RING):
    """Whether the node ringed in `color` lies in the visible part of its scrolled graph (None when
    no node is ringed)."""
    return graph.evaluate(_RINGED_IN_VIEW_JS, color)


# Where a zoomable graph's view is, how large its labels are drawn, and whether the whole graph fits.
_GEOMETRY_JS = """(graph, names) => {
  const svg = graph.querySelector(":scope > svg");
  const view = svg.getBoundingClientRect();
  const inside = (r) => r.left >= view.left - 1 && r.right <= view.right + 1 && r.top >= view.top - 1 &&
    r.bottom <= view.bottom + 1;
  const labels = {};
  for (const t of svg.querySelectorAll("g.node text")) {
    if (names.includes(t.textContent)) {
      const r = t.getBoundingClientRect();
      labels[t.textContent] = { height: r.height, inside: inside(r), x: r.x + r.width / 2, y: r.y + r.height / 2 };
    }
  }
  const mini = graph.querySelector(".avalon-minimap");
  return { scale: parseFloat(graph.dataset.scale), whole: inside(svg.querySelector("g.graph").getBoundingClientRect()),
    labels, width: view.width, height: view.height, viewBox: svg.getAttribute("viewBox"),
    minimap: mini ? getComputedStyle(mini).display : "absent" };
}"""


def geometry(graph, names=()):
    """{scale, whole, labels: {name: {height, inside, x, y}}, width, height, viewBox, minimap} of a
    graph box (a Playwright locator of `.avalon-graph`)."""
    return graph.evaluate(_GEOMETRY_JS, list(names))


def wait_for(probe, test, timeout=5.0):
    """Poll `probe()` until `test(value)` holds; returns the last value."""
    deadline = time.time() + timeout
    value = probe()
    while not test(value) and time.time() < deadline:
        time.sleep(0.05)
        value = probe()
    return value


def check_fit_zoom_pan_minimap(page, graph, names, panel=None):
    """What every graph view must do at model scale (asserted): open fitted with the whole graph in
    view and the labels `names` inside it, at least 9 CSS px tall; a drag pans without selecting (the
    `panel` stays empty); the wheel and the + / − buttons change the scale and fit restores it; the
    minimap shows when zoomed in and a click on it moves the view. Returns the opening geometry."""
    start = geometry(graph, names)
    assert start["whole"], start
    assert set(start["labels"]) == set(names), start["labels"]
    for name, label in start["labels"].items():
        assert label["inside"] and label["height"] >= 9, (name, label)
    assert start["minimap"] == "none"  # the whole graph is in view: no overview needed

    box = start["labels"][names[len(names) // 2]]  # a drag starting on a module box
    page.mouse.move(box["x"], box["y"])
    page.mouse.down()
    page.mouse.move(box["x"] + 60, box["y"] + 40, steps=5)
    page.mouse.up()
    moved = wait_for(lambda: geometry(graph), lambda g: g["viewBox"] != start["viewBox"])
    assert moved["viewBox"] != start["viewBox"]
    if panel is not None:
        assert panel.inner_text().strip() == ""  # the drag was not a click on the box

    button = lambda which: graph.locator(f".avalon-zoom-ui button[data-zoom='{which}']")  # noqa: E731
    button("fit").click()
    assert wait_for(lambda: geometry(graph), lambda g: g["whole"])["scale"] == start["scale"]

    page.mouse.move(start["labels"][names[0]]["x"], start["labels"][names[0]]["y"])
    page.mouse.wheel(0, -400)
    wheeled = wait_for(lambda: geometry(graph), lambda g: g["scale"] > start["scale"] * 1.5)
    assert wheeled["scale"] > start["scale"] * 1.5
    button("out").click()
    out = wait_for(lambda: geometry(graph), lambda g: g["scale"] < wheeled["scale"])
    assert out["scale"] < wheeled["scale"]
    button("in").click()
    zoomed = wait_for(lambda: geometry(graph), lambda g: g["scale"] > out["scale"])
    assert zoomed["scale"] > out["scale"] and not zoomed["whole"]

    mini = graph.locator(".avalon-minimap")
    assert zoomed["minimap"] != "none"
    corner = mini.bounding_box()
    mini.click(position={"x": corner["width"] * 0.85, "y": corner["height"] * 0.9})
    jumped = wait_for(lambda: geometry(graph), lambda g: g["viewBox"] != zoomed["viewBox"])
    assert jumped["viewBox"] != zoomed["viewBox"] and jumped["scale"] == zoomed["scale"]

    button("fit").click()
    back = wait_for(lambda: geometry(graph, names), lambda g: g["whole"])
    assert back["scale"] == start["scale"] and back["minimap"] == "none"
    return start
