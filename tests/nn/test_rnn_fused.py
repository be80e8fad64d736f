"""The fused LSTM, GRU and RNN (`lstm_scan`, `gru_scan`, `rnn_scan` and their rules,
avalon/ops/recurrent.py): against torch and against the unrolled path (`fused = False`) on outputs,
final states and every gradient, over layers, directions, bias, batch_first, given or zero initial
states, unbatched and packed inputs; finite differences in float64 on the layer and on the primitives
themselves (every block of the workspaces read); a tape that no longer grows with the sequence;
second derivatives refused with the way out."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
from avalon.nn.utils import rnn as rnn_utils
from avalon.ops import recurrent as rc

from test_rnn import _seeded, check_parity

CONFIGS = [
    dict(),
    dict(num_layers=2),
    dict(bidirectional=True),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(bias=False, num_layers=2, batch_first=True),
]


RNN_CONFIGS = [dict(nonlinearity="relu", num_layers=2), dict(num_layers=2, bidirectional=True, batch_first=True),
               dict(bias=False, bidirectional=True, nonlinearity="relu")]


def _ids(config):
    return "-".join(f"{k}={v}" for k, v in config.items()) or "default"


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unrolled"])
@pytest.mark.parametrize("config", CONFIGS, ids=_ids)
def test_lstm_matches_torch_both_ways(config, fused):
    x = _seeded((3, 5, 4) if config.get("batch_first") else (5, 3, 4), 1)
    check_parity("LSTM", dict(input_size=4, hidden_size=3, **config), x, fused=fused)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unrolled"])
@pytest.mark.parametrize("name,config", [("RNN", c) for c in RNN_CONFIGS] + [("GRU", c) for c in CONFIGS],
                         ids=lambda v: v if isinstance(v, str) else _ids(v))
def test_rnn_and_gru_match_torch_both_ways(name, config, fused):
    x = _seeded((3, 5, 4) if config.get("batch_first") else (5, 3, 4), 1)
    states = _seeded((config.get("num_layers", 1) * (2 if config.get("bidirectional") else 1), 3, 3), 2)
    check_parity(name, dict(input_size=4, hidden_size=3, **config), x, fused=fused)
    check_parity(name, dict(input_size=4, hidden_size=3, **config), x, states, fused=fused)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unrolled"])
def test_given_initial_states_and_unbatched_input_match_torch(fused):
    shape = (4, 3, 5)
    states = (_seeded(shape, 2), _seeded(shape, 3))
    check_parity("LSTM", dict(input_size=4, hidden_size=5, num_layers=2, bidirectional=True),
                 _seeded((6, 3, 4), 1), states, fused=fused)
    check_parity("LSTM", dict(input_size=4, hidden_size=3, num_layers=2), _seeded((5, 4), 1),
                 (_seeded((2, 3), 2), _seeded((2, 3), 3)), fused=fused)


def _everything(model, x, states, packed):
    """(loss value, gradients of the model, input and states) of a weighting of every result."""
    def loss(model, x, states):
        if packed:
            out, (h_n, c_n) = model(rnn_utils.pack_padded_sequence(x, [2, 5, 1], enforce_sorted=False), states)
            out = rnn_utils.pad_packed_sequence(out)[0]
        else:
            out, (h_n, c_n) = model(x, states)
        return (out * np.cos(np.arange(out.size).reshape(out.shape))).sum() + (h_n * h_n).sum() + (c_n * 3).sum()

    return avalon.grad(loss, model, x, states)


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_fused_and_unrolled_paths_agree(packed):
    model = nn.LSTM(4, 6, num_layers=2, bidirectional=True)
    x = _seeded((5, 3, 4), 1)
    states = (_seeded((4, 3, 6), 2), _seeded((4, 3, 6), 3))
    value, (grads, gx, gstates) = _everything(model, x, states, packed)
    model.fused = False
    value2, (grads2, gx2, gstates2) = _everything(model, x, states, packed)
    np.testing.assert_allclose(value, value2, rtol=1e-5)
    for name, _ in model.named_parameters():
        np.testing.assert_allclose(grads[name], grads2[name], rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(gx, gx2, rtol=1e-5, atol=1e-6)
    for a, b in zip(gstates, gstates2):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_gradcheck_float64():
    model = nn.LSTM(2, 3, num_layers=2, bidirectional=True, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((4, 2, 2))
    states = tuple(np.random.default_rng(s).standard_normal((4, 2, 3)) for s in (1, 2))

    def loss(m, x, states):
        out, (h_n, c_n) = m(x, states)
        return (out ** 2).sum() + (h_n * c_n).sum()

    assert avalon.gradcheck(loss, model, x, states)


@pytest.mark.parametrize("reverse", [False, True])
def test_lstm_primitive_gradcheck_with_mask(reverse):
    rng = np.random.default_rng(4)
    steps, batch, size = 4, 3, 2
    gi, h0, c0 = (rng.standard_normal(s) for s in [(steps, batch, 4 * size), (batch, size), (batch, size)])
    w_hh, bias = rng.standard_normal((4 * size, size)), rng.standard_normal(4 * size)
    mask = np.arange(steps)[:, None, None] < np.array([4, 1, 2])[None, :, None]
    weights = rng.standard_normal((steps, batch, 6 * size))  # the gates read as well as h and c

    def loss(gi, h0, c0, w_hh, bias):
        return (rc.lstm_scan(gi, h0, c0, w_hh, bias, mask, reverse=reverse) * weights).sum()

    assert avalon.gradcheck(loss, gi, h0, c0, w_hh, bias)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("reverse", [False, True])
def test_rnn_primitive_gradcheck_with_mask(reverse, nonlinearity):
    rng = np.random.default_rng(5)
    gi, h0, w_hh = (rng.standard_normal(s) for s in [(4, 3, 2), (3, 2), (2, 2)])
    mask = np.arange(4)[:, None, None] < np.array([4, 1, 2])[None, :, None]
    weights = rng.standard_normal((4, 3, 2))

    def loss(gi, h0, w_hh):
        return (rc.rnn_scan(gi, h0, w_hh, mask, nonlinearity=nonlinearity, reverse=reverse) * weights).sum()

    assert avalon.gradcheck(loss, gi, h0, w_hh)


@pytest.mark.parametrize("reverse", [False, True])
def test_gru_primitive_gradcheck_with_mask(reverse):
    rng = np.random.default_rng(6)
    gi, h0, w_hh, b_hh = (rng.standard_normal(s) for s in [(4, 3, 6), (3, 2), (6, 2), (6,)])
    mask = np.arange(4)[:, None, None] < np.array([4, 1, 2])[None, :, None]
    weights = rng.standard_normal((4, 3, 10))  # every block of the workspace read

    def loss(gi, h0, w_hh, b_hh):
        return (rc.gru_scan(gi, h0, w_hh, b_hh, mask, reverse=reverse) * weights).sum()

    assert avalon.gradcheck(loss, gi, h0, w_hh, b_hh)


@pytest.mark.parametrize("name", ["RNN", "GRU"])
def test_packed_rnn_and_gru_fused_and_unrolled_agree(name):
    model = getattr(nn, name)(4, 5, num_layers=2, bidirectional=True)
    x = _seeded((5, 3, 4), 1)

    def loss(model, x):
        out, h_n = model(rnn_utils.pack_padded_sequence(x, [2, 5, 1], enforce_sorted=False))
        out = rnn_utils.pad_packed_sequence(out)[0]
        return (out * np.cos(np.arange(out.size).reshape(out.shape))).sum() + (h_n * h_n).sum()

    value, (grads, gx) = avalon.grad(loss, model, x)
    model.fused = False
    value2, (grads2, gx2) = avalon.grad(loss, model, x)
    np.testing.assert_allclose(value, value2, rtol=1e-5)
    for name, _ in model.named_parameters():
        np.testing.assert_allclose(grads[name], grads2[name], rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(gx, gx2, rtol=1e-5, atol=1e-6)


def test_tape_does_not_grow_with_the_sequence():
    # float64: lstm_scan (float32 LSTM layers run as lstm_layer where oneDNN is installed, tests/kernels)
    model = nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64)

    def loss(model, x):
        return (model(x)[0] ** 2).sum()

    tapes = [avalon.grad_tape(loss, model, _seeded((T, 2, 3), 1).astype(np.float64)) for T in (4, 16)]
    assert len(tapes[0].nodes) == len(tapes[1].nodes)
    names = [n.prim.name for n in tapes[1].calls]
    assert names.count("lstm_scan") == 4 and names.count("lstm_scan_grad") == 4
    for other in (nn.RNN(3, 4, num_layers=2), nn.GRU(3, 4, bidirectional=True)):
        sizes = [len(avalon.grad_tape(loss, other, _seeded((T, 2, 3), 1)).nodes) for T in (4, 16)]
        assert sizes[0] == sizes[1]
    forward = avalon.trace(loss, model, _seeded((16, 2, 3), 1).astype(np.float64))
    assert [n.prim.name for n in forward.calls].count("matmul") == 4  # the input projections alone


@pytest.mark.parametrize("name", ["LSTM", "GRU", "RNN"])
def test_second_derivatives_are_refused_with_the_way_out(name):
    model = getattr(nn, name)(2, 3, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((3, 1, 2))

    def inner(x, model):
        return (model(x)[0] ** 2).sum()

    def outer(x, model):
        _, (gx, _) = avalon.grad(inner, x, model)
        return (gx ** 2).sum()

    with pytest.raises(avalon.AvalonError, match="fused = False"):
        avalon.grad(outer, x, model)
    model.fused = False
    value, _ = avalon.grad(outer, x, model)
    assert np.isfinite(value)
