"""Reverse-mode differentiation as a tape transform, `grad`, the compile cache and `gradcheck`."""
from .backward import backward
from .cache import call, clear as clear_cache, jit
from .retraces import RetraceWarning, explain_cache
from .grad import grad, grad_tape, value_and_grad
from .gradcheck import GradcheckResult, gradcheck

__all__ = ["backward", "grad", "grad_tape", "value_and_grad", "jit", "call", "clear_cache", "explain_cache", "RetraceWarning", "gradcheck",
           "GradcheckResult"]
