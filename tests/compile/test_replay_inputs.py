"""A compiled tape called with a model's parameters as they are (Tensors, not plain arrays): its
kernels get the plain arrays behind them, so their fast paths (oneDNN's products) run as they do under
avalon.grad, and the results are the bits of a call with plain arrays."""
import numpy as np

import avalon
import avalon.nn.functional as F
from avalon.kernels.onednn import gemm
from avalon.ops import linalg


def test_parameters_reach_the_kernels_as_plain_arrays(rng, monkeypatch):
    avalon.manual_seed(0)
    model = avalon.nn.Sequential(avalon.nn.Linear(64, 128), avalon.nn.ReLU(), avalon.nn.Linear(128, 10))
    x, y = rng.standard_normal((32, 64)).astype(np.float32), rng.integers(0, 10, 32)
    tape = avalon.grad_tape(lambda m, x, y: F.cross_entropy(m(x), y), model, x, y)
    compiled = tape.compile()
    params = list(model.parameters())
    assert all(isinstance(p, avalon.Tensor) for p in params)
    seen = []
    real = gemm.matmul
    monkeypatch.setattr(linalg.gemm, "matmul", lambda a, b, **k: seen.append((type(a), type(b))) or real(a, b, **k))
    got = compiled(*params, x, y)
    assert seen and all(t is np.ndarray for pair in seen for t in pair), seen
    want = compiled(*[np.asarray(p).view(np.ndarray) for p in params], x, y)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert all(isinstance(p, avalon.Tensor) for p in model.parameters())  # the caller's objects untouched
