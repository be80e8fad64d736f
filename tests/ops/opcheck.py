"""Checks shared by the primitive tests.

`check_fd` compares Avalon's gradient with central finite differences in float64; `check_torch` runs
the same user code through Avalon in float32 and the equivalent PyTorch code, and compares values,
gradients and dtypes. Both reduce the output to a scalar with fixed random weights, so every output
element (and its position) matters.
"""
import numpy as np
import pytest

import avalon

# float32 tolerances for parity with PyTorch: a few ulps of the values involved
RTOL, ATOL = 1e-5, 1e-6


def sample(domain, shape, rng, dtype=np.float64):
    """Random values away from the points where the ops under test are not differentiable."""
    if domain == "real":
        x = rng.standard_normal(shape)
    elif domain == "pos":
        x = rng.uniform(0.5, 2.0, shape)
    elif domain == "unit":
        x = rng.uniform(-0.9, 0.9, shape)
    elif domain == "gt1":
        x = rng.uniform(1.2, 3.0, shape)
    elif domain == "away":  # |x| >= 0.3, either sign
        x = rng.uniform(0.3, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    elif domain == "distinct":  # well-separated values in random order (no ties for max/min/sort)
        size = int(np.prod(shape))
        x = rng.permutation(np.linspace(-2.0, 2.0, size)).reshape(shape)
    else:
        raise ValueError(domain)
    return np.asarray(x, dtype=dtype)


def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _weights(out, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(np.shape(o)).astype(o.dtype if _is_float(o) else np.float32)
            for o in _outputs(out)]


def weighted(fn, weights):
    """The scalar sum(fn(*args) * w) (summed over every output when fn returns several)."""
    def loss(*args):
        total = 0.0
        for o, w in zip(_outputs(fn(*args)), weights):
            total = total + (o * w).sum()
        return total

    return loss


def _is_float(a):
    return isinstance(a, (np.ndarray, np.generic)) and np.issubdtype(a.dtype, np.floating)


def check_fd(fn, *args, atol=1e-5, rtol=1e-4):
    """Avalon's gradient of a weighted sum of `fn(*args)` agrees with central differences (float64)."""
    args = [a.astype(np.float64) if _is_float(a) else a for a in args]
    weights = _weights(fn(*args))
    result = avalon.gradcheck(weighted(fn, weights), *args, atol=atol, rtol=rtol)
    assert result, str(result)
    _, grads = avalon.grad(weighted(fn, weights), *args)
    for a, g in zip(args, grads):
        if _is_float(a):
            assert g.dtype == np.float64


def _close(actual, expected, rtol, atol, what):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol, err_msg=what)


def check_torch(fn, torch_fn, *args, rtol=RTOL, atol=ATOL, dtype=np.float32):
    """`fn` through Avalon (traced, then replayed) and `torch_fn` through PyTorch agree on values,
    gradients and dtypes, in `dtype` (float32 by default)."""
    torch = pytest.importorskip("torch")
    args = [a.astype(dtype) if _is_float(a) else a for a in args]
    expected_dtypes = [np.dtype(o.dtype) for o in _outputs(fn(*args))]  # numpy's own promotion
    tensors = [torch.tensor(a, requires_grad=_is_float(a)) if isinstance(a, np.ndarray) else a for a in args]
    t_out = _outputs(torch_fn(*tensors))
    weights = _weights([t.detach().numpy() for t in t_out])
    differentiable = any(t.requires_grad for t in t_out)
    if differentiable:
        t_loss = sum((o * torch.from_numpy(w)).sum() for o, w in zip(t_out, weights))
        t_loss.backward()

    jitted = avalon.jit(fn)
    for attempt in ("traced", "replayed"):
        outs = _outputs(jitted(*args))
        assert len(outs) == len(t_out)
        for o, t, expected in zip(outs, t_out, expected_dtypes):
            assert o.dtype == expected, f"{attempt} value has dtype {o.dtype}, numpy gives {expected}"
            assert o.shape == tuple(t.shape)
            _close(o, t.detach().numpy(), rtol, atol, f"{attempt} value")
    if not differentiable:
        return
    loss = weighted(fn, weights)
    for attempt in ("traced", "replayed"):
        value, grads = avalon.grad(loss, *args)
        _close(value, t_loss.detach().numpy(), rtol, 10 * atol * max(1, sum(w.size for w in weights)),
               f"{attempt} loss")
        for i, (a, g, t) in enumerate(zip(args, grads, tensors)):
            if not _is_float(a):
                continue
            assert g.dtype == a.dtype, f"gradient of argument {i} has dtype {g.dtype}, not {a.dtype}"
            expected = t.grad.numpy() if t.grad is not None else np.zeros_like(a)
            _close(g, expected, rtol, atol, f"{attempt} gradient of argument {i}")
