"""Resampling along an axis with one input (the gradient of pooling to size 1, an upsampling of a 1-pixel
map) is a broadcast product in ops/vision.py: the same numbers as the general matrix path, and PyTorch's."""
import numpy as np
import pytest

import avalon
import avalon.nn.functional as F
from avalon.ops import vision as vs


def _by_matrices(x, maps, transpose):
    """The general path: each axis's matrix applied with a product (numpy's matmul over the axis)."""
    first = x.ndim - len(maps)
    for axis in range(x.ndim - 1, first - 1, -1):
        m = vs.axis_matrix(maps[axis - first], str(x.dtype))
        if m is not None:
            x = np.moveaxis(np.tensordot(m.T if transpose else m, x, axes=([1], [axis])), 0, axis)
    return x


@pytest.mark.parametrize("maps", [(("area", 6, 1), ("area", 7, 1)), (("area", 5, 1), ("area", 4, 2)),
                                  (("linear", 1, 5, False, None), ("linear", 1, 3, True, None))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_input_along_an_axis_is_the_matrix_product(rng, maps, dtype):
    outs = tuple(m[2] for m in maps)
    g = rng.standard_normal((2, 3) + outs).astype(dtype)
    got = vs.resample_transpose.impl(g, maps=maps)
    np.testing.assert_allclose(got, _by_matrices(g, maps, True), rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert got.flags.c_contiguous and got.dtype == dtype
    ins = tuple(m[1] for m in maps)
    x = rng.standard_normal((2, 3) + ins).astype(dtype)
    np.testing.assert_allclose(vs.resample.impl(x, maps=maps), _by_matrices(x, maps, False),
                               rtol=1e-6 if dtype == np.float32 else 1e-12)


def test_global_average_pool_gradient_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 5, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 5, 1, 1)).astype(np.float32)
    _, (grad,) = avalon.grad(lambda x: (F.adaptive_avg_pool2d(x, 1) * w).sum(), x)
    tx = torch.tensor(x, requires_grad=True)
    (torch.nn.functional.adaptive_avg_pool2d(tx, 1) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-6, atol=1e-7)
