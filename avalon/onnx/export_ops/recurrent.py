"""The fused recurrences (lstm_scan, gru_scan, rnn_scan), unrolled over their traced steps: the form
for the scans that ONNX's LSTM, GRU and RNN operators cannot write (export_recurrent.py), a masked
scan (a PackedSequence) above all.

Each step is written out with MatMul, Split and the gate activations, and the steps' states are
joined into the same workspace layout the primitive returns (h, c and the gates of each step), so
whatever the traced code reads from it (the output, h_n, c_n) reads the same. The number of steps
is the traced sequence length: it cannot be a dynamic axis.
"""
import numpy as np

from . import emits


def _steps(g, node):
    gi = node.args[0]
    g.static_sizes(node, gi, [0], "the number of unrolled steps (the sequence length)")
    order = range(gi.shape[0])
    return reversed(order) if node.params.get("reverse") else order


def _mask(g, node, first_mask, t):
    if len(node.args) <= first_mask:
        return None
    return g.op("Gather", [g.arg(node, first_mask, np.bool_), g.const(np.int64(t))], axis=0)


def _held(g, mask, new, old):
    """Where the sequence has stopped (mask False) the state stays as it was."""
    return new if mask is None else g.op("Where", [mask, new, old])


def _workspace(g, rows):
    """The steps' (N, k) rows stacked on a new time axis, in time order."""
    stacked = [g.unsqueeze(rows[t], [0]) for t in sorted(rows)]
    return stacked[0] if len(stacked) == 1 else g.op("Concat", stacked, axis=0)


@emits("lstm_scan")
def lstm_scan(g, node):
    dt, size = node.dtype, node.args[3].shape[1]
    gi, w_t = g.arg(node, 0, dt), g.op("Transpose", [g.arg(node, 3, dt)], perm=[1, 0])
    bias = g.arg(node, 4, dt)
    h, c, rows = g.arg(node, 1, dt), g.arg(node, 2, dt), {}
    for t in _steps(g, node):
        step_input = g.op("Gather", [gi, g.const(np.int64(t))], axis=0)
        pre = g.op("Add", [g.op("Add", [g.op("MatMul", [h, w_t]), step_input]), bias])
        i, f, cell, o = g.split(pre, [size] * 4, axis=1)
        i, f, cell, o = g.op("Sigmoid", [i]), g.op("Sigmoid", [f]), g.op("Tanh", [cell]), g.op("Sigmoid", [o])
        c_new = g.op("Add", [g.op("Mul", [f, c]), g.op("Mul", [i, cell])])
        h_new = g.op("Mul", [o, g.op("Tanh", [c_new])])
        mask = _mask(g, node, 5, t)
        h, c = _held(g, mask, h_new, h), _held(g, mask, c_new, c)
        rows[t] = g.op("Concat", [h, c, i, f, cell, o], axis=1)
    return _workspace(g, rows)


@emits("gru_scan")
def gru_scan(g, node):
    dt, size = node.dtype, node.args[2].shape[1]
    gi, w_t = g.arg(node, 0, dt), g.op("Transpose", [g.arg(node, 2, dt)], perm=[1, 0])
    b_hh = g.arg(node, 3, dt)
    h, rows = g.arg(node, 1, dt), {}
    for t in _steps(g, node):
        gi_r, gi_z, gi_n = g.split(g.op("Gather", [gi, g.const(np.int64(t))], axis=0), [size] * 3, axis=1)
        gh_r, gh_z, gh_n = g.split(g.op("Add", [g.op("MatMul", [h, w_t]), b_hh]), [size] * 3, axis=1)
        r = g.op("Sigmoid", [g.op("Add", [gi_r, gh_r])])
        z = g.op("Sigmoid", [g.op("Add", [gi_z, gh_z])])
        n = g.op("Tanh", [g.op("Add", [gi_n, g.op("Mul", [r, gh_n])])])
        h_new = g.op("Add", [g.op("Mul", [g.op("Sub", [h, n]), z]), n])
        h = _held(g, _mask(g, node, 4, t), h_new, h)
        rows[t] = g.op("Concat", [h, r, z, n, gh_n], axis=1)
    return _workspace(g, rows)


@emits("rnn_scan")
def rnn_scan(g, node):
    dt = node.dtype
    gi, w_t = g.arg(node, 0, dt), g.op("Transpose", [g.arg(node, 2, dt)], perm=[1, 0])
    act = "Tanh" if node.params.get("nonlinearity", "tanh") == "tanh" else "Relu"
    h, rows = g.arg(node, 1, dt), {}
    for t in _steps(g, node):
        step_input = g.op("Gather", [gi, g.const(np.int64(t))], axis=0)
        h_new = g.op(act, [g.op("Add", [g.op("MatMul", [h, w_t]), step_input])])
        h = _held(g, _mask(g, node, 3, t), h_new, h)
        rows[t] = h
    return _workspace(g, rows)
