"""The LSTM, GRU and Elman (RNN tanh/relu) recurrences as fused primitives (rules: avalon/rules/recurrent.py).

Unrolled into per-step calls, a recurrence of T steps puts ~20·T nodes on the tape, and the backward
of reading each step's output is a scatter into a full-size zero array: quadratic in T. Fused, one
layer and direction is

    gi = x·W_ihᵀ                          one GEMM over all time steps (outside, ordinary calls)
    ws = lstm_scan(gi, h0, c0, W_hh, b)   the recurrence (b = b_ih + b_hh added per step: a pass over
                                          gi saved): one call, the per-step work in a loop here
    d  = lstm_scan_grad(g, ws, …)         its backward: one call walking the steps in reverse

`ws` is the workspace the forward keeps for the backward, (T, N, 6H): per step the state h and c and
the activated gates i, f, g, o (PyTorch's order); the layer's output is its h block, h_n and c_n its
last step's h and c. The backward accumulates the gradient of the gate pre-activations into one
preallocated (T+1, N, 4H) array (row T carries dh0 and dc0), so W_hh's gradient is afterwards one GEMM
over all steps, gi's gradient is the array itself (x and W_ih then follow by the ordinary rules of
the projection) and the bias's is its sum over steps and batch.

An optional boolean `mask` (T, N, 1) says which sequences run at each step (a PackedSequence padded):
where it is False the state is carried over unchanged, and so is its gradient.

`rnn_scan` / `rnn_scan_grad` are the same for the Elman RNN, whose workspace is just h (T, N, H), and
`gru_scan` / `gru_scan_grad` for the GRU (workspace h, r, z, n and h·W_hnᵀ + b_hn; b_hh is an operand,
as its n part sits inside the reset gate's product).

numpy and cupy only (in-place updates of preallocated buffers). The per-step products run on oneDNN's
sgemm for float32 numpy arrays while oneDNN is on (`_step_product`); the LSTM workload's scans (128→256,
seq 50, batch 32, one thread): forward 14.0 → 12.3 ms, backward 15.4 → 12.5.
"""
import contextlib
import functools

from ..backend import namespace
from ..kernels.onednn import gemm
from ..kernels.onednn import library as onednn
from .primitive import primitive


def _keeping_threads(scan):
    """Run `scan` with the caller's OpenMP thread count put back afterwards: its products take one."""
    @functools.wraps(scan)
    def run(*args, **params):
        with onednn.keeping_threads():
            return scan(*args, **params)
    return run


def _step_product(xp, *arrays):
    """`product(a, b, out)`: out = a·b, the per-step products of a scan, on oneDNN's sgemm
    (avalon/kernels/onednn/gemm.py: 1.2-1.4× numpy's rate on these 32-row products) for float32 numpy
    arrays while oneDNN is on, decided once per call; False where it did nothing (the caller then runs
    the namespace's matmul). One OpenMP thread: split over two, a 32-row product gains nothing, and
    with the cores busy each of the 100 products of a step waited for the other thread (the LSTM step
    at 2 threads, machine shared: 600 ms against 66 on numpy)."""
    if not gemm.applies(*arrays):
        return lambda a, b, out: False
    return lambda a, b, out: gemm.sgemm(a, b, out, threads=1)


def _errors_ignored(xp):
    """numpy's overflow warnings off: exp(-x) is inf for x < -88 in float32, and 1 / (1 + inf) = 0 is
    the sigmoid's right value there."""
    errstate = getattr(xp, "errstate", None)
    return errstate(over="ignore") if errstate is not None else contextlib.nullcontext()


def _timeline(reverse, *arrays):
    """The arrays (time on axis 0, or None) in the order the recurrence visits them: flipped views
    for the reverse direction, so one loop serves both."""
    return [a if a is None or not reverse else a[::-1] for a in arrays]


@primitive("lstm_scan")
@_keeping_threads
def lstm_scan(gi, h0, c0, w_hh, bias, *mask, reverse=False):
    """The LSTM recurrence over precomputed input projections.

    gi (T, N, 4H): x_t·W_ihᵀ per step; h0, c0 (N, H); w_hh (4H, H); bias (4H,): b_ih + b_hh, added at
    each step (a separate add would be one more pass over gi); optional `mask` (T, N, 1) booleans. `reverse` runs from the last step to the first. Returns the workspace
    (T, N, 6H): h, c, i, f, g, o of each step at its own time index.

    >>> ws = lstm_scan(gi, h0, c0, w_hh, b_ih + b_hh)
    >>> output, h_n, c_n = ws[..., :H], ws[-1, :, :H], ws[-1, :, H:2 * H]
    """
    xp = namespace(gi, h0, c0, w_hh, bias)
    steps, batch, width = gi.shape
    size = width // 4
    ws = xp.empty((steps, batch, 6 * size), dtype=gi.dtype)
    gi_t, ws_t, mask_t = _timeline(reverse, gi, ws, mask[0] if mask else None)
    w_hh_t = xp.ascontiguousarray(w_hh.T)  # BLAS is ~1.7× faster on it than on the transposed view
    # every gate through one tanh call: sigmoid(x) = 0.5·tanh(x/2) + 0.5 (halving is exact), g = tanh(x)
    scale, offset = _sigmoid_by_tanh(xp, size, gi.dtype)
    step_product = _step_product(xp, gi, h0, c0, w_hh, bias)
    pre = xp.empty((batch, width), dtype=gi.dtype)
    product = xp.empty((batch, size), dtype=gi.dtype)
    h, c = h0, c0
    for t in range(steps):
        if not step_product(h, w_hh_t, pre):
            xp.matmul(h, w_hh_t, out=pre)
        pre += gi_t[t]
        pre += bias
        pre *= scale
        xp.tanh(pre, out=pre)
        pre *= scale
        step = ws_t[t]
        xp.add(pre, offset, out=step[:, 2 * size:])  # contiguous until this one strided write
        i, f, g, o = (step[:, k * size:(k + 1) * size] for k in range(2, 6))
        h_new, c_new = step[:, :size], step[:, size:2 * size]
        xp.multiply(f, c, out=c_new)
        xp.multiply(i, g, out=product)
        c_new += product
        xp.tanh(c_new, out=h_new)
        h_new *= o
        if mask_t is not None:  # stopped sequences keep their state
            stopped = xp.logical_not(mask_t[t])
            xp.copyto(h_new, xp.broadcast_to(h, h_new.shape), where=stopped)
            xp.copyto(c_new, xp.broadcast_to(c, c_new.shape), where=stopped)
        h, c = h_new, c_new
    return ws


def _sigmoid_by_tanh(xp, size, dtype):
    """(scale, offset) over the 4H gate columns (i, f, g, o): tanh(x·scale)·scale + offset is the
    sigmoid on i, f, o and tanh on g. One tanh call over all gates costs less than exp, add and
    divide, and the halving is exact in binary floating point."""
    scale = xp.full(4 * size, 0.5, dtype=dtype)
    scale[2 * size:3 * size] = 1
    offset = xp.full(4 * size, 0.5, dtype=dtype)
    offset[2 * size:3 * size] = 0
    return scale, offset


@primitive("lstm_scan_grad")
@_keeping_threads
def lstm_scan_grad(g, ws, h0, c0, w_hh, *mask, reverse=False):
    """The backward of `lstm_scan`: `g` (T, N, 6H) is the gradient of its workspace `ws` (the layers
    send it to the h and c blocks only; any on the gate blocks passes through their activations).
    Returns (T+1, N, 4H): rows 0…T-1 the gradient of the gate pre-activations (= of gi) at each step,
    row T holds dh0 in its first H columns and dc0 in the next H.

    Each step's factors are computed from its own workspace row while that row is in cache (over all
    steps at once they cost a dozen passes over arrays the size of the workspace).
    """
    xp = namespace(g, ws, h0, c0, w_hh)
    steps, batch, width6 = ws.shape
    size = width6 // 6
    out = xp.empty((steps + 1, batch, 4 * size), dtype=ws.dtype)
    out[steps] = 0
    g_t, ws_t, mask_t, d_t = _timeline(reverse, g, ws, mask[0] if mask else None, out[:steps])
    # gradient reaching the gate blocks themselves: only a direct reader of the workspace sends any
    direct = bool(xp.any(g_t[:, :, 2 * size:]))
    dh = xp.zeros((batch, size), dtype=ws.dtype)
    dc = xp.zeros((batch, size), dtype=ws.dtype)
    tanh_c = xp.empty((batch, size), dtype=ws.dtype)
    through_c = xp.empty((batch, size), dtype=ws.dtype)
    slope = xp.empty((batch, 4 * size), dtype=ws.dtype)  # each gate activation's derivative
    step_product = _step_product(xp, g, ws, h0, c0, w_hh)
    slope_i, slope_f, slope_g, slope_o = (slope[:, k * size:(k + 1) * size] for k in range(4))
    for t in range(steps - 1, -1, -1):
        step = ws_t[t]
        c, gates = step[:, size:2 * size], step[:, 2 * size:]
        i, f, gg, o = (gates[:, k * size:(k + 1) * size] for k in range(4))
        c_prev = ws_t[t - 1, :, size:2 * size] if t else c0
        dh += g_t[t, :, :size]
        dc += g_t[t, :, size:2 * size]
        if mask_t is not None:  # a stopped sequence's gradient passes to the previous state untouched
            running = mask_t[t]
            held_h, held_c = xp.where(running, 0, dh), xp.where(running, 0, dc)
            dh *= running
            dc *= running
        xp.subtract(1, gates, out=slope)  # σ(1 - σ) for i, f, o; 1 - g² for g
        slope *= gates
        xp.multiply(gg, gg, out=slope_g)
        xp.subtract(1, slope_g, out=slope_g)
        xp.tanh(c, out=tanh_c)
        xp.multiply(tanh_c, tanh_c, out=through_c)  # dc += dh·o(1 - tanh²c)
        xp.subtract(1, through_c, out=through_c)
        through_c *= o
        through_c *= dh
        dc += through_c
        d = d_t[t]
        d_i, d_f, d_g, d_o = (d[:, k * size:(k + 1) * size] for k in range(4))
        xp.multiply(slope_i, gg, out=d_i)         # ∂c/∂(i's pre-activation)
        xp.multiply(slope_f, c_prev, out=d_f)     # ∂c/∂(f's)
        xp.multiply(slope_g, i, out=d_g)          # ∂c/∂(g's)
        d.reshape(batch, 4, size)[:, :3] *= dc[:, None]  # a view: each row of `out` is contiguous
        xp.multiply(slope_o, tanh_c, out=d_o)     # ∂h/∂(o's)
        d_o *= dh
        if direct:
            slope *= g_t[t, :, 2 * size:]
            d += slope
        if not step_product(d, w_hh, dh):
            xp.matmul(d, w_hh, out=dh)
        dc *= f
        if mask_t is not None:
            dh += held_h
            dc += held_c
    out[steps, :, :size] = dh
    out[steps, :, size:2 * size] = dc
    return out


@primitive("rnn_scan")
@_keeping_threads
def rnn_scan(gi, h0, w_hh, *mask, nonlinearity="tanh", reverse=False):
    """The Elman recurrence h_t = act(gi_t + h_{t-1}·W_hhᵀ) over precomputed input projections gi
    (T, N, H) (x_t·W_ihᵀ + b_ih + b_hh); act is tanh or relu. h0 (N, H), w_hh (H, H), `mask` and
    `reverse` as in `lstm_scan`. Returns every step's h (T, N, H), which is all its backward needs.
    """
    xp = namespace(gi, h0, w_hh)
    steps = gi.shape[0]
    hs = xp.empty(gi.shape, dtype=gi.dtype)
    gi_t, hs_t, mask_t = _timeline(reverse, gi, hs, mask[0] if mask else None)
    w_hh_t = xp.ascontiguousarray(w_hh.T)
    step_product = _step_product(xp, gi, h0, w_hh)
    h = h0
    for t in range(steps):
        h_new = hs_t[t]
        if not step_product(h, w_hh_t, h_new):
            xp.matmul(h, w_hh_t, out=h_new)
        h_new += gi_t[t]
        if nonlinearity == "tanh":
            xp.tanh(h_new, out=h_new)
        else:
            xp.maximum(h_new, 0, out=h_new)
        if mask_t is not None:
            xp.copyto(h_new, xp.broadcast_to(h, h_new.shape), where=xp.logical_not(mask_t[t]))
        h = h_new
    return hs


@primitive("rnn_scan_grad")
@_keeping_threads
def rnn_scan_grad(g, hs, h0, w_hh, *mask, nonlinearity="tanh", reverse=False):
    """The backward of `rnn_scan`: `g` (T, N, H) the gradient of its output. Returns (T+1, N, H): rows
    0…T-1 the gradient of the pre-activations (= of gi), row T dh0."""
    xp = namespace(g, hs, h0, w_hh)
    steps = hs.shape[0]
    out = xp.empty((steps + 1,) + tuple(hs.shape[1:]), dtype=hs.dtype)
    g_t, hs_t, mask_t, d_t = _timeline(reverse, g, hs, mask[0] if mask else None, out[:steps])
    # the activation's derivative, from its output, for all steps at once
    if nonlinearity == "tanh":
        xp.multiply(hs_t, hs_t, out=d_t)
        xp.subtract(1, d_t, out=d_t)
    else:
        d_t[...] = hs_t > 0
    dh = xp.zeros(tuple(hs.shape[1:]), dtype=hs.dtype)
    step_product = _step_product(xp, g, hs, h0, w_hh)
    for t in range(steps - 1, -1, -1):
        dh += g_t[t]
        d = d_t[t]
        if mask_t is not None:
            running = mask_t[t]
            held = xp.where(running, 0, dh)
            d *= running
        d *= dh
        if not step_product(d, w_hh, dh):
            xp.matmul(d, w_hh, out=dh)
        if mask_t is not None:
            dh += held
    out[steps] = dh
    return out


@primitive("gru_scan")
@_keeping_threads
def gru_scan(gi, h0, w_hh, b_hh, *mask, reverse=False):
    """The GRU recurrence over precomputed input projections gi (T, N, 3H) (x_t·W_ihᵀ + b_ih; b_hh
    is an operand, since its n part sits inside the reset gate's product). h0 (N, H), w_hh (3H, H),
    b_hh (3H,), `mask` and `reverse` as in `lstm_scan`. Returns the workspace (T, N, 5H): h, r, z, n
    and h_{t-1}·W_hnᵀ + b_hn of each step.
    """
    xp = namespace(gi, h0, w_hh, b_hh)
    steps, batch, width = gi.shape
    size = width // 3
    ws = xp.empty((steps, batch, 5 * size), dtype=gi.dtype)
    gi_t, ws_t, mask_t = _timeline(reverse, gi, ws, mask[0] if mask else None)
    w_hh_t = xp.ascontiguousarray(w_hh.T)
    gh = xp.empty((batch, width), dtype=gi.dtype)
    pre = xp.empty((batch, 2 * size), dtype=gi.dtype)
    step_product = _step_product(xp, gi, h0, w_hh, b_hh)
    h = h0
    with _errors_ignored(xp):
        for t in range(steps):
            if not step_product(h, w_hh_t, gh):
                xp.matmul(h, w_hh_t, out=gh)
            gh += b_hh
            step = ws_t[t]
            h_new, r, z, n, ghn = (step[:, k * size:(k + 1) * size] for k in range(5))
            xp.add(gi_t[t, :, :2 * size], gh[:, :2 * size], out=pre)
            xp.negative(pre, out=pre)
            xp.exp(pre, out=pre)
            pre += 1
            xp.divide(1, pre, out=step[:, size:3 * size])  # r and z
            ghn[...] = gh[:, 2 * size:]
            xp.multiply(r, ghn, out=n)
            n += gi_t[t, :, 2 * size:]
            xp.tanh(n, out=n)
            xp.subtract(h, n, out=h_new)  # h' = n + z·(h - n)
            h_new *= z
            h_new += n
            if mask_t is not None:
                xp.copyto(h_new, xp.broadcast_to(h, h_new.shape), where=xp.logical_not(mask_t[t]))
            h = h_new
    return ws


@primitive("gru_scan_grad")
@_keeping_threads
def gru_scan_grad(g, ws, h0, w_hh, *mask, reverse=False):
    """The backward of `gru_scan`: `g` (T, N, 5H) the gradient of its workspace (the layers send it to
    the h block only; any on the others passes through their activations). Returns (T+1, N, 4H): rows
    0…T-1 the gradients of the pre-activations of r and z, of h_{t-1}·W_hnᵀ + b_hn, and of n's
    (gi's n part), in that order; row T holds dh0 in its first H columns.
    """
    xp = namespace(g, ws, h0, w_hh)
    steps, batch, width5 = ws.shape
    size = width5 // 5
    out = xp.zeros((steps + 1, batch, 4 * size), dtype=ws.dtype)
    g_t, ws_t, mask_t, d_t = _timeline(reverse, g, ws, mask[0] if mask else None, out[:steps])
    h_all, r, z, n, ghn = (ws_t[:, :, k * size:(k + 1) * size] for k in range(5))
    h_prev = xp.concatenate([h0[None], h_all[:-1]])
    # every pre-activation's gradient is dh times a factor: the factors for all steps at once
    through_n = (1 - z) * (1 - n * n)
    d_t[:, :, :size] = through_n * ghn * r * (1 - r)           # r
    d_t[:, :, size:2 * size] = (h_prev - n) * z * (1 - z)      # z
    d_t[:, :, 2 * size:3 * size] = through_n * r               # h·W_hnᵀ + b_hn
    d_t[:, :, 3 * size:] = through_n                           # n
    # gradient reaching r, z, n or h·W_hnᵀ + b_hn in the workspace directly (the layers read only h)
    direct = g_t[:, :, size:]
    if bool(xp.any(direct)):
        g_r, g_z, g_n, g_ghn = (g_t[:, :, k * size:(k + 1) * size] for k in range(1, 5))
        e_n = g_n * (1 - n * n)
        direct = xp.concatenate([(e_n * ghn + g_r) * r * (1 - r), g_z * z * (1 - z), e_n * r + g_ghn, e_n],
                                axis=2)
    else:
        direct = None
    dh = xp.zeros((batch, size), dtype=ws.dtype)
    step_product = _step_product(xp, g, ws, h0, w_hh)
    for t in range(steps - 1, -1, -1):
        dh += g_t[t, :, :size]
        if mask_t is not None:
            running = mask_t[t]
            held = xp.where(running, 0, dh)
            dh *= running
        d = d_t[t]
        d.reshape(batch, 4, size)[...] *= dh[:, None]
        if direct is not None:
            d += direct[t]
        carried = dh * z[t]
        if not step_product(d[:, :3 * size], w_hh, dh):
            xp.matmul(d[:, :3 * size], w_hh, out=dh)
        dh += carried
        if mask_t is not None:
            dh += held
    out[steps, :, :size] = dh
    return out
