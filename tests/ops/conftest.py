"""Fixtures of the ops tests."""
import pytest

from avalon.kernels import onednn


@pytest.fixture
def numpy_kernels():
    """oneDNN off for the test: tests of the numpy convolution paths (im2col, Winograd, the batch split)
    would otherwise run oneDNN's, which takes every float32 convolution when it is installed."""
    previous = onednn.set_enabled(False)
    yield
    onednn.set_enabled(previous)
