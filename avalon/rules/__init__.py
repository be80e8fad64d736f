"""Differentiation rules, one module per primitive family; `rule` and `primitive` register new ones."""
from . import elementwise, linalg, nn, reduce, shape
from .registry import primitive, rule, user_rule_for, vjp_of

__all__ = ["rule", "primitive", "user_rule_for", "vjp_of", "elementwise", "reduce", "shape", "linalg", "nn"]
from . import loss  # noqa: E402,F401 - rules of the loss primitives
from . import special  # noqa: E402,F401 - rule of erf
from . import conv  # noqa: E402,F401 - rules of the convolution primitives
from . import pool  # noqa: E402,F401 - rules of the pooling primitives
from . import norm  # noqa: E402,F401 - rule of the normalisation primitive
from . import vision  # noqa: E402,F401 - rules of the resampling primitives
from . import attention  # noqa: E402,F401 - rules of the attention primitives
from . import recurrent  # noqa: E402,F401 - rules of the fused recurrences
from . import batch_norm  # noqa: E402,F401 - rules of the fused batch-norm primitives
from . import layer_norm  # noqa: E402,F401 - rules of the fused layer-norm primitives
