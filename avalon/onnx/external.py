"""Weights stored beside the model (ONNX external data), read only from files inside the model's folder."""
import os

from .errors import OnnxError


def _fields(tensor):
    return {entry.key: entry.value for entry in tensor.external_data}


def _inside(base, location, name):
    """The real path of `location`, refused unless it is a relative path that stays inside `base`
    (no absolute path, no '..', no symlink leading out)."""
    if not location or os.path.isabs(location) or ".." in location.replace("\\", "/").split("/"):
        raise OnnxError(f"the weights of {name!r} point at {location!r}, outside the model's folder: external "
                        "data must be a relative path inside it")
    root = os.path.realpath(base)
    path = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, path]) != root:
        raise OnnxError(f"the weights of {name!r} at {location!r} lead outside the model's folder (a symlink)")
    return path


def read_external(tensor, base):
    """The raw bytes of an external tensor, checked against the file's size before anything is read."""
    name = tensor.name
    if base is None:
        raise OnnxError(f"the weights of {name!r} are in an external data file, and the model was given as "
                        "bytes: pass base_dir= (the folder that holds the data file)")
    fields = _fields(tensor)
    path = _inside(base, fields.get("location", ""), name)
    try:
        offset, length = int(fields.get("offset", 0)), fields.get("length")
        size = os.path.getsize(path)
    except (ValueError, OSError) as error:
        raise OnnxError(f"cannot read the external weights of {name!r} ({fields.get('location')!r}): "
                        f"{error}") from error
    length = size - offset if length is None else int(length)
    if offset < 0 or length < 0 or offset + length > size:
        raise OnnxError(f"the external weights of {name!r} declare bytes {offset}..{offset + length} of "
                        f"{fields['location']!r}, which has {size}: the data file is truncated or not this model's")
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)
