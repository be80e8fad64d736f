"""Helpers shared by the PyTorch-parity tests of tracing: sample data, running a function on tracers,
and comparing results (values, dtypes, shapes, nested tuples) with torch's."""
import numpy as np

import avalon
from avalon.tracing import Tracer

rng = np.random.default_rng(0)

DATA = {
    "A": rng.standard_normal((2, 3, 4)).astype(np.float32),
    "A2": rng.standard_normal((2, 3, 4)).astype(np.float32),
    "P": rng.uniform(0.5, 2.0, (2, 3, 4)).astype(np.float32),  # positive
    "U": rng.uniform(-0.9, 0.9, (3, 4)).astype(np.float32),  # inside (-1, 1)
    "M": rng.standard_normal((3, 4)).astype(np.float32),
    "N": rng.standard_normal((4, 5)).astype(np.float32),
    "S": rng.standard_normal((3, 3)).astype(np.float32),
    "V": rng.standard_normal(4).astype(np.float32),
    "W": rng.standard_normal(4).astype(np.float32),
    "B": rng.standard_normal((2, 4, 5)).astype(np.float32),
    "R": rng.standard_normal((1, 3, 1)).astype(np.float32),  # length-1 axes
    "T": np.array([[1.0, 5.0, 2.0], [3.0, 3.0, -1.0]], np.float32),  # a tie in row 1
    "mask": rng.standard_normal((3, 4)) > 0,
    "cond": rng.standard_normal((2, 3, 4)) > 0,
    "idx": rng.integers(0, 4, (3, 2)),  # gather along 1 of (3, 4)
    "rows": np.array([2, 0, 2]),  # index_select / index_add along 0
    "scat": rng.integers(0, 3, (2, 4)),  # scatter_add along 0 of (3, 4)
    "X": rng.standard_normal((3, 4)).astype(np.float64),
}


def values(x):
    """Tracers replaced by the values they stood for (nested tuples and lists kept)."""
    if isinstance(x, Tracer):
        return x.node.value
    if isinstance(x, (tuple, list)) and type(x) not in (tuple, list):  # named tuples
        return type(x)(*(values(v) for v in x))
    if isinstance(x, (tuple, list)):
        return type(x)(values(v) for v in x)
    return x


def traced(fn, *arrays):
    """fn run on tracers of `arrays` (inside avalon.trace); the results as plain values, and whether
    every array result was recorded on the tape (a tracer) rather than computed off it."""
    seen = {}

    def f(*xs):
        seen["result"] = fn(*xs)
        return xs[0]

    avalon.trace(f, *arrays)
    result = seen["result"]
    leaves = result if isinstance(result, (tuple, list)) else [result]
    recorded = all(isinstance(r, Tracer) for r in leaves if hasattr(r, "shape"))
    return values(result), recorded


def assert_like_torch(ours, theirs, torch, rtol=1e-5, atol=1e-6):
    """`ours` (arrays, numbers, tuples of them) equals torch's result: values, dtypes and shapes."""
    if isinstance(theirs, torch.Tensor):
        assert hasattr(ours, "shape") and not isinstance(ours, Tracer), type(ours)
        assert tuple(ours.shape) == tuple(theirs.shape), (ours.shape, theirs.shape)
        assert str(np.dtype(ours.dtype)) == str(theirs.dtype).replace("torch.", ""), (ours.dtype, theirs.dtype)
        np.testing.assert_allclose(np.asarray(ours, dtype=np.float64), theirs.double().numpy(), rtol=rtol, atol=atol)
    elif isinstance(theirs, (tuple, list)) and not isinstance(theirs, torch.Size):
        assert len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            assert_like_torch(o, t, torch, rtol, atol)
    else:
        assert ours == (tuple(theirs) if isinstance(theirs, torch.Size) else theirs), (ours, theirs)


def assert_like_numpy(ours, expected, rtol=2e-6, atol=1e-6):
    """`ours` (arrays, numbers, tuples of them) equals numpy's result: values, dtypes and shapes."""
    if isinstance(expected, (tuple, list)):
        assert len(ours) == len(expected)
        for o, e in zip(ours, expected):
            assert_like_numpy(o, e, rtol, atol)
    elif isinstance(expected, (np.ndarray, np.generic)):
        assert not isinstance(ours, Tracer), type(ours)
        ours = np.asarray(ours)
        assert ours.shape == expected.shape and ours.dtype == expected.dtype, (ours, expected)
        np.testing.assert_allclose(ours, expected, rtol=rtol, atol=atol)
    else:
        assert ours == expected, (ours, expected)


def torch_grad(torch, fn, arrays, weight_seed=1):
    """Gradients of sum(fn(*arrays) * weights) from torch's backward (for float arguments)."""
    tensors = [torch.tensor(a, requires_grad=np.issubdtype(a.dtype, np.floating)) for a in arrays]
    out = fn(*tensors)
    out = out[0] if isinstance(out, (tuple, list)) else out
    weights = np.random.default_rng(weight_seed).standard_normal(tuple(out.shape)).astype(np.float32)
    (out * torch.tensor(weights, dtype=out.dtype)).sum().backward()
    return [t.grad.numpy() if t.grad is not None else None for t in tensors], weights
