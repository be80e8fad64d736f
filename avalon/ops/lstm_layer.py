"""One LSTM layer and direction as two primitives, input projection included, on oneDNN's LSTM primitive
(avalon/kernels/onednn/rnn.py) when it is enabled, else on numpy (the projection as one GEMM, then
`lstm_scan`'s loop; rules: avalon/rules/recurrent.py).

    ws  = lstm_layer(x, h0, c0, w_ih, w_hh, bias)              the whole recurrence; not differentiated
    out = lstm_layer_output(ws, x, h0, c0, w_ih, w_hh, bias)   (T+1, N, H): every step's h, then c_n

`ws` is one flat buffer: a header, the outputs, then what the backward needs (oneDNN's workspace or
numpy's (T, N, 6H) one); its first element says which path filled it, so the backward takes the same
path even if oneDNN is switched between the two. `lstm_layer_output` only reads the outputs out of it
(a view), but its rule is the layer's backward, `lstm_layer_grad`, with respect to x, h0, c0 and the
weights, not to `ws`: so the tape never builds a gradient the size of the workspace (slicing a
workspace output would scatter into zeros of its whole size).

The layers (avalon/nn/modules/rnn.py) trace float32 LSTM layers without a mask (PackedSequence input
keeps `lstm_scan`) to these while `ONEDNN_LSTM` is True (the default) and oneDNN is installed;
`reverse` runs from the last step to the first (h_n is then step 0's h). Which path runs is then
decided at each call (`avalon.kernels.onednn.set_enabled`), including replays of tapes compiled
earlier. Set `ONEDNN_LSTM = False` before a layer is first called (it is read while tracing) for
`lstm_scan`.

On bench/steps.py's LSTM (128→256, seq 50, batch 32; one thread, CPU clock) the training step is
1.06–1.07× PyTorch's time with it, 1.33–1.34× with `lstm_scan` (whose per-step products run on oneDNN's
sgemm); peak memory 49–53 MB against 47–50 with `lstm_scan`, PyTorch's 56–61. oneDNN's workspace and
scratchpad are what PyTorch's LSTM, the same primitive, holds too; of their 31 and 32 MB oneDNN writes
about 19 and 6, and mapped without huge pages (avalon/pages.py; `lstm_layer` is `partial`) the rest
costs no memory: the step's peak went from 48 to 41.6 MB at 2 threads.
"""
import numpy as np

from .. import pages
from ..backend import namespace
from ..kernels.onednn import library as onednn
from . import recurrent as rc
from .primitive import primitive

ONEDNN_LSTM = True  # see the module docstring
HEADER = 16  # floats before the outputs (64 bytes, keeping what follows aligned); [0] names the path
_ONEDNN = 1.0


def _round(n):
    return -(-n // HEADER) * HEADER


def layout(steps, batch, features, size, dtype):
    """(offset of the workspace part, total length) of `lstm_layer`'s buffer: header, y (T·N·H), c_n
    and h_n (N·H each), x as a C-contiguous copy (T·N·C: the backward reads it again without copying
    a strided x once more), then room for either path's workspace."""
    start = _round(HEADER + (steps + 2) * batch * size + steps * batch * features)
    room = steps * batch * 6 * size  # numpy's workspace: h, c, i, f, g, o of each step
    if np.dtype(dtype) == np.float32 and onednn.available():
        from ..kernels.onednn import rnn
        room = max(room, -(-rnn.workspace_bytes(steps, batch, features, size, False) // 4))
    return start, start + room


def _parts(ws, steps, batch, features, size):
    """Views of the buffer: y (T, N, H), c_n, h_n (N, H), x (T, N, C)."""
    end = HEADER + (steps + 2) * batch * size
    outputs = ws[HEADER:end].reshape(steps + 2, batch, size)
    return outputs[:steps], outputs[steps], outputs[steps + 1], ws[end:end + steps * batch * features].reshape(
        steps, batch, features)


def _use_onednn(xp, dtype, ws, start, steps, batch, features, size, reverse):
    if xp is not np or dtype != np.float32 or not onednn.enabled():
        return False
    from ..kernels.onednn import rnn
    return ws.size - start >= rnn.workspace_bytes(steps, batch, features, size, reverse) // 4


@primitive("lstm_layer", out=True, partial=True, differentiable=False)
def lstm_layer(x, h0, c0, w_ih, w_hh, bias, reverse=False, out=None):
    """The LSTM over x (T, N, C) from h0, c0 (N, H) with PyTorch's w_ih (4H, C), w_hh (4H, H) and
    bias = b_ih + b_hh (4H,). Returns the flat buffer described in the module docstring (`out`: one of
    its length to write into)."""
    xp = namespace(x, h0, c0, w_ih, w_hh, bias)
    steps, batch, features = x.shape
    size = h0.shape[-1]
    start, total = layout(steps, batch, features, size, x.dtype)
    if out is not None:
        ws = out
    elif xp is np:  # oneDNN writes parts of its workspace: `pages.empty`
        ws = pages.empty(total * x.dtype.itemsize).view(x.dtype)
    else:
        ws = xp.empty(total, dtype=x.dtype)
    y, c_n, h_n, x_kept = _parts(ws, steps, batch, features, size)
    x_kept[...] = x
    aux = ws[start:]
    if _use_onednn(xp, x.dtype, ws, start, steps, batch, features, size, reverse):
        from ..kernels.onednn import rnn
        ws[0] = _ONEDNN
        contiguous = np.ascontiguousarray
        rnn.forward(x_kept, contiguous(h0), contiguous(c0), w_ih, w_hh, contiguous(bias), y, h_n, c_n, aux, reverse)
        return ws
    ws[0] = 0
    gi = xp.matmul(x.reshape(steps * batch, features), w_ih.T).reshape(steps, batch, 4 * size)
    state = rc.lstm_scan.impl(gi, h0, c0, w_hh, bias, reverse=reverse)
    aux[:state.size] = state.reshape(-1)
    y[...] = state[:, :, :size]
    last = 0 if reverse else steps - 1
    c_n[...] = state[last, :, size:2 * size]
    h_n[...] = state[last, :, :size]
    return ws


@primitive("lstm_layer_output", view=True)
def lstm_layer_output(ws, x, h0, c0, w_ih, w_hh, bias, reverse=False):
    """(T+1, N, H): rows 0…T-1 each step's h (the layer's output, at its own time index), row T c_n.
    A view of `lstm_layer`'s buffer; the other operands are what it was computed from (its rule
    differentiates with respect to them)."""
    steps, batch, size = x.shape[0], x.shape[1], h0.shape[-1]
    return ws[HEADER:HEADER + (steps + 1) * batch * size].reshape(steps + 1, batch, size)


def grad_layout(steps, batch, features, size):
    """Offsets into `lstm_layer_grad`'s flat result: dx, dh0, dc0, dw_ihᵀ, dw_hhᵀ, dbias, end."""
    sizes = (steps * batch * features, batch * size, batch * size, 4 * size * features, 4 * size * size, 4 * size)
    offsets = [0]
    for n in sizes:
        offsets.append(offsets[-1] + n)
    return offsets


@primitive("lstm_layer_grad", out=True)
def lstm_layer_grad(g, ws, x, h0, c0, w_ih, w_hh, bias, reverse=False, out=None):
    """The backward of `lstm_layer_output`: `g` (T+1, N, H) the gradient of every step's h and of c_n.
    Returns one flat array holding dx (T, N, C), dh0, dc0 (N, H), the weight gradients transposed,
    dw_ihᵀ (C, 4H) and dw_hhᵀ (H, 4H) (the layout oneDNN writes them in; the rule transposes the views),
    and dbias (4H,), at `grad_layout`'s offsets (`out`: an array of its length to write them into)."""
    xp = namespace(g, ws, x, h0, c0, w_ih, w_hh, bias)
    steps, batch, features = x.shape
    size = h0.shape[-1]
    start = layout(steps, batch, features, size, x.dtype)[0]
    offsets = grad_layout(steps, batch, features, size)
    result = out if out is not None else xp.empty(offsets[-1], dtype=x.dtype)
    dx, dh0, dc0, dw_ih, dw_hh, dbias = (result[a:b] for a, b in zip(offsets, offsets[1:]))
    dx = dx.reshape(steps, batch, features)
    dw_ih_t, dw_hh_t = dw_ih.reshape(features, 4 * size), dw_hh.reshape(size, 4 * size)
    y, c_n, h_n, x_kept = _parts(ws, steps, batch, features, size)
    aux = ws[start:]
    if float(ws[0]) == _ONEDNN:
        from ..kernels.onednn import rnn
        contiguous = np.ascontiguousarray
        rnn.backward(x_kept, contiguous(h0), contiguous(c0), contiguous(w_ih), contiguous(w_hh), contiguous(bias),
                     y, h_n, c_n, aux, contiguous(g[:steps]), np.zeros((batch, size), np.float32),
                     contiguous(g[steps]), dx, dh0.reshape(batch, size), dc0.reshape(batch, size), dw_ih_t, dw_hh_t,
                     dbias, reverse)
        return result
    state = aux[:steps * batch * 6 * size].reshape(steps, batch, 6 * size)
    g_state = xp.zeros(state.shape, dtype=state.dtype)
    g_state[:, :, :size] = g[:steps]
    g_state[0 if reverse else steps - 1, :, size:2 * size] += g[steps]
    d = rc.lstm_scan_grad.impl(g_state, state, h0, c0, w_hh, reverse=reverse)
    dgi = d[:steps].reshape(steps * batch, 4 * size)
    xp.matmul(dgi, w_ih, out=dx.reshape(steps * batch, features))
    xp.matmul(x_kept.reshape(steps * batch, features).T, dgi, out=dw_ih_t)
    h_all = state[:, :, :size]
    first = h0[None]
    previous = xp.concatenate([h_all[1:], first] if reverse else [first, h_all[:-1]], axis=0)
    xp.matmul(previous.reshape(steps * batch, size).T, dgi, out=dw_hh_t)
    xp.sum(dgi, axis=0, out=dbias)
    dh0[...] = d[steps, :, :size].reshape(-1)
    dc0[...] = d[steps, :, size:2 * size].reshape(-1)
    return result
