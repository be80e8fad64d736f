"""avalon.kernels.openblas.one_thread: numpy's OpenBLAS held to one thread inside the block, the count
put back by the last holder; and gemm.numpy_threads, which products it holds."""
import threading

import numpy as np
import pytest

import avalon.threads
from avalon.kernels import onednn, openblas
from avalon.kernels.onednn import gemm

threadpoolctl = pytest.importorskip("threadpoolctl")
pytestmark = pytest.mark.skipif(not openblas._setter(), reason="numpy's BLAS is not OpenBLAS")


def _openblas_threads():
    return next(p["num_threads"] for p in threadpoolctl.threadpool_info() if p["internal_api"] == "openblas")


@pytest.fixture
def two_blas_threads():
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        yield


def test_the_block_runs_on_one_thread_and_the_count_comes_back(two_blas_threads):
    assert _openblas_threads() == 2
    with openblas.one_thread():
        assert _openblas_threads() == 1
        with openblas.one_thread():  # nested: the inner holder does not put the count back
            pass
        assert _openblas_threads() == 1
    assert _openblas_threads() == 2


def test_holders_on_several_threads_leave_the_count_as_it_was(two_blas_threads):
    inside, release = threading.Barrier(3), threading.Event()

    def hold():
        with openblas.one_thread():
            inside.wait()
            release.wait()

    workers = [threading.Thread(target=hold) for _ in range(2)]
    for worker in workers:
        worker.start()
    inside.wait()
    assert _openblas_threads() == 1
    release.set()
    for worker in workers:
        worker.join()
    assert _openblas_threads() == 2


def test_an_exception_in_the_block_puts_the_count_back(two_blas_threads):
    with pytest.raises(KeyError):
        with openblas.one_thread():
            raise KeyError("x")
    assert _openblas_threads() == 2


@pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")
def test_numpy_threads_holds_small_float32_products_on_more_than_one_thread(monkeypatch, two_blas_threads):
    monkeypatch.setitem(avalon.threads._state, "threads", 2)
    monkeypatch.setattr(gemm, "MAX_THREADS", 1)
    previous = onednn.set_enabled(True)
    try:
        a, b = np.ones((256, 1024), np.float32), np.ones((1024, 10), np.float32)  # a classifier head's

        def held(a, b, **kw):
            with gemm.numpy_threads(a, b, **kw):
                return _openblas_threads() == 1

        assert held(a, b)
        assert not held(a, b, threads=1)
        assert not held(a.astype(np.float64), b.astype(np.float64))
        monkeypatch.setattr(gemm, "ONE_THREAD_BELOW", 256 * 1024 * 10)
        assert not held(a, b)  # large: OpenBLAS's threads pay
        monkeypatch.setattr(gemm, "HOLD_OPENBLAS", False)
        monkeypatch.setattr(gemm, "ONE_THREAD_BELOW", 1 << 26)
        assert not held(a, b)
        monkeypatch.setattr(gemm, "HOLD_OPENBLAS", True)
        onednn.set_enabled(False)
        assert not held(a, b)
    finally:
        onednn.set_enabled(previous)


@pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")
def test_a_linear_head_at_two_threads_runs_its_products_held_with_numpys_values(monkeypatch, two_blas_threads):
    import avalon
    import avalon.nn as nn

    monkeypatch.setitem(avalon.threads._state, "threads", 2)
    seen = []
    matmul = np.matmul
    monkeypatch.setattr(np, "matmul", lambda *a, **k: seen.append(_openblas_threads()) or matmul(*a, **k))
    layer = nn.Linear(1024, 10)
    x = np.random.default_rng(0).standard_normal((256, 1024)).astype(np.float32)
    value, (grads, gx) = avalon.grad(lambda m, x: (m(x) ** 2).sum(), layer, x)
    assert seen and set(seen) == {1}
    w, b = layer.weight, layer.bias
    y = x @ w.T + b
    np.testing.assert_allclose(grads["weight"], 2 * y.T @ x, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(gx, 2 * y @ w, rtol=1e-4, atol=1e-3)
    assert _openblas_threads() == 2
