"""avalon.kernels.onednn.gemm: float32 products on dnnl_sgemm, every layout against numpy and PyTorch."""

import numpy as np
import pytest
import torch

import avalon.threads
from avalon.kernels import onednn
from avalon.kernels.onednn import gemm, library
from avalon.kernels.onednn import matmul as batched

pytestmark = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")


@pytest.fixture(autouse=True)
def _every_size():
    """oneDNN on (even under AVALON_ONEDNN=0) and every product on it, however small, on however
    many threads and whatever the CPU (the thresholds and the CPU's choice are tested apart)."""
    smallest, gemm.SMALLEST = gemm.SMALLEST, 0
    narrowest, gemm.NARROWEST = gemm.NARROWEST, 0
    most, gemm.MAX_THREADS = gemm.MAX_THREADS, 64  # whatever OMP_NUM_THREADS the run has
    openblas, gemm.OPENBLAS_WITHOUT_AVX512 = gemm.OPENBLAS_WITHOUT_AVX512, False
    previous = onednn.set_enabled(True)
    yield
    gemm.SMALLEST, gemm.NARROWEST, gemm.MAX_THREADS = smallest, narrowest, most
    gemm.OPENBLAS_WITHOUT_AVX512 = openblas
    onednn.set_enabled(previous)


def _matrix(rng, shape, layout):
    """A float32 matrix of `shape` laid out as 'c' (C-contiguous), 't' (a transposed view), 'rows'
    (a slice of columns: rows with a stride), 'cols' (a transposed slice), 'both' (strided both ways:
    sgemm cannot read it), 'neg' (rows reversed)."""
    r, c = shape
    if layout == "c":
        return rng.standard_normal((r, c), dtype=np.float32)
    if layout == "t":
        return rng.standard_normal((c, r), dtype=np.float32).T
    if layout == "rows":
        return rng.standard_normal((r, c + 5), dtype=np.float32)[:, 2:2 + c]
    if layout == "cols":
        return rng.standard_normal((c, r + 3), dtype=np.float32)[:, 1:1 + r].T
    if layout == "both":
        return rng.standard_normal((2 * r, 2 * c), dtype=np.float32)[::2, ::2]
    return rng.standard_normal((r, c), dtype=np.float32)[::-1]


LAYOUTS = ["c", "t", "rows", "cols", "both", "neg"]


@pytest.mark.parametrize("la", LAYOUTS)
@pytest.mark.parametrize("lb", LAYOUTS)
@pytest.mark.parametrize("mkn", [(7, 5, 3), (1, 9, 4), (6, 1, 5), (8, 4, 1), (33, 65, 17)])
def test_every_operand_layout_gives_numpys_and_torchs_product(rng, la, lb, mkn):
    m, k, n = mkn
    a, b = _matrix(rng, (m, k), la), _matrix(rng, (k, n), lb)
    a_before, b_before = a.copy(), b.copy()
    got = gemm.matmul(a, b)
    np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, torch.from_numpy(a.copy()) @ torch.from_numpy(b.copy()), rtol=1e-5, atol=1e-5)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(b, b_before)


@pytest.mark.parametrize("layout", ["c", "t", "rows", "cols", "both", "neg"])
def test_out_is_written_in_place_whatever_its_layout(rng, layout):
    a, b = _matrix(rng, (9, 6), "c"), _matrix(rng, (6, 7), "t")
    out = _matrix(rng, (9, 7), layout)
    base = out.base
    assert gemm.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
    assert out.base is base


def test_sgemm_reads_strided_views_without_copying_and_refuses_what_it_cannot_read(rng):
    a = _matrix(rng, (5, 4), "cols")
    b = _matrix(rng, (4, 3), "rows")
    out = np.full((5, 3), np.nan, np.float32)
    assert gemm.sgemm(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
    assert not gemm.sgemm(_matrix(rng, (5, 4), "both"), b, out)
    assert not gemm.sgemm(a, b, _matrix(rng, (5, 3), "neg"))


def test_sgemm_accumulates_with_beta_and_scales_with_alpha(rng):
    a, b = _matrix(rng, (6, 5), "c"), _matrix(rng, (5, 4), "c")
    c0 = rng.standard_normal((6, 4), dtype=np.float32)
    out = c0.copy()
    assert gemm.sgemm(a, b, out, alpha=0.5, beta=1.0)
    np.testing.assert_allclose(out, c0 + 0.5 * (a @ b), rtol=1e-5, atol=1e-5)


def test_out_overlapping_an_operand_goes_through_a_temporary(rng):
    a = rng.standard_normal((6, 6), dtype=np.float32)
    expected = a @ a
    assert not gemm.sgemm(a, a, a)
    assert gemm.matmul(a, a, out=a) is a
    np.testing.assert_allclose(a, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape_a, shape_b", [
    ((4, 5, 6), (6, 3)), ((2, 3, 5, 6), (6, 4)), ((5, 6), (3, 6, 2)), ((3, 1, 4, 5), (2, 5, 6)),
    ((1, 4, 5), (3, 5, 2)), ((2, 4, 5), (2, 5, 3))])
def test_batched_operands_broadcast_as_in_numpy(rng, shape_a, shape_b):
    a = rng.standard_normal(shape_a, dtype=np.float32)
    b = rng.standard_normal(shape_b, dtype=np.float32)
    got = gemm.matmul(a, b)
    np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, torch.from_numpy(a) @ torch.from_numpy(b), rtol=1e-5, atol=1e-5)


def test_batched_transposed_operands_and_strided_out(rng):
    q = rng.standard_normal((2, 3, 7, 4), dtype=np.float32)
    k = rng.standard_normal((2, 3, 7, 4), dtype=np.float32)
    big = np.zeros((2, 3, 7, 9), np.float32)
    out = big[..., 1:8]
    assert gemm.matmul(q, np.swapaxes(k, -1, -2), out=out) is out
    np.testing.assert_allclose(out, q @ np.swapaxes(k, -1, -2), rtol=1e-5, atol=1e-5)
    assert (big[..., 0] == 0).all() and (big[..., 8] == 0).all()
    x = rng.standard_normal((4, 3, 5), dtype=np.float32).transpose(1, 0, 2)  # rows not in order
    w = rng.standard_normal((5, 6), dtype=np.float32)
    np.testing.assert_allclose(gemm.matmul(x, w), x @ w, rtol=1e-5, atol=1e-5)


def test_empty_dimensions_and_k_zero(rng):
    assert gemm.matmul(np.ones((0, 3), np.float32), np.ones((3, 4), np.float32)).shape == (0, 4)
    assert gemm.matmul(np.ones((2, 3), np.float32), np.ones((3, 0), np.float32)).shape == (2, 0)
    out = np.full((2, 4), 7, np.float32)
    assert gemm.matmul(np.ones((2, 0), np.float32), np.ones((0, 4), np.float32), out=out) is out
    np.testing.assert_array_equal(out, np.zeros((2, 4)))
    assert gemm.matmul(np.ones((0, 2, 3), np.float32), np.ones((3, 4), np.float32)).shape == (0, 2, 4)


def test_what_does_not_apply_returns_none_for_the_caller_to_run_numpy(rng):
    a = rng.standard_normal((4, 5), dtype=np.float32)
    b = rng.standard_normal((5, 3), dtype=np.float32)
    assert gemm.matmul(a.astype(np.float64), b.astype(np.float64)) is None
    assert gemm.matmul(a, b.astype(np.float16)) is None
    assert gemm.matmul(a, b, out=np.empty((4, 3), np.float64)) is None
    assert gemm.matmul(a, b, out=np.empty((4, 4), np.float32)) is None
    assert gemm.matmul(a[0], b) is None  # 1-D: the caller's matmul handles vectors
    previous = onednn.set_enabled(False)
    try:
        assert gemm.matmul(a, b) is None and not gemm.applies(a, b)
    finally:
        onednn.set_enabled(previous)
    gemm.SMALLEST = 4 * 5 * 3 + 1
    assert gemm.matmul(a, b) is None
    gemm.SMALLEST = 4 * 5 * 3
    assert gemm.matmul(a, b) is not None


@pytest.mark.parametrize("mkn", [(256, 1024, 10), (1024, 256, 10), (256, 10, 1024), (10, 256, 256)])
def test_a_product_with_a_side_shorter_than_narrowest_is_left_to_numpy(rng, mkn, monkeypatch):
    """A classifier head's products (10 classes): sgemm would pack them through megabytes of scratch."""
    m, k, n = mkn
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    monkeypatch.setattr(gemm, "NARROWEST", 16)
    assert gemm.matmul(a, b) is None
    monkeypatch.setattr(gemm, "NARROWEST", 10)
    np.testing.assert_allclose(gemm.matmul(a, b), a @ b, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shape", [(300, 200, 100), (64, 1000, 33)])
def test_two_threads_give_the_one_thread_product(rng, shape):
    m, k, n = shape
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32).T.copy().T
    np.testing.assert_allclose(gemm.matmul(a, b, threads=2), gemm.matmul(a, b, threads=1), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_tall_transposed_product_goes_through_its_transpose_with_the_same_values(rng, monkeypatch, threads):
    """aᵀ-stored (k, m) times b (k, n) with m ≥ TALL·n is computed as bᵀ·a into a transposed temporary,
    on sgemm at any thread count (the matmul primitive would take it at two)."""
    a = rng.standard_normal((50, 18), dtype=np.float32).T
    b = rng.standard_normal((50, 6), dtype=np.float32)
    layouts = []
    original = gemm.sgemm
    monkeypatch.setattr(gemm, "sgemm",
                        lambda x, y, out, **k: (layouts.append(gemm._layout(out)), original(x, y, out, **k))[1])
    with gemm.holding_numpy_blas(), library.keeping_threads():
        got = gemm.matmul(a, b, threads=threads)
        assert layouts == [(b"T", 18)]
        np.testing.assert_allclose(got, a @ b, rtol=1e-5, atol=1e-5)
        assert got.flags.c_contiguous
        monkeypatch.setattr(gemm, "TALL", 4)  # 18 rows by 6 columns is not tall enough now
        np.testing.assert_allclose(gemm.matmul(a, b, threads=threads), got, rtol=1e-5, atol=1e-5)
        assert (b"T", 18) not in layouts[1:]


def test_a_call_on_more_than_max_threads_is_left_to_numpy(rng, monkeypatch):
    a = rng.standard_normal((4, 5), dtype=np.float32)
    b = rng.standard_normal((5, 3), dtype=np.float32)
    monkeypatch.setattr(gemm, "MAX_THREADS", 1)
    monkeypatch.setattr(gemm, "ONE_THREAD_BELOW", 4 * 5 * 3)  # not below: a large product
    assert gemm.matmul(a, b, threads=2) is None
    assert not gemm.axpby(1.0, a, 1.0, a.copy(), threads=2)
    np.testing.assert_allclose(gemm.matmul(a, b, threads=1), a @ b, rtol=1e-5, atol=1e-5)
    previous = avalon.threads._state["threads"]
    avalon.threads._state["threads"] = 2  # what avalon.set_num_threads(2) records
    try:
        assert gemm.matmul(a, b) is None
    finally:
        avalon.threads._state["threads"] = previous


def test_a_small_product_on_more_than_max_threads_runs_on_one_thread_and_puts_the_count_back(rng, monkeypatch):
    # OpenBLAS's worker would spin after it, taking the core oneDNN's and Avalon's workers need next
    a = rng.standard_normal((3, 4, 5), dtype=np.float32)
    b = rng.standard_normal((3, 5, 6), dtype=np.float32)
    monkeypatch.setattr(gemm, "MAX_THREADS", 1)
    monkeypatch.setattr(gemm, "ONE_THREAD_BELOW", 3 * 4 * 5 * 6 + 1)  # the batch counts: 360 multiply-adds
    counts = []
    prepare = library.prepare
    monkeypatch.setattr(library, "prepare", lambda threads=None: counts.append(threads) or prepare(threads))
    with library.keeping_threads():
        library._gomp().omp_set_num_threads(2)
        np.testing.assert_allclose(gemm.matmul(a, b, threads=2), a @ b, rtol=1e-5, atol=1e-5)
        assert counts and set(counts) == {1} and library.threads() == 2
        monkeypatch.setattr(gemm, "ONE_THREAD_BELOW", 3 * 4 * 5 * 6)
        assert gemm.matmul(a, b, threads=2) is None


def test_without_avx512_one_thread_products_of_a_row_major_or_long_first_operand_are_left_to_openblas(
        rng, monkeypatch):
    monkeypatch.setattr(gemm, "OPENBLAS_WITHOUT_AVX512", True)
    monkeypatch.setattr(library, "has_avx512", lambda: False)
    monkeypatch.setitem(avalon.threads._state, "threads", 1)  # what avalon.set_num_threads(1) records
    a, w = rng.standard_normal((64, 32), dtype=np.float32), rng.standard_normal((32, 48), dtype=np.float32)
    g = rng.standard_normal((64, 48), dtype=np.float32)
    assert gemm.matmul(a, w) is None  # x·W: numpy's
    assert gemm.matmul(a, np.ascontiguousarray(w.T).T) is None  # x·Wᵀ, W stored (48, 32): numpy's
    np.testing.assert_allclose(gemm.matmul(a.T, g), a.T @ g, rtol=1e-5, atol=1e-5)  # xᵀ·g: oneDNN's
    monkeypatch.setattr(gemm, "OPENBLAS_MIN_K", 64)
    assert gemm.matmul(a.T, g) is None  # summed over OPENBLAS_MIN_K rows: numpy's
    monkeypatch.setattr(gemm, "OPENBLAS_MIN_K", 65)
    assert gemm.matmul(a.T, g) is not None
    np.testing.assert_allclose(gemm.matmul(a, w, threads=1), a @ w, rtol=1e-5, atol=1e-5)  # a count given
    assert gemm.matmul(np.stack([a, a]), np.stack([w, w])) is not None  # a batch of matrices
    monkeypatch.setattr(library, "has_avx512", lambda: True)
    assert gemm.matmul(a, w) is not None
    monkeypatch.setattr(library, "has_avx512", lambda: False)
    monkeypatch.setattr(gemm, "OPENBLAS_WITHOUT_AVX512", False)
    assert gemm.matmul(a, w) is not None
    monkeypatch.setattr(gemm, "OPENBLAS_WITHOUT_AVX512", True)
    monkeypatch.setitem(avalon.threads._state, "threads", 2)
    with library.keeping_threads():  # the call sets this thread's OpenMP count to 2
        assert gemm.matmul(a, w) is not None  # at two threads: oneDNN's


def test_has_avx512_reads_onednns_effective_isa():
    isa = library.library().dnnl_get_effective_cpu_isa()
    assert library.has_avx512() == bool(isa & 0x20)
    assert (isa in (0x1, 0x3, 0x7, 0xF, 0x1F)) == (not library.has_avx512())  # sse41 … avx2_vnni_2


@pytest.mark.parametrize("threads", [1, 2])
def test_a_second_operand_with_rows_a_kib_multiple_apart_is_multiplied_from_padded_copies(rng, monkeypatch, threads):
    copies = []
    padded = gemm._padded
    monkeypatch.setattr(gemm, "_padded", lambda b: copies.append(b.shape) or padded(b))
    a, b = rng.standard_normal((64, 512), dtype=np.float32), rng.standard_normal((512, 256), dtype=np.float32)
    with library.keeping_threads():  # a call sets this thread's OpenMP count
        _products_from_padded_copies(a, b, threads, copies, monkeypatch)


def _products_from_padded_copies(a, b, threads, copies, monkeypatch):
    got = gemm.matmul(a, b, threads=threads)
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
    assert copies == [(256, 256)] * 2  # ALIASED_ROWS_BLOCK rows at a time, added up
    monkeypatch.setattr(gemm, "PAD_ALIASED_ROWS", False)
    np.testing.assert_allclose(gemm.matmul(a, b, threads=threads), got, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(gemm, "PAD_ALIASED_ROWS", True)
    gemm.matmul(a[:63], b, threads=threads)  # too few rows of a for the copy to pay
    gemm.matmul(a, np.ascontiguousarray(b[:, :200]), threads=threads)  # rows 800 bytes apart
    gemm.matmul(a, np.ascontiguousarray(b.T).T, threads=threads)  # stored transposed
    gemm.matmul(np.ascontiguousarray(a.T).T, b, threads=threads)  # a stored transposed (a weight gradient)
    assert copies == [(256, 256)] * 2
    scratch = gemm._local.scratch
    gemm.matmul(a[:, :256], b[:256, :], threads=threads)  # the next copy reuses the thread's scratch
    assert gemm._local.scratch is scratch and len(copies) == 3
