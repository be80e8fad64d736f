"""What every oneDNN primitive needs, over numpy arrays: memory descriptors, primitives made once per
signature and kept in a bounded cache, execution with the arrays as arguments, reorders, and a
user-managed scratchpad in one reused buffer per thread.

    src = Desc.of(x)                           # x's shape, strides and dtype (float32)
    prim = cached(key, lambda: Primitive(make_pd(...)))
    prim.execute({ARG_SRC: x, ARG_DST: y})     # any arrays whose layouts match the descriptors

A primitive's kernel splits its work for the OpenMP thread count it was made at and runs on that many
threads whatever the count at execution (seen: a convolution made at 2 threads and executed after
`omp_set_num_threads(1)` still kept a second thread busy 14 of its 21 ms). So `Cache.get` sets the
calling thread's count first (library.prepare, the `threads` it is given) and keeps one primitive per
count: `avalon.set_num_threads` then takes effect on cached primitives, and a pool thread running its
share at one thread gets one-thread primitives.

Every primitive descriptor made through `attributes()` asks for a user scratchpad: `execute` hands
each call a slice of this thread's scratchpad buffer (grown to the largest need, never shrunk), so
oneDNN allocates nothing per call and the buffer's memory is shared by all primitives of a thread.

Enum values come from oneDNN 3.2's dnnl_types.h; tests/kernels/test_onednn_primitive.py checks each
one against the library (its *2str functions, and the descriptors a primitive reports per argument).
"""
import collections
import ctypes
import threading

import numpy as np

from ... import pages
from . import library as _library

# dnnl_data_type_t
F32 = 3
_DATA_TYPES = {np.dtype(np.float32): F32}
# dnnl_format_tag_t: `any` lets a primitive choose its layout (query it with Primitive.md)
FORMAT_ANY = 1
# dnnl_prop_kind_t
FORWARD_TRAINING, FORWARD_INFERENCE, BACKWARD_DATA, BACKWARD_WEIGHTS = 64, 96, 160, 192
# Names of oneDNN's portable kernels, which it picks where no JIT kernel covers a layout on this CPU.
# Callers with a numpy path take that instead (Primitive.is_reference): on AVX2, without AVX-512, a
# softmax backward over (16, 4, 128, 128) on `ref:any` takes 12 ms against numpy's 1.4, and max pooling
# over NCHW on `simple_nchw` 21 ms forward against numpy's whole scatter at 13.
REFERENCE_KERNELS = ("ref", "simple")
# dnnl_scratchpad_mode_t
SCRATCHPAD_USER = 1
# dnnl_query_t
QUERY_IMPL_INFO_STR = 8
QUERY_SRC_MD, QUERY_DIFF_SRC_MD, QUERY_WEIGHTS_MD, QUERY_DIFF_WEIGHTS_MD = 129, 130, 131, 132
QUERY_DST_MD, QUERY_DIFF_DST_MD, QUERY_WORKSPACE_MD, QUERY_SCRATCHPAD_MD = 133, 134, 135, 136
QUERY_EXEC_ARG_MD = 255
# DNNL_ARG_* (execute arguments; a reorder reads ARG_SRC and writes ARG_DST)
ARG_SRC, ARG_DST, ARG_WEIGHTS, ARG_BIAS = 1, 17, 33, 41
ARG_MEAN, ARG_VARIANCE, ARG_SCALE, ARG_SHIFT = 49, 50, 51, 52
ARG_WORKSPACE, ARG_SCRATCHPAD = 64, 80
ARG_DIFF_SRC, ARG_DIFF_DST, ARG_DIFF_WEIGHTS, ARG_DIFF_BIAS = 129, 145, 161, 169
ARG_DIFF_SCALE, ARG_DIFF_SHIFT = 255, 256

_p = ctypes.c_void_p
_dims = ctypes.c_int64 * 12  # dnnl_dims_t (DNNL_MAX_NDIMS = 12)


def lib():
    """libdnnl with the argument and result types of the functions used here set (once)."""
    handle = _library.library()
    if not getattr(handle, "_avalon_typed", False):
        i, size = ctypes.c_int, ctypes.c_size_t
        typed = {
            "dnnl_memory_desc_create_with_strides": (i, [_p, i, _p, i, _p]),
            "dnnl_memory_desc_create_with_tag": (i, [_p, i, _p, i, i]),
            "dnnl_memory_desc_destroy": (i, [_p]),
            "dnnl_memory_desc_get_size": (size, [_p]),
            "dnnl_memory_desc_equal": (i, [_p, _p]),
            "dnnl_memory_desc_clone": (i, [_p, _p]),
            "dnnl_memory_create": (i, [_p, _p, _p, _p]),
            "dnnl_memory_set_data_handle": (i, [_p, _p]),
            "dnnl_memory_destroy": (i, [_p]),
            "dnnl_primitive_desc_query_md": (_p, [_p, i, i]),
            "dnnl_primitive_desc_query": (i, [_p, i, i, _p]),
            "dnnl_primitive_desc_destroy": (i, [_p]),
            "dnnl_primitive_create": (i, [_p, _p]),
            "dnnl_primitive_execute": (i, [_p, _p, i, _p]),
            "dnnl_primitive_destroy": (i, [_p]),
            "dnnl_primitive_attr_create": (i, [_p]),
            "dnnl_primitive_attr_destroy": (i, [_p]),
            "dnnl_primitive_attr_set_scratchpad_mode": (i, [_p, i]),
            "dnnl_reorder_primitive_desc_create": (i, [_p, _p, _p, _p, _p, _p]),
        }
        for name, (restype, argtypes) in typed.items():
            fn = getattr(handle, name)
            fn.restype, fn.argtypes = restype, argtypes
        handle._avalon_typed = True
    return handle


def dims(values):
    """A dnnl_dims_t holding `values` (shapes, strides, paddings)."""
    return _dims(*values)


def data_type(dtype):
    """dnnl_data_type_t of a numpy dtype (float32 only: the other dtypes keep the numpy paths)."""
    return _DATA_TYPES[np.dtype(dtype)]


class Desc:
    """A memory descriptor (owned: destroyed with this object).

    `Desc.of(array)` describes an array as it lies in memory; `Desc.plain(shape, dtype)` a C-contiguous
    one; `Desc.any(shape, dtype)` leaves the layout to the primitive it is given to."""

    __slots__ = ("handle", "__weakref__")

    def __init__(self, handle):
        self.handle = handle

    @classmethod
    def strided(cls, shape, strides, dtype):
        """`shape` with `strides` counted in elements (all ≥ 0)."""
        handle = _p()
        _library.check(lib().dnnl_memory_desc_create_with_strides(
            ctypes.byref(handle), len(shape), dims(shape), data_type(dtype), dims(strides)),
            "dnnl_memory_desc_create_with_strides")
        return cls(handle)

    @classmethod
    def plain(cls, shape, dtype):
        return cls.strided(shape, contiguous_strides(shape), dtype)

    @classmethod
    def of(cls, array):
        """`array`'s layout (see `describable`)."""
        return cls.strided(array.shape, element_strides(array), array.dtype)

    @classmethod
    def any(cls, shape, dtype):
        handle = _p()
        _library.check(lib().dnnl_memory_desc_create_with_tag(
            ctypes.byref(handle), len(shape), dims(shape), data_type(dtype), FORMAT_ANY),
            "dnnl_memory_desc_create_with_tag(any)")
        return cls(handle)

    @classmethod
    def copy_of(cls, handle):
        """An owned copy of a descriptor oneDNN lends (a primitive descriptor's query result)."""
        copy = _p()
        _library.check(lib().dnnl_memory_desc_clone(ctypes.byref(copy), handle), "dnnl_memory_desc_clone")
        return cls(copy)

    def size(self):
        """Bytes a memory of this descriptor needs."""
        return lib().dnnl_memory_desc_get_size(self.handle)

    def __eq__(self, other):
        return isinstance(other, Desc) and bool(lib().dnnl_memory_desc_equal(self.handle, other.handle))

    __hash__ = None

    def __del__(self):
        if self.handle and _library.library() is not None:
            lib().dnnl_memory_desc_destroy(self.handle)
            self.handle = None


def contiguous_strides(shape):
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def channels_last_strides(shape):
    """Strides (in elements) of an N, C, *S array laid out N, *S, C."""
    c, spatial = shape[1], shape[2:]
    step, strides = c, []
    for n in reversed(spatial):
        strides.append(step)
        step *= n
    return (step, 1) + tuple(reversed(strides))


def element_strides(array):
    """`array`'s strides in elements, or None when oneDNN cannot describe them (negative, or not a
    whole number of elements)."""
    size = array.itemsize
    if any(s < 0 or s % size for s in array.strides):
        return None
    return tuple(s // size for s in array.strides)


def describable(array):
    """Whether `array` can be passed to oneDNN as it is (else pass np.ascontiguousarray(array))."""
    return element_strides(array) is not None


def attributes():
    """A primitive attribute asking for a user-managed scratchpad (see the module docstring); give it
    back with `release_attributes` once the primitive descriptor is made."""
    attr = _p()
    _library.check(lib().dnnl_primitive_attr_create(ctypes.byref(attr)), "dnnl_primitive_attr_create")
    _library.check(lib().dnnl_primitive_attr_set_scratchpad_mode(attr, SCRATCHPAD_USER),
                   "dnnl_primitive_attr_set_scratchpad_mode")
    return attr


def release_attributes(attr):
    lib().dnnl_primitive_attr_destroy(attr)


def make_pd(create, what):
    """Run `create(pd_pointer, attr)` (a dnnl_*_primitive_desc_create call with a user scratchpad
    attribute) and return the primitive descriptor handle, raising OneDNNError on failure."""
    pd, attr = _p(), attributes()
    try:
        _library.check(create(ctypes.byref(pd), attr), what)
    finally:
        release_attributes(attr)
    return pd


class _Exec(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", _p)]  # dnnl_exec_arg_t


_scratch = threading.local()


def _scratchpad(size):
    """This thread's scratchpad buffer, at least `size` bytes (64-byte aligned). Sized for the largest
    need, of which a primitive may write a part (an LSTM's 6 of 32 MB): `pages.empty`."""
    buf = getattr(_scratch, "buffer", None)
    if buf is None or buf.nbytes < size + 64:
        buf = _scratch.buffer = pages.empty(size + 64)
    return buf.ctypes.data + (-buf.ctypes.data % 64)


class Primitive:
    """A oneDNN primitive made from a primitive descriptor handle (which it then owns), with one
    memory object per execute argument and thread, re-pointed at the given arrays at every call."""

    def __init__(self, pd, what="primitive"):
        self.pd, self.what = pd, what
        self.handle = _p()
        try:
            _library.check(lib().dnnl_primitive_create(ctypes.byref(self.handle), pd), f"dnnl_primitive_create({what})")
        except BaseException:
            lib().dnnl_primitive_desc_destroy(pd)
            raise
        self.scratchpad_size = self.md(QUERY_SCRATCHPAD_MD).size()
        self._memories = {}  # (thread id, arg) -> memory handle
        self._lock = threading.Lock()

    def md(self, query, index=0):
        """An owned copy of the memory descriptor the primitive reports for `query` (QUERY_*_MD)."""
        return Desc.copy_of(lib().dnnl_primitive_desc_query_md(self.pd, query, index))

    def arg_md(self, arg):
        """The memory descriptor the primitive expects for execute argument `arg` (ARG_*)."""
        return self.md(QUERY_EXEC_ARG_MD, arg)

    def implementation(self):
        """oneDNN's name of the kernel it chose (e.g. 'brg:avx512_core'), for tests and benchmarks."""
        name = ctypes.c_char_p()
        _library.check(lib().dnnl_primitive_desc_query(self.pd, QUERY_IMPL_INFO_STR, 0, ctypes.byref(name)),
                       "dnnl_primitive_desc_query(impl_info_str)")
        return name.value.decode()

    def is_reference(self):
        """Whether oneDNN fell back to one of its portable C++ kernels (see REFERENCE_KERNELS)."""
        return self.implementation().startswith(REFERENCE_KERNELS)

    def unless_reference(self):
        """This primitive, or None where it runs a reference kernel (the caller's numpy path then)."""
        return None if self.is_reference() else self

    def _memory(self, arg):
        key = (threading.get_ident(), arg)
        memory = self._memories.get(key)
        if memory is None:
            memory = _p()
            desc = lib().dnnl_primitive_desc_query_md(self.pd, QUERY_EXEC_ARG_MD, arg)
            _library.check(lib().dnnl_memory_create(ctypes.byref(memory), desc, _library.engine(), None),
                           "dnnl_memory_create")
            with self._lock:
                self._memories[key] = memory
        return memory

    def execute(self, arrays, threads=None):
        """Run the primitive on `arrays` ({ARG_*: numpy array or address}), in this thread's stream
        with `threads` OpenMP threads (library.prepare). The caller makes sure each array's layout is
        the one the primitive was made for."""
        lib_ = lib()
        args = (_Exec * (len(arrays) + 1))()
        for k, (arg, array) in enumerate(arrays.items()):
            memory = self._memory(arg)
            address = array if isinstance(array, int) else array.ctypes.data
            lib_.dnnl_memory_set_data_handle(memory, address)
            args[k].arg, args[k].memory = arg, memory
        count = len(arrays)
        if self.scratchpad_size:
            memory = self._memory(ARG_SCRATCHPAD)
            lib_.dnnl_memory_set_data_handle(memory, _scratchpad(self.scratchpad_size))
            args[count].arg, args[count].memory = ARG_SCRATCHPAD, memory
            count += 1
        _library.prepare(threads)
        _library.check(lib_.dnnl_primitive_execute(self.handle, _library.stream(), count, args),
                       f"dnnl_primitive_execute({self.what})")

    def __del__(self):
        if _library.library() is None or not getattr(self, "pd", None):
            return
        for memory in self._memories.values():
            lib().dnnl_memory_destroy(memory)
        if self.handle:
            lib().dnnl_primitive_destroy(self.handle)
        lib().dnnl_primitive_desc_destroy(self.pd)
        self.pd = None


def reorder(src, dst):
    """A primitive copying memory of Desc `src` into the layout of Desc `dst` (ARG_SRC -> ARG_DST)."""
    engine = _library.engine()
    pd = make_pd(lambda pd, attr: lib().dnnl_reorder_primitive_desc_create(
        pd, src.handle, engine, dst.handle, engine, attr), "dnnl_reorder_primitive_desc_create")
    return Primitive(pd, "reorder")


_MISSING = object()


class Cache:
    """A bounded mapping (signature, OpenMP thread count) -> Primitive, least recently used dropped
    first; counts creations (tests check that a repeated call reuses its primitive)."""

    def __init__(self, size=256):
        self.size, self.created = size, 0
        self._items = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, make, threads=None):
        """The primitive cached under `key` for `threads` OpenMP threads (None: library.prepare's count),
        made by `make()` on a miss (None, nothing to run, is kept too); the calling thread's count is set
        to it (see the module docstring), so pass the same `threads` to Primitive.execute."""
        _library.prepare(threads)
        key = (key, _library.threads(threads))
        with self._lock:
            item = self._items.get(key, _MISSING)
            if item is not _MISSING:
                self._items.move_to_end(key)
                return item
        item = make()
        with self._lock:
            self.created += 1
            self._items[key] = item
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return item

    def clear(self):
        with self._lock:
            self._items.clear()

    def __len__(self):
        return len(self._items)
