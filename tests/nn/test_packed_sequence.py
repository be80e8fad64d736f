"""nn.utils.rnn against torch.nn.utils.rnn: padding, packing and unpacking (values, dtypes, the
permutation fields, errors), and RNN / LSTM / GRU on PackedSequences of different lengths: outputs,
h_n, c_n and every gradient equal torch's; a model called on packed batches retraces per pattern of
lengths; traced lengths are refused."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
from avalon.nn.utils import rnn

torch = pytest.importorskip("torch")
trnn = torch.nn.utils.rnn

RTOL, ATOL = 1e-4, 1e-5


def _seeded(shape, seed, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _same(ours, theirs, **tol):
    np.testing.assert_allclose(np.asarray(ours), theirs.detach().numpy(), **tol)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence_matches_torch(batch_first, side):
    seqs = [_seeded((n, 2, 3), n) for n in (3, 1, 4)]
    ours = rnn.pad_sequence(seqs, batch_first=batch_first, padding_value=-2.0, padding_side=side)
    theirs = trnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=batch_first, padding_value=-2.0,
                               padding_side=side)
    assert ours.dtype == np.float32
    _same(ours, theirs)


def test_pad_sequence_gradient_and_errors():
    seqs = [_seeded((n, 2), n, np.float64) for n in (3, 1, 4)]
    assert avalon.gradcheck(lambda *s: (rnn.pad_sequence(list(s), padding_value=1.0) ** 2).sum(), *seqs)
    with pytest.raises(avalon.ShapeError, match="agree"):
        rnn.pad_sequence([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(avalon.AvalonError, match="padding_side"):
        rnn.pad_sequence(seqs, padding_side="middle")


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths,enforce_sorted", [([5, 3, 2], True), ([2, 5, 3], False), ([3, 3, 1, 3], False)])
def test_pack_and_unpack_match_torch(batch_first, lengths, enforce_sorted):
    shape = (len(lengths), 5, 3) if batch_first else (5, len(lengths), 3)
    x = _seeded(shape, 0)
    ours = rnn.pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
    theirs = trnn.pack_padded_sequence(torch.tensor(x), torch.tensor(lengths), batch_first=batch_first,
                                       enforce_sorted=enforce_sorted)
    _same(ours.batch_sizes, theirs.batch_sizes)
    assert ours.batch_sizes.dtype == np.int64
    if len(set(lengths)) == len(lengths):  # torch's sort orders equal lengths its own way
        _same(ours.data, theirs.data)
        for field in ("sorted_indices", "unsorted_indices"):
            mine, expected = getattr(ours, field), getattr(theirs, field)
            assert (mine is None) == (expected is None)
            if mine is not None:
                _same(mine, expected)
    data, batch_sizes, sorted_indices, unsorted_indices = ours  # a 4-tuple, as torch's
    assert data is ours.data
    for total_length in (None, 7):
        padded, got_lengths = rnn.pad_packed_sequence(ours, batch_first=batch_first, padding_value=-1.0,
                                                      total_length=total_length)
        expected, expected_lengths = trnn.pad_packed_sequence(theirs, batch_first=batch_first, padding_value=-1.0,
                                                              total_length=total_length)
        _same(padded, expected)
        _same(got_lengths, expected_lengths)
        assert got_lengths.dtype == np.int64
    for mine, expected in zip(rnn.unpack_sequence(ours), trnn.unpack_sequence(theirs)):
        _same(mine, expected)


def test_pack_sequence_matches_torch():
    seqs = [_seeded((n, 2), n) for n in (4, 2, 3)]
    ours = rnn.pack_sequence(seqs, enforce_sorted=False)
    theirs = trnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    _same(ours.data, theirs.data)
    _same(ours.batch_sizes, theirs.batch_sizes)
    _same(ours.sorted_indices, theirs.sorted_indices)


def test_packing_refusals_and_errors():
    x = _seeded((4, 3, 2), 0)
    with pytest.raises(avalon.AvalonError, match="decreasing"):
        rnn.pack_padded_sequence(x, [2, 4, 3])
    with pytest.raises(avalon.ShapeError, match="1..4"):
        rnn.pack_padded_sequence(x, [5, 4, 3])
    with pytest.raises(avalon.ShapeError, match="3 lengths"):
        rnn.pack_padded_sequence(x, [4, 3, 2], batch_first=True)
    with pytest.raises(avalon.ShapeError, match="total_length"):
        rnn.pad_packed_sequence(rnn.pack_padded_sequence(x, [4, 3, 2]), total_length=3)
    with pytest.raises(avalon.UnsupportedConstruct, match="traced lengths") as err:
        avalon.trace(lambda x, lengths: rnn.pack_padded_sequence(x, lengths).data.sum(), x, np.array([4, 3, 2]))
    assert "tolist()" in err.value.fix


def test_packing_is_differentiable():
    x = _seeded((5, 3, 2), 1, np.float64)

    def loss(x):
        packed = rnn.pack_padded_sequence(x, [2, 5, 3], enforce_sorted=False)
        return (packed.data ** 2).sum() + rnn.pad_packed_sequence(packed, total_length=6)[0].sum()

    assert avalon.gradcheck(loss, x)


CONFIGS = [
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(batch_first=True)),
    ("GRU", dict(num_layers=2, bidirectional=True, batch_first=True)),
    ("RNN", dict(nonlinearity="relu", bidirectional=True)),
    ("RNN", dict(num_layers=2, bias=False)),
]


def _states(name, kwargs, batch, seed):
    layers = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    h0 = _seeded((layers, batch, 4), seed)
    return (h0, _seeded((layers, batch, 4), seed + 1)) if name == "LSTM" else h0


@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("name,kwargs", CONFIGS)
def test_recurrent_layers_on_packed_sequences_match_torch(name, kwargs, with_state):
    lengths = [3, 6, 1, 4]
    batch_first = kwargs.get("batch_first", False)
    x = _seeded((4, 6, 3) if batch_first else (6, 4, 3), 2)
    states = _states(name, kwargs, 4, 3) if with_state else None
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(3, 4, **kwargs)
    ours = getattr(nn, name)(3, 4, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    weights = {"out": _seeded((6, 4, 4 * (2 if kwargs.get("bidirectional") else 1)), 4)}

    def run(lib, model, x, states, pad, pack_padded):
        packed = pack_padded(x, lengths, batch_first=batch_first, enforce_sorted=False)
        output, final = model(packed, states)
        padded, _ = pad(output)
        return padded, (list(final) if isinstance(final, tuple) else [final])

    def loss(model, x, states):
        padded, finals = run(avalon, model, x, states, rnn.pad_packed_sequence, rnn.pack_padded_sequence)
        return (padded * weights["out"]).sum() + sum((f * f).sum() for f in finals)

    value, (grads, gx, gstates) = avalon.grad(loss, ours, x, states)
    padded, finals = run(avalon, ours, x, states, rnn.pad_packed_sequence, rnn.pack_padded_sequence)

    xt = torch.tensor(x, requires_grad=True)
    st = None if states is None else (tuple(torch.tensor(s, requires_grad=True) for s in states)
                                      if name == "LSTM" else torch.tensor(states, requires_grad=True))
    t_padded, t_finals = run(torch, theirs, xt, st, trnn.pad_packed_sequence,
                             lambda x, lengths, **kw: trnn.pack_padded_sequence(x, torch.tensor(lengths), **kw))
    _same(padded, t_padded, rtol=RTOL, atol=ATOL)
    for mine, expected in zip(finals, t_finals):
        _same(mine, expected, rtol=RTOL, atol=ATOL)
    t_loss = (t_padded * torch.tensor(weights["out"])).sum() + sum((f * f).sum() for f in t_finals)
    t_loss.backward()
    np.testing.assert_allclose(value, t_loss.item(), rtol=RTOL)
    for pname, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[pname], p.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=pname)
    _same(gx, xt.grad, rtol=RTOL, atol=ATOL)
    if states is not None:
        for mine, expected in zip(gstates if name == "LSTM" else [gstates], st if name == "LSTM" else [st]):
            _same(mine, expected.grad, rtol=RTOL, atol=ATOL)


def test_packed_lstm_gradcheck():
    model = nn.LSTM(2, 3, bidirectional=True, dtype=np.float64)
    x = _seeded((4, 3, 2), 5, np.float64)

    def loss(model, x):
        output, (h_n, c_n) = model(rnn.pack_padded_sequence(x, [1, 4, 2], enforce_sorted=False))
        return (output.data ** 2).sum() + (h_n * c_n).sum()

    assert avalon.gradcheck(loss, model, x)


def test_model_called_on_packed_batches_retraces_per_pattern_of_lengths():
    torch.manual_seed(1)
    theirs = torch.nn.GRU(3, 5, batch_first=True)
    ours = nn.GRU(3, 5, batch_first=True)
    ours.load_state_dict(theirs.state_dict())
    for seed, lengths in enumerate([[4, 2, 3], [1, 4, 3], [4, 2, 3]]):
        x = _seeded((3, 4, 3), seed)
        output, h_n = ours(rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        assert isinstance(output, rnn.PackedSequence)
        t_output, t_h_n = theirs(trnn.pack_padded_sequence(torch.tensor(x), torch.tensor(lengths), batch_first=True,
                                                           enforce_sorted=False))
        _same(output.data, t_output.data, rtol=RTOL, atol=ATOL)
        _same(output.batch_sizes, t_output.batch_sizes)
        _same(h_n, t_h_n, rtol=RTOL, atol=ATOL)


# lengths as traced values: a model called as model(x, lengths) on arrays

class _Classifier:
    """The usual torch pattern, in either library: pack by the lengths, run, unpack."""

    def __init__(self, lib, enforce_sorted, total_length=None):
        self.lib, self.enforce_sorted, self.total_length = lib, enforce_sorted, total_length
        self.lstm = lib.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)

    def __call__(self, x, lengths):
        utils = self.lib.nn.utils.rnn
        packed = utils.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=self.enforce_sorted)
        output, (h_n, c_n) = self.lstm(packed)
        padded, out_lengths = utils.pad_packed_sequence(output, batch_first=True, padding_value=-1.0,
                                                        total_length=self.total_length)
        return padded, h_n, c_n, out_lengths


@pytest.mark.parametrize("enforce_sorted,batches", [
    (False, [[3, 6, 1, 4], [6, 2, 2, 5], [1, 1, 6, 3]]),
    (True, [[6, 4, 3, 1], [6, 6, 2, 1]]),
])
def test_traced_lengths_match_torch_at_every_call(enforce_sorted, batches):
    torch.manual_seed(3)
    theirs = _Classifier(torch, enforce_sorted)
    ours = _Classifier(avalon, enforce_sorted)
    ours.lstm.load_state_dict(theirs.lstm.state_dict())
    weights = _seeded((4, 6, 8), 7)

    def loss(lstm, x, lengths):
        padded, h_n, c_n, _ = ours(x, lengths)
        return (padded * weights).sum() + (h_n * c_n).sum()

    step = avalon.jit(lambda x, lengths: ours(x, lengths))
    for seed, lengths in enumerate(batches):
        x, lengths = _seeded((4, 6, 3), seed), np.array(lengths)
        result = step(x, lengths)  # traced once, replayed for the next lengths
        value, (grads, gx, _) = avalon.grad(loss, ours.lstm, x, lengths)
        xt = torch.tensor(x, requires_grad=True)
        expected = theirs(xt, torch.tensor(lengths))
        for mine, want in zip(result, expected):
            _same(mine, want, rtol=RTOL, atol=ATOL)
        assert result[3].dtype == np.int64
        t_loss = (expected[0] * torch.tensor(weights)).sum() + (expected[1] * expected[2]).sum()
        t_loss.backward()
        np.testing.assert_allclose(value, t_loss.item(), rtol=RTOL)
        for pname, p in theirs.lstm.named_parameters():
            np.testing.assert_allclose(grads[pname], p.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=pname)
            p.grad = None
        _same(gx, xt.grad, rtol=RTOL, atol=ATOL)


def test_traced_lengths_are_checked_at_every_call():
    torch.manual_seed(5)
    theirs = _Classifier(torch, enforce_sorted=True, total_length=7)
    ours = _Classifier(avalon, enforce_sorted=True)
    ours.lstm.load_state_dict(theirs.lstm.state_dict())
    step = avalon.jit(lambda x, lengths: ours(x, lengths))
    x = _seeded((3, 5, 3), 0)
    step(x, np.array([5, 3, 2]))
    with pytest.raises(avalon.AvalonError, match="decreasing"):
        step(x, np.array([2, 5, 3]))
    with pytest.raises(avalon.ShapeError, match="1..5"):
        step(x, np.array([6, 3, 2]))
    with pytest.raises(avalon.ShapeError, match="longest sequence has 4"):  # torch would give 4 steps
        step(x, np.array([4, 3, 2]))
    longer = _Classifier(avalon, enforce_sorted=True, total_length=7)
    longer.lstm = ours.lstm
    padded = avalon.jit(lambda x, lengths: longer(x, lengths))(x, np.array([4, 3, 2]))[0]
    _same(padded, theirs(torch.tensor(x), torch.tensor([4, 3, 2]))[0], rtol=RTOL, atol=ATOL)


def test_a_traced_packing_returned_comes_back_packed():
    torch.manual_seed(4)
    theirs = torch.nn.GRU(3, 5)
    ours = nn.GRU(3, 5)
    ours.load_state_dict(theirs.state_dict())
    run = avalon.jit(lambda x, lengths: ours(rnn.pack_padded_sequence(x, lengths, enforce_sorted=False))[0])
    x, lengths = _seeded((4, 3, 3), 1), np.array([2, 4, 3])
    for _ in range(2):
        output = run(x, lengths)
        expected = theirs(trnn.pack_padded_sequence(torch.tensor(x), torch.tensor(lengths), enforce_sorted=False))[0]
        assert isinstance(output, rnn.PackedSequence)
        for field in ("data", "batch_sizes", "sorted_indices", "unsorted_indices"):
            _same(getattr(output, field), getattr(expected, field), rtol=RTOL, atol=ATOL)
    with pytest.raises(avalon.UnsupportedConstruct, match="PackedSequence.data of traced lengths"):
        avalon.jit(lambda x, lengths: rnn.pack_padded_sequence(x, lengths).data)(x, np.array([4, 3, 2]))
