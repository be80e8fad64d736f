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


def _to_last(x, axis):
    order = [a for a in range(x.ndim) if a != axis] + [axis]
    return np.transpose(x, order), order


def _from_last(y, order):
    return np.transpose(y, list(np.argsort(order)))


def _parts(x):
    """The real and imaginary parts of an ONNX complex-as-last-axis signal (..., 1 or 2)."""
    real = x[..., 0]
    return real, (x[..., 1] if x.shape[-1] == 2 else None)


def _fourier(real, imaginary, length, inverse, onesided):
    """The DFT of length `length` along the last axis (zero-padded or truncated to it), as products
    with cosine and sine matrices so that it differentiates: (real, imaginary) parts, or the real
    signal alone for an inverse one-sided transform."""
    given = min(real.shape[-1], length)
    real = real[..., :given]
    imaginary = None if imaginary is None else imaginary[..., :given]
    if inverse and onesided:  # the Hermitian half: bins 1 .. ceil(N/2)-1 stand for their mirror images too
        bins = min(given, length // 2 + 1)
        k = np.arange(bins)[:, None]
        weight = np.where((k == 0) | (2 * k == length), 1.0, 2.0) / length
        angle = 2 * np.pi * k * np.arange(length)[None, :] / length
        cos, sin = (weight * np.cos(angle)).astype(real.dtype), (weight * np.sin(angle)).astype(real.dtype)
        y = real[..., :bins] @ cos
        return (y - imaginary[..., :bins] @ sin if imaginary is not None else y), None
    outputs = length // 2 + 1 if onesided else length
    angle = 2 * np.pi * np.arange(given)[:, None] * np.arange(outputs)[None, :] / length
    scale = 1.0 / length if inverse else 1.0
    cos, sin = (scale * np.cos(angle)).astype(real.dtype), (scale * np.sin(angle)).astype(real.dtype)
    sign = 1 if inverse else -1  # e^{∓iθ}: (a + ib)(cos θ ± i sin θ)
    y_real, y_imaginary = real @ cos, (real @ sin) * sign
    if imaginary is not None:
        y_real = y_real - (imaginary @ sin) * sign
        y_imaginary = y_imaginary + imaginary @ cos
    return y_real, y_imaginary


@operator("DFT")
def dft(n, x, length=None, axis=None):
    """Opset 17: `axis` attribute (default 1); from 20 an input (default -2). Output (..., 2), or
    (..., 1) for an inverse one-sided (real) transform."""
    axis = n.attr("axis", 1) if n.opset < 20 else (-2 if axis is None else n.ints(axis, "axis")[0])
    axis %= x.ndim
    inverse, onesided = bool(n.attr("inverse", 0)), bool(n.attr("onesided", 0))
    if length is not None:
        length = n.ints(length, "dft_length")[0]
    else:
        length = 2 * (x.shape[axis] - 1) if inverse and onesided else x.shape[axis]
    real, imaginary = _parts(x)
    real, order = _to_last(real, axis)
    imaginary = None if imaginary is None else _to_last(imaginary, axis)[0]
    y_real, y_imaginary = _fourier(real, imaginary, length, inverse, onesided)
    parts = [y_real] if y_imaginary is None else [y_real, y_imaginary]
    return np.stack([_from_last(p, order) for p in parts], axis=-1).astype(x.dtype)


@operator("STFT")
def stft(n, x, step, window=None, length=None):
    """Frames of `window`'s length (or frame_length) every `frame_step` samples, windowed, each
    transformed: (batch, frames, bins, 2); one-sided (the default) keeps length // 2 + 1 bins."""
    step = n.ints(step, "frame_step")[0]
    size = window.shape[0] if window is not None else n.ints(length, "frame_length")[0]
    frames = 1 + (x.shape[1] - size) // step
    index = np.arange(frames)[:, None] * step + np.arange(size)[None, :]
    real, imaginary = _parts(x)
    real = real[:, index]
    imaginary = None if imaginary is None else imaginary[:, index]
    if window is not None:
        real = real * window
        imaginary = None if imaginary is None else imaginary * window
    y_real, y_imaginary = _fourier(real, imaginary, size, False, bool(n.attr("onesided", 1)))
    return np.stack([y_real, y_imaginary], axis=-1).astype(x.dtype)


@operator("MelWeightMatrix")
def mel_weight_matrix(n, bins, length, rate, low, high):
    """(length // 2 + 1, bins) triangular filters evenly spaced on the mel scale between the edges."""
    from onnx.helper import tensor_dtype_to_np_dtype
    bins, length, rate = (n.ints(v, "MelWeightMatrix's sizes")[0] for v in (bins, length, rate))
    low, high = (float(n.constant(v, "the edge frequencies").reshape(-1)[0]) for v in (low, high))

    def mel(hertz):
        return 2595 * np.log10(1 + hertz / 700)
    points = np.arange(bins + 2) * (mel(high) - mel(low)) / (bins + 2) + mel(low)
    edges = (((length + 1) * (700 * (10 ** (points / 2595) - 1))) // rate).astype(np.int64)
    weights = np.zeros((length // 2 + 1, bins))
    for i in range(bins):
        left, centre, right = edges[i:i + 3]
        if centre == left:
            weights[centre, i] = 1
        else:
            weights[left:centre + 1, i] = (np.arange(left, centre + 1) - left) / (centre - left)
        if right > centre:
            weights[centre:right, i] = (right - np.arange(centre, right)) / (right - centre)
    return weights.astype(tensor_dtype_to_np_dtype(n.attr("output_datatype", 1)))
