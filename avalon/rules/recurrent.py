"""Rules of the fused recurrence primitives (avalon/ops/recurrent.py).

`lstm_scan`'s rule is one `lstm_scan_grad` call (the reverse walk over the steps) and one GEMM over
all steps for W_hh's gradient: Σ_t dgates_tᵀ·h_{t-1}, with h_{t-1} the workspace's h block shifted by
one step (h0 first). The gradient of gi is the gate gradient itself, the bias's its sum over steps and
batch. `rnn_scan`'s is the same with
`rnn_scan_grad`.

`lstm_layer_output`'s rule (avalon/ops/lstm_layer.py) is one `lstm_layer_grad` call, whose flat result
holds the gradients of x, h0, c0 and the weights; the buffer `lstm_layer` filled gets none.

Second derivatives through the fused recurrence are refused (the backward walk is one opaque loop):
a layer's `fused = False` unrolls it into primitives that differentiate again.
"""
from .. import numpy_api as npa
from ..errors import GradientError
from ..ops import linalg as la
from ..ops import lstm_layer as ll
from ..ops import recurrent as rc
from ..ops import reduce as rd
from .registry import rule


def _weight_grad(dgi, h_all, h0, reverse):
    """Σ_t dgiₜᵀ·h_{t-1} as one GEMM over all steps: h_all's steps shifted by one, h0 first (in the
    order the recurrence visits them)."""
    steps, batch, width = dgi.shape
    first = npa.expand_dims(h0, 0)
    previous = npa.concatenate([h_all[1:], first] if reverse else [first, h_all[:-1]], axis=0)
    return la.matmul(npa.transpose(npa.reshape(dgi, (steps * batch, width))),
                     npa.reshape(previous, (steps * batch, h0.shape[-1])))


@rule(rc.lstm_scan)
def _lstm_scan(g, ws, gi, h0, c0, w_hh, bias, *mask, reverse=False):
    steps, size = gi.shape[0], h0.shape[-1]
    d = rc.lstm_scan_grad(g, ws, h0, c0, w_hh, *mask, reverse=reverse)
    dgi = d[:steps]
    dw_hh = _weight_grad(dgi, ws[:, :, :size], h0, reverse)
    dbias = rd.sum(dgi, axis=(0, 1))
    return (dgi, d[steps, :, :size], d[steps, :, size:2 * size], dw_hh, dbias) + (None,) * len(mask)


@rule(rc.rnn_scan)
def _rnn_scan(g, hs, gi, h0, w_hh, *mask, nonlinearity="tanh", reverse=False):
    steps = gi.shape[0]
    d = rc.rnn_scan_grad(g, hs, h0, w_hh, *mask, nonlinearity=nonlinearity, reverse=reverse)
    dgi = d[:steps]
    return (dgi, d[steps], _weight_grad(dgi, hs, h0, reverse)) + (None,) * len(mask)


@rule(rc.gru_scan)
def _gru_scan(g, ws, gi, h0, w_hh, b_hh, *mask, reverse=False):
    steps, size = gi.shape[0], h0.shape[-1]
    d = rc.gru_scan_grad(g, ws, h0, w_hh, *mask, reverse=reverse)
    dgh = d[:steps, :, :3 * size]  # of h·W_hhᵀ + b_hh: r, z, n
    dgi = npa.concatenate([d[:steps, :, :2 * size], d[:steps, :, 3 * size:]], axis=2)
    db_hh = rd.sum(dgh, axis=(0, 1))
    return (dgi, d[steps, :, :size], _weight_grad(dgh, ws[:, :, :size], h0, reverse), db_hh) + (None,) * len(mask)


@rule(ll.lstm_layer_output)
def _lstm_layer_output(g, out, ws, x, h0, c0, w_ih, w_hh, bias, reverse=False):
    steps, batch, features = x.shape
    size = h0.shape[-1]
    flat = ll.lstm_layer_grad(g, ws, x, h0, c0, w_ih, w_hh, bias, reverse=reverse)
    offsets = ll.grad_layout(steps, batch, features, size)
    shapes = [(steps, batch, features), (batch, size), (batch, size), (features, 4 * size), (size, 4 * size),
              (4 * size,)]
    dx, dh0, dc0, dw_ih_t, dw_hh_t, dbias = (npa.reshape(flat[a:b], shape)
                                             for a, b, shape in zip(offsets, offsets[1:], shapes))
    # none for the buffer: the gradient reaches the layer's inputs directly
    return None, dx, dh0, dc0, npa.transpose(dw_ih_t), npa.transpose(dw_hh_t), dbias


def _refused(h, out, *args, **params):
    raise GradientError(
        "second derivatives through a fused recurrence (lstm_scan, rnn_scan, gru_scan, lstm_layer) are not "
        "supported: set `fused = False` on the layer (e.g. `lstm.fused = False`) to unroll it into primitives "
        "that differentiate again")


rule(rc.lstm_scan_grad)(_refused)
rule(rc.rnn_scan_grad)(_refused)
rule(rc.gru_scan_grad)(_refused)
rule(ll.lstm_layer_grad)(_refused)
