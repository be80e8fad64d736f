"""Loading a state dict into a module in two phases: `prepared` converts and checks every value (the
part that can fail) before `copy_into` writes any, so a checkpoint with one bad entry changes nothing."""
import numpy as np

from ..backend import device_of, is_array, to_device
from ..tensor import is_torch_tensor, plain


def prepared(key, target, value):
    """(`value` on the device and in the dtype of `target`, or None; the problem with it, or None):
    everything that can fail in loading one entry, done before anything is written."""
    if is_torch_tensor(value):
        value = plain(value)  # bfloat16 widened to float32 (numpy has none), then cast below as torch casts
    if not is_array(value):
        return None, f"{key}: the checkpoint holds a {type(value).__name__}, not an array"
    if tuple(value.shape) != tuple(target.shape):
        return None, (f"size mismatch for {key}: checkpoint has shape {tuple(value.shape)}, the model "
                      f"{tuple(target.shape)}")
    try:
        return to_device(value, device_of(target)).astype(target.dtype, copy=False), None
    except (TypeError, ValueError) as e:
        return None, f"{key}: cannot cast the checkpoint's {value.dtype} to the model's {target.dtype} ({e})"


def root(array):
    """The array that owns the memory of `array`."""
    while isinstance(getattr(array, "base", None), np.ndarray):
        array = array.base
    return array


def copy_into(target, value):
    """Write `value` (from `prepared`) into `target` in place (optimisers hold it) and return True, or
    return False for a read-only target (a memory map), which the module replaces with a copy instead."""
    if type(target).__module__.startswith("cupy") or (isinstance(target, np.ndarray) and target.flags.writeable):
        target[...] = value
        return True
    return False
