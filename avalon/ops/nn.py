"""Neural-network primitives with hand-written rules (fused for speed and numerical stability)."""
from ..backend import namespace
from .primitive import primitive


@primitive("softmax")
def softmax(x, axis):
    """exp(x) / sum(exp(x)) along `axis`, shifted by the maximum so it never overflows."""
    xp = namespace(x)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


@primitive("log_softmax")
def log_softmax(x, axis):
    """x - logsumexp(x) along `axis`, computed stably."""
    xp = namespace(x)
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


@primitive("stop_gradient", view=True, differentiable=False)
def stop_gradient(x):
    """`x` itself, with no gradient flowing back (torch's `detach`)."""
    return x
