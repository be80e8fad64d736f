"""The tutorials run from top to bottom, headless, and are committed clean.

Each notebook ends with assertions on its own results (accuracies, losses, agreement with PyTorch), so
executing it is the test: a failing cell fails the test with the cell and its traceback. The
notebooks are also run once with `import torch` made to fail, since a fresh install without PyTorch
must still run them (only the side-by-side cells skip, saying so).
"""
import os
import pathlib
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = pathlib.Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "tutorials"
TUTORIAL_NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
COMMITTED_NOTEBOOKS = sorted([*TUTORIAL_NOTEBOOKS, *(ROOT / "notebooks").glob("*.ipynb")])

CELL_TIMEOUT = 300  # seconds; a whole tutorial takes well under a minute on two cores
SKIP_MESSAGE = "torch is not installed: skipping the side-by-side check"


def execute(path):
    """Run the notebook at `path` in a fresh python3 kernel, with tutorials/ as working directory."""
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT,
                                     resources={"metadata": {"path": str(TUTORIALS)}})
    start = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - start


def outputs(nb):
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def printed(nb):
    return "".join(out.get("text", "") for out in outputs(nb))


@pytest.fixture
def kernel_env(monkeypatch):
    """One BLAS thread per kernel: the suite runs two workers on two cores, and multi-threaded BLAS on
    small matrices with every core busy is many times slower than one thread."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return monkeypatch


def test_there_are_seven_tutorials():
    names = [p.name for p in TUTORIAL_NOTEBOOKS]
    assert names == ["01-mlp-digits.ipynb", "02-cnn-digits.ipynb", "03-regression-diabetes.ipynb",
                     "04-char-lstm.ipynb", "05-tiny-gpt.ipynb", "06-vae-digits.ipynb",
                     "07-transfer-learning.ipynb"]


@pytest.mark.slow
@pytest.mark.parametrize("path", TUTORIAL_NOTEBOOKS, ids=lambda p: p.stem)
def test_tutorial_runs(path, kernel_env):
    pytest.importorskip("ipykernel")
    nb, seconds = execute(path)
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
    nb, _ = execute(path)
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
