"""Weights stored beside the model (ONNX external data), read only from regular files inside the model's
folder, and only the declared bytes."""
import os
import stat

from .errors import OnnxError


def _fields(tensor):
    return {entry.key: entry.value for entry in tensor.external_data}


def _inside(base, location, name):
    """The real path of `location`, refused unless it is a relative path that stays inside `base`
    (no absolute path, no '..', no symlink leading out) and names a regular file (a FIFO or a device
    would block or never end)."""
    if not location or "\0" in location or os.path.isabs(location) or \
            ".." in location.replace("\\", "/").split("/"):
        raise OnnxError(f"the weights of {name!r} point at {location!r}, outside the model's folder: external "
                        "data must be a relative path inside it")
    root = os.path.realpath(base)
    path = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, path]) != root:
        raise OnnxError(f"the weights of {name!r} at {location!r} lead outside the model's folder (a symlink)")
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise OnnxError(f"cannot read the external weights of {name!r} ({location!r}): {error.strerror}") from error
    if not stat.S_ISREG(mode):
        raise OnnxError(f"the weights of {name!r} at {location!r} are not in a regular file (a folder, pipe or "
                        "device): external data must be a file beside the model")
    return path


def _integer(fields, key, name):
    try:
        return int(fields[key]) if key in fields else None
    except ValueError as error:
        raise OnnxError(f"the external weights of {name!r} give the {key} {fields[key]!r}, not an integer") from error


def read_external(tensor, base, expected=None):
    """The raw bytes of an external tensor, checked against the file's size and the `expected` length
    (from the declared shape) before anything is read."""
    name = tensor.name
    if base is None:
        raise OnnxError(f"the weights of {name!r} are in an external data file, and the model was given as "
                        "bytes: pass base_dir= (the folder that holds the data file)")
    fields = _fields(tensor)
    location = fields.get("location", "")
    path = _inside(base, location, name)
    offset, length = _integer(fields, "offset", name) or 0, _integer(fields, "length", name)
    size = os.path.getsize(path)
    if length is None:  # optional: the declared shape's bytes, else the rest of the file
        length = expected if expected is not None else size - offset
    if offset < 0 or length < 0 or offset + length > size:
        raise OnnxError(f"the external weights of {name!r} declare bytes {offset}..{offset + length} of "
                        f"{location!r}, which has {size}: the data file is truncated or not this model's")
    if expected is not None and length != expected:
        raise OnnxError(f"the external weights of {name!r} are {length} bytes of {location!r}, but its declared "
                        f"shape needs {expected}: the model and its data file do not match")
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)
