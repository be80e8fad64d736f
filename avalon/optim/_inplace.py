"""In-place arithmetic shared by the optimisers' update rules, and the scratch memory they write through.

Each operation of a formula is one ufunc with `out=` (or an in-place operator), taken in the order that
PyTorch's formula evaluates it, so an in-place rule rounds exactly like the same formula written with
temporaries: the allocations go, no bit of the result changes. Arrays must accept `out=` (numpy, cupy).
"""
import contextlib
import threading

from ..backend import device_of, is_array, namespace


class Scratch:
    """Scratch arrays for in-place updates, carved from one flat buffer per array type, dtype and device:
    every parameter's update reuses the same memory, which stays in cache and is allocated once (it grows
    to the largest parameter times the number of arrays asked for)."""

    def __init__(self):
        self._flat = {}

    def take(self, param, count):
        """`count` distinct C-ordered arrays shaped like `param`, with undefined contents."""
        key, size = (type(param), param.dtype, device_of(param)), param.size
        flat = self._flat.get(key)
        if flat is None or flat.size < count * size:
            flat = self._flat[key] = namespace(param).empty_like(param, shape=(count * size,))
        return [flat[i * size:(i + 1) * size].reshape(param.shape) for i in range(count)]


def root(array):
    """The array that owns the memory of `array` (itself, or the base of a view)."""
    while getattr(array, "base", None) is not None and is_array(array.base):
        array = array.base
    return array


def own_grad(param, grad, roots):
    """`grad` in the parameter's dtype, copied if it shares memory with a parameter of this step (`roots`):
    updates write into parameters while later gradients are still to be read."""
    grad = namespace(param).asarray(grad, dtype=param.dtype)
    return grad.copy() if id(root(grad)) in roots else grad


def needs_space(param, grad, group):
    """Whether `effective_grad` writes into its `space` (else it may be None): under L2 decay, under
    `maximize`, or for a gradient in another memory layout than the parameter's."""
    decay = group["weight_decay"]
    return bool((decay != 0 and not group.get("decoupled_weight_decay", False)) or group["maximize"]
                or grad.strides != param.strides)


def effective_grad(param, grad, group, space):
    """The gradient an update rule sees: negated under `maximize`, plus `weight_decay * param` under L2
    decay, in the parameter's memory layout. That is `grad` itself where nothing changes it (it is then
    only read), else it is written into `space` (None where not `needs_space`). Decoupled weight decay
    (AdamW's, where the optimiser offers `decoupled_weight_decay`) instead shrinks the parameter here, in
    place, before the update."""
    xp, decay, maximize = namespace(param), group["weight_decay"], group["maximize"]
    if decay != 0 and group.get("decoupled_weight_decay", False):
        param *= 1 - group["lr"] * decay
    elif decay != 0:
        xp.multiply(param, decay, out=space)
        # decay * p - g is exactly (-g) + decay * p: IEEE negation and addition round alike
        (xp.subtract if maximize else xp.add)(space, grad, out=space)
        return space
    if maximize:
        return xp.negative(grad, out=space)
    if grad.strides != param.strides:  # (Linear's weight gradient is a transposed view) one strided copy
        # costs less than making every pass of the update a strided one
        space[...] = grad
        return space
    return grad


def lerp_(start, end, weight, temp):
    """start <- start + weight * (end - start) in place, rounded as PyTorch's `lerp` rounds it (exact at both
    ends); `temp` is scratch."""
    xp = namespace(start)
    xp.subtract(end, start, out=temp)
    if weight < 0.5:
        temp *= weight
        start += temp
    else:
        temp *= 1.0 - weight
        xp.subtract(end, temp, out=start)


def buffer(state, key, param, fill=0.0):
    """The state array `key`, created as an array of `fill` shaped like `param` at the first step."""
    value = state.get(key)
    if value is None:
        value = state[key] = new_state(param)
        value[...] = fill
    return value


class Reserve:
    """State arrays allocated before a step's first write, so that an update creating state cannot fail
    half-way (a MemoryError now changes nothing): `new_state` hands them out during the step."""

    _current = threading.local()

    def __init__(self):
        self.arrays = {}  # id(param) -> arrays shaped like it, not yet handed out

    def add(self, param, count):
        if count:
            self.arrays.setdefault(id(param), []).extend(namespace(param).empty_like(param) for _ in range(count))

    @contextlib.contextmanager
    def handing_out(self):
        previous = getattr(Reserve._current, "reserve", None)
        Reserve._current.reserve = self
        try:
            yield
        finally:
            Reserve._current.reserve = previous


def new_state(param):
    """A new state array shaped like `param`, contents undefined: from the step's `Reserve` when it holds
    one for `param`, else allocated now."""
    reserve = getattr(Reserve._current, "reserve", None)
    kept = reserve.arrays.get(id(param)) if reserve is not None else None
    return kept.pop() if kept else namespace(param).empty_like(param)


def decay_squares_(average, grad, beta, temp):
    """average <- beta * average + (1 - beta) * grad * grad in place (PyTorch's mul_ then addcmul_)."""
    average *= beta
    namespace(grad).multiply(grad, 1 - beta, out=temp)
    temp *= grad
    average += temp


def adam_moments_(state, param, grad, betas, temp):
    """Adam's running averages of the gradient and of its square, updated in place: (exp_avg, exp_avg_sq)."""
    beta1, beta2 = betas
    exp_avg, exp_avg_sq = buffer(state, "exp_avg", param), buffer(state, "exp_avg_sq", param)
    lerp_(exp_avg, grad, 1 - beta1, temp)
    decay_squares_(exp_avg_sq, grad, beta2, temp)
    return exp_avg, exp_avg_sq
