"""Compiling tapes: optimisation passes and Python code generation."""
import sys
import types

from .accumulate import accumulate_slices
from .codegen import Compiled, compile_tape
from .fuse import fuse_elementwise
from .passes import buffer_plan, common_subexpressions, constant_folding, dead_code, matmul_layout

__all__ = ["Compiled", "compile_tape", "dead_code", "common_subexpressions", "constant_folding", "matmul_layout",
           "accumulate_slices", "fuse_elementwise", "buffer_plan"]


class _CompilePackage(types.ModuleType):
    """`avalon.compile` is this package and, called, torch.compile's stand-in for ported scripts."""

    def __call__(self, model=None, **options):
        """`avalon.compile(model)` (torch.compile): returns `model` unchanged, since every call of a
        model on arrays is already traced, optimised and compiled to Python once per signature (see
        `avalon.jit`). Works as a decorator, with or without options."""
        return model if model is not None else (lambda fn: fn)


sys.modules[__name__].__class__ = _CompilePackage
