"""`load_torch_state_dict`: PyTorch checkpoints as numpy arrays, without pickle-executing anything.

.safetensors files are read by avalon itself (no torch, no safetensors package). .pt/.pth/.bin files
are PyTorch's zip-of-pickles format: they are read by `torch.load(path, weights_only=True,
map_location="cpu")`, which unpickles tensors and plain containers only (never arbitrary objects),
so torch must be installed for them.

>>> model.load_state_dict(avalon.io.load_torch_state_dict("resnet18.pth"))
"""
import warnings

from ..tensor import wrap
from .safetensors_format import CheckpointError, read

__all__ = ["load_torch_state_dict"]


def load_torch_state_dict(path):
    """The state dict (dict name -> numpy array) in a PyTorch checkpoint (.pt, .pth, .bin or .safetensors).

    bfloat16 (and float8) tensors become float32, with a warning: numpy has neither. A .pt file
    holding more than a state dict (`{"model": ..., "epoch": 3}`) comes back with the same nesting,
    tensors converted.
    """
    path = str(path)
    if _is_safetensors(path):
        return read(path, what="PyTorch checkpoint")[0]
    try:
        import torch
    except ImportError:
        raise CheckpointError(f"reading {path} needs PyTorch (it is a pickle-based .pt/.pth file): "
                              "pip install torch, or convert the checkpoint to .safetensors") from None
    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise CheckpointError(f"no PyTorch checkpoint at {path}") from None
    except Exception as e:  # torch raises UnpicklingError, RuntimeError or zipfile errors for bad files
        raise CheckpointError(f"torch.load(weights_only=True) could not read {path}: {_reason(e)}\n  it must hold only "
                              "tensors and plain containers (a state_dict); re-save it with "
                              "torch.save(model.state_dict(), path)") from None
    converted = []
    result = _to_numpy(obj, "", converted)
    if converted:
        warnings.warn(f"{path}: tensors {converted} were converted to float32 (numpy has no "
                      f"bfloat16/float8)", stacklevel=2)
    return result


def _reason(error):
    """The informative line of torch's (long) message: the global it refused, else its first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    refused = [line for line in lines if "Unsupported global" in line]
    return (refused or lines)[0].split(" was not an allowed global")[0]


def _is_safetensors(path):
    if path.endswith(".safetensors"):
        return True
    try:
        with open(path, "rb") as f:
            start = f.read(9)
    except OSError:
        return False
    return len(start) == 9 and start[8:9] == b"{"


def _to_numpy(obj, name, converted):
    if hasattr(obj, "detach") and hasattr(obj, "numpy"):
        tensor = obj.detach().cpu()
        if tensor.dtype.is_floating_point and tensor.element_size() < 2 or str(tensor.dtype) == "torch.bfloat16":
            tensor = tensor.float()
            converted.append(name)
        return wrap(tensor.numpy())
    if isinstance(obj, dict):
        return type(obj)((k, _to_numpy(v, f"{name}.{k}" if name else str(k), converted)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(v, f"{name}.{i}" if name else str(i), converted) for i, v in enumerate(obj))
    return obj
