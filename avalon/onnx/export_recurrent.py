"""The fused recurrences (lstm_scan, gru_scan, rnn_scan) written as ONNX's LSTM, GRU and RNN operators,
so the sequence length can be a dynamic axis.

A scan's workspace holds more than those operators return (the LSTM's cell state and gates at every
step), so a scan becomes one only where the traced code reads what the operator gives: every step's h,
and the LSTM's c at the step visited last (output, h_n, c_n: what the layers read). A masked scan (a
PackedSequence), one whose gates are read, and one in another dtype than float32 (onnxruntime runs
these operators in float32 only) are unrolled instead (export_ops/recurrent.py).

Gate orders differ: PyTorch's LSTM rows are i, f, g, o and ONNX's i, o, f, c; the GRU's r, z, n and
ONNX's z, r, h (with linear_before_reset=1, PyTorch's GRU). The input projection x·W_ihᵀ that the
layer computes before the scan is found on the tape and given to the operator as X and W; where it is
not found, the projections themselves are X and W a permutation matrix.

`lstm_layer_output` (the float32 LSTM layer with its projection, avalon/ops/lstm_layer.py) is always
one LSTM operator on its own operands x, w_ih, w_hh, bias, h0 and c0; the buffer `lstm_layer` fills
is left out of the file.
"""
import numpy as np

from ..tape import Call, Node
from .export_fuse import Fused, _call

# per primitive: (ONNX operator, PyTorch's gate blocks in ONNX's order, position of the optional mask)
_FORMS = {"lstm_scan": ("LSTM", [0, 3, 1, 2], 5), "gru_scan": ("GRU", [1, 0, 2], 4), "rnn_scan": ("RNN", [0], 3)}


def recurrences(tape, outputs):
    """{scan node: Fused} for every scan written as an ONNX recurrent operator."""
    readers = {}
    for node in tape.calls:
        for a in node.args:
            if isinstance(a, Call) and a.prim.name in _FORMS:
                readers.setdefault(a, []).append(node)
    found = {node: recurrence(node, readers.get(node, []), outputs) for node in readers}
    found.update({node: recurrence(node, [], outputs) for node in outputs if node not in readers})
    found.update({node: _layer(node) for node in tape.calls if node.prim.name == "lstm_layer_output"})
    return {node: fused for node, fused in found.items() if fused is not None}


def _layer(node):
    """`lstm_layer_output` (T+1, N, H) as ONNX's LSTM: Y's every step, then Y_c."""
    _, x, h0, c0, w_ih, w_hh, bias = node.args
    size = h0.shape[-1]

    def emit(g):
        dt = node.dtype
        rows = _rows(_FORMS["lstm_scan"][1], size)
        biases = [_per_direction(g, bias, rows, dt), g.const(np.zeros((1, len(rows)), dt))]
        inputs = [g.arg(node, 1, dt), _per_direction(g, w_ih, rows, dt), _per_direction(g, w_hh, rows, dt),
                  g.op("Concat", biases, axis=1), "", g.unsqueeze(g.arg(node, 2, dt), [0]),
                  g.unsqueeze(g.arg(node, 3, dt), [0])]
        results = g.op("LSTM", inputs, outputs=3, hidden_size=size,
                       direction="reverse" if node.params.get("reverse") else "forward")
        return g.op("Concat", [g.squeeze(results[0], [1]), results[2]], axis=0)
    return Fused([n for n in (x, h0, c0, w_ih, w_hh, bias) if isinstance(n, Node)], emit)


def _rows(blocks, size):
    """PyTorch's gate rows in ONNX's gate order."""
    return np.concatenate([np.arange(b * size, (b + 1) * size) for b in blocks])


def _per_direction(g, operand, rows, dt):
    """A weight or bias (a tape node) with its gate blocks in ONNX's order and a leading direction axis."""
    return g.unsqueeze(g.op("Gather", [g.cast(g.names[operand], operand.dtype, dt), g.ints(rows)], axis=0), [0])


def recurrence(node, readers, outputs):
    """A Fused writing the scan `node` as one ONNX recurrent operator, or None where none fits.
    `readers` are the tape's calls that read `node`, `outputs` the program's results."""
    form = _FORMS.get(node.prim.name) if isinstance(node, Call) else None
    if form is None or len(node.args) > form[2] or (node in outputs and form[0] != "RNN") or node.dtype != np.float32:
        return None
    size = node.args[3 if form[0] == "LSTM" else 2].shape[1]
    if not all(_reads_states(reader, node, size, form[0]) for reader in readers):
        return None
    x, w_ih, input_bias = _projection(node.args[0], form[0])
    used = [x, w_ih, input_bias, *node.args[1:]]

    def emit(g):
        return _emit(g, node, form, size, x, w_ih, input_bias)
    return Fused([n for n in used if isinstance(n, Node)], emit)


def _reads_states(reader, node, size, op_type):
    """Whether `reader` takes from the workspace only what the ONNX operator returns."""
    if op_type == "RNN":  # its workspace is every step's h, which Y is
        return True
    if not _call(reader, "getitem") or reader.args[0] is not node or any(a is node for a in reader.args[1:]):
        return False
    key = reader.params["key"]
    if len(key) != 3 or not isinstance(key[2], slice) or key[2].step not in (None, 1):
        return False
    start, stop = key[2].start or 0, key[2].stop
    if stop is None or not 0 <= start <= stop:
        return False
    if stop <= size:
        return True
    steps = node.shape[0]
    last = 0 if node.params.get("reverse") else steps - 1
    return op_type == "LSTM" and size <= start and stop <= 2 * size and isinstance(key[0], (int, np.integer)) \
        and key[0] % steps == last


def _projection(gi, op_type):
    """(x, W_ih, the bias added to the projection or None) when `gi` is the layer's x·W_ihᵀ (+ bias:
    the GRU's and RNN's layers add it there) over a (T, N, F) sequence; else (gi, None, None)."""
    projected, bias = gi, None
    added = _call(gi, "add") if op_type != "LSTM" else None
    if added is not None and isinstance(added.args[1], Node) and len(added.args[1].shape) == 1:
        projected, bias = added.args
    outer = _call(projected, "reshape")
    product = _call(outer.args[0], "matmul") if outer is not None else None
    inner = _call(product.args[0], "reshape") if product is not None else None
    weight = _call(product.args[1], "transpose") if product is not None else None
    if inner is None or weight is None or tuple(weight.params["axes"]) != (1, 0) or len(inner.args[0].shape) != 3:
        return gi, None, None
    return inner.args[0], weight.args[0], bias


def _emit(g, node, form, size, x, w_ih, input_bias):
    op_type, blocks, _ = form
    dt = node.dtype
    rows = _rows(blocks, size)

    def per_direction(operand):
        return _per_direction(g, operand, rows, dt)

    if w_ih is not None:
        w = per_direction(w_ih)
    else:  # X is the projection itself: W only reorders its gate blocks
        w = g.const(np.eye(len(rows), dtype=dt)[rows][None])
    def zeros():
        return g.const(np.zeros((1, len(rows)), dt))

    input_bias = per_direction(input_bias) if input_bias is not None else zeros()
    if op_type == "LSTM":  # its one bias is b_ih + b_hh
        biases = [per_direction(node.args[4]), zeros()]
    elif op_type == "GRU":  # b_hn sits inside the reset gate's product: R's bias
        biases = [input_bias, per_direction(node.args[3])]
    else:
        biases = [input_bias, zeros()]
    recurrent = per_direction(node.args[3 if op_type == "LSTM" else 2])
    inputs = [g.cast(g.names[x], x.dtype, dt), w, recurrent, g.op("Concat", biases, axis=1), "",
              g.unsqueeze(g.arg(node, 1, dt), [0])]
    if op_type == "LSTM":
        inputs.append(g.unsqueeze(g.arg(node, 2, dt), [0]))
    attributes = {"hidden_size": size, "direction": "reverse" if node.params.get("reverse") else "forward"}
    if op_type == "GRU":
        attributes["linear_before_reset"] = 1
    if op_type == "RNN":
        attributes["activations"] = ["Tanh" if node.params.get("nonlinearity", "tanh") == "tanh" else "Relu"]
    results = g.op(op_type, inputs, outputs=3 if op_type == "LSTM" else 2, **attributes)
    hs = g.squeeze(results[0], [1])  # Y: (T, directions = 1, N, H)
    if op_type != "LSTM":
        return hs
    # the workspace as its readers see it: h at every step, then c (read only at the last step)
    cs = g.op("Expand", [results[2], g.op("Shape", [hs])])
    return g.op("Concat", [hs, cs], axis=2)
