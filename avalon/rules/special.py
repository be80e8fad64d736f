"""Rules of the special functions."""
import math

from ..ops import elementwise as ew
from ..ops import special
from .registry import rule

rule(special.erf)(lambda g, out, x: (g * (2 / math.sqrt(math.pi)) * ew.exp(-(x * x)),))
