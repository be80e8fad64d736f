"""The safetensors file format, read and written with numpy alone (no `safetensors` or torch needed).

A file is: 8 bytes (little-endian u64) giving the header's length N; N bytes of UTF-8 JSON mapping each
tensor name to {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} (offsets into the data
that follows), plus an optional "__metadata__" object of string -> string; then the raw little-endian,
C-ordered bytes of every tensor, back to back, with no gaps. Reading validates the whole header before
it touches the data (types, shapes whose size overflows, offsets out of range, gaps, overlaps, trailing
bytes, duplicate names, nesting too deep for the parser), so a truncated, corrupt or crafted file raises
`CorruptCheckpointError` naming the file and the entry, and nothing is returned.
"""
import json
import math
import os
import reprlib

import numpy as np

from ..errors import AvalonError
from ..tensor import wrap

__all__ = ["CheckpointError", "CorruptCheckpointError", "encode", "read", "read_header", "checked_path"]

_DTYPES = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "U16": "<u2", "I16": "<i2", "F16": "<f2", "U32": "<u4",
           "I32": "<i4", "F32": "<f4", "U64": "<u8", "I64": "<i8", "F64": "<f8"}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items()}
# Codes the format defines that numpy cannot hold: a valid file Avalon cannot read, not a corrupt one.
_UNSUPPORTED = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "E8M0", "C64", "C128"}
_MAX_HEADER = 100 * 1024 * 1024  # the reference implementation's limit
_MAX_BYTES = 2 ** 63 - 1  # numpy's limit on an array's size in bytes (and int64's)
_MAX_DIMS = 64  # numpy's limit on the number of dimensions


class CheckpointError(AvalonError):
    """A checkpoint could not be written or read (unsupported value, missing file, missing package)."""


class CorruptCheckpointError(CheckpointError, ValueError):
    """The file is truncated, corrupt, or not a safetensors file; nothing was loaded.

    `path` is the file and `entry` the part of it that is wrong (a tensor's name, "the header", ...).
    """

    def __init__(self, message, path=None, entry=None):
        if "fix:" not in message:
            message += ("\n  fix: the file cannot be repaired: save it again from the model or optimiser "
                        "(avalon.save(model, path)), or use a copy made before it was damaged")
        super().__init__(message)
        self.path, self.entry = path, entry


class CheckpointWriteError(CheckpointError, OSError):
    """The operating system refused to write a checkpoint (permissions, full disk); the old file is intact.

    An `OSError` too, so code that catches those for file writes keeps working.
    """


def checked_path(path, verb):
    """`path` as a str, or CheckpointError for what cannot name a file (an int would be a file descriptor)."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bool):
        raise CheckpointError(f"cannot {verb} {path!r}: the path must be a str or pathlib.Path, "
                              f"not a {type(path).__name__}")
    path = os.fspath(path)
    if not isinstance(path, str):
        path = os.fsdecode(path)
    if not path:
        raise CheckpointError(f"cannot {verb} '': the path is empty; give a file name such as 'model.safetensors'")
    return path


def code_of(dtype):
    """The safetensors dtype code of a numpy dtype ('F32' for float32), or None when it has none."""
    return _CODES.get(np.dtype(dtype).newbyteorder("="))


def encode(tensors, metadata=None):
    """(header bytes, [C-ordered little-endian arrays in file order]) for a dict name -> numpy array.

    Tensors are laid out by decreasing item size, so each starts at a multiple of its own alignment.
    """
    if "__metadata__" in tensors:  # the format's reserved key: the tensor would be lost in the header
        raise CheckpointError("cannot save an array named '__metadata__': safetensors reserves that name for the "
                              "file's metadata; rename the key")
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
    """(dict name -> numpy array, metadata dict) of a safetensors file.

    bfloat16 tensors become float32, silently: the widening is exact, and it is what torch does when it
    loads them into float32 parameters.
    """
    path = checked_path(path, "load")
    data = _read_bytes(path, what, None)
    header, start = _header(data, path)
    metadata, entries = _validate(header, path, len(data) - start)
    view = memoryview(data)[start:]
    tensors = {}
    for name, (dtype, shape, begin, end) in entries.items():
        if dtype == "BF16":
            bits = np.frombuffer(view[begin:end], dtype="<u2").astype(np.uint32) << 16
            array = bits.view(np.float32).reshape(shape)
        else:
            array = np.frombuffer(view[begin:end], dtype=_DTYPES[dtype]).reshape(shape)
            if not array.flags.aligned or not array.dtype.isnative:
                array = array.astype(array.dtype.newbyteorder("="))
        tensors[name] = wrap(array)  # what torch.load gives: tensors
    return tensors, metadata


def read_header(path, what="checkpoint"):
    """The validated JSON header of a safetensors file (tensor entries and "__metadata__"), without the data."""
    path = checked_path(path, "read")
    size = []
    data = _read_bytes(path, what, size)
    header, start = _header(data, path)
    _validate(header, path, size[0] - start)
    return header


def _read_bytes(path, what, size):
    """The file's bytes (all of them; only the length and header when `size` is a list, which gets the size)."""
    try:
        with open(path, "rb") as f:
            if size is None:
                return bytearray(f.read())
            size.append(os.fstat(f.fileno()).st_size)
            start = f.read(8)
            n = int.from_bytes(start, "little") if len(start) == 8 else 0
            return start + f.read(min(n, _MAX_HEADER + 1))
    except FileNotFoundError:
        raise CheckpointError(f"no {what} at {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"cannot load {path}: it is a folder, not a file") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None


def _header(data, path):
    if len(data) < 8:
        raise _corrupt(path, "the header length", f"the file has {len(data)} bytes, fewer than the 8 that give "
                                                  "the header's length")
    n = int.from_bytes(data[:8], "little")
    if n > _MAX_HEADER:
        raise _corrupt(path, "the header length", f"the header claims {n} bytes (the limit is {_MAX_HEADER})")
    if 8 + n > len(data):
        raise _corrupt(path, "the header", f"the header claims {n} bytes but only {len(data) - 8} follow: "
                                           "the file is truncated")
    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:  # ValueError: JSONDecodeError, ints of too many digits
        raise _corrupt(path, "the header", f"it is not valid JSON ({e})") from None
    except _Duplicate as e:
        raise _corrupt(path, f"entry {e.args[0]!r}", "the name appears twice in the header") from None
    except RecursionError:
        raise _corrupt(path, "the header", "its JSON is nested too deeply to parse") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "the header", f"it is a JSON {type(header).__name__}, not an object")
    return header, 8 + n


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs):
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        raise _Duplicate(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return result


def _validate(header, path, data_size):
    """(metadata, {name: (dtype, shape, begin, end)} in header order) of a parsed header, every entry checked.

    Each tensor's bytes must lie inside the `data_size` bytes of data, match its dtype and shape, and the
    tensors must tile the data exactly: no gap, no overlap, no byte left over.
    """
    metadata = header.get("__metadata__")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise _corrupt(path, "__metadata__", f"it is a JSON {type(metadata).__name__}, not an object of strings")
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise _corrupt(path, f"__metadata__[{key!r}]", f"its value is a {type(value).__name__}; metadata maps "
                                                            "strings to strings")
    entries = {}
    for name, entry in header.items():
        if name != "__metadata__":
            entries[name] = _entry(name, entry, path, data_size)
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if begin != position:
            kind = "overlaps the tensor before it" if begin < position else "leaves a gap before it"
            raise _corrupt(path, f"tensor {name!r}", f"it starts at byte {begin}, expected {position}: it {kind}")
        position = end
    if position != data_size:
        raise _corrupt(path, "the data", f"{data_size - position} bytes after the last tensor belong to none")
    return metadata, entries


def _entry(name, entry, path, data_size):
    where = f"tensor {name!r}"
    if not isinstance(entry, dict):
        raise _corrupt(path, where, f"its entry is a JSON {type(entry).__name__}, not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in _DTYPES and dtype != "BF16":
        if isinstance(dtype, str) and dtype in _UNSUPPORTED:
            raise CheckpointError(f"{path}: {where} has dtype {dtype}, which numpy (and so Avalon) cannot hold; "
                                  f"Avalon reads {sorted([*_DTYPES, 'BF16'])}: convert the tensor before saving")
        raise _corrupt(path, where, f"its dtype {_short(dtype)} is not a safetensors dtype")
    if not (isinstance(shape, list) and all(_is_int(d) and d >= 0 for d in shape)):
        raise _corrupt(path, where, f"its shape {_short(shape)} is not a list of non-negative ints")
    if len(shape) > _MAX_DIMS:
        raise _corrupt(path, where, f"its shape has {len(shape)} dimensions, more than numpy's {_MAX_DIMS}")
    itemsize = 2 if dtype == "BF16" else np.dtype(_DTYPES[dtype]).itemsize
    if math.prod(max(d, 1) for d in shape) * itemsize > _MAX_BYTES:  # Python ints: no silent wraparound
        raise _corrupt(path, where, f"its shape {_short(shape)} describes more bytes than any array can hold")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]):
        raise _corrupt(path, where, f"its data_offsets {_short(offsets)} are not two increasing non-negative ints")
    begin, end = offsets
    if end > data_size:
        raise _corrupt(path, where, f"it ends at byte {end} but the file has {data_size} bytes of data: "
                                    "the file is truncated")
    if end - begin != math.prod(shape) * itemsize:
        raise _corrupt(path, where, f"it has {end - begin} bytes for shape {shape} of {dtype}")
    return dtype, tuple(shape), begin, end


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value):
    return reprlib.repr(value)  # bounded in length and depth, whatever a crafted header holds


def _corrupt(path, entry, why):
    return CorruptCheckpointError(f"{path}: {entry}: {why}. Nothing was loaded; re-save the checkpoint, or check "
                                  "that the file was copied completely", path=path, entry=entry)
