"""Random primitives. Recorded on the tape like any other call but marked `random`, so the compiler
neither folds nor merges them: a cached replay draws fresh numbers, exactly like running the code again.
All draw from one generator, reseeded by `avalon.manual_seed`.
"""
import numpy as np

from .primitive import primitive

_state = {"numpy": np.random.default_rng()}


def manual_seed(seed):
    """Seed the generators behind `avalon.rand`, `randn`, dropout and initialisation (numpy and cupy)."""
    _state["numpy"] = np.random.default_rng(seed)
    if "cupy" in _state:
        import cupy

        _state["cupy"] = cupy.random.default_rng(seed)
    _state["seed"] = seed


def generator(device="cpu"):
    """The generator for `device` ('cpu' → a numpy Generator, 'cuda' → a cupy one)."""
    if str(device).startswith("cuda"):
        if "cupy" not in _state:
            import cupy

            _state["cupy"] = cupy.random.default_rng(_state.get("seed"))
        return _state["cupy"]
    return _state["numpy"]


@primitive("uniform", random=True)
def uniform(shape, dtype, device="cpu"):
    """Uniform samples in [0, 1)."""
    return generator(device).random(tuple(shape), dtype=np.float64).astype(dtype, copy=False) \
        if np.dtype(dtype) not in (np.float32, np.float64) else generator(device).random(tuple(shape), dtype=dtype)


@primitive("normal", random=True)
def normal(shape, dtype, device="cpu"):
    """Standard normal samples."""
    if np.dtype(dtype) in (np.float32, np.float64):
        return generator(device).standard_normal(tuple(shape), dtype=dtype)
    return generator(device).standard_normal(tuple(shape)).astype(dtype)


@primitive("randint", random=True)
def randint(low, high, shape, dtype, device="cpu"):
    """Integers drawn uniformly from [low, high)."""
    return generator(device).integers(low, high, size=tuple(shape)).astype(dtype, copy=False)


@primitive("randperm", random=True)
def randperm(n, dtype, device="cpu"):
    """A random permutation of 0 … n-1."""
    return generator(device).permutation(n).astype(dtype, copy=False)
