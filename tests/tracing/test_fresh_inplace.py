"""In-place methods on fresh traced values (made by the traced code, read by nothing yet) trace as new
nodes; on anything another node has read, on inputs and on views they are refused. And a tracer's
`requires_grad` is what eager PyTorch would say."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn

torch = pytest.importorskip("torch")


def drop_path(x, drop_prob=0.25, training=True, torch=avalon):
    """Stochastic depth as the vision model zoos write it."""
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
    random_tensor.div_(keep_prob)
    return x * random_tensor


def test_stochastic_depth_draws_afresh_at_every_replay():
    x = np.ones((4000, 3), np.float32)
    masks = [avalon.grad(lambda x: drop_path(x).sum(), x)[1][0] for _ in range(3)]
    for g in masks:
        kept = np.asarray(g[:, 0]) > 0
        assert np.all(np.isclose(g, 0) | np.isclose(g, 1 / 0.75))
        assert abs(kept.mean() - 0.75) < 0.03
        np.testing.assert_array_equal(g, g[:, :1].expand(-1, 3))  # one draw per sample
    assert not np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[1], masks[2])


def test_deterministic_inplace_on_fresh_values_matches_torch():
    def f(x, torch):
        buffer = x.new_zeros(3, 4)
        buffer.add_(x)
        buffer.mul_(2).clamp_(max=3.0)
        filled = x.new_ones(4).fill_(0.5)
        summed = torch.rand(3, 4).zero_().copy_(x * x)
        return (buffer * filled + summed).sum()

    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    value, (g,) = avalon.grad(lambda x: f(x, avalon), x)
    tx = torch.tensor(x, requires_grad=True)
    expected = f(tx, torch)
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=1e-5)
    np.testing.assert_allclose(g, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("body,what", [
    ("v = x[0]; x.add_(1)", "an input with a live view"),
    ("y = x * 2; v = y[0]; v.zero_()", "a view of a value still held"),
    ("y = x * 2; v = y[0]; y.mul_(3)", "a value with a live view"),
    ("y = x * 2; v = y.view(-1); y[1] = 0.0", "a value with a live view, written by index"),
])
def test_inplace_on_values_others_can_see_is_refused(body, what):
    source = "def f(x):\n" + "".join(f"    {line.strip()}\n" for line in body.split(";")) + "    return x.sum()\n"
    namespace = {}
    exec(compile(source, "<case>", "exec"), namespace)
    with pytest.raises(avalon.UnsupportedConstruct, match="in-place"):
        avalon.grad(namespace["f"], np.ones((2, 3), np.float32))


def test_inplace_that_would_change_the_dtype_is_refused():
    def f(x):
        counts = x.new_zeros(3, dtype=np.int64)
        counts.add_(x[:3] * 0.5)
        return x.sum()

    with pytest.raises(avalon.UnsupportedConstruct, match="int64"):
        avalon.grad(f, np.ones(4, np.float32))


def test_requires_grad_is_torchs():
    seen = {}

    def build(nn):
        return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))

    def probe(model, x, torch, key):
        hidden = model[0](x)
        with torch.no_grad():
            quiet = model[0](x)
        frozen_out = (x * 2).sum()
        seen[key] = (x.requires_grad, hidden.requires_grad, quiet.requires_grad, frozen_out.requires_grad)
        return model(x).sum()

    ours, theirs = build(nn), build(torch.nn)
    avalon.grad(lambda m, x: probe(m, x, avalon, "avalon"), ours, np.ones((2, 3), np.float32))
    probe(theirs, torch.ones(2, 3), torch, "torch")
    assert seen["avalon"] == seen["torch"] == (False, True, False, False)


def test_decoder_loop_writing_into_a_zeros_buffer_matches_torch():
    """seq2seq tutorials fill `outputs = torch.zeros(T, B, V)` one step at a time."""
    def decode(x, torch):
        T, B = x.shape[0], x.shape[1]
        outputs = torch.zeros(T, B, 3).to("cpu")
        hidden = x[0] * 0
        for t in range(1, T):
            hidden = torch.tanh(x[t] + hidden)
            outputs[t] = hidden * 2
        outputs[:, :, 0] = outputs[:, :, 0] + 1  # read, then written: the read ran first
        before = outputs.sum()
        outputs.mul_(0.5)
        return (outputs ** 2).sum() + before

    x = np.random.default_rng(2).standard_normal((5, 2, 3)).astype(np.float32)
    for _ in range(2):  # traced, then replayed
        value, (g,) = avalon.grad(lambda x: decode(x, avalon), x)
    tx = torch.tensor(x, requires_grad=True)
    expected = decode(tx, torch)
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=1e-5)
    np.testing.assert_allclose(g, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_masked_and_traced_index_writes_match_torch():
    def f(x, idx, torch):
        out = torch.zeros(4, 3)
        out[x > 0] = 5.0           # a boolean mask of the same shape: a select
        out[idx] = x[:2] * 3       # traced row indices
        return (out * x).sum()

    x = np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32)
    idx = np.array([2, 0])
    value, (g, _) = avalon.grad(lambda x, i: f(x, i, avalon), x, idx)
    tx = torch.tensor(x, requires_grad=True)
    expected = f(tx, torch.tensor(idx), torch)
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=1e-5)
    np.testing.assert_allclose(g, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_inplace_writes_into_arguments_reach_the_callers_array_as_in_torch():
    """fast_neural_style's normalize_batch: `batch.div_(255.0)` on the batch it is given."""
    def normalize_batch(batch):
        mean = batch.new_tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
        std = batch.new_tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)
        batch = batch.div_(255.0)
        return (batch - mean) / std

    def loss(batch):
        return (normalize_batch(batch) ** 2).mean()

    rng = np.random.default_rng(4)
    for _ in range(3):  # traced, then replayed
        x = (rng.random((2, 3, 4, 4)) * 255).astype(np.float32)
        ours = x.copy()
        value, (g,) = avalon.grad(loss, ours)
        leaf = torch.tensor(x, requires_grad=True)
        theirs = leaf.clone()
        expected = loss(theirs)
        expected.backward()
        np.testing.assert_allclose(value, expected.item(), rtol=1e-5)
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-6)  # written back
        np.testing.assert_allclose(g, leaf.grad.numpy(), rtol=1e-5, atol=1e-9)


def test_a_write_into_an_argument_passed_twice_is_refused():
    x = np.ones(3, np.float32)

    def f(a, b):
        a.mul_(2)
        return (a + b).sum()

    with pytest.raises(avalon.UnsupportedConstruct, match="in-place"):
        avalon.grad(f, x, x)
    np.testing.assert_array_equal(x, [1, 1, 1])
