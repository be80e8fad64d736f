"""Releasing values after their last use and workspaces kept between calls (`compile_tape(release=,
workspace=)`): both compute exactly what the plain path does, outputs stay the caller's own, a
workspace is never shared by two calls in flight (threads, or a replay inside itself), and its buffers
that are never alive together share the bytes of one arena."""
import itertools
import threading
import tracemalloc

import numpy as np
import pytest

import avalon
from avalon.compile import inplace
from avalon.compile.arena import ALIGN, arena_layout
from avalon.compile.passes import buffer_plan, workspace_slots
from avalon.ops.callback import host_callback
from compile_programs import joint_tape, program

SEEDS = range(24)
OPTIONS = [dict(zip(("reuse", "release", "workspace"), flags)) for flags in itertools.product((False, True), repeat=3)]


def check_like_plain(tape, inputs):
    expected = tape.interpret(*inputs)
    others = [a[::-1].copy() if np.ndim(a) else a for a in inputs]  # other values, the same signature
    originals = [a.copy() for a in inputs]
    for options in OPTIONS:
        compiled = tape.compile(**options)
        got = compiled(*inputs)
        kept = [np.copy(g) for g in got]
        compiled(*others)
        again = compiled(*inputs)
        for k, (g, a, e) in enumerate(zip(got, again, expected)):
            where = f"{options} output {k}\n{compiled.source}"
            np.testing.assert_array_equal(g, kept[k], err_msg=f"a later call changed a kept output: {where}")
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12, err_msg=where)
            assert np.asarray(a).dtype == np.asarray(e).dtype and np.shape(a) == np.shape(e)
            assert not np.ndim(a) or not np.shares_memory(a, g), where
        for a, before in zip(inputs, originals):
            np.testing.assert_array_equal(a, before, err_msg=f"{options} wrote into an input")


@pytest.mark.parametrize("seed", SEEDS)
def test_forward_and_backward_programs_compute_what_the_plain_path_does(seed):
    f, inputs = program(seed)
    check_like_plain(avalon.trace(f, *inputs), inputs)
    check_like_plain(joint_tape(f, inputs), inputs)


def test_programs_do_use_workspaces():
    slotted = sum(len(workspace_slots(t, {})) for seed in SEEDS for t in [joint_tape(*program(seed))])
    assert slotted > len(SEEDS)  # the equivalence above is not vacuous


def chain(x, w):
    h = np.tanh(x @ w)
    return (h * h + np.sin(h)).sum()


def test_a_workspace_is_allocated_once_and_written_at_every_call(rng):
    x, w = rng.standard_normal((32, 16)), rng.standard_normal((16, 16))
    compiled = avalon.grad_tape(chain, x, w).compile(workspace=True)
    assert "out=w0" in compiled.source and "out=w" not in avalon.grad_tape(chain, x, w).source(workspace=False)
    first = compiled(x, w)
    (buffers,) = compiled.fn.workspaces
    second = compiled(x * 2, w)
    assert compiled.fn.workspaces == [buffers] and all(a is b for a, b in zip(compiled.fn.workspaces[0], buffers))
    for out in (*first, *second):  # outputs are fresh arrays, never a workspace's
        assert not any(np.shares_memory(out, b) for b in buffers)


def test_threads_never_share_a_workspace(rng):
    x, w = rng.standard_normal((256, 128)), rng.standard_normal((128, 128))
    compiled = avalon.grad_tape(chain, x, w).compile(workspace=True)
    scales = [0.5, 1.0, 1.5, 2.0]
    expected = {s: avalon.grad_tape(chain, x, w).interpret(x * s, w) for s in scales}
    errors = []

    def work(s):
        for _ in range(15):
            for got, want in zip(compiled(x * s, w), expected[s]):
                if not np.allclose(got, want, rtol=1e-12, atol=1e-12):
                    errors.append(s)

    threads = [threading.Thread(target=work, args=(s,)) for s in scales]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert 1 <= len(compiled.fn.workspaces) <= 2  # the pool keeps a few, not one per call


def test_a_replay_inside_itself_gets_its_own_workspace(rng):
    x = rng.standard_normal(64)
    inner_x = rng.standard_normal(64)
    compiled, inner = [], []

    def callback(_):
        if compiled and not inner:  # once: the replay calls itself from the middle of its own run
            inner.append(None)
            inner.append(compiled[0](inner_x))

    def f(x):
        a = np.tanh(x) * 3.0  # written into a workspace before the callback, read after it
        host_callback(x, callback=callback)
        return a + np.cos(a)

    tape = avalon.trace(f, x)
    compiled.append(tape.compile(workspace=True))
    assert workspace_slots(tape.compile().tape, {})  # `a` does live in a workspace
    (outer,) = compiled[0](x)
    a = np.tanh(x) * 3.0
    np.testing.assert_allclose(outer, a + np.cos(a), rtol=1e-12)
    b = np.tanh(inner_x) * 3.0
    np.testing.assert_allclose(inner[1][0], b + np.cos(b), rtol=1e-12)


def mlp_step_tape(rng):
    avalon.manual_seed(0)
    model = avalon.nn.Sequential(avalon.nn.Linear(256, 512), avalon.nn.ReLU(), avalon.nn.Linear(512, 512),
                                 avalon.nn.ReLU(), avalon.nn.Linear(512, 10))
    x, y = rng.standard_normal((128, 256)).astype(np.float32), rng.integers(0, 10, 128)
    tape = avalon.grad_tape(lambda m, x, y: avalon.nn.functional.cross_entropy(m(x), y), model, x, y)
    return tape, [*(p for p in model.parameters()), x, y]


def allocated_by_a_later_call(compiled, inputs):
    """(bytes allocated at most at once during a third call, bytes of its outputs)."""
    compiled(*inputs), compiled(*inputs)
    tracemalloc.start()
    try:
        outputs = compiled(*inputs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, sum(np.asarray(o).nbytes for o in outputs)


def test_with_workspaces_a_later_call_allocates_only_its_outputs(rng):
    tape, inputs = mlp_step_tape(rng)
    assert len(tape.inputs) == len(inputs)
    largest = 128 * 512 * 4  # the step's largest intermediate (an activation)
    peak, outputs = allocated_by_a_later_call(tape.compile(workspace=True), inputs)
    assert peak - outputs < largest / 8, (peak, outputs)
    plain_peak, _ = allocated_by_a_later_call(tape.compile(workspace=False), inputs)
    assert plain_peak - outputs > largest  # without workspaces the intermediates are allocated afresh
    for got, want in zip(tape.compile(workspace=True)(*inputs), tape.compile(workspace=False)(*inputs)):
        np.testing.assert_array_equal(got, want)


def slot_bytes(tape):
    compiled = tape.compile()
    plan = buffer_plan(compiled.tape)
    slots = workspace_slots(compiled.tape, plan)
    sizes = [np.prod(n.shape, dtype=np.int64) * np.dtype(n.dtype).itemsize for n in slots]
    return sizes, arena_layout(compiled.tape, plan, slots)


def test_buffers_never_alive_together_share_the_arena(rng, monkeypatch):
    monkeypatch.setattr(inplace, "IN_PLACE", False)  # each tanh in a slot of its own, not over its operand

    def narrowing(x, w1, w2, w3):  # each product's input is dead once it is made: one buffer at a time
        return np.tanh(np.tanh(np.tanh(x @ w1) @ w2) @ w3).sum()

    shapes = [(64, 256), (256, 128), (128, 96), (96, 64)]
    sizes, (offsets, total) = slot_bytes(avalon.trace(narrowing, *[rng.standard_normal(s) for s in shapes]))
    assert len(sizes) >= 3 and total < sum(sizes) and total >= max(sizes)
    assert len(set(offsets)) < len(offsets)


def test_the_equivalence_programs_do_share_arena_bytes():
    shared = 0
    for seed in SEEDS:
        sizes, (_, total) = slot_bytes(joint_tape(*program(seed)))
        shared += total < sum(max(ALIGN, s) for s in sizes)
    assert shared >= 3  # the workspace runs compared with the plain path above cover shared bytes
