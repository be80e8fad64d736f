"""Primitives, grouped by family. `PRIMITIVES` maps each name to its `Primitive`."""
from . import elementwise, index, linalg, nn, random, reduce, shape
from .primitive import PRIMITIVES, Primitive, primitive

__all__ = ["PRIMITIVES", "Primitive", "primitive", "elementwise", "reduce", "shape", "index", "linalg", "nn", "random"]
from . import loss  # noqa: E402,F401 - loss primitives (cross-entropy, sigmoid cross-entropy)
from . import special  # noqa: E402,F401 - erf
