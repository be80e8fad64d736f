"""`avalon.Tensor`: the array type Avalon hands its users — a numpy array that speaks torch.

A Tensor *is* a numpy `ndarray` (a subclass, zero-copy both ways), so numpy functions, matplotlib and
scikit-learn take it as it is; it carries torch.Tensor's methods with torch's meaning (the same table
tracers use, `avalon.tracing.methods.TorchMethods`, attached at import), so ported PyTorch code runs
on it outside traced code too: `avalon.arange(T).unsqueeze(0)`, `x.view(x.size(0), -1)`,
`w.data.normal_(0, 0.02)`, `(logits.argmax(1) == y).float().mean().item()`.

Where numpy and torch share a method name, torch's spelling gets torch's meaning and numpy's keywords
(`axis=`, `keepdims=`, `ddof=`, `out=`) get numpy's. numpy's own functions always keep numpy's meaning:
`__array_function__` runs them on the plain arrays behind their Tensor arguments (so `np.std(t)` is
numpy's, whatever `t.std()` means) and gives the result back as a Tensor.

Tensors exist only at the user's side of the boundary. Primitive implementations and compiled replays
work on plain ndarrays: `plain` strips the type where arrays enter (arguments, constants, eager calls)
and `wrap` puts it on what comes out. Inside traced code, tracers stand in for Tensors, and
`isinstance(tracer, avalon.Tensor)` holds.
"""
import functools
import numbers

import numpy as np

from .errors import AvalonError, DtypeError, ShapeError


class device:
    """torch.device: where arrays live — `device('cpu')`, `device('cuda', 0)`, `device('cuda:1')`.

    Equal to its string (`t.device == 'cpu'`); has torch's `type` and `index`.
    """

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index
        type = str(type)
        if ":" in type:
            type, _, number = type.partition(":")
            index = int(number)
        if type not in ("cpu", "cuda"):
            raise AvalonError(f"unknown device type {type!r}: Avalon runs on 'cpu' (numpy) and 'cuda' (cupy)"
                              f"{_at_user_line()}\n  fix: pass 'cpu' or 'cuda' (a dtype as avalon.float32, not a string)")
        self.type, self.index = type, index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type={self.type!r}" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other):
        if not isinstance(other, (str, device)):
            return NotImplemented
        try:
            other = device(other)
        except (AvalonError, ValueError):
            return False  # 'meta', 'mps' …: not where Avalon's arrays live
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self):
        return hash((self.type, self.index or 0))


_CPU = device("cpu")
_Device = device  # Tensor.to takes a `device=` argument, which hides the class there


class _TensorType(type):
    # Inside traced code tracers stand in for Tensors, so `isinstance(x, Tensor)` checks in model
    # code take the same branch while tracing as when called on arrays.
    def __instancecheck__(cls, obj):
        return type.__instancecheck__(cls, obj) or (cls is Tensor and getattr(type(obj), "_avalon_tracer", False))


class Tensor(np.ndarray, metaclass=_TensorType):
    """An n-dimensional array: numpy's `ndarray` with torch.Tensor's methods.

    `avalon.Tensor(2, 3)` is uninitialised float32 of that shape and `avalon.Tensor([1, 2])` float32
    data, as torch's constructor; usually Tensors come from `avalon.tensor`, `zeros`, `arange` …,
    from model outputs and from `avalon.grad`. `np.asarray(t)` (or `t.numpy()`) is the plain array,
    without a copy.

    >>> t = avalon.arange(6).view(2, 3).float()
    >>> t.mean(1), np.mean(t, axis=1), t.max(1).indices, t.std()   # torch's unbiased std
    """

    requires_grad = False  # torch's flag; `requires_grad_(False)` on a Parameter freezes it
    grad = None  # gradients are returned by avalon.grad, never stored on arrays
    grad_fn = None
    is_leaf = True

    def __new__(cls, *args, dtype=None):
        if all(isinstance(a, numbers.Integral) for a in args):
            return np.ndarray.view(np.empty(args, dtype or np.float32), cls)
        if len(args) == 1:
            return np.ndarray.view(np.array(plain(args[0]), dtype=dtype or np.float32), cls)
        raise AvalonError(f"Tensor({', '.join(map(repr, args))}): pass sizes (Tensor(2, 3)) or data "
                          "(Tensor([1, 2])); avalon.tensor(data, dtype=...) keeps integer data integer")

    __hash__ = object.__hash__  # by identity, as torch's (parameters are dict keys in ported code)

    def __deepcopy__(self, memo):
        new = np.ndarray.__deepcopy__(self, memo)
        new.__dict__.update(self.__dict__)  # requires_grad: copy.deepcopy(model) keeps frozen ones frozen
        return new

    def __array_function__(self, func, types, args, kwargs):
        if not all(issubclass(t, np.ndarray) for t in types):
            return NotImplemented  # a tracer among the arguments: it records the call
        return wrap_all(func(*_plain_all(args), **_plain_all(kwargs)))

    # torch's attributes

    @property
    def device(self):
        return _CPU

    is_cuda = False

    @property
    def data(self):
        """The same values without gradient tracking (a view sharing memory, as torch's `.data`)."""
        return np.ndarray.view(self, Tensor)

    @data.setter
    def data(self, value):
        value = plain(value)
        if np.shape(value) != self.shape:
            raise AvalonError(f"cannot set .data of a tensor of shape {self.shape} to shape {np.shape(value)}: "
                              "a numpy array cannot change its size in place; assign a new Parameter instead")
        np.copyto(self, value, casting="unsafe")

    def view(self, *shape, **kwargs):
        """torch's `view(*shape)` (a reshape sharing memory); `view(dtype)` and numpy's `view()` /
        `view(type=...)` are numpy's (the same memory, reinterpreted)."""
        if kwargs or not shape or len(shape) == 1 and not isinstance(shape[0], (numbers.Integral, tuple, list)):
            return np.ndarray.view(self, *shape, **kwargs)
        from .axes import new_shape  # tracing, which it needs for the user's line, builds on this module

        shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], numbers.Integral) else shape
        return np.ndarray.reshape(self, new_shape(shape, self.shape, "view"))

    def numpy(self, force=False):
        """The plain numpy array (no copy)."""
        return np.ndarray.view(self, np.ndarray)

    def detach(self):
        """The same values, cut from differentiation (a view sharing memory)."""
        return np.ndarray.view(self, Tensor)

    def contiguous(self, memory_format=None):
        return self if self.flags.c_contiguous else np.ndarray.view(np.ascontiguousarray(self), Tensor)

    def is_contiguous(self, memory_format=None):
        return bool(self.flags.c_contiguous)

    def element_size(self):
        return self.itemsize

    def nelement(self):
        return self.size

    def ndimension(self):
        return self.ndim

    def data_ptr(self):
        return self.ctypes.data

    def type(self, dtype=None):
        if dtype is None:
            return f"avalon.{np.dtype(self.dtype).name}"
        return self.astype(dtype)

    def to(self, *args, dtype=None, device=None, non_blocking=False, copy=False, **kwargs):
        """`t.to(dtype)`, `t.to(other)` (its dtype), `t.to('cpu')`; 'cuda' moves to cupy."""
        for a in args:
            if isinstance(a, (str, _Device)):
                device = a
            elif isinstance(a, np.ndarray) or getattr(type(a), "_avalon_tracer", False):
                dtype = a.dtype
            else:
                dtype = a
        out = self if dtype is None else self.astype(dtype)
        out = out.copy() if copy and out is self else out
        return out if device is None or _Device(device).type == "cpu" else _to_cuda(out, device)

    def cpu(self):
        return self

    def cuda(self, device=None, non_blocking=False):
        return _to_cuda(self, "cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else device)

    def requires_grad_(self, requires_grad=True):
        """Mark whether gradients are wanted: `p.requires_grad_(False)` freezes a parameter, which
        `avalon.grad` then gives no gradient and optimisers leave alone."""
        if requires_grad and np.dtype(self.dtype).kind not in "fc":
            raise DtypeError(f"requires_grad on a tensor of dtype {self.dtype}: only floating-point (and complex) "
                             f"tensors can require gradients{_at_user_line()}\n"
                             f"  fix: make it floating point first, e.g. t.float().requires_grad_()")
        self.requires_grad = bool(requires_grad)
        return self

    def item(self, *args):
        """The one value of a one-element tensor, as a Python number (numpy's item(index) too)."""
        count = int(np.prod(self.shape))  # `size` is torch's method on a Tensor
        if not args and count != 1:
            raise ShapeError(f"item() of a tensor with {count} elements (shape {self.shape}): only a "
                             f"one-element tensor converts to a Python number{_at_user_line()}",
                             fix="reduce it first (t.sum().item(), t.max().item()) or index one element (t[0].item())")
        return np.ndarray.item(self, *args)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        raise AvalonError(
            f"loss.backward(): Avalon's gradients are functional, not stored on tensors{_at_user_line()}\n"
            "  fix: write the loss as a function and ask for its gradients, then step with them:\n"
            "        loss, grads = avalon.grad(loss_fn, model, x, y)   # loss_fn(model, x, y) -> loss\n"
            "        opt.step(grads[0])                                # no zero_grad/backward needed")

    # torch's in-place methods, eager (refused inside traced code, as on tracers)

    def __getattr__(self, name):
        if name.endswith("_") and not name.startswith("_"):
            special = _INPLACE.get(name)
            stem = name[:-1]
            if special is not None or callable(getattr(Tensor, stem, None)):
                def method(*args, **kwargs):
                    _refuse_in_trace(name)
                    if special is not None:
                        return special(self, *args, **kwargs)
                    return _assign(self, getattr(self, stem)(*args, **kwargs), name)

                method.__name__ = name
                return method
        raise AttributeError(f"'Tensor' object has no attribute {name!r} (Tensors have numpy's and "
                             "torch.Tensor's methods; see avalon.tracing.methods)")

    @classmethod
    def adopt(cls, table):
        """Take the torch methods of `table` (a class) that the Tensor does not define itself."""
        for name, member in vars(table).items():
            if not name.startswith("__") and name not in vars(cls):
                setattr(cls, name, member)


def _at_user_line():
    """"\n  at file:line" of the user's line, for errors raised below tracing (which builds on this module)."""
    from .tracing.source import user_location

    where = user_location()
    return f"\n  at {where}" if where is not None else ""


def _to_cuda(x, where):
    try:
        import cupy
    except ImportError:
        raise AvalonError(f".to({str(where)!r}) / .cuda(): the GPU backend is cupy, which is not installed"
                          f"{_at_user_line()}\n  fix: pip install 'avalon[gpu]' (and run on a machine with a CUDA GPU); or stay "
                          "on the CPU: arrays are numpy there") from None
    index = device(where).index or 0
    with cupy.cuda.Device(index):
        return cupy.asarray(plain(x))


def _refuse_in_trace(name):
    from .tracing.context import current

    trace = current()
    if trace is not None:
        trace.refuse(
            f"in-place method .{name}() on an array inside traced code",
            "the change happens once, while tracing; a compiled replay would not repeat it (and the "
            "tape would not match what ran)",
            f"use the out-of-place form and bind the result (`x = x.{name[:-1]}(...)`), or do the "
            "in-place set-up outside the traced function (in __init__)",
            lambda: None)


def _assign(target, value, name):
    """Write `value` into `target` in place, with torch's rule that the result must fit its dtype."""
    value = plain(value)
    if not np.can_cast(np.result_type(value), target.dtype, casting="same_kind"):
        raise AvalonError(f".{name}(): the result has dtype {np.result_type(value)}, which cannot be "
                          f"stored in place in a {target.dtype} tensor; convert first (t = t.float()) or "
                          "use the out-of-place form")
    np.copyto(target, value, casting="unsafe")
    return target


def _fill(t, value):
    _assign(t, np.asarray(plain(value)), "fill_")
    return t


def _random(draw):
    def inplace(t, *args, generator=None, **kwargs):
        from .ops.random import generator as avalon_generator

        rng = generator or avalon_generator()
        np.copyto(t, draw(rng, t.shape, *args, **kwargs), casting="unsafe")
        return t

    return inplace


def _fill_diagonal(t, fill_value, wrap=False):
    np.fill_diagonal(plain(t), fill_value, wrap=wrap)
    return t


def _write_along(t, dim, index, values, negative=False):
    """index_fill_ (a value) and index_copy_ (a source): `values` written at `index` along `dim`
    (index_fill_ reads negative indices from the end, index_copy_ refuses them: torch's)."""
    _in_range(index, t.shape[dim], "index_fill_" if negative else "index_copy_", negative)
    key = (slice(None),) * (dim % t.ndim) + (plain(index),)
    plain(t)[key] = plain(values)
    return t


def _scatter(t, dim, index, src=None, value=None, reduce=None):
    source = plain(src if src is not None else value)
    index = plain(index)
    _in_range(index, t.shape[dim], "scatter_" if reduce is None else "scatter_reduce_")
    grid = list(np.indices(index.shape, sparse=True))
    grid[dim % t.ndim] = index
    if np.ndim(source) > 0:
        source = source[tuple(slice(0, n) for n in index.shape)]
    if reduce in ("add", "sum"):
        np.add.at(plain(t), tuple(grid), source)
    elif reduce in ("multiply", "prod"):
        np.multiply.at(plain(t), tuple(grid), source)
    else:
        plain(t)[tuple(grid)] = source
    return t


def _in_range(index, size, what, negative=False):
    """Refuse, before anything is written, an index outside [0, size) ([-size, size) with `negative`)."""
    from .errors import IndexRangeError
    from .ops.index import check_range
    from .tracing.source import user_location

    try:
        check_range(np.asarray(plain(index)), size, what, -size if negative else 0)
    except IndexRangeError as exc:
        raise exc.at(user_location()) from None


def _masked_scatter(t, mask, source):
    mask = np.broadcast_to(plain(mask), t.shape)
    plain(t)[mask] = plain(source).ravel()[:int(mask.sum())]
    return t


def _lerp(t, end, weight):
    return _assign(t, plain(t) + plain(weight) * (plain(end) - plain(t)), "lerp_")


def _addcmul(t, tensor1, tensor2, value=1):
    return _assign(t, plain(t) + value * plain(tensor1) * plain(tensor2), "addcmul_")


def _addcdiv(t, tensor1, tensor2, value=1):
    return _assign(t, plain(t) + value * plain(tensor1) / plain(tensor2), "addcdiv_")


def _copy(t, src, non_blocking=False):
    src = plain(src)
    if hasattr(src, "get") and not isinstance(src, np.ndarray):  # cupy
        src = src.get()
    np.copyto(t, np.broadcast_to(src, t.shape), casting="unsafe")
    return t


# The in-place methods that are not `name_` of an out-of-place method (those come from the table).
_INPLACE = {
    "zero_": lambda t: _fill(t, 0),
    "fill_": _fill,
    "copy_": _copy,
    "normal_": _random(lambda rng, shape, mean=0.0, std=1.0: rng.normal(mean, std, shape)),
    "uniform_": _random(lambda rng, shape, a=0.0, b=1.0, **kw: rng.uniform(kw.get("from", a), kw.get("to", b), shape)),
    "bernoulli_": _random(lambda rng, shape, p=0.5: rng.random(shape) < plain(p)),
    "exponential_": _random(lambda rng, shape, lambd=1.0: rng.exponential(1.0 / lambd, shape)),
    "cauchy_": _random(lambda rng, shape, median=0.0, sigma=1.0: median + sigma * rng.standard_cauchy(shape)),
    "log_normal_": _random(lambda rng, shape, mean=1.0, std=2.0: rng.lognormal(mean, std, shape)),
    "geometric_": _random(lambda rng, shape, p: rng.geometric(p, shape)),
    "random_": _random(lambda rng, shape, low=0, high=None: rng.integers(low, high, shape) if high is not None
                       else rng.integers(0, low, shape) if low else rng.integers(0, 2 ** 24, shape)),
    "fill_diagonal_": _fill_diagonal,
    "index_fill_": lambda t, dim, index, value: _write_along(t, dim, index, value, negative=True),
    "index_copy_": _write_along,
    "scatter_": _scatter,
    "scatter_reduce_": lambda t, dim, index, src, reduce, include_self=True: _scatter(t, dim, index, src,
                                                                                    reduce=reduce),
    "masked_scatter_": _masked_scatter,
    "lerp_": _lerp,
    "addcmul_": _addcmul,
    "addcdiv_": _addcdiv,
    "requires_grad_": Tensor.requires_grad_,
}


def plain(x):
    """The plain ndarray behind a Tensor (or a torch tensor, zero-copy on CPU); anything else as it is."""
    if isinstance(x, np.ndarray):
        return x if type(x) is np.ndarray else np.ndarray.view(x, np.ndarray)
    if is_torch_tensor(x):
        return _from_torch(x)
    return x


def wrap(x):
    """A numpy array (or numpy scalar) as a Tensor view; anything else (cupy arrays, tracers,
    Python values) as it is."""
    if type(x) is np.ndarray:
        return np.ndarray.view(x, Tensor)
    if isinstance(x, np.ndarray):
        return x if isinstance(x, Tensor) else np.ndarray.view(x, Tensor)
    if isinstance(x, np.generic):
        return np.ndarray.view(np.asarray(x), Tensor)
    return x


def nested(x, each):
    """`each` applied to what the tuples, lists, dicts and named tuples of `x` hold (and to `x` when it
    is none of those)."""
    if type(x) in (tuple, list):
        return type(x)(nested(v, each) for v in x)
    if type(x) is dict:
        return {k: nested(v, each) for k, v in x.items()}
    if isinstance(x, tuple) and hasattr(type(x), "_fields"):
        return type(x)(*(nested(v, each) for v in x))
    return each(x)


def wrap_all(x):
    """`wrap` on the arrays a numpy function returns (numpy scalars stay scalars)."""
    return nested(x, lambda v: wrap(v) if isinstance(v, np.ndarray) else v)


def _plain_all(x):
    return nested(x, lambda v: np.ndarray.view(v, np.ndarray) if isinstance(v, np.ndarray) else v)


_TORCH_TYPES = {}


def is_torch_tensor_type(cls):
    """True for torch.Tensor and its subclasses (checked without importing torch)."""
    known = _TORCH_TYPES.get(cls)
    if known is None:
        known = _TORCH_TYPES[cls] = cls.__module__.split(".")[0] == "torch" and hasattr(cls, "detach") \
            and hasattr(cls, "numpy")
    return known


def is_torch_tensor(x):
    """True for a torch.Tensor (checked without importing torch)."""
    return is_torch_tensor_type(type(x))


def _from_torch(t):
    """The numpy array of a torch tensor: zero-copy for a CPU tensor of a numpy dtype."""
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if str(t.dtype) == "torch.bfloat16":
        import torch

        t = t.to(torch.float32)  # numpy has no bfloat16: widened, as torch does when it loads into float32
    return t.numpy()


def taking_torch_tensors(namespace, names):
    """Rebind the functions `names` of `namespace` (a module's dict) so that torch tensors among
    their arguments (or in a list or tuple argument, as `cat` takes) arrive as the Tensors they hold:
    ported code may pass a torch tensor to any public function."""
    for name in names:
        fn = namespace.get(name)
        if callable(fn) and not isinstance(fn, type) and not hasattr(fn, "__wrapped__"):
            namespace[name] = _taking_torch_tensors(fn)


def _taking_torch_tensors(fn):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        if any(map(_holds_torch, args)) or any(map(_holds_torch, kwargs.values())):
            args = [_from_torch_arg(a) for a in args]
            kwargs = {k: _from_torch_arg(v) for k, v in kwargs.items()}
        return fn(*args, **kwargs)

    return call


def _holds_torch(x):
    return is_torch_tensor(x) or type(x) in (list, tuple) and any(map(is_torch_tensor, x))


def _from_torch_arg(x):
    if is_torch_tensor(x):
        return wrap(_from_torch(x))
    if type(x) in (list, tuple) and any(map(is_torch_tensor, x)):
        return type(x)(_from_torch_arg(v) for v in x)
    return x


def _typed(dtype, name):
    def factory(*args):
        """torch's legacy typed constructor: sizes give an uninitialised tensor, data a tensor of
        this dtype."""
        return Tensor(*args, dtype=dtype)

    factory.__name__ = factory.__qualname__ = name
    return factory


FloatTensor = _typed(np.float32, "FloatTensor")
DoubleTensor = _typed(np.float64, "DoubleTensor")
HalfTensor = _typed(np.float16, "HalfTensor")
LongTensor = _typed(np.int64, "LongTensor")
IntTensor = _typed(np.int32, "IntTensor")
BoolTensor = _typed(np.bool_, "BoolTensor")
ByteTensor = _typed(np.uint8, "ByteTensor")

__all__ = ["Tensor", "device", "plain", "wrap", "is_torch_tensor", "taking_torch_tensors", "FloatTensor",
           "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "BoolTensor", "ByteTensor"]
