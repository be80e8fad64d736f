"""The Winograd convolutions with the batch split across threads (avalon/ops/conv_split.py) against the
same paths in one thread (`conv_split.SPLIT = False`): every primitive, batches that split evenly or not,
the direct (strided) path left whole; BLAS's thread count is put back, and a worker's error reaches the caller."""
import os
import threading

import numpy as np
import pytest

from avalon.ops import conv as cv
from avalon.ops import conv_gemm, conv_split, winograd
from forked_child import exit_code_of_forked

pytestmark = pytest.mark.usefixtures("numpy_kernels")  # these test the numpy paths

pytest.importorskip("threadpoolctl")


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.fixture
def two_threads(monkeypatch):
    """The split as on 2 BLAS threads, for the tests' narrow layers, with a chunk per sample."""
    monkeypatch.setattr(conv_gemm, "blas_threads", lambda: 2)
    monkeypatch.setattr(conv_gemm, "CHANNELS_LAST_MIN", 1)
    monkeypatch.setattr(conv_gemm, "COLUMN_BYTES_THREADED", 1)
    monkeypatch.setattr(winograd, "MIN_ROWS", 1)
    monkeypatch.setattr(conv_split, "SPLIT", True)


def _three(x, w, g, stride, padding):
    same = dict(stride=stride, padding=padding, dilation=(1, 1), groups=1)
    return (cv.conv(x, w, **same), cv.conv_transpose(g, w, shape=tuple(x.shape[2:]), **same),
            cv.conv_weight_grad(x, g, kernel=tuple(w.shape[2:]), **same))


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("stride", [(1, 1), (2, 2)], ids=["winograd", "strided"])
def test_the_split_batch_matches_one_thread(n, stride, two_threads, monkeypatch):
    assert conv_split.workers(np, n) == 2
    padding = ((1, 1), (1, 1))
    x, w = _x(n, 3, 8, 7), _x(5, 3, 3, 3, seed=1)
    g = _x(*cv.conv(x, w, stride=stride, padding=padding, dilation=(1, 1), groups=1).shape, seed=2)
    seen = set()
    original = conv_gemm.chunks
    monkeypatch.setattr(conv_gemm, "chunks", lambda *a: seen.add(threading.get_ident()) or original(*a))
    split = _three(x, w, g, stride, padding)
    # the Winograd rows' parts ran on two threads; direct im2col, mostly products, is not split
    assert len(seen) == (2 if stride == (1, 1) else 1)
    monkeypatch.setattr(conv_split, "SPLIT", False)
    whole = _three(x, w, g, stride, padding)
    for name, a, b in zip(("conv", "conv_transpose", "conv_weight_grad"), split, whole):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)


def test_blas_gets_its_thread_count_back_and_small_batches_stay_whole(two_threads):
    from threadpoolctl import threadpool_info

    before = [pool["num_threads"] for pool in threadpool_info()]
    x, w = _x(4, 3, 6, 6), _x(5, 3, 3, 3, seed=1)
    cv.conv(x, w, stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1)
    assert [pool["num_threads"] for pool in threadpool_info()] == before
    assert conv_split.workers(np, 3) == 1  # fewer than MIN_SAMPLES a thread
    assert not conv_split._in_part()


def test_an_error_in_a_worker_reaches_the_caller(two_threads):
    def part(piece, out):
        if piece.start:
            raise ValueError("from the second part")
        return np.ones(2)

    with pytest.raises(ValueError, match="second part"):
        conv_split.split_batch(np, 4, part)
    assert conv_split.split_batch(np, 4, lambda piece, out: np.full(2, piece.stop - piece.start)).tolist() == [4, 4]


def test_a_second_caller_during_a_split_runs_its_batch_whole(two_threads):
    # BLAS's thread count is process-wide: only one split sets it at a time
    pieces = []
    with conv_split._busy:
        conv_split.split_batch(np, 4, lambda piece, out: pieces.append(piece) or np.zeros(1))
    assert pieces == [slice(0, 4)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_splits_on_a_pool_of_its_own(two_threads):
    x, w = _x(4, 3, 6, 6), _x(5, 3, 3, 3, seed=1)
    same = dict(stride=(1, 1), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1)
    expected = cv.conv(x, w, **same)  # the parent's pool now has its thread
    # the child: the inherited pool has no thread; its split must still finish
    code = exit_code_of_forked(lambda: np.allclose(cv.conv(x, w, **same), expected, rtol=1e-12, atol=1e-12),
                               "the forked child's split convolution never finished")
    assert code == 0
