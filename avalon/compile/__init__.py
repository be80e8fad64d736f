"""Compiling tapes: optimisation passes and Python code generation."""
from .codegen import Compiled, compile_tape
from .passes import buffer_plan, common_subexpressions, constant_folding, dead_code, matmul_layout

__all__ = ["Compiled", "compile_tape", "dead_code", "common_subexpressions", "constant_folding", "matmul_layout",
           "buffer_plan"]
