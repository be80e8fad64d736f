"""Single float32 products on oneDNN's matmul primitive (avalon/kernels/onednn/matmul.py `matrix`, chosen
by gemm._product): which layouts and thread counts take it, the values of every layout against float64
numpy, and the fallbacks to dnnl_sgemm (a reference kernel refused, MATRICES off)."""
import numpy as np
import pytest

from avalon.kernels import onednn
from avalon.kernels.onednn import gemm, library
from avalon.kernels.onednn import matmul as batched
from avalon.kernels.onednn import primitive as P

pytestmark = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")


@pytest.fixture
def routes(monkeypatch):
    """Every product on oneDNN (none too small or narrow, any thread count); yields the list of routes
    taken, 'matrix' (the primitive) or 'sgemm', one per product."""
    taken = []
    matrix, sgemm = batched.matrix, gemm.sgemm

    def spy(name, original):
        def call(*args, **kwargs):
            done = original(*args, **kwargs)
            if done:
                taken.append(name)
            return done
        return call

    monkeypatch.setattr(batched, "matrix", spy("matrix", matrix))
    monkeypatch.setattr(gemm, "sgemm", spy("sgemm", sgemm))
    monkeypatch.setattr(gemm, "SMALLEST", 0)
    monkeypatch.setattr(gemm, "MAX_THREADS", 64)
    previous = onednn.set_enabled(True)
    with library.keeping_threads():
        yield taken
    onednn.set_enabled(previous)


def _laid_out(rng, rows, cols, layout):
    if layout == "t":  # a transposed view: columns contiguous
        return rng.standard_normal((cols, rows), dtype=np.float32).T
    if layout == "rows":  # a slice of columns: rows with a stride
        return rng.standard_normal((rows, cols + 3), dtype=np.float32)[:, 1:1 + cols]
    return rng.standard_normal((rows, cols), dtype=np.float32)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("a_layout", ["c", "t", "rows"])
@pytest.mark.parametrize("b_layout", ["c", "t", "rows"])
def test_every_layout_gives_numpys_values_on_the_route_for_its_thread_count(routes, a_layout, b_layout, threads):
    rng = np.random.default_rng(0)
    a, b = _laid_out(rng, 37, 53, a_layout), _laid_out(rng, 53, 29, b_layout)
    got = gemm.matmul(a, b, threads=threads)
    np.testing.assert_allclose(got, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-4)
    # several threads: always the primitive; one: only for b stored transposed (sgemm is faster on the rest)
    assert routes == ["matrix" if threads > 1 or b_layout == "t" else "sgemm"]


def test_the_product_is_written_into_out_where_it_lies(routes):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((40, 30), dtype=np.float32), rng.standard_normal((20, 30), dtype=np.float32).T
    out = np.full((40, 26), np.nan, np.float32)[:, 3:23]  # strided rows
    assert gemm.matmul(a, b, out=out, threads=2) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
    assert routes == ["matrix"]


def test_a_reference_kernel_is_refused_and_sgemm_runs_instead(routes, monkeypatch):
    monkeypatch.setattr(P.Primitive, "implementation", lambda self: "ref:any")
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((41, 19), dtype=np.float32), rng.standard_normal((19, 23), dtype=np.float32)
    assert not batched.matrix(a, b, np.empty((41, 23), np.float32), threads=2)
    routes.clear()
    np.testing.assert_allclose(gemm.matmul(a, b, threads=2), a @ b, rtol=1e-5, atol=1e-5)
    assert routes == ["sgemm"]


def test_matrices_off_sends_every_single_product_to_sgemm(routes, monkeypatch):
    monkeypatch.setattr(batched, "MATRICES", False)
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((33, 17), dtype=np.float32), rng.standard_normal((21, 17), dtype=np.float32).T
    np.testing.assert_allclose(gemm.matmul(a, b, threads=2), a @ b, rtol=1e-5, atol=1e-5)
    assert routes == ["sgemm"]
