"""The recurrent operators LSTM, GRU and RNN: every direction (forward, reverse, bidirectional), the
`layout` attribute (opset 14: batch first), initial states, `sequence_lens`, and the general forms
(activations with their alpha and beta, `clip`, LSTM's `input_forget` and peepholes, GRU's
`linear_before_reset`).

The forms PyTorch's layers compute (default activations, no clip or peepholes, a GRU with
linear_before_reset=1) run on Avalon's fused recurrences (`lstm_scan`, `gru_scan`, `rnn_scan`), so the
tape does not grow with the sequence; the others are unrolled over the steps with ordinary ops. Both
differentiate. ONNX orders the gates i, o, f, c (LSTM) and z, r, h (GRU); the fused scans take
PyTorch's i, f, g, o and r, z, n, so the weights' blocks are reordered first (a gather, which
differentiates back to the ONNX weights)."""
import numpy as np

from ...ops import elementwise as ew
from ...ops import recurrent as rc
from . import operator


def _elu(x, a, b):
    return np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0)) - 1))


# name -> (function of (x, alpha, beta), default alpha, default beta); None: the activation takes none
_ACTIVATIONS = {
    "sigmoid": (lambda x, a, b: ew.sigmoid(x), None, None),
    "tanh": (lambda x, a, b: np.tanh(x), None, None),
    "relu": (lambda x, a, b: ew.relu(x), None, None),
    "affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: np.where(x >= 0, x, a * x), 0.01, None),
    "thresholdedrelu": (lambda x, a, b: np.where(x > a, x, 0 * x), 1.0, None),
    "scaledtanh": (lambda x, a, b: a * np.tanh(b * x), 1.0, 1.0),
    "hardsigmoid": (lambda x, a, b: np.minimum(np.maximum(a * x + b, 0), 1), 0.2, 0.5),
    "elu": (_elu, 1.0, None),
    "softsign": (lambda x, a, b: x / (1 + np.abs(x)), None, None),
    "softplus": (lambda x, a, b: np.logaddexp(x, 0 * x), None, None),
}
_DEFAULTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}
# ONNX's gate blocks, in the order the fused scans take them (PyTorch's)
_TORCH_ORDER = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}


def _activations(n, directions):
    """Per direction, the list of activation functions with their alpha and beta bound. alpha and beta
    are consumed in the order of the activations that take them, as onnxruntime reads them."""
    names = n.attr("activations") or _DEFAULTS[n.op_type] * directions
    if len(names) != len(_DEFAULTS[n.op_type]) * directions:
        raise n.error(f"activations lists {len(names)} functions; a {n.op_type} with {directions} direction(s) "
                      f"takes {len(_DEFAULTS[n.op_type]) * directions}")
    alphas, betas = list(n.attr("activation_alpha", [])), list(n.attr("activation_beta", []))
    functions = []
    for name in names:
        key = name.decode() if isinstance(name, bytes) else name
        if key.lower() not in _ACTIVATIONS:
            raise n.error(f"unknown activation {key!r}; supported: {sorted(_ACTIVATIONS)}")
        fn, alpha, beta = _ACTIVATIONS[key.lower()]
        alpha = alphas.pop(0) if alpha is not None and alphas else alpha
        beta = betas.pop(0) if beta is not None and betas else beta
        functions.append((key.lower(), lambda x, fn=fn, a=alpha, b=beta: fn(x, a, b)))
    per = len(functions) // directions
    return [functions[d * per:(d + 1) * per] for d in range(directions)]


def _blocks(w, order, gates):
    """The rows of `w` (gates·H, …) with its gate blocks reordered."""
    if order == list(range(gates)):
        return w
    size = w.shape[0] // gates
    return np.concatenate([w[k * size:(k + 1) * size] for k in order], axis=0)


def _running(n, lengths, steps, batch):
    """(steps, batch, 1) booleans, True where a sequence still runs; None without sequence_lens."""
    if lengths is None:
        return None
    lengths = n.constant(lengths, "sequence_lens").reshape(-1)
    if lengths.size != batch or np.any(lengths < 0) or np.any(lengths > steps):
        raise n.error(f"sequence_lens {lengths.tolist()} must give one length from 0 to {steps} (the sequence's "
                      f"length) for each of the {batch} sequences")
    return (np.arange(steps).reshape(-1, 1) < lengths.reshape(1, -1)).reshape(steps, batch, 1)


def _unrolled(step, gi, states, running, reverse):
    """Run `step(gi_t, states) -> states` over the steps; returns every step's first state (T, N, H)
    and the final states. Where a sequence has ended, its states are carried over."""
    hs = [None] * gi.shape[0]
    for t in (range(gi.shape[0] - 1, -1, -1) if reverse else range(gi.shape[0])):
        new = step(gi[t], states)
        if running is not None:
            new = tuple(np.where(running[t], a, b) for a, b in zip(new, states))
        states = new
        hs[t] = states[0]
    return np.stack(hs, axis=0), states


def _lstm(n, x, w, r, b, h, c, p, acts, running, reverse):
    size = r.shape[-1]
    plain = [name for name, _ in acts] == ["sigmoid", "tanh", "tanh"]
    if plain and p is None and n.attr("clip") is None and not n.attr("input_forget", 0):
        order = _TORCH_ORDER["LSTM"]
        gi = x @ _blocks(w, order, 4).T
        bias = _blocks(b[:4 * size] + b[4 * size:], order, 4) if b is not None else np.zeros(4 * size, x.dtype)
        ws = rc.lstm_scan(gi, h, c, _blocks(r, order, 4), bias, *(() if running is None else (running,)),
                          reverse=reverse)
        last = 0 if reverse else -1
        return ws[:, :, :size], ws[last, :, :size], ws[last, :, size:2 * size]
    (f, _), (g, _), (hf, _) = [(fn, name) for name, fn in acts]
    gi = x @ w.T + (b[:4 * size] + b[4 * size:] if b is not None else 0)
    clip = n.attr("clip")
    pi, po, pf = (p[:size], p[size:2 * size], p[2 * size:]) if p is not None else (None, None, None)

    def gate(pre, peephole, cell):  # the clip bounds what the activation sees, peephole term included
        pre = pre + peephole * cell if peephole is not None else pre
        return np.minimum(np.maximum(pre, -clip), clip) if clip is not None else pre

    def step(gi_t, states):
        h, c = states
        pre = gi_t + h @ r.T
        pre_i, pre_o, pre_f, pre_c = (pre[:, k * size:(k + 1) * size] for k in range(4))
        i = f(gate(pre_i, pi, c))
        forget = 1 - i if n.attr("input_forget", 0) else f(gate(pre_f, pf, c))
        c = forget * c + i * g(gate(pre_c, None, None))
        o = f(gate(pre_o, po, c))
        return o * hf(c), c

    hs, (h, c) = _unrolled(step, gi, (h, c), running, reverse)
    return hs, h, c


def _gru(n, x, w, r, b, h, acts, running, reverse):
    size = r.shape[-1]
    before_reset = bool(n.attr("linear_before_reset", 0))
    wb, rb = (b[:3 * size], b[3 * size:]) if b is not None else (None, None)
    if before_reset and [name for name, _ in acts] == ["sigmoid", "tanh"] and n.attr("clip") is None:
        order = _TORCH_ORDER["GRU"]
        gi = x @ _blocks(w, order, 3).T + (_blocks(wb, order, 3) if wb is not None else 0)
        rb = _blocks(rb, order, 3) if rb is not None else np.zeros(3 * size, x.dtype)
        ws = rc.gru_scan(gi, h, _blocks(r, order, 3), rb, *(() if running is None else (running,)),
                         reverse=reverse)
        return ws[:, :, :size], ws[0 if reverse else -1, :, :size]
    (f, g) = [fn for _, fn in acts]
    gi = x @ w.T + (wb if wb is not None else 0)
    rb = rb if rb is not None else np.zeros(3 * size, x.dtype)
    clip = n.attr("clip")

    def bounded(v):
        return np.minimum(np.maximum(v, -clip), clip) if clip is not None else v

    def step(gi_t, states):
        (h,) = states
        zr = bounded(gi_t[:, :2 * size] + h @ r[:2 * size].T + rb[:2 * size])
        z, rt = f(zr[:, :size]), f(zr[:, size:])
        if before_reset:
            candidate = gi_t[:, 2 * size:] + rt * (h @ r[2 * size:].T + rb[2 * size:])
        else:
            candidate = gi_t[:, 2 * size:] + (rt * h) @ r[2 * size:].T + rb[2 * size:]
        hh = g(bounded(candidate))
        return ((1 - z) * hh + z * h,)

    hs, (h,) = _unrolled(step, gi, (h,), running, reverse)
    return hs, h


def _rnn(n, x, w, r, b, h, acts, running, reverse):
    size = r.shape[-1]
    gi = x @ w.T + (b[:size] + b[size:] if b is not None else 0)
    (name, f), = acts
    if name in ("tanh", "relu") and n.attr("clip") is None:
        hs = rc.rnn_scan(gi, h, r, *(() if running is None else (running,)), nonlinearity=name, reverse=reverse)
        return hs, hs[0 if reverse else -1]
    clip = n.attr("clip")

    def step(gi_t, states):
        pre = gi_t + states[0] @ r.T
        return (f(np.minimum(np.maximum(pre, -clip), clip) if clip is not None else pre),)

    hs, (h,) = _unrolled(step, gi, (h,), running, reverse)
    return hs, h


def _check_weights(n, x, w, r, b, directions, size):
    gates = len(_TORCH_ORDER[n.op_type])
    expected = {"W": (directions, gates * size, x.shape[-1]), "R": (directions, gates * size, size),
                "B": (directions, 2 * gates * size)}
    for name, array in (("W", w), ("R", r), ("B", b)):
        if array is not None and tuple(array.shape) != expected[name]:
            raise n.error(f"{name} has the shape {tuple(array.shape)}; with hidden size {size}, {directions} "
                          f"direction(s) and {x.shape[-1]} input features it must be {expected[name]}")
    if n.attr("hidden_size", size) != size:
        raise n.error(f"hidden_size is {n.attr('hidden_size')} but R's last axis is {size}")


@operator("LSTM", "GRU", "RNN")
def recurrent(n, x, w, r, b=None, sequence_lens=None, initial_h=None, initial_c=None, p=None):
    """X (T, N, F) (or (N, T, F) with layout=1), W (D, gates·H, F), R (D, gates·H, H), B (D, 2·gates·H),
    initial states (D, N, H). Returns Y (T, D, N, H), Y_h (D, N, H) and for LSTM Y_c (layouts as X)."""
    direction = n.attr("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise n.error(f"direction must be forward, reverse or bidirectional, not {direction!r}")
    directions = 2 if direction == "bidirectional" else 1
    if w.shape[0] != directions:
        raise n.error(f"W holds {w.shape[0]} direction(s) but direction is {direction!r}")
    batch_first = n.attr("layout", 0) == 1
    if batch_first:
        x = np.transpose(x, (1, 0, 2))
        initial_h = np.transpose(initial_h, (1, 0, 2)) if initial_h is not None else None
        initial_c = np.transpose(initial_c, (1, 0, 2)) if initial_c is not None else None
    steps, batch = x.shape[0], x.shape[1]
    size = r.shape[-1]
    _check_weights(n, x, w, r, b, directions, size)
    running = _running(n, sequence_lens, steps, batch)
    zeros = np.zeros((batch, size), x.dtype)
    acts = _activations(n, directions)
    ys, hs, cs = [], [], []
    for d in range(directions):
        reverse = direction == "reverse" or d == 1
        h0 = initial_h[d] if initial_h is not None else zeros
        bias = b[d] if b is not None else None
        if n.op_type == "LSTM":
            c0 = initial_c[d] if initial_c is not None else zeros
            y, h, c = _lstm(n, x, w[d], r[d], bias, h0, c0, p[d] if p is not None else None, acts[d], running,
                            reverse)
            cs.append(c)
        elif n.op_type == "GRU":
            y, h = _gru(n, x, w[d], r[d], bias, h0, acts[d], running, reverse)
        else:
            y, h = _rnn(n, x, w[d], r[d], bias, h0, acts[d], running, reverse)
        if running is not None:  # past its length a sequence's outputs are 0 (its state is carried)
            y = y * running.astype(y.dtype)
        ys.append(y)
        hs.append(h)
    y = np.stack(ys, axis=1)  # (T, D, N, H)
    finals = [np.stack(hs, axis=0)] + ([np.stack(cs, axis=0)] if cs else [])
    if batch_first:
        y = np.transpose(y, (2, 0, 1, 3))
        finals = [np.transpose(s, (1, 0, 2)) for s in finals]
    return (y, *finals)
