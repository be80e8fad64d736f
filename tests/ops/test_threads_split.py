"""Elementwise passes and reductions split along the first axis over threads (avalon/ops/threads_split.py)
against the same calls whole (`threads_split.SPLIT = False`): fused kernels bit for bit, batch, instance,
group and layer norm forward and backward (eager and compiled) to summation order; the split really
runs on a second thread, and small passes, other array modules and overlapping outputs stay whole."""
import os
import threading

import numpy as np
import pytest

import avalon
import avalon.nn.functional as F
from avalon.kernels import Kernel
from avalon.ops import conv_gemm, conv_split, threads_split
from avalon.ops import linalg as la
from avalon.ops.worker_pool import WorkerPool
from forked_child import exit_code_of_forked


@pytest.fixture
def split(monkeypatch):
    """The split as on `blas_threads` threads, for the tests' small arrays; records the threads that ran
    the parts. A pool of its own, so that one worker, `avalon-rows_0`, takes the second part whatever
    pool an earlier test grew."""
    monkeypatch.setattr(threads_split, "_pool", WorkerPool("avalon-rows"))
    monkeypatch.setattr(conv_gemm, "blas_threads", lambda: 2)
    monkeypatch.setattr(threads_split, "MIN_BYTES", 1)
    monkeypatch.setattr(threads_split, "SPLIT", True)
    seen = []
    original = threads_split._single
    monkeypatch.setattr(threads_split, "_single",
                        lambda part, piece: seen.append((threading.current_thread().name, piece))
                        or original(part, piece))
    return seen


def _x(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


KERNELS = [
    ("where(x > 0, g, 0)", "xg", [(6, 3, 4, 5), (6, 3, 4, 5)]),      # ReLU's backward
    ("where(x > 0, g + h, 0)", "xgh", [(6, 3, 4, 5)] * 3),            # with a residual's gradient
    ("maximum(x + y, 0)", "xy", [(6, 3, 4, 5), (1, 3, 1, 1)]),        # broadcast along the batch
    ("x * y - z", "xyz", [(7, 3, 4), (4,), (7, 1, 1)]),               # from the right, and odd rows
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("text, names, shapes", KERNELS, ids=[k for k, _, _ in KERNELS])
def test_a_split_kernel_is_bit_for_bit_the_whole(text, names, shapes, dtype, split, monkeypatch):
    names = list(names)
    arrays = [_x(*s, seed=i, dtype=dtype) for i, s in enumerate(shapes)]
    got = Kernel(text, names)(*arrays)
    assert {name for name, _ in split} == {"MainThread", "avalon-rows_0"}
    n = shapes[0][0]
    assert sorted((p for _, p in split), key=lambda p: p.start) == [slice(0, n // 2), slice(n // 2, n)]
    monkeypatch.setattr(threads_split, "SPLIT", False)
    expected = Kernel(text, names)(*arrays)
    assert got.dtype == expected.dtype == dtype
    np.testing.assert_array_equal(got, expected)
    assert len(split) == 2  # switched off: no part ran


def test_three_threads_split_uneven_rows_into_out(split, monkeypatch):
    monkeypatch.setattr(conv_gemm, "blas_threads", lambda: 3)
    x, g = _x(7, 3, 5), _x(7, 3, 5, seed=1)
    out = np.full_like(x, np.nan)
    assert Kernel("where(x > 0, g, 0)", ["x", "g"])(x, g, out=out) is out
    assert sorted((p for _, p in split), key=lambda p: p.start) == [slice(0, 2), slice(2, 4), slice(4, 7)]
    np.testing.assert_array_equal(out, np.where(x > 0, g, 0))


def test_an_output_that_is_an_input_splits_and_a_shifted_one_stays_whole(split):
    x, y = _x(8, 6), _x(8, 6, seed=1)
    expected = np.maximum(x + y, 0)
    Kernel("maximum(x + y, 0)", ["x", "y"])(x, y, out=x)  # in place: each part reads its own rows
    assert len(split) == 2
    np.testing.assert_array_equal(x, expected)
    a = _x(9, 6, seed=2)
    expected = a[:8] * 2 + a[:8]
    split.clear()
    Kernel("x * 2 + x", ["x"])(a[:8], out=a[1:])  # a part would read rows another one wrote
    assert split == []
    np.testing.assert_array_equal(a[1:], expected)


def test_small_passes_and_one_thread_stay_whole(monkeypatch):
    monkeypatch.setattr(threads_split, "SPLIT", True)
    monkeypatch.setattr(conv_gemm, "blas_threads", lambda: 2)
    assert threads_split.workers(np, 64, threads_split.MIN_BYTES - 1) == 1
    assert threads_split.workers(np, 1, 1 << 30) == 1
    assert threads_split.workers(np, 64, threads_split.MIN_BYTES) == 2
    assert threads_split.workers(None, 64, 1 << 30) == 1  # not numpy's arrays
    monkeypatch.setattr(conv_gemm, "blas_threads", lambda: 1)
    assert threads_split.workers(np, 64, 1 << 30) == 1


def test_avalons_thread_count_wins_over_the_environments(monkeypatch):
    # avalon.set_num_threads(1) on a 2-core machine without OMP_NUM_THREADS: no second thread
    monkeypatch.setattr(threads_split, "SPLIT", True)
    monkeypatch.setattr(conv_split, "SPLIT", True)
    monkeypatch.setattr(conv_gemm, "blas_threads", lambda: 2)
    monkeypatch.setitem(avalon.threads._state, "threads", 1)  # what avalon.set_num_threads(1) records
    assert threads_split.workers(np, 64, 1 << 30) == 1 and conv_split.workers(np, 64) == 1
    monkeypatch.setattr(conv_gemm, "blas_threads", lambda: 1)
    monkeypatch.setitem(avalon.threads._state, "threads", 2)
    assert threads_split.workers(np, 64, 1 << 30) == 2
    assert conv_split.workers(np, 64) == (2 if conv_split._controller() is not None else 1)  # (threadpoolctl)


def test_a_part_does_not_split_again_and_errors_reach_the_caller(split):
    inner = threads_split.over_rows(4, 2, lambda p: threads_split.workers(np, 64, 1 << 30))
    assert inner == [1, 1]

    def fails(piece):
        if piece.start:
            raise ValueError("the second part failed")
        return 0

    with pytest.raises(ValueError, match="second part"):
        threads_split.over_rows(4, 2, fails)


def _norms(x, w, b):
    c = x.shape[1]
    return [F.batch_norm(x, None, None, w, b, training=True), F.instance_norm(x, weight=w, bias=b),
            F.group_norm(x, 3, w, b) if c % 3 == 0 else F.group_norm(x, 1, w, b),
            F.layer_norm(x, x.shape[1:])]


def _loss(x, w, b):
    g = _x(*x.shape, seed=5, dtype=x.dtype)
    return sum((F.relu(y) * g).sum() + (y * y).sum() for y in _norms(x, w, b))


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_normalisation_forward_and_gradients_match_the_whole_pass(dtype, tol, split, monkeypatch):
    x, w, b = _x(6, 3, 5, 4, dtype=dtype), _x(3, seed=1, dtype=dtype), _x(3, seed=2, dtype=dtype)
    forward = [np.asarray(y) for y in _norms(x, w, b)]
    value, grads = avalon.grad(_loss, x, w, b, argnums=(0, 1, 2))
    assert "avalon-rows_0" in {name for name, _ in split}
    monkeypatch.setattr(threads_split, "SPLIT", False)
    count = len(split)
    forward_whole = [np.asarray(y) for y in _norms(x, w, b)]
    value_whole, grads_whole = avalon.grad(_loss, x, w, b, argnums=(0, 1, 2))
    assert len(split) == count
    for got, expected in zip([*forward, value, *grads], [*forward_whole, value_whole, *grads_whole]):
        got, expected = np.asarray(got), np.asarray(expected)
        assert got.dtype == expected.dtype == dtype and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


def test_a_compiled_batch_norm_step_matches_the_whole_pass(split, monkeypatch):
    x, w, b = _x(8, 4, 6, 6), _x(4, seed=1), _x(4, seed=2)

    def loss(x, w, b):
        y = F.batch_norm(x, None, None, w, b, training=True)
        return (F.relu(y + x) * _x(*x.shape, seed=5)).sum()

    compiled = avalon.grad_tape(loss, x, w, b, argnums=(0, 1, 2)).compile()
    got = [np.array(v) for v in compiled(x, w, b)], [np.array(v) for v in compiled(x, w, b)]
    assert "avalon-rows_0" in {name for name, _ in split}
    monkeypatch.setattr(threads_split, "SPLIT", False)
    expected = [np.array(v) for v in compiled(x, w, b)]
    for replay in got:
        for a, e in zip(replay, expected):
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("subscripts, shapes", [
    ("abcd->b", [(6, 3, 4, 5)]),                        # a batch norm's mean
    ("abcd,abcd->b", [(6, 3, 4, 5), (6, 3, 4, 5)]),     # its variance, and its backward's Σ g·c
    ("ab,abc->c", [(9, 3), (9, 3, 40)]),                # operands of different ranks
])
def test_an_einsum_over_the_batch_is_the_sum_of_its_parts(subscripts, shapes, split, monkeypatch):
    operands = [_x(*s, seed=i, dtype=np.float64) for i, s in enumerate(shapes)]
    got = la.einsum(*operands, subscripts=subscripts)
    assert len(split) == 2
    np.testing.assert_allclose(got, np.einsum(subscripts, *operands), rtol=1e-12, atol=1e-12)
    monkeypatch.setattr(threads_split, "SPLIT", False)
    np.testing.assert_allclose(la.einsum(*operands, subscripts=subscripts), got, rtol=1e-12, atol=1e-12)
    assert len(split) == 2


@pytest.mark.parametrize("subscripts, shapes", [
    ("ab,bc->ac", [(8, 4), (4, 5)]),                    # the batch is kept
    ("ab,ac->bc", [(8, 40), (8, 50)]),                  # the result as large as the operands
    ("aa->", [(8, 8)]),                                 # a diagonal
    ("ab,cb->c", [(8, 4), (8, 4)]),                     # the second operand's first index is another
])
def test_other_einsums_run_whole(subscripts, shapes, split):
    operands = [_x(*s, seed=i, dtype=np.float64) for i, s in enumerate(shapes)]
    np.testing.assert_allclose(la.einsum(*operands, subscripts=subscripts), np.einsum(subscripts, *operands),
                               rtol=1e-12, atol=1e-12)
    assert split == []


@pytest.mark.parametrize("with_out", [False, True])
def test_relu_splits_bit_for_bit_and_integers_stay_whole(with_out, split, monkeypatch):
    from avalon.ops import elementwise as ew

    x = _x(6, 3, 5)
    out = np.empty_like(x) if with_out else None
    got = np.asarray(ew.relu(x, out=out))
    assert len(split) == 2 and (not with_out or np.shares_memory(got, out))
    monkeypatch.setattr(threads_split, "SPLIT", False)
    expected = np.asarray(ew.relu(x))
    assert got.dtype == expected.dtype and len(split) == 2
    np.testing.assert_array_equal(got, expected)
    monkeypatch.setattr(threads_split, "SPLIT", True)
    ints = np.arange(-12, 12).reshape(6, 4)
    np.testing.assert_array_equal(np.asarray(ew.relu(ints)), np.maximum(ints, 0))
    assert len(split) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_splits_on_threads_of_its_own(split):
    assert threads_split.over_rows(4, 2, lambda p: p.stop) == [2, 4]  # the parent's pool has a thread
    # the child: its inherited pool has no thread; a split must still finish
    code = exit_code_of_forked(lambda: threads_split.over_rows(4, 2, lambda p: p.stop) == [2, 4],
                               "the forked child's split never finished")
    assert code == 0
