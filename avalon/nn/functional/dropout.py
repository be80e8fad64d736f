"""Dropout: random zeroing with a mask drawn by `avalon.rand` (a recorded random primitive), so
every replay of a cached model draws a fresh mask, exactly as running the code again would."""
from ... import torch_api as ta
from ...errors import AvalonError
from ...ops import elementwise as ew

__all__ = ["dropout", "dropout1d", "dropout2d"]


def _check(p):
    if not 0.0 <= p <= 1.0:
        raise AvalonError(f"dropout probability has to be between 0 and 1, but got {p}")


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
    _check(p)
    return _masked(input, p, training, tuple(input.shape))


def _feature_dropout(input, p, training, allowed, channel_dims, name):
    _check(p)
    if input.ndim not in allowed:
        raise AvalonError(f"{name}: expected a {' or '.join(f'{n}-D' for n in allowed)} input, got shape "
                          f"{tuple(input.shape)}")
    return _masked(input, p, training, tuple(input.shape[:channel_dims]) + (1,) * (input.ndim - channel_dims))


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of an (N, C, L) or (C, L) input with probability `p`."""
    return _feature_dropout(input, p, training, (2, 3), input.ndim - 1, "dropout1d")


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of an (N, C, H, W) input with probability `p`. A 3-D input is read as
    (N, C, L), as PyTorch 2 does (channel-wise 1-D dropout)."""
    return _feature_dropout(input, p, training, (3, 4), 2, "dropout2d")
