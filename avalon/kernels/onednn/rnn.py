"""oneDNN's LSTM primitive (forward training and backward) for one layer and direction, float32, on the
CPU: the whole recurrence, input projection included, in oneDNN's C loops and packed GEMMs.

Used by avalon/ops/lstm_layer.py while `library.enabled()`. Layouts (oneDNN's names): the sequence is
tnc (T, N, C), C-contiguous; states ldnc (1, 1, N, H). The weights come as PyTorch's (4H, C), i.e.
ldgoi, and go into the layouts each primitive chooses (`any`), by one reorder each per call; the
weight gradients come out of the backward's chosen layout into ldigo, (C, 4H), i.e. transposed. oneDNN
chooses ldigo for the forward with the rows padded (4H = 1024 floats -> 1040, so that successive rows
do not fall in the same cache sets), as PyTorch's calls of the same primitive get: with the plain
ldigo copy the forward took 47 ms, with the chosen layout 24-28 (bench/steps.py's LSTM, one thread,
AVX2; PyTorch's 23-28). Gate order i, f, c̃, o is PyTorch's i, f, g, o; the bias is b_ih + b_hh (4H,).
The backward ADDS its weight and bias gradients into their buffers, so they are zeroed first.

Both run on avalon.set_num_threads's count (`THREADS = None`; a number holds them to that many). They
once ran on one thread: measured with PyTorch alternating in the same process, a second thread seemed
to make the primitive 2–3× slower, but that was OpenBLAS's worker spinning after numpy's products and
taking the core (bench/steps.py). Measured alone, the LSTM step of bench/steps.py at 2 threads went
37.5 -> 23.7 ms with the second thread (PyTorch's, the same primitive: 17–19 ms). The caller's OpenMP
count is put back afterwards (`library.keeping_threads`).

Primitives are made once per (T, N, C, H, direction) and kept in primitive.py's bounded cache; each
call only points their memory objects at the arrays. The workspace (what the forward leaves for the
backward) is the caller's: `workspace_bytes` says how large.
"""
import numpy as np

from . import library as _library
from . import primitive as _p

_LEFT2RIGHT, _RIGHT2LEFT = 1, 2   # dnnl_rnn_direction_t (0 is undef in oneDNN 3)
_BACKWARD = 128                   # dnnl_prop_kind_t: dnnl_backward
THREADS = None  # OpenMP threads of the LSTM calls (None: the process's count; see the docstring)
# DNNL_ARG_* of the RNN primitives
SRC_LAYER, SRC_ITER, SRC_ITER_C = 1, 2, 3
DST_LAYER, DST_ITER, DST_ITER_C = 17, 18, 19
WEIGHTS_LAYER, WEIGHTS_ITER, BIAS, WORKSPACE = 33, 34, 41, 64
DIFF_SRC_LAYER, DIFF_SRC_ITER, DIFF_SRC_ITER_C = 129, 130, 131
DIFF_DST_LAYER, DIFF_DST_ITER, DIFF_DST_ITER_C = 145, 146, 147
DIFF_WEIGHTS_LAYER, DIFF_WEIGHTS_ITER, DIFF_BIAS = 161, 162, 169

_cache = _p.Cache(16)


class _Plan:
    """The forward and backward LSTM primitives of one shape and direction, with the reorders of the
    weights into the layouts they chose and of the weight gradients out of theirs."""

    def __init__(self, steps, batch, features, size, reverse):
        lib = _p.lib()
        engine = _library.engine()
        direction = _RIGHT2LEFT if reverse else _LEFT2RIGHT
        f32 = np.float32
        src = _p.Desc.plain((steps, batch, features), f32)
        state = _p.Desc.plain((1, 1, batch, size), f32)
        dst = _p.Desc.plain((steps, batch, size), f32)
        bias = _p.Desc.plain((1, 1, 4, size), f32)
        # ldigo: the weight gradients' layout here, (C, 4H) row-major
        w_layer, w_iter = _p.Desc.plain((1, 1, features, 4, size), f32), _p.Desc.plain((1, 1, size, 4, size), f32)
        # ldgoi: PyTorch's (4H, C) row-major seen as (l, d, i, g, o)
        w_layer_t = _p.Desc.strided((1, 1, features, 4, size), (4 * size * features,) * 2 + (1, size * features,
                                                                                              features), f32)
        w_iter_t = _p.Desc.strided((1, 1, size, 4, size), (4 * size * size,) * 2 + (1, size * size, size), f32)
        any_layer, any_iter = _p.Desc.any((1, 1, features, 4, size), f32), _p.Desc.any((1, 1, size, 4, size), f32)
        s, i, c, b, d = (x.handle for x in (src, state, state, bias, dst))
        wl, wi = any_layer.handle, any_iter.handle
        forward = _p.make_pd(lambda pd, attr: lib.dnnl_lstm_forward_primitive_desc_create(
            pd, engine, _p.FORWARD_TRAINING, direction, s, i, c, wl, wi, None, None, b, d, i, c, 0, attr),
            "dnnl_lstm_forward_primitive_desc_create")
        self.forward = _p.Primitive(forward, "lstm forward")
        self.workspace_bytes = self.forward.md(_p.QUERY_WORKSPACE_MD).size()
        backward = _p.make_pd(lambda pd, attr: lib.dnnl_lstm_backward_primitive_desc_create(
            pd, engine, _BACKWARD, direction, s, i, c, wl, wi, None, None, b, d, i, c,
            s, i, c, wl, wi, None, None, b, d, i, c, 0, forward, attr), "dnnl_lstm_backward_primitive_desc_create")
        self.backward = _p.Primitive(backward, "lstm backward")
        # PyTorch's weights into each primitive's layout, and the gradients out of the backward's
        self.forward_weights = [_Moved(w_t, self.forward.arg_md(arg))
                                for w_t, arg in ((w_layer_t, WEIGHTS_LAYER), (w_iter_t, WEIGHTS_ITER))]
        self.backward_weights = [_Moved(w_t, self.backward.arg_md(arg))
                                 for w_t, arg in ((w_layer_t, WEIGHTS_LAYER), (w_iter_t, WEIGHTS_ITER))]
        self.weight_grads = [_Moved(self.backward.arg_md(arg), w)
                             for w, arg in ((w_layer, DIFF_WEIGHTS_LAYER), (w_iter, DIFF_WEIGHTS_ITER))]


class _Moved:
    """A reorder from one layout to another, with the sizes of both."""

    def __init__(self, source, target):
        self.reorder = _p.reorder(source, target)
        self.source_bytes, self.target_bytes = source.size(), target.size()

    def __call__(self, array, into=None):
        """`array` in the target layout: a new buffer, or `into`."""
        into = np.empty(self.target_bytes, np.uint8) if into is None else into
        self.reorder.execute({_p.ARG_SRC: array, _p.ARG_DST: into}, THREADS)
        return into


def plan(steps, batch, features, size, reverse):
    """The cached primitives of this shape and direction (made on first use)."""
    key = (steps, batch, features, size, bool(reverse))
    return _cache.get(key, lambda: _Plan(*key))


def workspace_bytes(steps, batch, features, size, reverse):
    """Bytes of the workspace oneDNN's forward leaves for its backward."""
    return plan(steps, batch, features, size, reverse).workspace_bytes


def forward(x, h0, c0, w_ih, w_hh, bias, y, h_n, c_n, workspace, reverse):
    """Run the LSTM over `x` (T, N, C), writing the outputs `y` (T, N, H), `h_n`, `c_n` (N, H) and the
    `workspace` (any dtype, `workspace_bytes` long); every array C-contiguous float32, bias (4H,)."""
    steps, batch, features = x.shape
    size = h0.shape[-1]
    with _library.keeping_threads():
        made = plan(steps, batch, features, size, reverse)
        layer, iteration = (move(w) for move, w in zip(made.forward_weights, (w_ih, w_hh)))
        made.forward.execute(
            {SRC_LAYER: x, SRC_ITER: h0, SRC_ITER_C: c0, WEIGHTS_LAYER: layer, WEIGHTS_ITER: iteration,
             BIAS: bias, DST_LAYER: y, DST_ITER: h_n, DST_ITER_C: c_n, WORKSPACE: workspace}, THREADS)


def backward(x, h0, c0, w_ih, w_hh, bias, y, h_n, c_n, workspace, dy, dh_n, dc_n, dx, dh0, dc0, dw_ih_t, dw_hh_t,
             dbias, reverse):
    """The gradients of `forward`'s inputs from those of its outputs (dy, dh_n, dc_n), written into dx,
    dh0, dc0, dw_ih_t (C, 4H) and dw_hh_t (H, 4H) (transposed) and dbias (4H,); every array C-contiguous
    float32."""
    steps, batch, features = x.shape
    size = h0.shape[-1]
    with _library.keeping_threads():
        made = plan(steps, batch, features, size, reverse)
        layer, iteration = (move(w) for move, w in zip(made.backward_weights, (w_ih, w_hh)))
        # oneDNN adds into the gradients of the weights and bias
        d_layer, d_iter = (np.zeros(move.source_bytes, np.uint8) for move in made.weight_grads)
        dbias[...] = 0
        made.backward.execute(
            {SRC_LAYER: x, SRC_ITER: h0, SRC_ITER_C: c0, WEIGHTS_LAYER: layer, WEIGHTS_ITER: iteration, BIAS: bias,
             DST_LAYER: y, DST_ITER: h_n, DST_ITER_C: c_n, WORKSPACE: workspace, DIFF_SRC_LAYER: dx,
             DIFF_SRC_ITER: dh0, DIFF_SRC_ITER_C: dc0, DIFF_WEIGHTS_LAYER: d_layer, DIFF_WEIGHTS_ITER: d_iter,
             DIFF_BIAS: dbias, DIFF_DST_LAYER: dy, DIFF_DST_ITER: dh_n, DIFF_DST_ITER_C: dc_n}, THREADS)
        for move, gradient, into in zip(made.weight_grads, (d_layer, d_iter), (dw_ih_t, dw_hh_t)):
            move(gradient, into)
