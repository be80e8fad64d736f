"""Recurrent layers with PyTorch's names, parameters, gate orders and shapes: RNN, LSTM, GRU and their
single-step cells.

The sequence is unrolled in Python, so the tape grows linearly with its length: the input projection
of every time step is one matrix product before the loop, each step adds a fixed number of calls, and
the step outputs are collected in a list and stacked once at the end.

The layers run fused by default (`fused = True`): per layer and direction, one GEMM projects every
time step's input and one `lstm_scan` / `gru_scan` / `rnn_scan` call (avalon/ops/recurrent.py) runs
the recurrence, its rule walking the steps back in one call, so the tape no longer grows with the
sequence. `fused = False` unrolls them as above (second derivatives through the recurrence need
that). The cells are one step each, always unrolled. Where oneDNN is installed, a float32 LSTM layer
without a mask runs projection and recurrence as one `lstm_layer` call instead: oneDNN's LSTM
primitive, or numpy while oneDNN is switched off (`avalon.ops.lstm_layer.ONEDNN_LSTM = False`: the scan).

A `PackedSequence` (sequences of different lengths, `nn.utils.rnn`) runs as its padded batch with a
mask: past its own length a sequence's state stays as it was, so h_n (and c_n) are each sequence's
state at its last step, and the reverse direction starts there; the output comes back packed alike.

>>> lstm = nn.LSTM(input_size=8, hidden_size=16, num_layers=2, batch_first=True)
>>> output, (h_n, c_n) = lstm(x)            # x: (N, T, 8) → output: (N, T, 16)
"""
import math

import numpy as np

from ... import numpy_api as npa
from ...errors import AvalonError
from ...kernels.onednn import library as onednn
from ...ops import elementwise as ew
from ...ops import lstm_layer as ll
from ...ops import recurrent as rc
from .. import init
from ..functional.dropout import dropout
from ...arguments import ArgumentError, whole
from ..errors import array_input
from ..module import Module, Parameter, shape_error
from ..utils.rnn import PackedSequence, _padded_steps, _repacked, _running

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _step(mode, gi, h, c, w_hh_t, b_hh):
    """One time step: `gi` is the input's projection (x·W_ihᵀ + b_ih, with b_hh folded in except for
    GRU, whose b_hn sits inside the reset gate's product). Returns (h, c); c is None except for LSTM."""
    gh = npa.matmul(h, w_hh_t)
    size = h.shape[-1]
    if mode == "LSTM":
        gates = gi + gh
        s = ew.sigmoid(gates)  # PyTorch's gate order: input, forget, cell (g), output
        i, f, o = s[..., :size], s[..., size:2 * size], s[..., 3 * size:]
        c = f * c + i * ew.tanh(gates[..., 2 * size:3 * size])
        return o * ew.tanh(c), c
    if mode == "GRU":
        if b_hh is not None:
            gh = gh + b_hh
        rz = ew.sigmoid(gi[..., :2 * size] + gh[..., :2 * size])  # reset, update, then new gate
        r, z = rz[..., :size], rz[..., size:]
        n = ew.tanh(gi[..., 2 * size:] + r * gh[..., 2 * size:])
        return n + z * (h - n), None
    pre = gi + gh
    return (ew.tanh(pre) if mode == "RNN_TANH" else ew.relu(pre)), None


def _projection(x, w_ih, b_ih, b_hh, mode):
    """x·W_ihᵀ plus the biases that can be added before the recurrence (`mode` None: none). A sequence
    (T, N, F) is projected as one (T·N, F) matrix: one GEMM, and one for W_ih's gradient, where a
    batched product would make T small ones (and T gradients summed afterwards)."""
    lead = tuple(x.shape[:-1])
    out = npa.matmul(npa.reshape(x, (-1, x.shape[-1])) if len(lead) > 1 else x, npa.transpose(w_ih))
    if len(lead) > 1:
        out = npa.reshape(out, lead + (out.shape[-1],))
    if b_ih is not None and mode is not None:
        out = out + (b_ih + b_hh if mode != "GRU" else b_ih)
    return out


def _uniform_parameters(module, hidden_size):
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for _, array in module.named_parameters():
        init.uniform_(array, -bound, bound)


class RNNBase(Module):
    """The multi-layer, optionally bidirectional recurrence shared by RNN, LSTM and GRU.

    `fused` (True by default) runs each layer and direction as one fused recurrence
    primitive; False unrolls the steps into ordinary calls (needed for second derivatives)."""

    _array_first = False  # a PackedSequence is an input too; forward checks arrays

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        if proj_size:
            raise AvalonError(f"{type(self).__name__}: proj_size is not supported (use a Linear on the output)")
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ArgumentError(f"dropout should be a number in range [0, 1], got {dropout}",
                                fix="pass the probability of zeroing between layers, e.g. dropout=0.1")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            whole(type(self).__name__, name, value, 1)  # torch refuses 0 too
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, 0
        self.fused = True  # a static attribute: changing it retraces
        dtype = np.dtype(dtype or np.float32)
        gate_size = _GATES[mode] * hidden_size
        directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                shapes = {f"weight_ih_l{layer}{suffix}": (gate_size, layer_input),
                          f"weight_hh_l{layer}{suffix}": (gate_size, hidden_size)}
                if bias:
                    shapes[f"bias_ih_l{layer}{suffix}"] = (gate_size,)
                    shapes[f"bias_hh_l{layer}{suffix}"] = (gate_size,)
                for name, shape in shapes.items():
                    setattr(self, name, Parameter(np.empty(shape, dtype)))
        self.reset_parameters()

    def reset_parameters(self):
        """Every weight and bias uniform in ±1/sqrt(hidden_size), as PyTorch."""
        _uniform_parameters(self, self.hidden_size)

    @property
    def num_directions(self):
        return 2 if self.bidirectional else 1

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text

    def _layout(self, input, states, batch_first):
        """(input as (T, N, features), initial states as (L·D, N, H) arrays, batched?)."""
        if input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            raise shape_error(self, f"(T, N, {self.input_size}) or (T, {self.input_size})"
                              if not batch_first else f"(N, T, {self.input_size}) or (T, {self.input_size})",
                              input.shape)
        batched = input.ndim == 3
        if not batched:
            input = npa.expand_dims(input, 1)
        elif batch_first:
            input = npa.swapaxes(input, 0, 1)
        batch = input.shape[1]
        expected = (self.num_layers * self.num_directions, batch, self.hidden_size)
        out = []
        for name, state in states:
            if state is None:
                out.append(np.zeros(expected, dtype=input.dtype))
                continue
            if tuple(state.shape) != (expected if batched else expected[:1] + expected[2:]):
                raise shape_error(self, f"{name} of shape {expected if batched else expected[:1] + expected[2:]}",
                                  state.shape, f"the {name} does not fit the input of shape {tuple(input.shape)}")
            out.append(state if batched else npa.expand_dims(state, 1))
        return input, out, batched

    def _run(self, input, h0, c0, running=None):
        """The recurrence over layers and directions: (output (T, N, D·H), [h_n], [c_n]). `running`
        (T, N, 1), when given, says which sequences run at each step; the others keep their state."""
        h_n, c_n = [], []
        x = input
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(("", "_reverse")[:self.num_directions]):
                index = layer * self.num_directions + direction
                names = [f"{kind}_l{layer}{suffix}" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                w_ih, w_hh = getattr(self, names[0]), getattr(self, names[1])
                b_ih, b_hh = (getattr(self, names[2]), getattr(self, names[3])) if self.bias else (None, None)
                lstm = self.fused and self.mode == "LSTM"  # lstm_scan adds the biases at each step
                bias = (b_ih + b_hh if b_ih is not None else np.zeros(w_hh.shape[0], w_hh.dtype)) if lstm else None
                if lstm and running is None and x.dtype == np.float32 and ll.ONEDNN_LSTM and onednn.available():
                    # projection and recurrence in one call (oneDNN's LSTM, or numpy when switched off)
                    out = ll.lstm_layer_output(ll.lstm_layer(x, h0[index], c0[index], w_ih, w_hh, bias,
                                                             reverse=direction == 1),
                                               x, h0[index], c0[index], w_ih, w_hh, bias, reverse=direction == 1)
                    outputs.append(out[:-1])  # from the end: the sequence length may be a dynamic axis (ONNX)
                    h_n.append(out[0 if direction == 1 else -2])
                    c_n.append(out[-1])
                    continue
                gi = _projection(x, w_ih, b_ih, b_hh, None if lstm else self.mode)
                if lstm:
                    size = self.hidden_size
                    mask = () if running is None else (running,)
                    ws = rc.lstm_scan(gi, h0[index], c0[index], w_hh, bias, *mask, reverse=direction == 1)
                    last = -1 if direction == 0 else 0  # the step visited last
                    outputs.append(ws[:, :, :size])
                    h_n.append(ws[last, :, :size])
                    c_n.append(ws[last, :, size:2 * size])
                    continue
                if self.fused and self.mode == "GRU":
                    mask = () if running is None else (running,)
                    bias = b_hh if b_hh is not None else np.zeros(w_hh.shape[0], w_hh.dtype)
                    ws = rc.gru_scan(gi, h0[index], w_hh, bias, *mask, reverse=direction == 1)
                    size = self.hidden_size
                    outputs.append(ws[:, :, :size])
                    h_n.append(ws[-1 if direction == 0 else 0, :, :size])
                    c_n.append(None)
                    continue
                if self.fused and self.mode in ("RNN_TANH", "RNN_RELU"):
                    mask = () if running is None else (running,)
                    hs = rc.rnn_scan(gi, h0[index], w_hh, *mask, reverse=direction == 1,
                                     nonlinearity="tanh" if self.mode == "RNN_TANH" else "relu")
                    outputs.append(hs)
                    h_n.append(hs[-1 if direction == 0 else 0])
                    c_n.append(None)
                    continue
                w_hh_t = npa.transpose(w_hh)
                h, c = h0[index], (c0[index] if c0 is not None else None)
                steps = range(x.shape[0]) if direction == 0 else range(x.shape[0] - 1, -1, -1)
                hs = []
                for t in steps:
                    h_t, c_t = _step(self.mode, gi[t], h, c, w_hh_t, b_hh)
                    if running is not None:
                        h_t = ew.where(running[t], h_t, h)
                        c_t = ew.where(running[t], c_t, c) if c is not None else None
                    h, c = h_t, c_t
                    hs.append(h)
                if direction == 1:
                    hs.reverse()
                outputs.append(npa.stack(hs, axis=0))
                h_n.append(h)
                c_n.append(c)
            x = outputs[0] if len(outputs) == 1 else npa.concatenate(outputs, axis=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = dropout(x, self.dropout, training=True)
        return x, h_n, c_n

    def _forward(self, input, states):
        """(output, final states) for an array or a PackedSequence `input` and initial `states`, a
        list of (name, array or None)."""
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, states)
        array_input(self.layer_name(), input)
        input, initial, batched = self._layout(input, states, self.batch_first)
        output, h_n, c_n = self._run(input, *(initial + [None])[:2])
        return self._finish(output, [h_n, c_n][:len(states)], batched)

    def _forward_packed(self, input, states):
        """The padded batch, masked where each sequence has ended; the output packed alike."""
        steps, lengths = _padded_steps(input)
        running = _running(lengths, steps.shape[0], 3)
        steps, initial, _ = self._layout(steps, states, batch_first=False)
        output, h_n, c_n = self._run(steps, *(initial + [None])[:2], running=running)
        return _repacked(input, output), [npa.stack(s, axis=0) for s in [h_n, c_n][:len(states)]]

    def _finish(self, output, states, batched):
        states = [npa.stack(s, axis=0) for s in states]
        if not batched:
            return npa.squeeze(output, 1), [npa.squeeze(s, 1) for s in states]
        if self.batch_first:
            output = npa.swapaxes(output, 0, 1)
        return output, states


class RNN(RNNBase):
    """Elman RNN: h_t = tanh(x_t·W_ihᵀ + b_ih + h_{t-1}·W_hhᵀ + b_hh) (or relu with
    `nonlinearity='relu'`). forward(input, hx=None) → (output, h_n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise AvalonError(f"unknown nonlinearity {nonlinearity!r}: use 'tanh' or 'relu'")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         num_layers, bias, batch_first, dropout, bidirectional, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        output, (h_n,) = self._forward(input, [("hx", hx)])
        return output, h_n


class LSTM(RNNBase):
    """Long short-term memory, PyTorch's gate order (input, forget, cell, output).
    forward(input, hx=None) with hx = (h_0, c_0) → (output, (h_n, c_n))."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype)

    def forward(self, input, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise AvalonError("LSTM: hx must be a tuple (h_0, c_0)")
        h0, c0 = hx if hx is not None else (None, None)
        output, (h_n, c_n) = self._forward(input, [("h_0", h0), ("c_0", c0)])
        return output, (h_n, c_n)


class GRU(RNNBase):
    """Gated recurrent unit, PyTorch's gates (reset, update, new) with
    n = tanh(W_in·x + b_in + r·(W_hn·h + b_hn)). forward(input, hx=None) → (output, h_n)."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)

    def forward(self, input, hx=None):
        output, (h_n,) = self._forward(input, [("hx", hx)])
        return output, h_n


class RNNCellBase(Module):
    """One step of a recurrence: parameters weight_ih, weight_hh, bias_ih, bias_hh (PyTorch's names)."""

    def __init__(self, mode, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        self.mode = mode
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        dtype = np.dtype(dtype or np.float32)
        gate_size = _GATES[mode] * hidden_size
        self.weight_ih = Parameter(np.empty((gate_size, input_size), dtype))
        self.weight_hh = Parameter(np.empty((gate_size, hidden_size), dtype))
        if bias:
            self.bias_ih = Parameter(np.empty((gate_size,), dtype))
            self.bias_hh = Parameter(np.empty((gate_size,), dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        """Every weight and bias uniform in ±1/sqrt(hidden_size), as PyTorch."""
        _uniform_parameters(self, self.hidden_size)

    def extra_repr(self):
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.nonlinearity}"
        return text

    def _step(self, input, states):
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise shape_error(self, f"(N, {self.input_size}) or ({self.input_size},)", input.shape)
        batched = input.ndim == 2
        if not batched:
            input = npa.expand_dims(input, 0)
        expected = (input.shape[0], self.hidden_size)
        full = []
        for name, state in states:
            if state is None:
                full.append(np.zeros(expected, dtype=input.dtype))
                continue
            if tuple(state.shape) != (expected if batched else expected[1:]):
                raise shape_error(self, f"{name} of shape {expected if batched else expected[1:]}", state.shape,
                                  f"the {name} does not fit the input of shape {tuple(input.shape)}")
            full.append(state if batched else npa.expand_dims(state, 0))
        gi = _projection(input, self.weight_ih, self.bias_ih, self.bias_hh, self.mode)
        h, c = _step(self.mode, gi, full[0], full[1] if len(full) > 1 else None,
                     npa.transpose(self.weight_hh), self.bias_hh)
        return [s if batched else npa.squeeze(s, 0) for s in (h, c) if s is not None]


class RNNCell(RNNCellBase):
    """h' = tanh(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh) (or relu). forward(input, hx=None) → h'."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise AvalonError(f"unknown nonlinearity {nonlinearity!r}: use 'tanh' or 'relu'")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, bias,
                         device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        return self._step(input, [("hx", hx)])[0]


class LSTMCell(RNNCellBase):
    """One LSTM step. forward(input, hx=None) with hx = (h, c) → (h', c')."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype)

    def forward(self, input, hx=None):
        h, c = hx if hx is not None else (None, None)
        h, c = self._step(input, [("h", h), ("c", c)])
        return h, c


class GRUCell(RNNCellBase):
    """One GRU step. forward(input, hx=None) → h'."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype)

    def forward(self, input, hx=None):
        return self._step(input, [("hx", hx)])[0]
