"""Embedding: a lookup table of learned vectors, indexed by integer arrays."""
import numpy as np

from ...arguments import ArgumentError, whole
from ...errors import AvalonError
from .. import functional as F
from .. import init
from ..module import Module, Parameter, _as_array

__all__ = ["Embedding"]


class Embedding(Module):
    """Rows of a (num_embeddings, embedding_dim) weight picked by integer indices.

    Initialised N(0, 1) as PyTorch; the `padding_idx` row starts at zero and receives no gradient.
    `max_norm` and `scale_grad_by_freq` are not supported; `sparse` is accepted (gradients are dense).
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False, device=None, dtype=None):
        super().__init__()
        whole("Embedding", "num_embeddings", num_embeddings), whole("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ArgumentError(f"padding_idx {padding_idx} must be within num_embeddings ({num_embeddings})",
                                    fix=f"pass a row index in [-{num_embeddings}, {num_embeddings}), or None")
            padding_idx %= num_embeddings
        if max_norm is not None or scale_grad_by_freq:
            raise AvalonError("Embedding: max_norm and scale_grad_by_freq are not supported; renormalise the "
                              "weight explicitly (e.g. after the optimiser step) or scale the gradient yourself")
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype or np.float32),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            weight = _as_array(_weight)
            if tuple(weight.shape) != (num_embeddings, embedding_dim):
                raise AvalonError(f"_weight has shape {tuple(weight.shape)}, expected "
                                  f"{(num_embeddings, embedding_dim)}")
            self.weight = Parameter(weight, requires_grad=not _freeze)
        if device is not None:
            self.to(device)

    def reset_parameters(self):
        """Draw new vectors from N(0, 1) and zero the padding row."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight[self.padding_idx] = 0

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """An Embedding holding `embeddings` (2-D); with `freeze` it receives no gradient."""
        embeddings = _as_array(embeddings)
        if embeddings.ndim != 2:
            raise AvalonError(f"embeddings must be 2-D, got shape {tuple(embeddings.shape)}")
        rows, dim = embeddings.shape
        return cls(rows, dim, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)

    def extra_repr(self):
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.sparse:
            text += ", sparse=True"
        return text
