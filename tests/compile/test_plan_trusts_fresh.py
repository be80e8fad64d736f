"""`passes.PLAN_TRUSTS_FRESH`: buffer reuse trusts `fresh` primitives (conv_weight_grad) to return new
memory, so what they read (batch norm's backward results, ReLU results) is recycled into later calls of
the same shape once dead; the workspace kept between calls still follows `TRUST_FRESH` (memory)."""
import numpy as np
import pytest

import avalon
import avalon.nn.functional as F
from avalon.compile import passes
from avalon.ops import batch_norm as bn


def _two_block_step(rng):
    """A tape of conv-BN-ReLU twice at one shape (two batch-norm backward results of one size)."""
    avalon.manual_seed(0)
    nn = avalon.nn
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 6 * 6, 5))
    x, y = rng.standard_normal((3, 3, 6, 6)).astype(np.float32), rng.integers(0, 5, 3)
    tape = avalon.grad_tape(lambda m, x, y: F.cross_entropy(m(x), y), model, x, y)
    return tape, [*model.parameters(), *model.buffers(), x, y]


@pytest.fixture
def plan_trust(monkeypatch):
    def set_to(on):
        monkeypatch.setattr(passes, "PLAN_TRUSTS_FRESH", on)
        monkeypatch.setattr(passes, "TRUST_FRESH", False)
    return set_to


def _backward_results_planned(tape):
    compiled = tape.compile()
    plan = passes.buffer_plan(compiled.tape)
    return [n for n in compiled.tape.calls if n.prim is bn.batch_norm_backward and n in plan], compiled, plan


def test_batch_norm_backward_results_are_recycled_only_when_the_plan_trusts(rng, plan_trust):
    tape, _ = _two_block_step(rng)
    plan_trust(False)
    assert _backward_results_planned(tape)[0] == []  # conv_weight_grad (an output) might share them
    plan_trust(True)
    planned, compiled, plan = _backward_results_planned(tape)
    backward = [n for n in compiled.tape.calls if n.prim is bn.batch_norm_backward]
    assert len(backward) == 3 and planned == backward[1:]
    assert all(plan[n].prim is bn.batch_norm_backward for n in planned)


def test_a_trusting_plan_computes_what_the_plain_replay_does_bit_for_bit(rng, plan_trust):
    tape, inputs = _two_block_step(rng)
    plan_trust(False)
    untrusted = tape.compile()(*inputs)
    plan_trust(True)
    compiled = tape.compile()
    assert "out=" in next(line for line in compiled.source.splitlines() if "batch_norm_backward(" in line
                          and "out=v" in line)
    for _ in range(3):
        got = compiled(*inputs)
        for g, u in zip(got, untrusted):
            np.testing.assert_array_equal(g, u)
    kept = [np.copy(g) for g in got]
    compiled(*[a * 2 if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in inputs])
    for g, k in zip(got, kept):
        np.testing.assert_array_equal(g, k)  # outputs stay the caller's
