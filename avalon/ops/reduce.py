"""Reductions along axes (`axis` is None, an int or a tuple; `keepdims` as in numpy), scans, sum_to."""
from ..backend import is_numpy_like, namespace
from .primitive import primitive


def _reduction(name, xp_name=None, differentiable=True):
    attr = xp_name or name

    def impl(x, axis=None, keepdims=False):
        return getattr(namespace(x), attr)(x, axis=axis, keepdims=keepdims)

    impl.__name__ = name
    impl.__doc__ = f"`{name}` of `x` over `axis` (all axes when None)."
    return primitive(name, differentiable=differentiable)(impl)


sum = _reduction("sum")
mean = _reduction("mean")
prod = _reduction("prod")
max = _reduction("max")
min = _reduction("min")
any = _reduction("any", differentiable=False)
all = _reduction("all", differentiable=False)


@primitive("argmax", differentiable=False)
def argmax(x, axis=None, keepdims=False):
    """Index of the largest element along `axis` (of the flattened array when None)."""
    return namespace(x).argmax(x, axis=axis, keepdims=keepdims)


@primitive("argmin", differentiable=False)
def argmin(x, axis=None, keepdims=False):
    """Index of the smallest element along `axis` (of the flattened array when None)."""
    return namespace(x).argmin(x, axis=axis, keepdims=keepdims)


@primitive("var")
def var(x, axis=None, keepdims=False, ddof=0):
    """Variance with `ddof` degrees of freedom removed (numpy's `ddof`, torch's `correction`)."""
    xp = namespace(x)
    if is_numpy_like(xp):
        return xp.var(x, axis=axis, keepdims=keepdims, ddof=ddof)
    return xp.var(x, axis=axis, keepdims=keepdims, correction=ddof)


@primitive("logsumexp")
def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) over `axis`, computed stably (shifted by the maximum)."""
    xp = namespace(x)
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = xp.reshape(out, _reduced_shape(x.shape, axis))
    return out


@primitive("cumsum")
def cumsum(x, axis):
    """Running sum along `axis`."""
    xp = namespace(x)
    return xp.cumsum(x, axis=axis) if hasattr(xp, "cumsum") else xp.cumulative_sum(x, axis=axis)


@primitive("cumprod")
def cumprod(x, axis):
    """Running product along `axis`."""
    xp = namespace(x)
    return xp.cumprod(x, axis=axis) if hasattr(xp, "cumprod") else xp.cumulative_prod(x, axis=axis)


@primitive("sum_to", view=True)
def sum_to(x, shape):
    """Sum `x` down to a broadcast-compatible `shape`: the adjoint of broadcasting."""
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    xp = namespace(x)
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
    out = xp.sum(x, axis=axes, keepdims=True)
    return xp.reshape(out, shape)


def normalize_axis(axis, ndim):
    """`axis` as a sorted tuple of non-negative ints (all axes for None)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(sorted(a % ndim if ndim else 0 for a in axis))


def _reduced_shape(shape, axis):
    axes = normalize_axis(axis, len(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)
