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


@pytest.fixture
def count_calls(monkeypatch):
    """count_calls(module, *names) -> {name: 0, …}, each count raised at every call of module.name
    (which still runs) for the rest of the test."""
    def count(module, *names):
        calls = dict.fromkeys(names, 0)
        for name in names:
            original = getattr(module, name)

            def wrapped(*args, _name=name, _original=original, **kwargs):
                calls[_name] += 1
                return _original(*args, **kwargs)
            monkeypatch.setattr(module, name, wrapped)
        return calls
    return count
