"""torch.nn.utils: gradient clipping (on the gradients `avalon.grad` returns) and, in
`avalon.nn.utils.rnn`, packing variable-length sequences for the recurrent layers."""
from . import rnn
from .clip_grad import clip_grad_norm_, clip_grad_value_, get_total_norm

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "rnn"]
