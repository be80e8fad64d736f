"""Shared fixtures: every test starts from the same numpy random state."""
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seeded_numpy():
    np.random.seed(0)


@pytest.fixture
def rng():
    """A fresh, seeded numpy Generator."""
    return np.random.default_rng(0)
