"""Gradient checkpointing (avalon.utils.checkpoint) is a tape transform: the backward pass recomputes a
segment's calls instead of keeping them, gradients stay exactly the plain path's, peak memory drops."""
import tracemalloc

import numpy as np
import pytest
import torch
import torch.utils.checkpoint as torch_checkpoint

import avalon
from avalon import nn
from avalon.utils.checkpoint import checkpoint, checkpoint_sequential


def stack(depth, width, bias=True, p=0.0):
    """Linear-Tanh(-Dropout) blocks of one width."""
    extra = (lambda: [nn.Dropout(p)]) if p else list
    return nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width, bias=bias), nn.Tanh(), *extra())])


class Deep(nn.Module):
    """A stack run plainly (segments=0) or through checkpoint_sequential."""

    def __init__(self, layers, segments):
        super().__init__()
        self.layers = layers
        self.segments = segments

    def forward(self, x):
        if not self.segments:
            return self.layers(x)
        return checkpoint_sequential(self.layers, self.segments, x, use_reentrant=False)


def loss(model, x):
    return (model(x) ** 2).mean()


def plain_and_checkpointed(layers, segments):
    return Deep(layers, 0), Deep(layers, segments)


def assert_same_grads(a, b):
    assert list(a.keys()) == list(b.keys())
    for name in a.keys():
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_outside_traced_code_checkpoint_just_calls_the_function(rng):
    x = rng.standard_normal((2, 3))
    np.testing.assert_array_equal(checkpoint(lambda x, scale: np.tanh(x) * scale, x, scale=2.0, use_reentrant=False),
                                  np.tanh(x) * 2.0)
    layers = stack(3, 3)
    np.testing.assert_array_equal(checkpoint_sequential(layers, 2, x.astype(np.float32)), layers(x.astype(np.float32)))


def test_gradients_are_identical_to_the_plain_path(rng):
    plain, checkpointed = plain_and_checkpointed(stack(6, 16), segments=3)
    x = rng.standard_normal((8, 16)).astype(np.float32)
    # each against the plain path at the same stage: a first call computes a Linear's weight gradient as
    # a transposed product, its replay row-major (matmul_layout), which may round differently by CPU
    for _ in range(2):  # traced, then replayed
        expected_value, (expected, expected_gx) = avalon.grad(loss, plain, x)
        value, (grads, gx) = avalon.grad(loss, checkpointed, x)
        assert value == expected_value
        assert_same_grads(grads, expected)
        np.testing.assert_array_equal(gx, expected_gx)


class TorchBlocks(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.blocks = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.GELU(), torch.nn.Linear(width, width))
            for _ in range(3))

    def forward(self, x):
        for block in self.blocks:
            x = x + torch_checkpoint.checkpoint(block, x, use_reentrant=False)
        return x


class Blocks(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))
                                    for _ in range(3))

    def forward(self, x):
        for block in self.blocks:
            x = x + checkpoint(block, x, use_reentrant=False)
        return x


def test_residual_blocks_get_torchs_gradients(rng):
    theirs, ours = TorchBlocks(8), Blocks(8)
    ours.load_state_dict(theirs.state_dict())
    x = rng.standard_normal((4, 8)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    t_loss = (theirs(tx) ** 2).mean()
    t_loss.backward()
    value, (grads, gx) = avalon.grad(loss, ours, x)
    np.testing.assert_allclose(value, t_loss.item(), rtol=1e-5)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_checkpoint_sequential_splits_like_torch(rng):
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(*[m for _ in range(5) for m in (torch.nn.Linear(6, 6), torch.nn.Tanh())])
    ours = stack(5, 6)
    ours.load_state_dict(theirs.state_dict())
    x = rng.standard_normal((3, 6)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    (torch_checkpoint.checkpoint_sequential(theirs, 3, tx, use_reentrant=False) ** 2).mean().backward()
    _, (grads, gx) = avalon.grad(lambda m, x: (checkpoint_sequential(m, 3, x) ** 2).mean(), ours, x)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-4, atol=1e-6)
    # 10 modules: runs 0-2 and 3-5 checkpointed, the last run 6-9 not; the backward pass recomputes
    # the later run first (its tanh modules 3 and 5), then the earlier one (module 1)
    tape = avalon.grad_tape(lambda m, x: (checkpoint_sequential(m, 3, x) ** 2).mean(), ours, x)
    recomputed_tanh = [n for n in tape.calls if n.prim.name == "tanh" and n.phase == "backward"]
    assert [n.scope for n in recomputed_tanh] == ["3", "5", "1"]


def test_gradcheck_through_nested_checkpoints_with_keyword_arguments(rng):
    def block(h, W, shift=0.0):
        return np.tanh(h @ W + shift)

    def outer(x, W1, W2):
        h = checkpoint(block, x, W1, shift=0.5)
        return block(h, W2) * h

    def f(W1, W2, x):
        return (checkpoint(outer, x, W1, W2) ** 2).sum()

    W1, W2, x = rng.standard_normal((3, 3)), rng.standard_normal((3, 3)), rng.standard_normal((4, 3))
    assert avalon.gradcheck(f, W1, W2, x)

    def plain(W1, W2, x):
        h = block(x, W1, shift=0.5)
        return ((block(h, W2) * h) ** 2).sum()

    _, expected = avalon.grad(plain, W1, W2, x)
    _, grads = avalon.grad(f, W1, W2, x)
    for g, e in zip(grads, expected):
        np.testing.assert_array_equal(g, e)


def test_the_backward_pass_reads_recomputed_calls_that_the_compiler_keeps_apart(rng):
    _, checkpointed = plain_and_checkpointed(stack(4, 8), segments=2)
    x = rng.standard_normal((5, 8)).astype(np.float32)
    tape = avalon.grad_tape(loss, checkpointed, x)
    forward = [n for n in tape.calls if n.prim.name == "tanh" and n.phase == "forward"]
    again = [n for n in tape.calls if n.prim.name == "tanh" and n.phase == "backward"]
    assert len(forward) == 4 and [n.scope for n in again] == ["layers.1", "layers.3"]
    reads = {a for n in tape.calls if n.prim.name == "recompute" for a in n.inputs}
    assert {a.name for a in reads if isinstance(a, avalon.Input)} == {"x", "layers.0.weight", "layers.0.bias",
                                                                       "layers.2.weight", "layers.2.bias"}
    # the rules of the checkpointed segment use the recomputed tanh, not the forward one
    first = forward[0]
    assert all(n.phase == "forward" for n in tape.calls if first in n.inputs)
    compiled = tape.compile()
    assert sum(n.prim.name == "tanh" for n in compiled.tape.calls) == 6  # not merged back by CSE
    assert compiled.source.count("recompute(") == 5


def test_dropout_inside_a_segment_is_drawn_once_and_its_mask_reused(rng):
    plain, checkpointed = plain_and_checkpointed(stack(4, 16, p=0.5), segments=2)
    x = rng.standard_normal((32, 16)).astype(np.float32)
    tape = avalon.grad_tape(loss, checkpointed, x)
    assert sum(n.prim.name == "uniform" for n in tape.calls) == 4
    for seed in (1, 2, 1):  # traced, then replayed: each step draws fresh masks, once
        avalon.manual_seed(seed)
        expected_value, (expected, _) = avalon.grad(loss, plain, x)
        avalon.manual_seed(seed)
        value, (grads, _) = avalon.grad(loss, checkpointed, x)
        assert value == expected_value
        assert_same_grads(grads, expected)


def test_a_forward_hook_inside_a_segment_runs_once_per_step(rng):
    def calls_per_step(segments):
        layers = stack(4, 8)
        seen = []
        layers[1].register_forward_hook(lambda module, args, out: seen.append(float(out.sum())))
        model = Deep(layers, segments)
        x = rng.standard_normal((3, 8)).astype(np.float32)
        for _ in range(3):  # traced, then replayed
            avalon.grad(loss, model, x)
        return len(seen)

    assert calls_per_step(2) == calls_per_step(0)


def test_no_grad_inside_a_segment_stays_cut_in_the_recomputation(rng):
    def block(x, W):
        with avalon.no_grad():
            scale = np.tanh(x @ W).mean()
        return np.tanh(x @ W) * scale

    W, x = rng.standard_normal((3, 3)), rng.standard_normal((4, 3))
    _, expected = avalon.grad(lambda W, x: block(x, W).sum(), W, x)
    _, grads = avalon.grad(lambda W, x: checkpoint(block, x, W).sum(), W, x)
    for g, e in zip(grads, expected):
        np.testing.assert_array_equal(g, e)


def test_second_derivatives_through_a_checkpoint_match_the_plain_path(rng):
    def f(x):
        return (np.sin(x) * x).sum()

    x = rng.standard_normal(5)
    d2 = avalon.grad(lambda x: avalon.grad(lambda y: checkpoint(f, y), x)[1][0].sum(), x)[1][0]
    np.testing.assert_allclose(d2, -np.sin(x) * x + 2 * np.cos(x), rtol=1e-12)


def _replay_peak(model, x):
    avalon.grad(loss, model, x, argnums=0)  # trace and compile
    tracemalloc.start()
    try:
        avalon.grad(loss, model, x, argnums=0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_compiled_step_of_a_deep_mlp_peaks_far_lower(rng):
    # 24 layers whose activations (1024 x 64 float32, 256 KiB each) dwarf the weights: kept, they
    # dominate the peak; checkpointed in 6 runs of 4 layers, only 5 run boundaries and one run live.
    plain, checkpointed = plain_and_checkpointed(stack(24, 64), segments=6)
    x = rng.standard_normal((1024, 64)).astype(np.float32)
    without, with_checkpoints = _replay_peak(plain, x), _replay_peak(checkpointed, x)
    assert with_checkpoints < 0.6 * without, (without, with_checkpoints)  # measured: about 0.48


def test_bad_arguments_are_refused_with_what_to_do(rng):
    layers = stack(2, 3)
    for segments in (0, 5, 1.5):
        with pytest.raises(avalon.AvalonError, match="whole number from 1 to the number of functions \\(4\\)"):
            checkpoint_sequential(layers, segments, np.zeros((1, 3), np.float32))
    with pytest.raises(avalon.AvalonError, match="context_fn"):
        checkpoint(np.tanh, np.zeros(2), context_fn=lambda: None)
