"""Regenerate docs/workbench.png: the Workbench as JupyterLab shows it, in headless Chromium.

    .venv/bin/python docs/make_screenshot.py

Needs Graphviz, Chromium at /usr/bin/chromium (`bash scripts/setup.sh --with-browser`) and the
Playwright package (never `playwright install`: Debian's Chromium is used). A fresh JupyterLab on a
loopback port runs a one-cell notebook; the widget's element is captured, nothing else.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "workbench.png"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

CELL = '''\
import numpy as np
import avalon
import avalon.nn as nn
import avalon.nn.functional as F
from avalon.widgets import Workbench

avalon.manual_seed(0)
rng = np.random.default_rng(0)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(8, 16)
        self.norm = nn.LayerNorm(16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        return self.out(F.relu(self.norm(self.hidden(x))))


def loss_fn(model, x, y):
    return F.cross_entropy(model(x), y)


model = Classifier()
x = rng.standard_normal((32, 8)).astype(np.float32)
y = rng.integers(0, 3, 32)
bench = Workbench(loss_fn, model, x, y)
bench.tape_view.show_phase("forward")
bench.tape_view.set_overlay("grad norm")
bench.select("matmul")
bench
'''


def notebook(folder):
    cell = {"cell_type": "code", "execution_count": None, "id": "workbench", "metadata": {},
            "outputs": [], "source": CELL}
    nb = {"cells": [cell], "nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    (folder / "workbench.ipynb").write_text(json.dumps(nb))


def start_lab(home):
    """JupyterLab serving `home/work` on a free loopback port, no token, no news toasts."""
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    cmd = [os.path.join(os.path.dirname(sys.executable), "jupyter"), "lab", "--no-browser", "--allow-root",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
           f"--ServerApp.root_dir={home / 'work'}", f"--LabApp.user_settings_dir={home / 'settings'}",
           f"--LabApp.workspaces_dir={home / 'workspaces'}", "--LabApp.extension_manager=readonly",
           "--LabApp.expose_app_in_browser=True"]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                if r.status == 200:
                    return server, url
        except OSError:
            pass
        if server.poll() is not None or time.time() > deadline:
            server.kill()
            raise RuntimeError("JupyterLab did not start")
        time.sleep(0.3)


def main():
    with tempfile.TemporaryDirectory(prefix="avalon-shot-") as tmp:
        home = Path(tmp)
        (home / "work").mkdir()
        notebook(home / "work")
        server, url = start_lab(home)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1500, "height": 1100}, device_scale_factor=1)
                page.goto(f"{url}/lab/tree/workbench.ipynb")
                expect(page.locator("#jp-main-statusbar")).to_contain_text("(ipykernel) | Idle", timeout=60_000)
                page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
                bench = page.locator(".avalon-workbench")
                expect(bench.locator(".avalon-tapeview svg").first).to_be_visible(timeout=60_000)
                page.wait_for_timeout(1000)  # let the graph scroll the selection into view
                bench.screenshot(path=str(OUT))
                browser.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=15)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
