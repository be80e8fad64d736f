"""torch.cuda's names that scripts call at the top: is a GPU there, how many, seed it, wait for it.

Avalon's GPU backend is cupy (`pip install 'avalon[gpu]'`): `is_available()` is True only when cupy
imports and sees a CUDA device. As in torch, seeding without a GPU is silently ignored, and asking for
the current device or synchronising without one raises (with what to install).

>>> device = "cuda" if avalon.cuda.is_available() else "cpu"
"""
from .errors import AvalonError
from .ops import random as rnd
from .tensor import device as Device


def _cupy():
    try:
        import cupy
    except ImportError:
        return None
    return cupy


def device_count():
    """The number of CUDA devices cupy sees (0 without cupy, a driver or a GPU)."""
    cupy = _cupy()
    if cupy is None:
        return 0
    try:
        return int(cupy.cuda.runtime.getDeviceCount())
    except RuntimeError:  # cupy's CUDARuntimeError: no driver, or no device
        return 0


def is_available():
    """True when cupy is installed and a CUDA device is present."""
    return device_count() > 0


def manual_seed(seed):
    """Seed the GPU's random draws (ignored without a GPU, as torch); `avalon.manual_seed` seeds all."""
    if is_available():
        rnd.manual_seed_cuda(seed)


def manual_seed_all(seed):
    """Seed the random draws of every GPU (Avalon has one GPU generator: `manual_seed`)."""
    manual_seed(seed)


def _require(name):
    if is_available():
        return _cupy()
    reason = "cupy is not installed" if _cupy() is None else "cupy sees no CUDA device"
    raise AvalonError(f"avalon.cuda.{name}(): no GPU is available ({reason})\n"
                      "  fix: pip install 'avalon[gpu]' on a machine with a CUDA GPU, or guard the call with "
                      "`if avalon.cuda.is_available():`")


def current_device():
    """The index of the current CUDA device."""
    return int(_require("current_device").cuda.runtime.getDevice())


def synchronize(device=None):
    """Wait until the work queued on `device` (the current one by default) has finished."""
    cupy = _require("synchronize")
    if device is None:
        index = cupy.cuda.runtime.getDevice()
    else:
        index = device if isinstance(device, int) else Device(device).index or 0
    cupy.cuda.Device(index).synchronize()


def empty_cache():
    """Give the GPU memory cupy holds in its pools but no array uses back to the driver (a no-op
    without a GPU, as torch)."""
    if is_available():
        cupy = _cupy()
        cupy.get_default_memory_pool().free_all_blocks()
        cupy.get_default_pinned_memory_pool().free_all_blocks()


__all__ = ["is_available", "device_count", "manual_seed", "manual_seed_all", "current_device", "synchronize",
           "empty_cache"]
