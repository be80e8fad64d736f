"""Compiling tapes: optimisation passes and Python code generation."""
from .codegen import Compiled, compile_tape
from .passes import buffer_plan, common_subexpressions, constant_folding, dead_code

__all__ = ["Compiled", "compile_tape", "dead_code", "common_subexpressions", "constant_folding", "buffer_plan"]
