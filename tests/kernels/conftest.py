import pytest

from avalon.kernels import onednn


@pytest.fixture
def onednn_on():
    """oneDNN on for a test (AVALON_ONEDNN=0 switches it off for the rest of the suite), as it was after."""
    previous = onednn.set_enabled(True)
    yield
    onednn.set_enabled(previous)
