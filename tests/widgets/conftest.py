import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

if shutil.which("dot") is None:
    collect_ignore_glob = ["test_*.py"]  # noqa: F841 - every widget test draws with Graphviz


@pytest.fixture
def net():
    from workbench_models import net_and_data

    return net_and_data()


@pytest.fixture
def small():
    """(two_layer, W1, W2, x) in float64."""
    import numpy as np

    from workbench_models import two_layer

    rng = np.random.default_rng(1)
    return two_layer, rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((5, 3))
