"""torch.backends' switches, for scripts that set them at the top (`avalon.backends.cudnn.benchmark =
True`). Avalon runs numpy on the CPU and cupy on a GPU, never cuDNN or MPS, so the flags are plain
settable attributes with torch's defaults and change nothing.

Not to be confused with `avalon.backend` (singular): which array module (numpy, cupy) holds an array.
"""
from . import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
