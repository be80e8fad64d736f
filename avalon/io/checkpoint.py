"""`avalon.save` and `avalon.load`: checkpoints as safetensors files, with JSON metadata, never pickle.

>>> avalon.save(model, "mlp.safetensors")                 # its state_dict, plus class names
>>> model.load_state_dict(avalon.load("mlp.safetensors"))
>>> avalon.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, "ckpt.safetensors")

Arrays are the file's tensors (named by their dotted path, so a plain state dict keeps PyTorch's
keys and the file opens in any safetensors reader). Everything else the object holds (its nesting of
dicts, lists and tuples, numbers, strings, None) and a description (format version, avalon version,
dtypes, module class names) go in the header's `__metadata__` as JSON. A file is written to a
temporary file in the same folder and renamed over the target (atomic.py): a crash or a failed save
never leaves a half-written checkpoint, the old one stays intact, and no temporary file outlives it.
Loading validates every entry before returning anything: a damaged or crafted file raises
`CorruptCheckpointError` naming the file and the entry.
"""
import json
import reprlib

from ..backend import is_array, to_device, to_numpy
from .atomic import check_target, write_atomically
from .safetensors_format import (CheckpointError, CorruptCheckpointError, checked_path, code_of, encode, read,
                                 read_header)

__all__ = ["save", "load", "read_metadata", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_KEY = "avalon"


def save(obj, path, metadata=None):
    """Write `obj` to `path` (a .safetensors file) atomically.

    `obj` is a Module or an optimiser (its `state_dict()` is saved, with class names), a state dict
    name -> array, or any nesting of dicts (string or int keys), lists and tuples holding arrays,
    numbers, strings and None (e.g. model and optimiser state together). `metadata`: an optional
    JSON-serialisable dict stored with it (`read_metadata(path)["metadata"]`).
    """
    from .. import __version__

    path = checked_path(path, "save to")
    check_target(path)  # before anything is encoded or written
    info = {"format_version": FORMAT_VERSION, "avalon_version": __version__}
    if callable(getattr(obj, "state_dict", None)):
        info["class"] = f"{type(obj).__module__}.{type(obj).__qualname__}"
        if callable(getattr(obj, "named_modules", None)):
            info["modules"] = {name: type(m).__name__ for name, m in obj.named_modules()}
        obj = obj.state_dict()
    tensors = {}
    info["tree"] = _encode(obj, "", tensors, set())
    info["dtypes"] = {name: str(array.dtype.newbyteorder("=")) for name, array in tensors.items()}  # as loaded
    if metadata is not None:
        info["metadata"] = metadata
    try:
        text = json.dumps(info)
        json.loads(text)  # what load will do: metadata nested too deeply to read back is refused now
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"cannot save: the metadata is not JSON-serialisable ({e})") from None
    except RecursionError:
        raise CheckpointError("cannot save: the metadata is nested too deeply to be read back; flatten it") from None
    header, arrays = encode(tensors, {_KEY: text})
    write_atomically(path, header, arrays)


def load(path, map_location=None, pickle_module=None, *, weights_only=True, mmap=None, **pickle_load_args):
    """What `save` wrote: a state dict (dict name -> numpy array), or the saved nesting of values.

    A safetensors file written by another tool loads as its dict name -> array. A truncated or
    corrupt file raises `CorruptCheckpointError` (nothing is returned, nothing changes).

    torch.load's arguments are taken, so ported code runs unchanged. `map_location`: arrays load to
    the CPU for None, 'cpu', a device or a callable (Avalon has no storages to hand it); 'cuda' or
    'cuda:N' moves them to that GPU (cupy); a dict maps 'cpu' (the files keep no device) to where
    it says, if it names 'cpu'. `weights_only` either way: the files hold arrays and plain values
    only, never pickled objects. `mmap` and pickle's own arguments have nothing to do here.

    >>> model.load_state_dict(avalon.load("mlp.safetensors", map_location="cpu"))
    """
    if pickle_module is not None:
        raise CheckpointError(f"avalon.load({path!r}, pickle_module=...): Avalon checkpoints are safetensors, "
                              "never pickle; drop the argument")
    path = checked_path(path, "load")
    _refuse_pickles(path)
    return _placed(_load(path), _target_device(map_location))


def _target_device(map_location):
    """'cpu' or the GPU that `map_location` sends a file's arrays to."""
    if isinstance(map_location, dict):
        map_location = map_location.get("cpu")
    if map_location is None or callable(map_location):
        return "cpu"
    device = str(map_location)
    if device.startswith("cuda"):
        try:
            import cupy  # noqa: F401
        except ImportError:
            raise CheckpointError(f"map_location={device!r}: the GPU backend is cupy, which is not installed\n"
                                  "  fix: pip install 'avalon[gpu]' (on a machine with a CUDA GPU), or load to the "
                                  "CPU: map_location='cpu'") from None
    elif device != "cpu":
        raise CheckpointError(f"map_location={map_location!r}: Avalon loads to 'cpu' or 'cuda[:N]'")
    return device


def _placed(value, device):
    """`value` with its arrays moved to `device` (as they are for 'cpu')."""
    if device == "cpu":
        return value
    if is_array(value):
        return to_device(value, device)
    if isinstance(value, dict):
        return {key: _placed(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_placed(item, device) for item in value)
    return value


def _load(path):
    tensors, metadata = read(path)
    info = _info(metadata, path)
    if info is None:
        return tensors
    dtypes = info.get("dtypes", {})
    if not isinstance(dtypes, dict):
        raise _corrupt(path, "dtypes", f"it is a JSON {type(dtypes).__name__}, not an object")
    for name, dtype in dtypes.items():
        if name not in tensors or str(tensors[name].dtype) != dtype:
            raise _corrupt(path, f"dtypes[{name!r}]", f"tensor {name!r} should be {_short(dtype)} but the file "
                                                      f"holds {tensors[name].dtype if name in tensors else 'nothing'}")
    used = set()
    try:
        value = _decode(info.get("tree"), tensors, used, path, "")
    except RecursionError:
        raise _corrupt(path, "tree", "its saved structure is nested too deeply") from None
    if used != set(tensors):
        raise _corrupt(path, f"tensor {sorted(set(tensors) - used)[0]!r}", "it is not part of the saved value")
    return value


def _corrupt(path, entry, why):
    """A damaged Avalon description (`entry` inside the header's __metadata__['avalon'])."""
    entry = f"__metadata__[{_KEY!r}]" + (f" {entry}" if entry else "")
    return CorruptCheckpointError(f"{path}: {entry}: {why}. Nothing was loaded; re-save the checkpoint", path=path,
                                  entry=entry)


def _refuse_pickles(path):
    """PyTorch's .pt files are zip archives (or bare pickles): point at the function that reads them."""
    try:
        with open(path, "rb") as f:
            start = f.read(9)
    except OSError:
        return  # read() reports it
    if start[8:9] == b"{":
        return  # a safetensors header, whatever its length's first bytes (0x80 0x02 is a length of 640)
    if start[:4] == b"PK\x03\x04" and path.lower().endswith(".npz"):
        raise CheckpointError(f"{path} is a numpy .npz archive, not a safetensors file: read it with np.load(path) "
                              "(allow_pickle stays False), e.g. dict(np.load(path)) for a state dict")
    if start[:4] == b"PK\x03\x04" or start[:1] == b"\x80" and start[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise CheckpointError(f"{path} is a PyTorch (pickle) checkpoint, not a safetensors file: read it with "
                              "avalon.io.load_torch_state_dict(path), which never runs pickled code")


def read_metadata(path):
    """The description stored with a checkpoint, without reading its arrays.

    {'format_version', 'avalon_version', 'dtypes', and 'class', 'modules' for a saved Module, 'metadata'
    for what was passed to save}; {} for a safetensors file written by another tool.
    """
    path = checked_path(path, "read")
    _refuse_pickles(path)
    header = read_header(path)
    info = _info(header.get("__metadata__") or {}, path)
    if info is None:
        return {}
    info.pop("tree", None)
    return info


def _info(metadata, path):
    text = metadata.get(_KEY)
    if text is None:
        return None
    try:
        info = json.loads(text)
    except ValueError as e:
        raise _corrupt(path, "", f"it is not valid JSON ({e})") from None
    except RecursionError:
        raise _corrupt(path, "", "its JSON is nested too deeply to parse") from None
    if not isinstance(info, dict):
        raise _corrupt(path, "", f"it is a JSON {type(info).__name__}, not an object")
    version = info.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _corrupt(path, "format_version", f"{version!r} is not a format version")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written in checkpoint format {version!r} by avalon "
                              f"{info.get('avalon_version')}; this avalon reads format {FORMAT_VERSION} and older: "
                              "upgrade avalon to load it")
    return info


# The saved value, as JSON: {"tensor": name}, {"value": x}, {"dict": [[key, node], ...]}, {"list": [...]},
# {"tuple": [...]}. Dict entries are pairs so that int keys (optimiser state) stay ints.

def _join(path, key):
    return f"{path}.{key}" if path else str(key)


_MAX_DEPTH = 100  # far below the recursion limits of json and _decode, so whatever is saved loads back


def _encode(value, path, tensors, active):
    """The JSON tree of `value`; its arrays go into `tensors`. `active`: ids of the containers around it."""
    if is_array(value) or _is_torch_tensor(value):
        array = _to_numpy(value, path)
        name = path or "tensor"
        if name in tensors:
            raise CheckpointError(f"cannot save: two arrays would both be stored under the name {name!r} (a key "
                                  "containing '.' collides with a nested key); rename one")
        tensors[name] = array
        return {"tensor": name}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    if not isinstance(value, (dict, list, tuple)):
        raise CheckpointError(f"cannot save a {type(value).__name__} at {path or 'the top level'}: checkpoints hold "
                              "arrays, numbers, strings, None, and dicts, lists and tuples of them (no pickle); save "
                              "its state_dict() or convert it")
    if id(value) in active:
        raise CheckpointError(f"cannot save: the {type(value).__name__} at {path or 'the top level'} contains itself "
                              "(a cycle); a checkpoint holds a tree of values")
    if len(active) >= _MAX_DEPTH:
        raise CheckpointError(f"cannot save: the value at {reprlib.repr(path)} is nested more than {_MAX_DEPTH} containers "
                              "deep; flatten it")
    active.add(id(value))
    try:
        return _encode_container(value, path, tensors, active)
    finally:
        active.discard(id(value))


def _encode_container(value, path, tensors, active):
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise CheckpointError(f"cannot save the key {key!r} at {path or 'the top level'}: dict keys must "
                                      "be strings or ints")
            items.append([key, _encode(item, _join(path, key), tensors, active)])
        return {"dict": items}
    kind = "tuple" if isinstance(value, tuple) else "list"
    return {kind: [_encode(item, _join(path, i), tensors, active) for i, item in enumerate(value)]}


def _decode(node, tensors, used, path, where):
    if not (isinstance(node, dict) and len(node) == 1):
        raise _corrupt(path, f"tree at {where or 'the top'}", f"{_short(node)} is not a saved value")
    (kind, body), = node.items()
    if kind == "tensor":
        if not isinstance(body, str) or body not in tensors:
            raise _corrupt(path, f"tree at {where or 'the top'}", f"it names tensor {_short(body)}, which the file "
                                                                   "does not hold")
        used.add(body)
        return tensors[body]
    if kind == "value" and (body is None or isinstance(body, (bool, int, float, str))):
        return body
    if kind == "dict" and isinstance(body, list) and all(isinstance(p, list) and len(p) == 2 and
                                                         isinstance(p[0], (str, int)) for p in body):
        return {key: _decode(item, tensors, used, path, _join(where, key)) for key, item in body}
    if kind in ("list", "tuple") and isinstance(body, list):
        items = [_decode(item, tensors, used, path, _join(where, i)) for i, item in enumerate(body)]
        return tuple(items) if kind == "tuple" else items
    raise _corrupt(path, f"tree at {where or 'the top'}", f"{_short(node)} is not a saved value")


def _short(value):
    return reprlib.repr(value)


def _is_torch_tensor(value):
    return type(value).__module__.startswith("torch") and hasattr(value, "detach") and hasattr(value, "numpy")


def _to_numpy(value, path):
    if _is_torch_tensor(value):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
    array = to_numpy(value)
    if code_of(array.dtype) is None:
        raise CheckpointError(f"cannot save {path or 'the array'}: dtype {array.dtype} has no safetensors "
                              "equivalent (use bool, integers or float16/32/64)")
    return array
