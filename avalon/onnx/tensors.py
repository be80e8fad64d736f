"""ONNX tensors (initializers, tensor attributes) as numpy arrays, checked before anything is allocated
or read: a file may declare a shape of 2^40 elements over a few bytes, or external data past its end."""
import math

import numpy as np

from .errors import OnnxError
from .external import read_external

# element types packed several to a byte: bytes per element
_PACKED = {"INT4": 0.5, "UINT4": 0.5, "FLOAT4E2M1": 0.5, "INT2": 0.25, "UINT2": 0.25, "FLOAT6E2M3": 0.75,
           "FLOAT6E3M2": 0.75}


def _elements(tensor, what):
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise OnnxError(f"{what} ({tensor.name!r}) is malformed: its shape {dims} has a negative dimension")
    return math.prod(dims), dims


def _element_bytes(tensor, what):
    """Bytes per element (a fraction for packed types), or None for strings."""
    from onnx import TensorProto, helper
    type_name = TensorProto.DataType.Name(tensor.data_type) if tensor.data_type in TensorProto.DataType.values() \
        else None
    if type_name is None or type_name == "UNDEFINED":
        raise OnnxError(f"{what} ({tensor.name!r}) is malformed: its element type {tensor.data_type} is not one "
                        "the installed onnx knows (a corrupt file, or one from a newer ONNX)")
    if type_name == "STRING":
        return None
    if type_name in _PACKED:
        return _PACKED[type_name]
    return np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize


def _inline_bytes(tensor):
    """The bytes of the data the tensor holds in the file, whichever field holds them."""
    if tensor.HasField("raw_data"):
        return len(tensor.raw_data)
    fields = (tensor.float_data, tensor.int32_data, tensor.int64_data, tensor.double_data, tensor.uint64_data)
    return max(len(f) for f in fields) * 8 + sum(len(s) for s in tensor.string_data)


def to_numpy(tensor, what, base=None):
    """A writeable numpy copy of `tensor` (optimisers update parameters in place). External data is read
    only from inside `base` and only when its length is the declared shape's; inline data must hold the
    declared number of elements."""
    from onnx import numpy_helper
    count, dims = _elements(tensor, what)
    size = _element_bytes(tensor, what)
    if tensor.data_location == tensor.EXTERNAL:
        expected = None if size is None else math.ceil(count * size)
        raw = read_external(tensor, base, expected)
        tensor = type(tensor).FromString(tensor.SerializeToString())  # a copy, the model stays as read
        del tensor.external_data[:]
        tensor.data_location = tensor.DEFAULT
        tensor.raw_data = raw
    elif size is not None and count * size > _inline_bytes(tensor):
        raise OnnxError(f"{what} ({tensor.name!r}) is malformed: it declares the shape {dims} ({count} "
                        f"elements) but holds {_inline_bytes(tensor)} bytes of data (a truncated or corrupt file)")
    try:
        return np.array(numpy_helper.to_array(tensor))
    except Exception as error:  # noqa: BLE001 (any failure of onnx's conversion means a malformed tensor)
        raise OnnxError(f"{what} ({tensor.name!r}) is malformed: {error}") from error
