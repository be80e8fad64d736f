"""What a cached training step holds: its arrays go when their last reference does (no reference cycle
keeps a step's gradients waiting for the cyclic collector), so steps do not pile up."""
import gc

import numpy as np

import avalon
import avalon.nn as nn
import avalon.nn.functional as F


def mlp():
    avalon.manual_seed(0)
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))


def loss_fn(model, x, y):
    return F.cross_entropy(model(x), y)


def test_a_cached_step_leaves_no_reference_cycles(rng):
    model = mlp()
    opt = avalon.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = rng.standard_normal((16, 32)).astype(np.float32), rng.integers(0, 10, 16)

    def step():
        loss, grads = avalon.grad(loss_fn, model, x, y)
        opt.step(grads[0])
        return float(loss)

    step(), step()  # traced, then replayed once
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        step()
        unreachable = gc.collect()  # what only the cyclic collector would have freed
    finally:
        if enabled:
            gc.enable()
    assert unreachable == 0


def test_the_first_call_gives_gradients_laid_out_as_later_calls_do(rng):
    # A Linear weight's gradient is a transposed product while tracing; the replay computes it row-major.
    model = mlp()
    x, y = rng.standard_normal((16, 32)).astype(np.float32), rng.integers(0, 10, 16)
    _, first = avalon.grad(loss_fn, model, x, y)
    _, later = avalon.grad(loss_fn, model, x, y)
    for name, g in first[0].items():
        assert g.flags.c_contiguous, name
        assert g.strides == later[0][name].strides, name
        np.testing.assert_array_equal(g, later[0][name])


def test_a_cached_step_allocates_its_gradients_and_little_else(rng):
    # The replay's intermediates live in a workspace planned once per compiled tape (compile's default).
    import tracemalloc

    avalon.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    x, y = rng.standard_normal((128, 256)).astype(np.float32), rng.integers(0, 10, 128)
    for _ in range(3):
        avalon.grad(loss_fn, model, x, y, argnums=0)
    tracemalloc.start()
    try:
        _, grads = avalon.grad(loss_fn, model, x, y, argnums=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    gradients = sum(g.nbytes for g in grads[0].values())
    activation = 128 * 512 * 4
    assert gradients <= peak < gradients + activation / 4, (peak, gradients)
