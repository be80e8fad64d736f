"""The tutorials run from top to bottom, headless, and are committed clean.

Each notebook ends with assertions on its own results (accuracies, losses, agreement with PyTorch), so
executing it is the test: a failing cell fails the test with the cell and its traceback. The
notebooks are also run once with `import torch` made to fail, since a fresh install without PyTorch
must still run them (only the side-by-side cells skip, saying so).
"""
import os
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
from notebook_runner import execute, outputs, printed  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "tutorials"
TUTORIAL_NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
COMMITTED_NOTEBOOKS = sorted([*TUTORIAL_NOTEBOOKS, *(ROOT / "notebooks").glob("*.ipynb")])

CELL_TIMEOUT = 300  # seconds; a whole tutorial takes well under a minute on two cores
SKIP_MESSAGE = "torch is not installed: skipping the side-by-side check"


def test_there_are_nine_tutorials():
    names = [p.name for p in TUTORIAL_NOTEBOOKS]
    assert names == ["01-mlp-digits.ipynb", "02-cnn-digits.ipynb", "03-regression-diabetes.ipynb",
                     "04-char-lstm.ipynb", "05-tiny-gpt.ipynb", "06-vae-digits.ipynb",
                     "07-transfer-learning.ipynb", "08-port-a-gpt-file.ipynb", "09-onnx-transfer.ipynb"]


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIAL_NOTEBOOKS, ids=lambda p: p.stem)
def test_tutorial_runs(path, kernel_env):
    pytest.importorskip("ipykernel")
    nb, seconds = execute(path, CELL_TIMEOUT)
    text = printed(nb)
    assert "all checks passed" in text
    assert any("image/png" in out.get("data", {}) for out in outputs(nb)), "no figure was drawn"
    try:
        import torch  # noqa: F401
    except ImportError:
        assert SKIP_MESSAGE in text
    else:
        assert SKIP_MESSAGE not in text
    assert seconds < 240, f"{path.name} took {seconds:.0f} s; tutorials must stay quick on a 2-core CPU"


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIAL_NOTEBOOKS, ids=lambda p: p.stem)
def test_tutorial_runs_without_torch(path, kernel_env, tmp_path):
    """A module named torch that fails to import shadows the real one in the kernel."""
    pytest.importorskip("ipykernel")
    (tmp_path / "torch.py").write_text("raise ImportError('torch is hidden for this test')\n")
    kernel_env.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    nb, _ = execute(path, CELL_TIMEOUT)
    text = printed(nb)
    assert SKIP_MESSAGE in text
    assert "all checks passed" in text


@pytest.mark.parametrize("path", COMMITTED_NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_notebook_is_committed_clean(path):
    """No outputs, no execution counts, no widget state: the repository holds sources, not results."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert "widgets" not in nb.metadata, "widget state in the notebook metadata"
    for index, cell in enumerate(nb.cells):
        where = f"{path.name}, cell {index}"
        assert "widgets" not in cell.metadata, f"widget state in {where}"
        assert "execution" not in cell.metadata, f"execution timings in {where}"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"outputs in {where}"
            assert cell.execution_count is None, f"an execution count in {where}"
