"""Recurrent layers: PyTorch parity (outputs, final states, every parameter gradient, input and initial
state gradients) over layers, directions, bias, batch_first and unbatched inputs; the cells; default
initialisation; dropout between layers; a tape linear in the sequence length; shape errors."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn

RTOL, ATOL = 1e-4, 1e-5


def _seeded(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _flat(result):
    """(output, h_n) / (output, (h_n, c_n)) / h / (h, c) → a flat list of arrays."""
    if isinstance(result, (tuple, list)):
        return [leaf for part in result for leaf in _flat(part)]
    return [result]


def _weighted_sum(result, weights, lib_sum):
    return sum(lib_sum(r * w) for r, w in zip(_flat(result), weights))


def check_parity(name, ctor_kwargs, x, states=None, rtol=RTOL, atol=ATOL, fused=True):
    """Build torch.nn.<name> and avalon.nn.<name>, load torch's weights, compare the forward results and
    the gradients of a random weighting of them with respect to every parameter, the input and the
    initial states. `fused` sets the layer's `fused` switch (layers without one ignore it)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(**ctor_kwargs)
    ours = getattr(nn, name)(**ctor_kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    if hasattr(ours, "fused"):
        ours.fused = fused

    def pack(s):  # LSTM states are a pair
        return None if s is None else (tuple(s) if isinstance(s, (tuple, list)) else s)

    result = ours(x, pack(states))
    weights = [_seeded(np.shape(r), 10 + i) for i, r in enumerate(_flat(result))]

    def loss(model, x, states):
        return _weighted_sum(model(x, pack(states)), weights, lambda a: a.sum())

    value, (grads, gx, gstates) = avalon.grad(loss, ours, x, states)

    xt = torch.tensor(x, requires_grad=True)
    st = None if states is None else (
        tuple(torch.tensor(s, requires_grad=True) for s in states) if isinstance(states, (tuple, list))
        else torch.tensor(states, requires_grad=True))
    expected = theirs(xt, st)
    for a, b in zip(_flat(result), _flat(expected)):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=rtol, atol=atol)
    _weighted_sum(expected, [torch.tensor(w) for w in weights], torch.sum).backward()
    for pname, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[pname], p.grad.numpy(), rtol=rtol, atol=atol, err_msg=pname)
    assert len(grads) == len(list(theirs.parameters()))
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=rtol, atol=atol, err_msg="input")
    if states is not None:
        for g, s in zip(_flat(gstates), _flat(st)):
            np.testing.assert_allclose(g, s.grad.numpy(), rtol=rtol, atol=atol, err_msg="initial state")
    return ours, theirs


CONFIGS = [
    dict(),
    dict(num_layers=2),
    dict(bidirectional=True),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(bias=False, num_layers=2),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()) or "default")
@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_recurrent_layers_match_torch(name, config):
    x = _seeded((3, 5, 4) if config.get("batch_first") else (5, 3, 4), 1)
    check_parity(name, dict(input_size=4, hidden_size=3, **config), x)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_initial_states_get_gradients(name):
    layers, directions = 2, 2
    shape = (layers * directions, 3, 5)
    states = (_seeded(shape, 2), _seeded(shape, 3)) if name == "LSTM" else _seeded(shape, 2)
    check_parity(name, dict(input_size=4, hidden_size=5, num_layers=layers, bidirectional=True),
                 _seeded((6, 3, 4), 1), states)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_unbatched_input(name):
    shape = (2, 3)
    states = (_seeded(shape, 2), _seeded(shape, 3)) if name == "LSTM" else _seeded(shape, 2)
    check_parity(name, dict(input_size=4, hidden_size=3, num_layers=2), _seeded((5, 4), 1), states)
    check_parity(name, dict(input_size=4, hidden_size=3, batch_first=True), _seeded((5, 4), 1))


def test_relu_rnn_matches_torch():
    check_parity("RNN", dict(input_size=4, hidden_size=3, nonlinearity="relu", num_layers=2), _seeded((5, 2, 4), 1))


def test_dropout_in_eval_mode_matches_torch():
    torch = pytest.importorskip("torch")
    for name in ("LSTM", "GRU"):
        kwargs = dict(input_size=4, hidden_size=3, num_layers=3, dropout=0.5)
        theirs = getattr(torch.nn, name)(**kwargs).eval()
        ours = getattr(nn, name)(**kwargs).eval()
        ours.load_state_dict(theirs.state_dict())
        x = _seeded((4, 2, 4), 1)
        np.testing.assert_allclose(ours(x)[0], theirs(torch.tensor(x))[0].detach().numpy(), rtol=RTOL, atol=ATOL)


def test_dropout_between_layers_in_training():
    """Layer 2 passes its input through unchanged (identity weights, relu of non-negative values), so
    the output shows the dropout mask: zeros with probability p, the rest scaled by 1/(1-p)."""
    p, hidden = 0.3, 64
    rnn = nn.RNN(hidden, hidden, num_layers=2, nonlinearity="relu", dropout=p, bias=False)
    rnn.weight_ih_l0[...] = np.eye(hidden, dtype=np.float32)
    rnn.weight_hh_l0[...] = 0
    rnn.weight_ih_l1[...] = np.eye(hidden, dtype=np.float32)
    rnn.weight_hh_l1[...] = 0
    x = np.abs(_seeded((50, 4, hidden), 1)) + 0.5
    avalon.manual_seed(0)
    first, _ = rnn(x)
    second, _ = rnn(x)  # a cached replay draws a fresh mask
    ratio = first / x
    assert np.all(np.isclose(ratio, 0) | np.isclose(ratio, 1 / (1 - p)))
    assert abs(np.mean(ratio == 0) - p) < 0.02
    assert not np.array_equal(first, second)
    np.testing.assert_allclose(rnn.eval()(x)[0], x, rtol=1e-6)
    single = nn.RNN(hidden, hidden, num_layers=1, dropout=p)  # no layer after the last: no dropout
    # a first call and a replay may round their products differently (multithreaded AVX2 kernels)
    np.testing.assert_allclose(single(x)[0], single(x)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cells_match_torch(name):
    for batched in (True, False):
        x = _seeded((3, 4) if batched else (4,), 1)
        shape = (3, 5) if batched else (5,)
        states = (_seeded(shape, 2), _seeded(shape, 3)) if name == "LSTMCell" else _seeded(shape, 2)
        check_parity(name, dict(input_size=4, hidden_size=5), x, states)
        check_parity(name, dict(input_size=4, hidden_size=5, bias=False), x)
    check_parity("RNNCell", dict(input_size=4, hidden_size=5, nonlinearity="relu"), _seeded((3, 4), 1))


def test_cell_unrolled_by_hand_matches_the_layer():
    cell, layer = nn.LSTMCell(3, 4), nn.LSTM(3, 4)
    layer.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    x = _seeded((6, 2, 3), 1)
    h = c = np.zeros((2, 4), np.float32)
    outputs = []
    for t in range(6):
        h, c = cell(x[t], (h, c))
        outputs.append(h)
    out, (h_n, c_n) = layer(x)
    np.testing.assert_allclose(out, np.stack(outputs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c_n[0], c, rtol=1e-5, atol=1e-6)


def test_gradcheck_float64():
    gru = nn.GRU(2, 2, num_layers=2, bidirectional=True)
    x = np.random.default_rng(0).standard_normal((3, 1, 2))
    assert avalon.gradcheck(lambda m, x: (m(x)[0] ** 2).sum(), gru, x)
    lstm = nn.LSTMCell(2, 2)
    assert avalon.gradcheck(lambda m, x: sum((s ** 2).sum() for s in m(x)), lstm, x[0])


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_tape_grows_linearly_with_sequence_length(name):
    model = getattr(nn, name)(3, 4, num_layers=2, bidirectional=True)

    def loss(model, x):
        return (model(x)[0] ** 2).sum()

    sizes = [len(avalon.trace(loss, model, _seeded((T, 2, 3), 1)).nodes) for T in (8, 16, 32)]
    per_step = (sizes[1] - sizes[0]) / 8
    assert sizes[2] - sizes[1] == 16 * per_step
    grad_sizes = [len(avalon.grad_tape(loss, model, _seeded((T, 2, 3), 1)).nodes) for T in (8, 16, 32)]
    assert grad_sizes[2] - grad_sizes[1] == 2 * (grad_sizes[1] - grad_sizes[0])


def test_input_projection_is_one_matmul_per_layer_and_direction():
    model = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    model.fused = False  # unrolled (the fused path is tests/nn/test_rnn_fused.py's)
    tape = avalon.trace(lambda m, x: m(x)[0].sum(), model, _seeded((7, 2, 3), 1))
    matmuls = [n for n in tape.calls if n.prim.name == "matmul"]
    assert len(matmuls) == 4 + 4 * 7  # one projection per (layer, direction), one recurrent product per step


def test_default_initialisation_is_uniform_in_inverse_sqrt_hidden():
    avalon.manual_seed(0)
    model = nn.GRU(10, 16, num_layers=2)
    bound = 1 / np.sqrt(16)
    values = np.concatenate([p.reshape(-1) for p in model.parameters()])
    assert values.dtype == np.float32
    assert values.min() >= -bound and values.max() <= bound
    assert abs(values.std() - bound / np.sqrt(3)) < 0.01
    avalon.manual_seed(0)
    again = nn.GRU(10, 16, num_layers=2)
    np.testing.assert_array_equal(again.weight_hh_l1, model.weight_hh_l1)


def test_parameter_shapes_and_repr_follow_torch():
    torch = pytest.importorskip("torch")
    for name, kwargs in [("LSTM", dict(num_layers=2, bidirectional=True, batch_first=True, dropout=0.1)),
                         ("GRU", dict(bias=False)), ("RNN", dict(nonlinearity="relu"))]:
        ours, theirs = getattr(nn, name)(5, 3, **kwargs), getattr(torch.nn, name)(5, 3, **kwargs)
        assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
            [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
        assert repr(ours) == repr(theirs)
    assert repr(nn.LSTMCell(3, 4)) == repr(torch.nn.LSTMCell(3, 4))


def test_wrong_input_size_names_layer_shapes_and_line():
    lstm = nn.LSTM(4, 3, batch_first=True)
    with pytest.raises(avalon.ShapeError) as err:
        lstm(np.zeros((2, 5, 6), np.float32))  # the offending call
    message = str(err.value)
    assert "LSTM(4, 3, batch_first=True)" in message and "(N, T, 4)" in message and "(2, 5, 6)" in message
    assert "test_rnn.py" in message and "the offending call" in message


def test_wrong_state_shape_is_refused():
    gru = nn.GRU(4, 3, num_layers=2)
    with pytest.raises(avalon.ShapeError, match=r"hx of shape \(2, 5, 3\).*got \(1, 5, 3\)"):
        gru(np.zeros((7, 5, 4), np.float32), np.zeros((1, 5, 3), np.float32))
    with pytest.raises(avalon.ShapeError, match=r"GRUCell\(4, 3\).*\(N, 4\)"):
        nn.GRUCell(4, 3)(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(avalon.AvalonError, match="tuple"):
        nn.LSTM(4, 3)(np.zeros((7, 5, 4), np.float32), np.zeros((1, 5, 3), np.float32))
