"""Signal processing: the Hann, Hamming and Blackman windows (computed at trace time from their size)."""
import numpy as np

from . import operator

# window -> its cosine terms (a0, a1, a2): a0 - a1·cos(2πn/N) + a2·cos(4πn/N)
_TERMS = {"HannWindow": (0.5, 0.5, 0.0), "HammingWindow": (25 / 46, 21 / 46, 0.0),
          "BlackmanWindow": (0.42, 0.5, 0.08)}


@operator(*_TERMS)
def window(n, size):
    """A window of `size` points: periodic (N = size, the default) or symmetric (N = size - 1)."""
    from onnx.helper import tensor_dtype_to_np_dtype
    size = n.ints(size, "the window's size")[0]
    period = size if n.attr("periodic", 1) else size - 1
    a0, a1, a2 = _TERMS[n.op_type]
    angle = 2 * np.pi * np.arange(size, dtype=np.float64) / period
    values = a0 - a1 * np.cos(angle) + a2 * np.cos(2 * angle)
    return values.astype(tensor_dtype_to_np_dtype(n.attr("output_datatype", 1)))
