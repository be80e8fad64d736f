"""Special functions: `erf` (the exact GELU needs it).

numpy has no erf, so the forward uses scipy's (cupyx's on the GPU) when it is importable and
otherwise a namespace-generic evaluation accurate to a few float64 ulps: the series
erf(x) = 2/√π·exp(-x²)·Σ (2x²)ⁿ x / (1·3·…·(2n+1)), whose terms are all positive (no cancellation),
below |x| = 2.5, and Laplace's continued fraction for erfc above it.
"""
import math

from ..backend import namespace
from .primitive import primitive

_CUT = 2.5  # below: the series (converges in 40 terms); above: the continued fraction (40 levels)
_TERMS = 40


def _fast_erf(xp):
    """scipy's or cupyx's erf for numpy or cupy arrays, or None."""
    try:
        if xp.__name__ == "numpy":
            from scipy.special import erf
        elif xp.__name__ == "cupy":
            from cupyx.scipy.special import erf
        else:
            return None
    except ImportError:
        return None
    return erf


def erf_fallback(x):
    """erf without scipy, from the namespace's elementary functions alone."""
    xp = namespace(x)
    a = xp.abs(x)
    small = xp.minimum(a, _CUT)
    square = small * small
    term, total = small, small
    for n in range(1, _TERMS):
        term = term * (2 * square) / (2 * n + 1)
        total = total + term
    series = (2 / math.sqrt(math.pi)) * xp.exp(-square) * total
    large = xp.maximum(a, _CUT)
    fraction = large
    for k in range(_TERMS, 0, -1):
        fraction = large + (k / 2) / fraction
    tail = 1 - xp.exp(-large * large) / (math.sqrt(math.pi) * fraction)
    return xp.sign(x) * xp.where(a < _CUT, series, tail)


@primitive("erf")
def erf(x):
    """The error function 2/√π ∫₀ˣ exp(-t²) dt, elementwise."""
    fast = _fast_erf(namespace(x))
    return fast(x) if fast is not None else erf_fallback(x)
