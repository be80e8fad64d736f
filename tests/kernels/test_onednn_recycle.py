"""avalon.kernels.onednn.recycle: a product's fresh result reuses a dropped result's memory, never one
still referenced (the array, a view of it), and never inside a trace."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
from avalon.kernels import onednn
from avalon.kernels.onednn import gemm, recycle

pytestmark = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")

SHAPE = (1024, 600)  # 2.4 MB: above SMALLEST


@pytest.fixture(autouse=True)
def _fresh_pool(monkeypatch):
    monkeypatch.setattr(recycle, "RECYCLE", True)
    monkeypatch.setattr(gemm, "MAX_THREADS", 64)
    recycle.clear()
    previous = onednn.set_enabled(True)
    yield
    onednn.set_enabled(previous)
    recycle.clear()


def test_a_dropped_array_is_handed_out_again_and_a_held_one_or_its_view_never():
    first = recycle.empty(SHAPE)
    address = first.ctypes.data
    held = recycle.empty(SHAPE)
    assert held.ctypes.data != address  # `first` is still referenced
    del first
    again = recycle.empty(SHAPE)
    assert again.ctypes.data == address
    view = again[3:]
    del again
    assert recycle.empty(SHAPE).ctypes.data not in (address, held.ctypes.data)  # the view holds it


def test_what_is_not_recycled(monkeypatch):
    recycle.empty((10, 10))
    assert (10, 10) not in recycle._kept
    recycle.empty(SHAPE, kept=False)
    assert SHAPE not in recycle._kept
    monkeypatch.setattr(recycle, "RECYCLE", False)
    recycle.empty(SHAPE)
    assert SHAPE not in recycle._kept


def test_per_shape_and_limit_bound_what_is_kept(monkeypatch):
    held = [recycle.empty(SHAPE) for _ in range(recycle.PER_SHAPE + 2)]
    assert len(recycle._kept[SHAPE]) == recycle.PER_SHAPE
    assert recycle._kept[SHAPE][-1] is held[-1]  # the oldest in use made room for the newest
    size = 4 * SHAPE[0] * SHAPE[1]
    monkeypatch.setattr(recycle, "LIMIT", size * recycle.PER_SHAPE + size // 2)
    other = [recycle.empty((SHAPE[1], SHAPE[0])) for _ in range(2)]
    assert recycle._held[0] <= recycle.LIMIT and len(recycle._kept[(SHAPE[1], SHAPE[0])]) == 0
    del held, other


def _mlp():
    avalon.manual_seed(0)
    return nn.Sequential(nn.Linear(700, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))


def _loss(model, x, y):
    return F.cross_entropy(model(x), y)


def test_weight_gradients_of_a_compiled_step_reuse_memory_and_kept_gradients_stay_as_they_were(rng):
    model = _mlp()
    batches = [(rng.standard_normal((256, 700), dtype=np.float32), rng.integers(0, 10, 256)) for _ in range(3)]
    _, (first, *_) = avalon.grad(_loss, model, *batches[0], argnums=0)
    kept = {k: np.array(v) for k, v in first.items()}
    _, (second, *_) = avalon.grad(_loss, model, *batches[1], argnums=0)  # `first` still held: nothing of it reused
    for k in kept:
        np.testing.assert_array_equal(first[k], kept[k])
        assert not np.may_share_memory(first[k], second[k])
    address = second["2.weight"].ctypes.data
    del first, second
    _, (third, *_) = avalon.grad(_loss, model, *batches[2], argnums=0)
    assert third["2.weight"].ctypes.data == address or third["0.weight"].ctypes.data == address
    previous = recycle.RECYCLE
    recycle.RECYCLE = False
    try:
        _, (plain, *_) = avalon.grad(_loss, model, *batches[2], argnums=0)
    finally:
        recycle.RECYCLE = previous
    for k in plain.keys():
        np.testing.assert_allclose(third[k], plain[k], rtol=1e-5, atol=1e-6)


def test_nothing_is_kept_while_tracing(rng):
    model = _mlp()
    x, y = rng.standard_normal((256, 700), dtype=np.float32), rng.integers(0, 10, 256)
    avalon.grad_tape(_loss, model, x, y, argnums=0)
    assert recycle._held[0] == 0
