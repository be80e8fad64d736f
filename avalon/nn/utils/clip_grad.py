"""Gradient clipping on the gradients `avalon.grad` returns (PyTorch's functions clip `p.grad` instead).

>>> loss, grads = avalon.grad(loss_fn, model, x, y)
>>> total = nn.utils.clip_grad_norm_(grads[0], max_norm=1.0)
>>> opt.step(grads[0])

Gradients may be a `Grads`, a list or tuple of arrays (None entries are skipped), a dict name -> array,
or one array. They are changed in place: arrays are overwritten where they are writeable, and
replaced inside their container where they are not.
"""
import inspect
import math

import numpy as np

from ...backend import is_array, namespace
from ...arguments import ArgumentError
from ...errors import GradientError
from ...tree import Grads
from ..module import Parameter

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm"]


_GIVEN_PARAMETERS = ("clipping was given the model's parameters (torch's clip_grad_norm_(model.parameters(), "
                     "...) clips the .grad they hold); Avalon's gradients are returned, not stored: clip "
                     "them, `loss, grads = avalon.grad(loss_fn, model, x, y); clip_grad_norm_(grads[0], "
                     "max_norm)`")


def _slots(grads):
    """[(container, key, array)] for every gradient array, so each can be rewritten in place."""
    given = grads if isinstance(grads, (list, tuple)) else [grads]
    if any(isinstance(g, Parameter) for g in given):
        raise GradientError(_GIVEN_PARAMETERS)  # clipping them would change the weights
    if is_array(grads):
        return [(None, None, grads)]
    if isinstance(grads, Grads):
        return [(grads, name, g) for name, g in grads if g is not None]
    if isinstance(grads, dict):
        return [(grads, key, g) for key, g in grads.items() if g is not None]
    if isinstance(grads, (list, tuple)):
        if any(isinstance(g, (Grads, dict, list, tuple)) for g in grads):
            raise GradientError("clipping was given a sequence of gradient containers; avalon.grad returns one "
                                "gradient per argument of the loss function: clip the model's entry, grads[0]")
        return [(grads, i, g) for i, g in enumerate(grads) if g is not None]
    if inspect.isgenerator(grads):
        raise GradientError(_GIVEN_PARAMETERS)
    raise GradientError(f"cannot clip gradients of type {type(grads).__name__}: pass a Grads, a list or dict of "
                        "arrays, or an array")


def _write(container, key, array, new):
    if getattr(getattr(array, "flags", None), "writeable", True):
        array[...] = new
    elif container is None or isinstance(container, tuple):
        raise GradientError("a gradient to clip is read-only and held where it cannot be replaced (a tuple or "
                            "a bare array): pass the gradients in a list, a dict or a Grads")
    else:
        container[key] = new


def _norm(x, norm_type):
    xp = namespace(x)
    magnitude = xp.abs(x)
    if norm_type == math.inf:
        return xp.max(magnitude) if x.size else xp.zeros((), dtype=x.dtype)
    if norm_type == -math.inf:
        return xp.min(magnitude) if x.size else xp.zeros((), dtype=x.dtype)
    if norm_type == 0:
        return xp.sum(magnitude != 0).astype(x.dtype)
    if norm_type == 2:
        return xp.sqrt(xp.sum(magnitude * magnitude))
    return xp.sum(magnitude ** norm_type) ** (1.0 / norm_type)


def get_total_norm(grads, norm_type=2.0, error_if_nonfinite=False):
    """The norm of all gradients together: the `norm_type` norm of their individual norms.

    >>> nn.utils.get_total_norm([np.array([3.0]), np.array([4.0])])   # 5.0
    """
    norm_type = float(norm_type)
    arrays = [array for _, _, array in _slots(grads)]
    if not arrays:
        return np.zeros((), dtype=np.float32)
    norms = [_norm(a, norm_type) for a in arrays]
    xp = namespace(*arrays)
    total = _norm(xp.stack([xp.asarray(n, dtype=xp.result_type(*norms)) for n in norms]), norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise GradientError(f"the total {norm_type:g}-norm of the gradients is {float(total)}, so they cannot "
                            "be clipped; find where the loss or its gradients stop being finite, or pass "
                            "error_if_nonfinite=False to clip anyway")
    return total


def clip_grad_norm_(grads, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so that their total norm is at most `max_norm`; return that norm.

    As in PyTorch: total = norm of the per-array norms; every gradient is multiplied by
    min(1, max_norm / (total + 1e-6)). The total norm before clipping is returned (a 0-d array).

    >>> total = nn.utils.clip_grad_norm_(grads[0], max_norm=1.0)
    """
    if not max_norm >= 0:  # a negative bound would flip every gradient (torch applies it)
        raise ArgumentError(f"clip_grad_norm_: max_norm={max_norm!r} is negative",
                            "the gradients are scaled to a norm of at most max_norm: a negative one flips them",
                            "pass the largest norm to allow, a number >= 0 (e.g. max_norm=1.0)")
    slots = _slots(grads)
    total = get_total_norm([array for _, _, array in slots], norm_type, error_if_nonfinite)
    if not slots:
        return total
    xp = namespace(total)
    with np.errstate(all="ignore"):
        coef = xp.minimum(max_norm / (total + 1e-6), xp.asarray(1.0, dtype=total.dtype))
        for container, key, array in slots:
            _write(container, key, array, array * xp.asarray(coef, dtype=array.dtype))
    return total


def clip_grad_value_(grads, clip_value):
    """Clamp every gradient element into [-clip_value, clip_value], in place.

    >>> nn.utils.clip_grad_value_(grads[0], clip_value=0.5)
    """
    clip_value = float(clip_value)
    if not clip_value >= 0:  # clip(g, -c, c) with c < 0 sets every element to -c
        raise ArgumentError(f"clip_grad_value_: clip_value={clip_value!r} is negative",
                            "elements are clamped into [-clip_value, clip_value]",
                            "pass a number >= 0 (e.g. clip_value=0.5)")
    for container, key, array in _slots(grads):
        xp = namespace(array)
        _write(container, key, array, xp.clip(array, -clip_value, clip_value))
