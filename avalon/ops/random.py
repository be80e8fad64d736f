"""Random primitives. Recorded on the tape like any other call but marked `random`, so the compiler
neither folds nor merges them: a cached replay draws fresh numbers, exactly like running the code again.
All draw from one generator, reseeded by `avalon.manual_seed`. Threads may draw at once: a numpy
generator takes its own lock for each draw, so each draw is one whole block of the stream.
"""
import threading

import numpy as np

from ..backend import device_of, namespace
from ..errors import AvalonError
from .primitive import primitive

_state = {"numpy": np.random.default_rng()}
_making = threading.Lock()  # the GPU generator is made on first use: by one thread


def manual_seed(seed):
    """Seed the generators behind `avalon.rand`, `randn`, dropout and initialisation (numpy and cupy)."""
    _state["numpy"] = np.random.default_rng(seed)
    if "cupy" in _state:
        import cupy

        _state["cupy"] = cupy.random.default_rng(seed)
    _state["seed"] = seed


def manual_seed_cuda(seed):
    """Seed the GPU (cupy) generator alone (`avalon.cuda.manual_seed`)."""
    import cupy

    _state["cupy"] = cupy.random.default_rng(seed)


def generator(device="cpu"):
    """The generator for `device` ('cpu' → a numpy Generator, 'cuda' → a cupy one)."""
    if str(device).startswith("cuda"):
        with _making:
            if "cupy" not in _state:
                import cupy

                _state["cupy"] = cupy.random.default_rng(_state.get("seed"))
        return _state["cupy"]
    return _state["numpy"]


@primitive("uniform", random=True, differentiable=False)
def uniform(shape, dtype, device="cpu"):
    """Uniform samples in [0, 1)."""
    return generator(device).random(tuple(shape), dtype=np.float64).astype(dtype, copy=False) \
        if np.dtype(dtype) not in (np.float32, np.float64) else generator(device).random(tuple(shape), dtype=dtype)


@primitive("normal", random=True, differentiable=False)
def normal(shape, dtype, device="cpu"):
    """Standard normal samples."""
    if np.dtype(dtype) in (np.float32, np.float64):
        return generator(device).standard_normal(tuple(shape), dtype=dtype)
    return generator(device).standard_normal(tuple(shape)).astype(dtype)


@primitive("randint", random=True, differentiable=False)
def randint(low, high, shape, dtype, device="cpu"):
    """Integers drawn uniformly from [low, high)."""
    return generator(device).integers(low, high, size=tuple(shape)).astype(dtype, copy=False)


@primitive("randperm", random=True, differentiable=False)
def randperm(n, dtype, device="cpu"):
    """A random permutation of 0 … n-1."""
    return generator(device).permutation(n).astype(dtype, copy=False)


@primitive("multinomial", random=True, differentiable=False)
def multinomial(weights, num_samples, replacement, rng=None):
    """`num_samples` category indices (int64) from each row of non-negative `weights` (1-D or 2-D, not
    necessarily normalised), from `rng` or Avalon's generator for the weights' device.

    With replacement each draw inverts the row's cumulative distribution at a uniform number. Without,
    the categories run exponential races (clocks Exp(1) / weight) and the first `num_samples` to finish
    win: the same law as drawing one at a time and removing it, in one sort per row.
    """
    xp = namespace(weights)
    rng = rng if rng is not None else generator(device_of(weights))
    w = weights.astype(xp.float64)
    if bool(xp.any(~xp.isfinite(w) | (w < 0))):
        raise AvalonError("multinomial: the weights contain inf, nan or a negative value")
    totals = xp.sum(w, axis=-1)
    if bool(xp.any(totals <= 0)):
        raise AvalonError("multinomial: a row of weights sums to zero, so there is nothing to draw")
    rows = w.reshape(-1, w.shape[-1])
    if replacement:
        cdf = xp.cumsum(rows, axis=-1)
        cdf /= cdf[:, -1:]  # the last entry exactly 1, so a uniform draw < 1 always lands in the row
        u = rng.random((rows.shape[0], num_samples))
        picked = xp.stack([xp.searchsorted(c, v, side="right") for c, v in zip(cdf, u)])
    else:
        with np.errstate(divide="ignore"):  # a zero weight's clock never stops
            clocks = rng.standard_exponential(rows.shape) / rows
        picked = xp.argsort(clocks, axis=-1)[:, :num_samples]
    return picked.astype(xp.int64).reshape(weights.shape[:-1] + (num_samples,))
