"""`load_torch_state_dict`: PyTorch checkpoints as numpy arrays, without pickle-executing anything.

.safetensors files are read by avalon itself (no torch, no safetensors package). .pt/.pth/.bin files
are PyTorch's zip-of-pickles format: they are read by `torch.load(path, weights_only=True,
map_location="cpu")`, which unpickles tensors and plain containers only (never arbitrary objects),
so torch must be installed for them. A file that pickles anything else is refused with the global it
names; Avalon never suggests turning that protection off.

>>> model.load_state_dict(avalon.io.load_torch_state_dict("resnet18.pth"))
"""
import os
import re

from ..tensor import wrap
from .safetensors_format import CheckpointError, CorruptCheckpointError, checked_path, read

__all__ = ["load_torch_state_dict"]
_ZIP_MAGIC = b"PK\x03\x04"


def load_torch_state_dict(path):
    """The state dict (dict name -> numpy array) in a PyTorch checkpoint (.pt, .pth, .bin or .safetensors).

    bfloat16 (and float8) tensors become float32, silently: the widening is exact, and it is what torch
    does when it loads them into float32 parameters. A .pt file holding more than a state dict
    (`{"model": ..., "epoch": 3}`) comes back with the same nesting, tensors converted.
    """
    path = checked_path(path, "load")
    if _is_safetensors(path):
        return read(path, what="PyTorch checkpoint")[0]
    if os.path.isdir(path):
        raise CheckpointError(f"cannot load {path}: it is a folder, not a file")
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
        raise _refusal(path, e) from None  # torch's text (and its advice) is not chained under ours
    return _to_numpy(obj, path)


def _refusal(path, error):
    """Avalon's error for what torch.load(weights_only=True) refused: unsafe content, or a damaged file."""
    text = str(error)
    if "Weights only load failed" not in text:
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
        return CorruptCheckpointError(f"{path}: the file: it is not a readable PyTorch checkpoint ({first}). "
                                      "Nothing was loaded; re-save it, or check that it was copied completely",
                                      path=path, entry="the file")
    blocked = blocked_global(text)
    what = f"the global {blocked}" if blocked else "an object that is not a tensor or a plain container"
    return CheckpointError(
        f"{path} was refused: it pickles {what}, which loading would have to import and call, and a pickle "
        "can run any code that way. Avalon loads only tensors and plain containers (a state_dict) from .pt "
        "files; nothing was loaded.\n"
        "  fix: where the file comes from, save the weights alone with torch.save(model.state_dict(), path) "
        "or safetensors, and load that")


def blocked_global(text):
    """The global (module.name) that torch's weights-only unpickler refused, from its message; None if none."""
    for pattern in (r"GLOBAL ([\w.]+)", r"unrecognized function ([\w.<>]+)", r"but got <class '([\w.]+)'>"):
        match = re.search(pattern, text)
        if match:
            return match[1]
    return None


def _is_safetensors(path):
    if path.endswith(".safetensors"):
        return True
    try:
        with open(path, "rb") as f:
            start = f.read(9)
    except OSError:
        return False
    # a zip (torch.save's format) whose ninth byte happens to be "{" is still PyTorch's
    return len(start) == 9 and start[8:9] == b"{" and not start.startswith(_ZIP_MAGIC)


def _to_numpy(obj, path, name=""):
    if hasattr(obj, "detach") and hasattr(obj, "numpy"):
        tensor = obj.detach()
        try:
            tensor = tensor.cpu()
            if tensor.dtype.is_floating_point and tensor.element_size() < 2 or str(tensor.dtype) == "torch.bfloat16":
                tensor = tensor.float()  # exact: every bfloat16 and float8 value is a float32 value
            return wrap(tensor.numpy())
        except (TypeError, RuntimeError, NotImplementedError) as e:  # sparse, quantized, meta, nested tensors
            kind = f"{getattr(tensor, 'layout', '')} {tensor.dtype} on {getattr(tensor, 'device', '?')}"
            raise CheckpointError(f"{path}: tensor {name or 'at the top level'!r} is a {kind} tensor, which numpy "
                                  f"cannot hold ({str(e).splitlines()[0] if str(e) else type(e).__name__}); nothing "
                                  "was loaded.\n  fix: save it dense, unquantized and with data (.to_dense(), "
                                  ".dequantize(), .cpu()) where the file comes from") from None
    if isinstance(obj, dict):
        return type(obj)((k, _to_numpy(v, path, f"{name}.{k}" if name else str(k))) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(v, path, f"{name}.{i}" if name else str(i)) for i, v in enumerate(obj))
    return obj
