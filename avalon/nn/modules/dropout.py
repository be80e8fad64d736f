"""Dropout layers: random zeroing in training mode, the identity in evaluation mode."""
from .. import functional as F
from ..functional.dropout import dropout_probability
from ..module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d"]


class _DropoutNd(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        dropout_probability(p)
        self.p, self.inplace = p, inplace

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zeroes each element with probability `p` while training and scales the rest by 1/(1-p).

    The mask is drawn with `avalon.rand`, so every call (and every cached replay) draws a new one.
    `inplace` is accepted and ignored (the result is a new array).
    """

    def forward(self, input):
        return F.dropout(input, self.p, self.training)


class Dropout1d(_DropoutNd):
    """Zeroes whole channels of (N, C, L) or (C, L) inputs with probability `p` while training."""

    def forward(self, input):
        return F.dropout1d(input, self.p, self.training)


class Dropout2d(_DropoutNd):
    """Zeroes whole channels of (N, C, H, W) inputs with probability `p` while training (a 3-D input
    is read as (N, C, L), with a warning, as torch 2.13: see `F.dropout2d`)."""

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training)
