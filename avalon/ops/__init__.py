"""Primitives, grouped by family. `PRIMITIVES` maps each name to its `Primitive`."""
from . import elementwise, index, linalg, nn, random, reduce, shape
from .primitive import PRIMITIVES, Primitive, primitive

__all__ = ["PRIMITIVES", "Primitive", "primitive", "elementwise", "reduce", "shape", "index", "linalg", "nn", "random"]
from . import loss  # noqa: E402,F401 - loss primitives (cross-entropy, sigmoid cross-entropy)
from . import special  # noqa: E402,F401 - erf
from . import conv  # noqa: E402,F401 - convolution primitives (conv, conv_transpose, conv_weight_grad, unfold, fold)
from . import pool  # noqa: E402,F401 - pooling primitives (max, average)
from . import norm  # noqa: E402,F401 - the fused normalisation primitive
from . import vision  # noqa: E402,F401 - separable resampling (interpolation, adaptive pooling)
from . import attention  # noqa: E402,F401 - fused scaled dot-product attention
from . import sort  # noqa: E402,F401 - sorting and searching (argsort, argpartition, searchsorted, argwhere)
from . import recurrent  # noqa: E402,F401 - the fused recurrences (LSTM, GRU, RNN)
from . import batch_norm  # noqa: E402,F401 - fused batch normalisation in training mode (statistics, apply, backward)
from . import layer_norm  # noqa: E402,F401 - fused layer normalisation (statistics, apply, backward)
