"""Rules of the separable resampling primitives: each is the other's adjoint."""
from ..ops import vision as vs
from .registry import rule

rule(vs.resample)(lambda g, out, x, maps: (vs.resample_transpose(g, maps=maps),))
rule(vs.resample_transpose)(lambda g, out, x, maps: (vs.resample(g, maps=maps),))
