"""The safetensors file format, read and written with numpy alone (no `safetensors` or torch needed).

A file is: 8 bytes (little-endian u64) giving the header's length N; N bytes of UTF-8 JSON mapping each
tensor name to {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} (offsets into the data
that follows), plus an optional "__metadata__" object of string -> string; then the raw little-endian,
C-ordered bytes of every tensor, back to back, with no gaps. Reading checks all of that, so a truncated
or corrupt file raises `CorruptCheckpointError` instead of returning wrong arrays.
"""
import json
import os
import warnings

import numpy as np

from ..errors import AvalonError
from ..tensor import wrap

__all__ = ["CheckpointError", "CorruptCheckpointError", "encode", "read", "read_header"]

_DTYPES = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "F16": "<f2", "U32": "<u4",
           "I32": "<i4", "F32": "<f4", "U64": "<u8", "I64": "<i8", "F64": "<f8"}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024  # the reference implementation's limit


class CheckpointError(AvalonError):
    """A checkpoint could not be written or read (unsupported value, missing file, missing package)."""


class CorruptCheckpointError(CheckpointError, ValueError):
    """The file is truncated, corrupt, or not a safetensors file; nothing was loaded."""


def code_of(dtype):
    """The safetensors dtype code of a numpy dtype ('F32' for float32), or None when it has none."""
    return _CODES.get(np.dtype(dtype).newbyteorder("="))


def encode(tensors, metadata=None):
    """(header bytes, [C-ordered little-endian arrays in file order]) for a dict name -> numpy array.

    Tensors are laid out by decreasing item size, so each starts at a multiple of its own alignment.
    """
    order = sorted(tensors, key=lambda name: -tensors[name].dtype.itemsize)
    header, arrays, offset = {}, [], 0
    for name in order:
        array = tensors[name]
        code = code_of(array.dtype)
        if code is None:
            raise CheckpointError(f"cannot save {name!r}: safetensors has no dtype for {array.dtype} "
                                  f"(it stores {sorted(str(d) for d in _CODES)})")
        stored = np.ascontiguousarray(array).astype(np.dtype(_DTYPES[code]), copy=False)
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + stored.nbytes]}
        offset += stored.nbytes
        arrays.append(stored)
    if metadata:
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(len(text) + 8) % 8)
    return len(text).to_bytes(8, "little") + text, arrays


def read(path, what="checkpoint"):
    """(dict name -> numpy array, metadata dict) of a safetensors file; bfloat16 becomes float32 with a warning."""
    try:
        with open(path, "rb") as f:
            data = bytearray(f.read())
    except FileNotFoundError:
        raise CheckpointError(f"no {what} at {path}") from None
    header, start = _header(data, path)
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _corrupt(path, "__metadata__ must map strings to strings")
    entries = sorted(header.items(), key=lambda item: _offsets(item, path)[0])
    tensors, position, converted = {}, 0, []
    view = memoryview(data)[start:]
    for name, entry in entries:
        dtype, shape = _entry(name, entry, path)
        begin, end = entry["data_offsets"]
        if begin != position:
            raise _corrupt(path, f"tensor {name!r} starts at byte {begin}, expected {position} (gap or overlap)")
        if end > len(view):
            raise _corrupt(path, f"tensor {name!r} ends at byte {end} but the file has {len(view)} bytes of data: "
                                 "it is truncated")
        count = int(np.prod(shape, dtype=np.int64))
        itemsize = 2 if dtype == "BF16" else np.dtype(_DTYPES[dtype]).itemsize
        if end - begin != count * itemsize:
            raise _corrupt(path, f"tensor {name!r} has {end - begin} bytes for shape {shape} of {dtype}")
        if dtype == "BF16":
            bits = np.frombuffer(view[begin:end], dtype="<u2").astype(np.uint32) << 16
            array = bits.view(np.float32).reshape(shape)
            converted.append(name)
        else:
            array = np.frombuffer(view[begin:end], dtype=_DTYPES[dtype]).reshape(shape)
            if not array.flags.aligned or not array.dtype.isnative:
                array = array.astype(array.dtype.newbyteorder("="))
        tensors[name] = wrap(array)  # what torch.load gives: tensors
        position = end
    if position != len(view):
        raise _corrupt(path, f"{len(view) - position} bytes after the last tensor belong to none")
    if converted:
        warnings.warn(f"{path}: bfloat16 tensors {converted} were converted to float32 (numpy has no bfloat16)",
                      stacklevel=3)
    return {name: tensors[name] for name in header}, metadata


def read_header(path, what="checkpoint"):
    """The JSON header of a safetensors file (tensor entries and "__metadata__"), without the data."""
    try:
        with open(path, "rb") as f:
            start = f.read(8)
            size = os.fstat(f.fileno()).st_size
            n = int.from_bytes(start, "little") if len(start) == 8 else 0
            data = start + f.read(min(n, _MAX_HEADER + 1))
    except FileNotFoundError:
        raise CheckpointError(f"no {what} at {path}") from None
    header, start = _header(data, path)
    if start > size:
        raise _corrupt(path, "it is truncated")
    return header


def _header(data, path):
    if len(data) < 8:
        raise _corrupt(path, f"it has {len(data)} bytes, fewer than the 8 that give the header's length")
    n = int.from_bytes(data[:8], "little")
    if n > _MAX_HEADER:
        raise _corrupt(path, f"its header claims {n} bytes")
    if 8 + n > len(data):
        raise _corrupt(path, f"its header claims {n} bytes but only {len(data) - 8} follow: it is truncated")
    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _corrupt(path, f"its header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "its header is not a JSON object")
    return header, 8 + n


def _offsets(item, path):
    name, entry = item
    offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise _corrupt(path, f"tensor {name!r} has invalid data_offsets {offsets!r}")
    return offsets


def _entry(name, entry, path):
    dtype, shape = entry.get("dtype"), entry.get("shape")
    if dtype not in _DTYPES and dtype != "BF16":
        raise CheckpointError(f"{path}: tensor {name!r} has dtype {dtype!r}, which avalon cannot read "
                              f"(it reads {sorted([*_DTYPES, 'BF16'])})")
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise _corrupt(path, f"tensor {name!r} has an invalid shape {shape!r}")
    return dtype, tuple(shape)


def _corrupt(path, why):
    return CorruptCheckpointError(f"{path} is not a readable safetensors file: {why}. Nothing was loaded; "
                                  "re-save the checkpoint, or check that the file was copied completely")
