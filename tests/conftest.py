"""Shared fixtures: every test starts from the same numpy random state; notebook kernels get one BLAS thread."""
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seeded_numpy():
    np.random.seed(0)


@pytest.fixture
def rng():
    """A fresh, seeded numpy Generator."""
    return np.random.default_rng(0)


@pytest.fixture
def kernel_env(monkeypatch):
    """One BLAS thread per notebook kernel: the suite runs two workers on two cores, and threaded BLAS
    on small matrices with every core busy is many times slower than one thread."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return monkeypatch
