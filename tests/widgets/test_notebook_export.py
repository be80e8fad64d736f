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
