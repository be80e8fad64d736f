"""Index lookups: `embedding` (rows of a weight matrix) and `one_hot`."""
import numpy as np

from ... import numpy_api as npa
from ... import torch_api as ta
from ...errors import AvalonError, DtypeError
from ...ops import elementwise as ew
from ...ops import index as ix
from ...ops import nn as nn_ops
from ...tracing.tracer import Tracer
from ..errors import array_input, fail

__all__ = ["embedding", "one_hot"]


def _check_indices(input, what):
    array_input(what, input, floating=False)
    if not np.issubdtype(input.dtype, np.integer):
        raise fail(what, f"expects integer indices, got dtype {input.dtype}", DtypeError,
                   fix="convert them with .long() or .astype(np.int64)")


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of `weight` picked by the integer array `input`: shape input.shape + (embedding_dim,).

    Positions equal to `padding_idx` contribute no gradient to that row (as PyTorch). `sparse` is
    accepted and has no effect (gradients are dense arrays). `max_norm` (which rewrites the weight in
    place during the forward) and `scale_grad_by_freq` are not supported.
    """
    _check_indices(input, "embedding")
    if max_norm is not None or scale_grad_by_freq:
        raise AvalonError("embedding: max_norm and scale_grad_by_freq are not supported; renormalise the "
                          "weight explicitly (e.g. after the optimiser step) or scale the gradient yourself")
    input = ix.checked_index(input, size=weight.shape[0], what="embedding")  # at every call, replays too
    out = npa.take(weight, input, axis=0)  # records when either the weight or the indices are traced
    if padding_idx is None:
        return out
    if padding_idx < 0:
        padding_idx += weight.shape[0]
    padding = ta.unsqueeze(ew.equal(input, padding_idx), -1)
    # the same values either way; only the padding positions are cut off from the gradient
    return ew.where(padding, nn_ops.stop_gradient(out), out)


def one_hot(tensor, num_classes=-1):
    """int64 array of shape tensor.shape + (num_classes,) with a 1 at each index.

    `num_classes=-1` takes max + 1, which needs the values: inside traced code pass it explicitly.
    """
    _check_indices(tensor, "one_hot")
    if not isinstance(tensor, Tracer):
        if num_classes == -1:  # negative values are refused below, as torch refuses them
            num_classes = max(int(tensor.max()) + 1, 1) if tensor.size else 0
    elif num_classes == -1:
        raise AvalonError("one_hot: num_classes=-1 needs the values, which traced code cannot read; pass "
                          "num_classes explicitly")
    tensor = ix.in_range(tensor, num_classes, "one_hot")  # at every call, replays too
    classes = ta.arange(num_classes, device=ta._device_of(tensor))
    return ew.astype(ew.equal(ta.unsqueeze(tensor, -1), classes), dtype=np.dtype(np.int64))
