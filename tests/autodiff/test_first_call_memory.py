"""The first call of a cached gradient lets go of values seen while tracing once nothing can read them
(the forward pass's values no rule reads, `avalon.tracing.release`; the backward walk's once passed,
`backward(release=True)`), so it holds about what a compiled replay would rather than every forward
and backward value at once; the gradients are exactly those of the trace that keeps everything.

Every test runs twice: sweeping the forward values as often as possible (after every tracer made),
and as `avalon.grad` does."""
import sys
import tracemalloc

import numpy as np
import pytest

import avalon
from avalon import nn
from avalon.tape import Call
from avalon.tracing import release as forward_release
from avalon.utils.checkpoint import checkpoint_sequential

grad_module = sys.modules["avalon.autodiff.grad"]  # the module (`avalon.autodiff.grad` names the function)


@pytest.fixture(autouse=True, params=[1, forward_release._EVERY], ids=["sweep-always", "sweep-as-grad"])
def sweep_every(request, monkeypatch):
    monkeypatch.setattr(forward_release, "_EVERY", request.param)


def deep(layers=12, width=128):
    avalon.manual_seed(0)
    return nn.Sequential(*[m for _ in range(layers) for m in (nn.Linear(width, width), nn.Tanh())])


def loss(model, x):
    return (model(x) ** 2).mean()


def traced(f, *args, release):
    """The recording of f's value and backward pass, as the first call of `avalon.grad` makes it."""
    return grad_module._record_with_backward(f, args, None, release=release)[0]


def outputs(recording):
    return [np.asarray(n.value) for n in recording.tape.outputs]


def test_gradients_are_those_of_the_walk_that_keeps_every_value(rng):
    model, x = deep(), rng.standard_normal((16, 128)).astype(np.float32)
    kept = traced(loss, model, x, release=False)
    released = traced(loss, model, x, release=True)
    assert len(kept.tape.nodes) == len(released.tape.nodes)
    for a, b in zip(outputs(kept), outputs(released)):
        np.testing.assert_array_equal(a, b)


def test_only_results_and_what_code_still_holds_keep_their_values(rng):
    model, x = deep(), rng.standard_normal((16, 128)).astype(np.float32)
    kept = traced(loss, model, x, release=False)
    released = traced(loss, model, x, release=True)
    calls = [n for n in released.tape.nodes if isinstance(n, Call)]
    holding = [n for n in calls if n.value is not None]
    assert set(released.tape.outputs) <= set(holding) | {n for n in released.tape.nodes if not isinstance(n, Call)}
    assert len(holding) <= len(released.tape.outputs) + 2  # the loss, the gradients (and what they sum)
    assert all(n.value is not None for n in kept.tape.nodes if isinstance(n, Call))


def test_the_first_call_peaks_far_lower(rng):
    model, x = deep(layers=16, width=256), rng.standard_normal((64, 256)).astype(np.float32)
    peaks = {}
    for release in (False, True):
        tracemalloc.start()
        traced(loss, model, x, release=release)
        peaks[release] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks[True] < 0.6 * peaks[False], peaks


def test_a_gradient_hook_reads_a_value_recorded_after_the_hooked_one(rng):
    """The hook's closure holds `scale`, computed later in the forward pass than `h`, whose gradient
    the walk reaches after it has passed `scale`: its value must still be there while tracing (a
    replay cannot run such a hook: its closure holds a tracer of the call that traced)."""
    w = rng.standard_normal((4, 4)).astype(np.float32)
    x = rng.standard_normal((3, 4)).astype(np.float32)

    def f(w, x):
        h = np.tanh(x @ w)
        scale = np.exp(h).sum()
        h.register_hook(lambda g: g * scale)
        return (h * 2.0).sum() + scale

    kept = traced(f, w, x, release=False)
    released = traced(f, w, x, release=True)
    for a, b in zip(outputs(kept), outputs(released)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("segments", [2, 3])
def test_checkpointed_segments_recompute_from_values_still_held(rng, segments):
    class Checkpointed(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = deep(layers=6, width=16)

        def forward(self, x):
            return checkpoint_sequential(self.layers, segments, x, use_reentrant=False)

    model, x = Checkpointed(), rng.standard_normal((8, 16)).astype(np.float32)
    kept = traced(loss, model, x, release=False)
    released = traced(loss, model, x, release=True)
    for a, b in zip(outputs(kept), outputs(released)):
        np.testing.assert_array_equal(a, b)


def test_state_updates_and_gradients_of_gradients_inside_keep_their_values(rng):
    """Batch-norm's running statistics (state outputs) and a gradient taken inside the function (whose
    backward nodes the outer walk differentiates) come out as with every value kept."""
    avalon.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 1))
    x = rng.standard_normal((6, 8)).astype(np.float32)

    def penalised(model, x):
        inner = avalon.grad(lambda x: model(x).sum(), x)[1][0]
        return (model(x) ** 2).mean() + (inner ** 2).sum()

    kept = traced(penalised, model, x, release=False)
    released = traced(penalised, model, x, release=True)
    assert len(kept.state) == len(released.state) > 0
    for a, b in zip(outputs(kept), outputs(released)):
        np.testing.assert_array_equal(a, b)
