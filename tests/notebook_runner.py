"""Running notebooks headless in tests: a fresh python3 kernel per notebook, as a newcomer runs it."""
import time

import nbclient
import nbformat


def execute(path, cell_timeout):
    """Run the notebook at `path` with its own folder as working directory; (notebook, seconds)."""
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=cell_timeout,
                                     resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - start


def outputs(nb):
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def printed(nb):
    return "".join(out.get("text", "") for out in outputs(nb))
