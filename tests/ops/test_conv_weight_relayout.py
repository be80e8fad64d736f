"""conv_gemm.kernel_rows relays a weight out in blocks of output channels on numpy: the same rows as
one transpose, for every group count, kernel rank, dtype and a block count that does not divide."""
import math

import numpy as np
import pytest

from avalon.ops import conv_gemm


def one_transpose(w, groups):
    co, cg, kernel = w.shape[0], w.shape[1], w.shape[2:]
    wk = w.reshape((groups, co // groups, cg) + kernel).transpose((0,) + tuple(range(3, 3 + len(kernel))) + (2, 1))
    return wk.reshape(groups, math.prod(kernel) * cg, co // groups)


@pytest.mark.parametrize("shape, groups", [((64, 3, 7, 7), 1), ((70, 16, 3, 3), 1), ((96, 4, 3, 3), 8),
                                           ((32, 1, 3, 3), 32), ((40, 5, 3), 1), ((24, 6, 2, 3, 3), 2),
                                           ((512, 64, 1, 1), 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_rows_are_the_weights_in_the_columns_order(shape, groups, dtype):
    w = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    rows = conv_gemm.kernel_rows(np, w, groups)
    assert rows.dtype == dtype and rows.flags.c_contiguous
    np.testing.assert_array_equal(rows, one_transpose(w, groups))


def test_a_transposed_weight_view_relays_out_too():
    w = np.random.default_rng(1).standard_normal((3, 3, 16, 40)).astype(np.float32).transpose(3, 2, 0, 1)
    np.testing.assert_array_equal(conv_gemm.kernel_rows(np, w, 1), one_transpose(np.ascontiguousarray(w), 1))
