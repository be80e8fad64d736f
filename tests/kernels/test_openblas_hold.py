"""numpy's OpenBLAS held to one thread while Avalon's multithreaded kernels run (avalon.kernels.openblas):
the count inside and after a block, with nested and concurrent holders; compiled replays and optimiser
steps on more than one thread run held, their products and updates on oneDNN at the full count, with
the values of the unheld path."""
import threading

import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
from avalon.kernels import onednn, openblas
from avalon.kernels.onednn import gemm, library
from avalon.kernels.onednn import matmul as batched

threadpoolctl = pytest.importorskip("threadpoolctl")
pytestmark = pytest.mark.skipif(not openblas._setter(), reason="numpy's BLAS is not OpenBLAS")
needs_onednn = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")


def _openblas_threads():
    return next(p["num_threads"] for p in threadpoolctl.threadpool_info() if p["internal_api"] == "openblas")


@pytest.fixture
def two_threads(monkeypatch):
    """Two BLAS threads and avalon.set_num_threads(2)'s record, put back after; oneDNN on."""
    monkeypatch.setitem(avalon.threads._state, "threads", 2)
    previous = onednn.set_enabled(True) if onednn.available() else None
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"), library.keeping_threads():
        yield
    if previous is not None:
        onednn.set_enabled(previous)


def test_the_block_runs_on_one_thread_and_the_count_comes_back(two_threads):
    assert _openblas_threads() == 2 and not openblas.held()
    with openblas.one_thread():
        assert _openblas_threads() == 1 and openblas.held()
        with openblas.one_thread():  # nested: the inner holder leaves the count alone
            pass
        assert _openblas_threads() == 1
    assert _openblas_threads() == 2 and not openblas.held()


def test_holders_on_several_threads_put_the_count_back_when_the_last_leaves(two_threads):
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


def test_an_exception_in_the_block_puts_the_count_back(two_threads):
    with pytest.raises(KeyError):
        with openblas.one_thread():
            raise KeyError("x")
    assert _openblas_threads() == 2


def _mlp_step(seed=0):
    """A Linear-ReLU-Linear model, a batch and its loss function; products of 2²¹ multiply-adds and up."""
    avalon.manual_seed(seed)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 64))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((128, 256), dtype=np.float32)
    y = rng.integers(0, 64, 128)
    return model, x, y, lambda m, x, y: F.cross_entropy(m(x), y)


@needs_onednn
def test_a_replay_on_two_threads_runs_its_products_on_onednn_at_two_with_openblas_held(two_threads, monkeypatch):
    seen = []
    originals = {"sgemm": (gemm, gemm.sgemm), "matrix": (batched, batched.matrix)}

    def spy(original):
        def call(a, b, out, *args, threads=None, **kwargs):
            seen.append((_openblas_threads(), library.threads(threads)))
            return original(a, b, out, *args, threads=threads, **kwargs)
        return call

    model, x, y, loss_fn = _mlp_step()
    results = {}
    for hold in (True, False):
        monkeypatch.setattr(gemm, "HOLD_NUMPY_BLAS", hold)
        avalon.grad(loss_fn, model, x, y, argnums=0)  # the first call traces
        for name, (module, original) in originals.items():
            monkeypatch.setattr(module, name, spy(original))
        seen.clear()
        results[hold] = avalon.grad(loss_fn, model, x, y, argnums=0)
        for name, (module, original) in originals.items():
            monkeypatch.setattr(module, name, original)
        if hold:
            assert seen and set(seen) == {(1, 2)}  # every product: OpenBLAS on one, oneDNN on both
        else:
            assert all(count == 1 for _, count in seen)  # oneDNN held to one thread (ONE_THREAD_BELOW) or numpy
        assert _openblas_threads() == 2 and not openblas.held()
    (loss_held, (grads_held, *_)), (loss_free, (grads_free, *_)) = results[True], results[False]
    np.testing.assert_allclose(loss_held, loss_free, rtol=1e-6)
    for name in ("0.weight", "0.bias", "2.weight", "2.bias"):
        np.testing.assert_allclose(grads_held[name], grads_free[name], rtol=1e-4, atol=1e-6)


@needs_onednn
def test_a_replay_on_one_thread_or_without_onednn_holds_nothing(two_threads, monkeypatch):
    counts = []
    model, x, y, loss_fn = _mlp_step()
    tape = avalon.grad_tape(loss_fn, model, x, y, argnums=0)
    compiled = tape.compile()
    monkeypatch.setattr(batched, "MATRICES", False)  # every product asks sgemm
    monkeypatch.setattr(gemm, "sgemm", lambda *a, **k: counts.append(_openblas_threads()) or False)
    inputs = [node.value for node in tape.inputs]
    compiled(*inputs)
    assert counts and set(counts) == {1}
    for setting in ("one thread", "oneDNN off"):
        counts.clear()
        if setting == "one thread":
            monkeypatch.setitem(avalon.threads._state, "threads", 1)
        else:
            monkeypatch.setitem(avalon.threads._state, "threads", 2)
            onednn.set_enabled(False)
        with gemm.holding_numpy_blas():
            assert not openblas.held()
        compiled(*inputs)
        assert not counts or set(counts) == {2}, setting


@needs_onednn
def test_sgd_on_two_threads_updates_on_onednn_with_the_numpy_paths_values(two_threads, monkeypatch):
    calls = []
    axpby = gemm.axpby
    rng = np.random.default_rng(2)
    start = rng.standard_normal((512, 256), dtype=np.float32)  # 2¹⁷ elements: on oneDNN at two threads

    def spy(alpha, x, beta, y, **kwargs):
        done = axpby(alpha, x, beta, y, **kwargs)
        if x.size == start.size:  # not the one-element stand-ins a first step counts its state with
            calls.append((openblas.held(), done))
        return done

    monkeypatch.setattr(gemm, "axpby", spy)
    grads = [rng.standard_normal(start.shape, dtype=np.float32) for _ in range(3)]
    ends = {}
    for hold in (True, False):
        monkeypatch.setattr(gemm, "HOLD_NUMPY_BLAS", hold)
        calls.clear()
        param = start.copy().view(avalon.Tensor)
        opt = avalon.optim.SGD([param], lr=0.1, momentum=0.9)
        for g in grads:
            opt.step([g])
        assert calls and all(entry == (hold, hold) for entry in calls)
        ends[hold] = param
    np.testing.assert_allclose(ends[True], ends[False], rtol=1e-6, atol=1e-6)
    assert _openblas_threads() == 2
