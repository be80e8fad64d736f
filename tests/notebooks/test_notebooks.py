"""The exploring notebooks run from top to bottom, headless, as a newcomer would run them.

Each notebook ends with a cell of assertions on its own results (where the NaN was born, how much
faster the changed model is, ...) that prints "all checks passed", so executing it is the test. The
working directory is notebooks/, as in JupyterLab and `scripts/workbench.sh`. That the notebooks
are committed without outputs or widget state is checked in tests/tutorials/test_tutorials.py.
"""
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
from notebook_runner import execute, printed  # noqa: E402

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[2] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds; the slowest cell takes a few seconds on two busy cores
WHOLE_NOTEBOOK = 60  # seconds; each notebook takes 2-15 s alone on two cores


def test_the_four_notebooks_are_there():
    assert [p.name for p in PATHS] == ["00-start-here.ipynb", "01-tape-internals.ipynb",
                                       "02-debugging-gradients.ipynb", "03-profiling.ipynb"]


def test_every_notebook_ends_with_its_checks():
    for path in PATHS:
        last = nbformat.read(path, as_version=4).cells[-1]
        assert last.cell_type == "code" and "assert" in last.source, path.name
        assert 'print("all checks passed")' in last.source, path.name


def widget_outputs(nb):
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
            if "application/vnd.jupyter.widget-view+json" in out.get("data", {})]


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_runs(path, kernel_env, tmp_path):
    """Executed headless, the notebook passes its own checks in time; exported to HTML (as the
    workbench script's headless run can be), every view it displayed still shows its picture."""
    pytest.importorskip("ipykernel")
    pytest.importorskip("nbconvert")
    from avalon.widgets.export import notebook_to_html

    nb, seconds = execute(path, CELL_TIMEOUT)
    assert "all checks passed" in printed(nb)
    assert seconds < WHOLE_NOTEBOOK, f"{path.name} took {seconds:.0f} s"
    page = notebook_to_html(nb, tmp_path / "page.html")
    views = widget_outputs(nb)
    assert views, "the notebook displays no workbench view"
    assert page.count('class="avalon-static ') >= len(views)
    assert "@jupyter-widgets/html-manager" not in page
    if path.name == "00-start-here.ipynb":  # the tour shows every view
        for kind in ("tapeview", "stepper", "profiler", "checkview"):
            assert f'class="avalon-static avalon-{kind}"' in page, kind
