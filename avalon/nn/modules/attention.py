"""`MultiheadAttention` with PyTorch's parameters (packed `in_proj_weight` / `in_proj_bias`, or
`q_proj_weight`, `k_proj_weight`, `v_proj_weight` when key and value have other sizes, and
`out_proj`), masks and return values, so a PyTorch state_dict loads unchanged.

>>> attn = nn.MultiheadAttention(embed_dim=16, num_heads=4, batch_first=True)
>>> out, weights = attn(x, x, x, key_padding_mask=padding)      # x: (N, L, 16)
"""
import numpy as np

from ...arguments import ArgumentError
from ...errors import AvalonError
from .. import init
from ..functional.attention import multi_head_attention_forward
from ..module import Module, Parameter, shape_error
from .linear import Linear

__all__ = ["MultiheadAttention"]


class MultiheadAttention(Module):
    """Attention over `num_heads` heads of size embed_dim / num_heads (PyTorch's `nn.MultiheadAttention`).

    forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False) → (output, weights or None). Inputs are (L, N, E),
    (N, L, E) with `batch_first`, or unbatched (L, E). In both masks True (or -inf) means "may not
    attend": key_padding_mask is (N, S), attn_mask (L, S) or (N·num_heads, L, S). The weights are
    averaged over the heads unless average_attn_weights=False.

    With need_weights=False (and no dropout in training) the attention is one fused `attention`
    primitive; with need_weights=True the weights come from one fused `attention_weights` call and
    are multiplied with the values, so returning them costs no extra work.

    A query whose keys are all masked attends to nothing: zero weights, an output of out_proj's bias
    alone and zero gradients through the attention. This is what PyTorch's need_weights=False path
    (scaled_dot_product_attention) gives in training; its need_weights=True path and its no-grad
    inference fast path give NaN there instead (a known PyTorch bug, pytorch/pytorch#41508 and
    #160064), which we do not reproduce.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise AvalonError(f"embed_dim and num_heads must be positive, got {embed_dim} and {num_heads}")
        if embed_dim % num_heads:
            raise ArgumentError(f"embed_dim {embed_dim} must be divisible by num_heads {num_heads}",
                                "each head takes embed_dim // num_heads of the features",
                                "pick num_heads dividing embed_dim (e.g. 8 heads for embed_dim=512)")
        dtype = np.dtype(dtype or np.float32)
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first, self.add_zero_attn = dropout, batch_first, add_zero_attn
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = Parameter(np.empty((embed_dim, embed_dim), dtype))
            self.k_proj_weight = Parameter(np.empty((embed_dim, self.kdim), dtype))
            self.v_proj_weight = Parameter(np.empty((embed_dim, self.vdim), dtype))
        if bias:
            self.in_proj_bias = Parameter(np.empty(3 * embed_dim, dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        if add_bias_kv:
            self.bias_k = Parameter(np.empty((1, 1, embed_dim), dtype))
            self.bias_v = Parameter(np.empty((1, 1, embed_dim), dtype))
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self):
        # PyTorch's: Xavier-uniform projections, zero biases, Xavier-normal bias_k/bias_v; out_proj.weight
        # keeps Linear's default initialisation
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        pattern = "(N, L, {})" if self.batch_first else "(L, N, {})"
        for name, array, size in (("query", query, self.embed_dim), ("key", key, self.kdim),
                                  ("value", value, self.vdim)):
            if array.ndim not in (2, 3) or array.shape[-1] != size:
                raise shape_error(self, f"{name} of shape {pattern.format(size)} or (L, {size})", array.shape)
        return multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight, self.in_proj_bias,
            self.bias_k, self.bias_v, self.add_zero_attn, self.dropout, self.out_proj.weight, self.out_proj.bias,
            training=self.training, key_padding_mask=key_padding_mask, need_weights=need_weights,
            attn_mask=attn_mask, use_separate_proj_weight=not self._qkv_same_embed_dim,
            q_proj_weight=self.q_proj_weight, k_proj_weight=self.k_proj_weight, v_proj_weight=self.v_proj_weight,
            average_attn_weights=average_attn_weights, is_causal=is_causal, batch_first=self.batch_first)
