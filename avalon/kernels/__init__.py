"""The kernel library: fused elementwise expressions computed in one pass, behind one interface.

`Kernel("where(x > 0, g, 0)", ["x", "g"])` compiles an expression once per signature and runs it on
numexpr (CPU, the optional extra `avalon[fast]`), a generated cupy ElementwiseKernel (GPU) or the
pure-numpy fallback (ufuncs writing into planned buffers). The compiler's fusion pass
(`avalon.compile.fuse`) and the optimisers' updates use it.
"""
from .kernel import CPU_BACKENDS, Kernel, get_backend, set_backend
from .program import KernelError

__all__ = ["Kernel", "KernelError", "set_backend", "get_backend", "CPU_BACKENDS"]
