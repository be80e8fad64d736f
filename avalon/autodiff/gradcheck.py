"""`gradcheck`: Avalon's gradients against central finite differences, in float64."""
from dataclasses import dataclass

import numpy as np

from .. import tree
from ..backend import to_numpy
from ..tensor import plain, wrap
from ..tracing.binding import Bindings
from ..tracing.record import argument_names
from .grad import grad_per_leaf


@dataclass
class GradcheckResult:
    """Whether every element agreed within tolerance (truthy when so), the largest absolute error, and
    the worst element relative to its tolerance: argument path, index, analytic and numeric values."""

    ok: bool
    max_abs_error: float
    worst: str
    _worst_ratio: float = -1.0  # error / tolerance of the element named in `worst`

    def __bool__(self):
        return self.ok

    def __str__(self):
        verdict = "ok" if self.ok else "MISMATCH"
        return f"gradcheck {verdict}: worst at {self.worst}, max abs error {self.max_abs_error:.3g}"


def gradcheck(f, *args, eps=1e-6, atol=1e-5, rtol=1e-4, seed=None):
    """Compare `grad(f, *args)` with central finite differences of f, all in float64.

    Floating argument arrays are taken as float64 Tensor copies (f gets views of the holders with
    them: the holders keep their own arrays). Returns a `GradcheckResult`, truthy when every element
    agrees within `atol + rtol * |numeric|`, naming the worst element (the one furthest outside, or
    nearest to, its tolerance) with both values.

    >>> assert avalon.gradcheck(lambda x: np.tanh(x).sum(), np.random.randn(3))
    >>> print(avalon.gradcheck(my_loss, W, x))
    gradcheck ok: worst at W[1, 0] (analytic 0.25, numeric 0.25), max abs error 3e-10
    """
    leaves, _, holders, spec = tree.flatten(tuple(args))
    infos = [info for name, arg in zip(argument_names(f, args, {}), args) for info in tree.flatten(arg, name)[1]]
    bindings = Bindings()  # f gets views of the holders with the copies: the holders keep their arrays
    # C-ordered Tensor copies (f may use torch's methods on them), so that a flat view of each can
    # perturb it element by element
    wide = [wrap(np.array(to_numpy(a), dtype=np.float64, order="C")) if np.issubdtype(a.dtype, np.floating)
            else wrap(a) for a in leaves]
    try:
        args = tree.unflatten(spec, wide, holders, lambda obj, values, roles: bindings.bind(obj, values))
        seed = None if seed is None else np.asarray(seed, dtype=np.float64)
        _, grads, _, _ = grad_per_leaf(f, args, seed)
        scalar = _scalar(f, seed)
        result = GradcheckResult(True, 0.0, "nowhere")
        for leaf, info, g in zip(wide, infos, grads):
            if g is not None and info.role != "buffer":
                _compare(scalar, args, leaf, info.name or "argument", to_numpy(g), eps, atol, rtol, result)
        return result
    finally:
        bindings.release()


def _compare(scalar, args, leaf, name, g, eps, atol, rtol, result):
    flat, gflat = plain(leaf).reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        up = scalar(*args)
        flat[i] = saved - eps
        down = scalar(*args)
        flat[i] = saved
        numeric = (up - down) / (2 * eps)
        err = abs(gflat[i] - numeric)
        ratio = err / (atol + rtol * abs(numeric))
        if np.isnan(ratio):  # a NaN (analytic or numeric) compares False with everything: the worst error
            err = ratio = np.inf
        if ratio > 1:
            result.ok = False
        result.max_abs_error = max(result.max_abs_error, float(err))
        if ratio >= result._worst_ratio:
            index = [int(k) for k in np.unravel_index(i, leaf.shape)] if leaf.shape else []
            result._worst_ratio = float(ratio)
            result.worst = f"{name}{index} (analytic {gflat[i]:.6g}, numeric {numeric:.6g})"


def _scalar(f, seed):
    def value(*args):
        out = to_numpy(f(*args)).astype(np.float64)
        return float(np.sum(out * seed)) if seed is not None else float(out.sum())

    return value
