"""Dropout: random zeroing with a mask drawn by `avalon.rand` (a recorded random primitive), so
every replay of a cached model draws a fresh mask, exactly as running the code again would."""
import numbers
import warnings

from ... import torch_api as ta
from ...arguments import ArgumentError
from ...errors import AvalonError
from ...ops import elementwise as ew

__all__ = ["dropout", "dropout1d", "dropout2d"]


def dropout_probability(p):
    """Refuse a dropout probability outside [0, 1] (torch's message), at the user's line."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ArgumentError(f"dropout probability has to be between 0 and 1, but got {p!r}",
                            fix="pass p in [0, 1], the probability of zeroing each element (e.g. p=0.1)")


def _masked(input, p, training, mask_shape):
    """`input` times a random keep-mask of `mask_shape` (broadcast over the rest), or `input` itself
    when not `training` or p = 0."""
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    keep = ta.rand(*mask_shape, dtype=input.dtype, device=ta._device_of(input)) >= p
    # kept elements are scaled by 1/(1-p) so the expected value is unchanged
    return input * (ew.astype(keep, dtype=input.dtype) * (1.0 / (1.0 - p)))


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability `p` and scale the rest by 1/(1-p) (identity when not
    `training` or p = 0)."""
    dropout_probability(p)
    return _masked(input, p, training, tuple(input.shape))


def _feature_dropout(input, p, training, channel_dims):
    """Zero whole channels: one keep-decision per entry of the first `channel_dims` dimensions."""
    return _masked(input, p, training, tuple(input.shape[:channel_dims]) + (1,) * (input.ndim - channel_dims))


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of an (N, C, L) or unbatched (C, L) input with probability `p`."""
    dropout_probability(p)
    if input.ndim not in (2, 3):
        raise AvalonError(f"dropout1d: expected a 2-D (C, L) or 3-D (N, C, L) input, got shape {tuple(input.shape)}; "
                          "dropout2d / dropout3d drop channels of inputs with more spatial dimensions")
    return _feature_dropout(input, p, training, input.ndim - 1)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of an (N, C, H, W) input with probability `p`.

    As torch 2.13: a 3-D input is read as (N, C, L), not as an unbatched (C, H, W), and warns
    (dropout1d does the same without a warning); any other input of at least 2 dimensions warns that
    it is deprecated and has its (N, C) channels dropped.
    """
    dropout_probability(p)
    if input.ndim < 2:
        raise AvalonError(f"dropout2d: channel dropout needs at least 2 dimensions (N, C, ...), got shape "
                          f"{tuple(input.shape)}; use dropout")
    if input.ndim == 3:
        warnings.warn("dropout2d: a 3-D input is read as (N, C, L) and its channels dropped as dropout1d does "
                      "(PyTorch's behaviour, which it plans to change to an unbatched (C, H, W)); use dropout1d "
                      "to say so, or add the batch dimension", UserWarning, stacklevel=2)
    elif input.ndim != 4:
        warnings.warn(f"dropout2d: a {input.ndim}-D input is deprecated (PyTorch will refuse it); dropout2d drops "
                      "channels of 3-D or 4-D inputs: use dropout instead", UserWarning, stacklevel=2)
    return _feature_dropout(input, p, training, 2)
