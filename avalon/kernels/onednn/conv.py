"""Convolutions on oneDNN's direct kernels: the forward, its adjoint in the input (backward data, which is
also the transposed convolution) and its adjoint in the weight (backward weights), float32, 1 to 3
spatial axes, any stride, (before, after) padding, dilation and groups.

Layout: the arrays are NCHW (torch's layout); oneDNN's fast kernels want a blocked one (nChw16c, and
weights OIhw16i16o). Each primitive is made with format `any`, so oneDNN picks its best kernel and
layout, and the arrays are reordered into that layout and the result back, per call (the weights too:
they change at every step). Measured with bench/conv.py --layouts, one thread, forward + both gradients
(ms; numpy path / any / plain / nhwc / PyTorch): ResNet-ish 3x3 64 channels 32x32 batch 64: 139 / 119 /
166 / 119 / 139; LeNet's 32 -> 64 on 13x13: 24.7 / 13.3 / 21.3 / 13.5 / 12.8; depthwise 32 channels 56x56:
8.3 / 2.7 / 30.0 / 3.8 / 2.7. LAYOUT = "plain" makes the primitives on C-contiguous NCHW instead (oneDNN
then runs im2col + GEMM), "nhwc" on channels-last activations; `_layout` says where "plain" wins.

The batch is run in parts of at most CHUNK_BYTES of activations (input + output), each part's
reordered copies reused by the next: the copies stay small and in cache (ResNet-ish's layer 30.8 ms
against 34.7 whole, one thread, CPU time). The weight gradient is summed over the parts in the
primitive's layout and reordered once.

Each (shapes, strides, hyper-parameters) signature makes its primitives once and keeps them in
`CACHE` (bounded); `CACHE.created` counts the makings.

avalon/ops/conv.py sends every float32 numpy convolution here while oneDNN is on (decided per call:
`avalon.kernels.onednn.set_enabled(False)` or AVALON_ONEDNN=0 switch back to the numpy paths, and
there FAST_PATHS, WINOGRAD and conv_split keep their meaning), except those `applies` leaves to numpy.
Threads: oneDNN's OpenMP pool (avalon.set_num_threads' count, library.prepare), not conv_split's, with
primitives made for that count (primitive.Cache). Measured at 2 threads in quiet stretches of the shared
machine (ms, one call at 2 OpenMP threads / the batch in two halves on two Python threads at one each):
LeNet's 32 -> 64 layer forward 3.7 / 4.6, input gradient 3.6 / 4.4, weight gradient 2.9 / 3.6; ResNet-ish's
layer 17.8 / 19.5, 18.7 / 18.9, 16.9 / 17.4 (one thread: 5.1-6.1 and 31-33). The split only wins while
another process holds a core (fewer barriers to wait at). Reordering the weights per call stays: a
64x64x3x3 weight takes 0.05 ms, about 1.4 ms of a 650 ms ResNet-ish step at 2 threads.
"""
import ctypes

import numpy as np

from . import library as _library
from . import primitive as P

LAYOUT = "any"
PLAIN_DATA_BELOW = 16  # input gradients of fewer channels (and no groups) run on the plain layout
CHUNK_BYTES = 4 << 20  # activations per part of the batch (2, 4, 8 MiB and whole measured: 4 best)
CACHE = P.Cache(size=256)
_DIRECT = 1  # dnnl_convolution_direct

_fns = {}


def _lib():
    lib = P.lib()
    if not _fns:
        v, i = ctypes.c_void_p, ctypes.c_int
        for name, argtypes in {
            "dnnl_convolution_forward_primitive_desc_create": [v, v, i, i, v, v, v, v, v, v, v, v, v],
            "dnnl_convolution_backward_data_primitive_desc_create": [v, v, i, v, v, v, v, v, v, v, v, v],
            "dnnl_convolution_backward_weights_primitive_desc_create": [v, v, i, v, v, v, v, v, v, v, v, v, v],
        }.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = i, argtypes
            _fns[name] = fn
    return lib


def applies(kind, a, b, padding, channels, groups, out=None):
    """Whether a convolution call takes the oneDNN path: oneDNN switched on, float32 numpy operands
    `a` and `b`, and no negative padding (a crop, which the numpy path does). A single input channel
    (`channels`: the convolution's input channels; a network's first layer) has the numpy path's one
    product per sample beside it, measured against oneDNN (LeNet's 1 -> 32 channels 3x3, batch 128, ms,
    numpy / oneDNN): the forward into a given `out` (a compiled replay's buffer) 3.1 / 2.3 at one thread
    and 3.0 / 1.9 at two, into a new array 2.1 / 3.3 at one thread (oneDNN's result pages are faulted
    in while it writes them); the weight gradient 1.8 / 2.1 at one thread, 1.9 / 1.7 at two. So those
    take oneDNN into `out` or on more than one thread, numpy otherwise."""
    if not (_library.enabled() and isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
            and a.dtype == np.float32 and b.dtype == np.float32):
        return False
    if any(lo < 0 or hi < 0 for lo, hi in padding):
        return False
    return kind == "data" or channels > 1 or (kind == "forward" and out is not None) or _library.threads() > 1


def fits(size, out, kernel, stride, padding, dilation):
    """Whether an input of spatial `size` gives exactly `out` positions (oneDNN checks it; the numpy
    path also takes an input with rows past the last window: a transposed convolution's output_padding)."""
    return tuple(out) == tuple((n + lo + hi - dl * (k - 1) - 1) // s + 1
                               for n, k, s, (lo, hi), dl in zip(size, kernel, stride, padding, dilation))


def _weights_shape(shape, groups):
    """(Co, Cg, *K) as oneDNN's grouped weights (G, Co/G, Cg, *K) when groups > 1."""
    if groups == 1:
        return tuple(shape)
    return (groups, shape[0] // groups) + tuple(shape[1:])


def _weights_desc(w_shape, w_strides, groups):
    if groups == 1:
        return P.Desc.strided(w_shape, w_strides, np.float32)
    co = w_shape[0]
    return P.Desc.strided(_weights_shape(w_shape, groups), (w_strides[0] * (co // groups),) + tuple(w_strides),
                          np.float32)


def _layout(kind, channels, groups, kernel):
    """LAYOUT, except for the input gradient of few channels without groups (a network's first layer,
    when its input needs a gradient): the blocked kernel there pads the channels to 16 and was 4x slower
    than the plain one (LeNet's 1 -> 32 channels 3x3, one thread: 3.25 ms against 0.61); and for 1x1
    kernels, which oneDNN runs as one GEMM on the plain layout without copying the input (128 -> 256
    channels on 8x8, one thread, forward / data / weights: 0.91 / 0.97 / 0.93 ms against 1.15 / 1.07 /
    1.14 blocked)."""
    if kind == "data" and groups == 1 and channels < PLAIN_DATA_BELOW:
        return "plain"
    if groups == 1 and all(k == 1 for k in kernel):
        return "plain"
    return LAYOUT


def _activation_desc(shape, strides, layout):
    """The descriptor a primitive is made with for an activation of the user's `strides`."""
    if layout == "any":
        return P.Desc.any(shape, np.float32)
    if layout == "nhwc":
        return P.Desc.strided(shape, P.channels_last_strides(shape), np.float32)
    # C-contiguous whatever the user's strides: the same kernel, hence the same bits, for every layout
    return P.Desc.plain(shape, np.float32)


def _kernel_weights_desc(shape, strides, groups, layout):
    if layout == "plain":
        return _weights_desc(shape, P.contiguous_strides(shape), groups)
    return P.Desc.any(_weights_shape(shape, groups), np.float32)


class _Call:
    """A convolution primitive and the reorders between the user's layouts and its own.

    `user` maps each argument to the Desc of the user's array; the arguments whose layout differs
    from the primitive's get a reorder (into it for inputs, out of it for the output)."""

    def __init__(self, prim, user, output):
        self.prim, self.output = prim, output
        self.reorders = {}
        for arg, desc in user.items():
            inside = prim.arg_md(arg)
            if inside == desc:
                continue
            to_inside = arg != output
            r = P.reorder(desc, inside) if to_inside else P.reorder(inside, desc)
            self.reorders[arg] = (r, inside.size())

    def run(self, arrays, buffers, first, accumulate):
        """Run on one part of the batch: `arrays` ({ARG_*: user array}); the output's array is written,
        or with `accumulate` (the weight gradient) summed into over the parts, in the primitive's layout
        (`finish` reorders the sum). `buffers` holds the primitive-layout copies, reused by the next
        part; the weights (the same for every part) are reordered at the `first` part only."""
        args = dict(arrays)
        for arg, (r, size) in self.reorders.items():
            if arg == self.output:
                continue
            if arg not in buffers:
                buffers[arg] = np.empty(size // 4, np.float32)
            if first or arg != P.ARG_WEIGHTS:
                r.execute({P.ARG_SRC: arrays[arg], P.ARG_DST: buffers[arg]})
            args[arg] = buffers[arg]
        target = self.output
        if accumulate and not first:
            args[target] = buffers.setdefault("part", np.empty(self.prim.arg_md(target).size() // 4, np.float32))
        elif target in self.reorders:
            args[target] = buffers.setdefault(target, np.empty(self.reorders[target][1] // 4, np.float32))
        self.prim.execute(args)
        if accumulate:
            total = buffers[target] if target in self.reorders else arrays[target]
            if not first:
                total += args[target].reshape(total.shape)
        elif target in self.reorders:
            self.reorders[target][0].execute({P.ARG_SRC: args[target], P.ARG_DST: arrays[target]})

    def finish(self, arrays, buffers):
        """After the last part of an accumulated output: the sum into the user's array."""
        if self.output in self.reorders:
            self.reorders[self.output][0].execute({P.ARG_SRC: buffers[self.output], P.ARG_DST: arrays[self.output]})


def _strides(a):
    return P.element_strides(a)


def _plain(a):
    return a if P.describable(a) else np.ascontiguousarray(a)


def _geometry(stride, padding, dilation):
    return (P.dims(stride), P.dims([d - 1 for d in dilation]),
            P.dims([lo for lo, _ in padding]), P.dims([hi for _, hi in padding]))


def _forward_pd(src, weights, dst, stride, padding, dilation, prop=P.FORWARD_TRAINING):
    fn = _fns["dnnl_convolution_forward_primitive_desc_create"]
    s, d, pl, pr = _geometry(stride, padding, dilation)
    return P.make_pd(lambda pd, attr: fn(pd, _library.engine(), prop, _DIRECT, src.handle, weights.handle, None,
                                         dst.handle, s, d, pl, pr, attr),
                     "dnnl_convolution_forward_primitive_desc_create")


def _make(kind, x_shape, x_strides, w_shape, w_strides, y_shape, y_strides, stride, padding, dilation, groups):
    """The _Call of one signature: `kind` 'forward' (x, w -> y), 'data' (y, w -> x) or 'weights'
    (x, y -> w); x is the convolution's input, y its output, w its weight, whichever is computed."""
    _lib()
    x_user = P.Desc.strided(x_shape, x_strides, np.float32)
    y_user = P.Desc.strided(y_shape, y_strides, np.float32)
    w_user = _weights_desc(w_shape, w_strides, groups)
    layout = _layout(kind, x_shape[1], groups, w_shape[2:])
    x_desc, y_desc = _activation_desc(x_shape, x_strides, layout), _activation_desc(y_shape, y_strides, layout)
    w_desc = _kernel_weights_desc(w_shape, w_strides, groups, layout)
    if kind == "forward":
        prim = P.Primitive(_forward_pd(x_desc, w_desc, y_desc, stride, padding, dilation), "convolution forward")
        return _Call(prim, {P.ARG_SRC: x_user, P.ARG_WEIGHTS: w_user, P.ARG_DST: y_user}, P.ARG_DST)
    hint = _forward_pd(x_desc, w_desc, y_desc, stride, padding, dilation)
    s, d, pl, pr = _geometry(stride, padding, dilation)
    engine = _library.engine()
    try:
        if kind == "data":
            fn = _fns["dnnl_convolution_backward_data_primitive_desc_create"]
            pd = P.make_pd(lambda pd, attr: fn(pd, engine, _DIRECT, x_desc.handle, w_desc.handle, y_desc.handle,
                                               s, d, pl, pr, hint, attr),
                           "dnnl_convolution_backward_data_primitive_desc_create")
            prim = P.Primitive(pd, "convolution backward data")
            return _Call(prim, {P.ARG_DIFF_DST: y_user, P.ARG_WEIGHTS: w_user, P.ARG_DIFF_SRC: x_user},
                         P.ARG_DIFF_SRC)
        fn = _fns["dnnl_convolution_backward_weights_primitive_desc_create"]
        pd = P.make_pd(lambda pd, attr: fn(pd, engine, _DIRECT, x_desc.handle, w_desc.handle, None, y_desc.handle,
                                           s, d, pl, pr, hint, attr),
                       "dnnl_convolution_backward_weights_primitive_desc_create")
        prim = P.Primitive(pd, "convolution backward weights")
        return _Call(prim, {P.ARG_SRC: x_user, P.ARG_DIFF_DST: y_user, P.ARG_DIFF_WEIGHTS: w_user},
                     P.ARG_DIFF_WEIGHTS)
    finally:
        P.lib().dnnl_primitive_desc_destroy(hint)


def _call(kind, x, w, y, stride, padding, dilation, groups):
    key = (kind, x.shape, _strides(x), w.shape, _strides(w), y.shape, _strides(y), tuple(stride),
           tuple(map(tuple, padding)), tuple(dilation), groups, LAYOUT)
    return CACHE.get(key, lambda: _make(kind, x.shape, _strides(x), w.shape, _strides(w), y.shape, _strides(y),
                                        stride, padding, dilation, groups))


def part_size(n, per_sample):
    """Samples per part of a batch of `n` whose activations take `per_sample` bytes: the largest
    divisor of n that keeps a part within CHUNK_BYTES (every part then runs the same primitive), or the
    whole batch when that divisor is below a quarter of what would fit (n prime, say)."""
    most = max(1, CHUNK_BYTES // max(per_sample, 1))
    if most >= n:
        return n
    size = next(d for d in range(most, 0, -1) if n % d == 0)
    return size if 4 * size >= most else n


# The arguments that are parts of the batch, per kind.
_BATCHED = {"forward": (P.ARG_SRC, P.ARG_DST), "data": (P.ARG_DIFF_DST, P.ARG_DIFF_SRC),
            "weights": (P.ARG_SRC, P.ARG_DIFF_DST)}


def _run(kind, x, w, y, stride, padding, dilation, groups, arrays):
    """Run a convolution over the batch part by part (see the module docstring)."""
    n = x.shape[0]
    size = part_size(n, (x.size + y.size) * 4 // max(n, 1)) if n else n
    call = _call(kind, x[:size], w, y[:size], stride, padding, dilation, groups)
    batched, accumulate = _BATCHED[kind], kind == "weights"
    buffers = {}
    for start in range(0, n, size):
        part = slice(start, start + size)
        call.run({arg: a[part] if arg in batched else a for arg, a in arrays.items()}, buffers, start == 0,
                 accumulate)
    if accumulate:
        call.finish(arrays, buffers)


def _output(shape, out):
    """`out` when it can be written as it lies, else a new C-contiguous array."""
    if out is not None and P.describable(out):
        return out
    return np.empty(shape, np.float32)


def _finish(result, out):
    if out is None or result is out:
        return result
    out[...] = result
    return out


def conv(x, w, size, stride, padding, dilation, groups, out=None):
    """The convolution of `x` (N, C, *S) with `w` (Co, C/groups, *K) into spatial `size`."""
    x, w = _plain(x), _plain(w)
    y = _output((x.shape[0], w.shape[0]) + tuple(size), out)
    _run("forward", x, w, y, stride, padding, dilation, groups, {P.ARG_SRC: x, P.ARG_WEIGHTS: w, P.ARG_DST: y})
    return _finish(y, out)


def conv_transpose(g, w, shape, stride, padding, dilation, groups, out=None):
    """The adjoint of `conv` in its input: `g` (N, Co, *out) to an input of spatial `shape`."""
    g, w = _plain(g), _plain(w)
    x = _output((g.shape[0], w.shape[1] * groups) + tuple(shape), out)
    _run("data", x, w, g, stride, padding, dilation, groups, {P.ARG_DIFF_DST: g, P.ARG_WEIGHTS: w,
                                                              P.ARG_DIFF_SRC: x})
    return _finish(x, out)


def conv_weight_grad(x, g, kernel, stride, padding, dilation, groups):
    """The adjoint of `conv` in its weight: (Co, C/groups, *kernel)."""
    x, g = _plain(x), _plain(g)
    w = np.empty((g.shape[1], x.shape[1] // groups) + tuple(kernel), np.float32)
    _run("weights", x, w, g, stride, padding, dilation, groups, {P.ARG_SRC: x, P.ARG_DIFF_DST: g,
                                                                 P.ARG_DIFF_WEIGHTS: w})
    return w
