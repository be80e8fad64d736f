"""accumulate_slices: the gradients of many slices of one array are summed into one buffer
(`scatter_sum`) instead of full-size scatters into zeros added up one by one; the numbers are the
plain path's, the pass can be switched off, and the tape it leaves alone still differentiates again."""
from collections import Counter

import numpy as np
import pytest
import torch

import avalon
from avalon.compile import accumulate_slices
from avalon.ops import index as ix

T = 50


def recurrent_loss(h, W):
    """An unrolled loop over time taking h[:, t] at each step."""
    s = 0
    for t in range(h.shape[1]):
        s = np.tanh(h[:, t] @ W + s)
    return (s * s).sum()


def heads_loss(x, W):
    """Attention-style: heads by chunk, pieces by split, rows by unbind and narrow, and x used whole."""
    q = x @ W
    heads = avalon.chunk(q, 4, dim=-1)
    out = sum((np.tanh(h) ** 2).sum() * (k + 1) for k, h in enumerate(heads))
    out = out + sum(p.sum() * 0.5 for p in avalon.split(x, [1, 2, 3], dim=1))
    out = out + sum((r * r).sum() for r in avalon.unbind(x, dim=0))
    return out + (avalon.narrow(x, 1, 1, 3) ** 3).sum() + (x[1:3] * x[0:2]).sum() + x[2, 4] + np.sin(x).sum()


def counts(tape):
    return Counter(n.prim.name for n in tape.calls)


def data(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((4, T, 8)).astype(dtype), (rng.standard_normal((8, 8)) * 0.3).astype(dtype)


def test_a_loop_over_time_sums_its_slice_gradients_into_one_buffer_bit_for_bit():
    h, W = data(dtype=np.float32)
    tape = avalon.grad_tape(recurrent_loss, h, W)
    assert counts(tape)["scatter_add"] == T
    fast, plain = tape.compile(), tape.compile(accumulate=False)
    assert "scatter_add" not in counts(fast.tape) and counts(fast.tape)["scatter_sum"] == 1
    assert counts(fast.tape)["add"] == counts(plain.tape)["add"] - (T - 1)  # the accumulating adds are gone
    expected = tape.interpret(h, W)
    for _ in range(2):  # twice: a replay must not depend on what the last one left in a buffer
        for got, slow, want in zip(fast(h, W), plain(h, W), expected):
            np.testing.assert_array_equal(got, slow)  # disjoint slices: the same additions, in order
            np.testing.assert_array_equal(got, want)


def test_a_loop_over_time_matches_torch():
    h, W = data()
    _, (gh, gW) = avalon.grad(recurrent_loss, h, W)
    th, tW = (torch.tensor(a, requires_grad=True) for a in (h, W))
    s = 0
    for t in range(T):
        s = torch.tanh(th[:, t] @ tW + s)
    (s * s).sum().backward()
    np.testing.assert_allclose(gh, th.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gW, tW.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_split_chunk_unbind_narrow_overlaps_and_whole_uses(rng):
    x, W = rng.standard_normal((4, 6)), rng.standard_normal((6, 8))
    tape = avalon.grad_tape(heads_loss, x, W)
    fast, plain = tape.compile(), tape.compile(accumulate=False)
    assert counts(fast.tape)["scatter_add"] == 0 < counts(plain.tape)["scatter_add"]
    assert len(fast.tape.calls) < len(plain.tape.calls)
    for got, want in zip(fast(x, W), tape.interpret(x, W)):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)  # overlaps may add in another order
    assert avalon.gradcheck(heads_loss, x, W)


def test_gathers_with_index_arrays_keep_their_scatter(rng):
    """Repeated indices accumulate (add.at), which a slice's in-place add would not: left alone."""
    x, idx = rng.standard_normal((5, 3)), np.array([0, 2, 2, 4])

    def f(x):
        return (x[idx] ** 2).sum() + (np.tanh(x[1:3])).sum() + (x[:, 0] * 3).sum()

    tape = avalon.grad_tape(f, x)
    fast = accumulate_slices(tape)
    assert counts(fast)["scatter_add"] == 1 and counts(fast)["scatter_sum"] == 1
    np.testing.assert_allclose(fast.interpret(x)[1], tape.interpret(x)[1], rtol=1e-13)
    np.testing.assert_allclose(tape.compile()(x)[1], tape.interpret(x)[1], rtol=1e-13)


def test_sums_used_elsewhere_or_returned_are_kept(rng):
    """An inner add with a second user, or one the tape returns, stays: the rewrite starts after it."""
    x = rng.standard_normal((6, 2))

    def sums(x):
        s1 = ix.scatter_add(x[0:2], key=(slice(2, 4),), shape=(6, 2)) + ix.scatter_add(x[2:4], key=(slice(0, 2),),
                                                                                          shape=(6, 2))
        s2 = s1 + ix.scatter_add(x[4:6], key=(slice(4, 6),), shape=(6, 2))
        return s2 * 2, s1

    tape = avalon.trace(sums, x)
    fast = accumulate_slices(tape)
    assert counts(fast)["scatter_sum"] == 2 and counts(fast)["scatter_add"] == 0  # s1's sum, then s1 + slice
    for got, want in zip(fast.interpret(x), tape.interpret(x)):
        np.testing.assert_array_equal(got, want)


def test_scatter_sum_writes_over_whatever_its_buffer_held(rng):
    a, b, whole = rng.standard_normal((2, 3)), rng.standard_normal(3), rng.standard_normal((4, 3))
    keys = ((slice(0, 2),), (3,))
    want = np.zeros((4, 3))
    want[0:2] += a
    want[3] += b
    for out in (None, np.full((4, 3), np.nan)):
        np.testing.assert_array_equal(ix.scatter_sum(a, b, keys=keys, shape=(4, 3), out=out), want)
        np.testing.assert_array_equal(ix.scatter_sum(whole, a, b, keys=((),) + keys, shape=(4, 3), out=out),
                                      want + whole)
    scalar = ix.scatter_sum(np.float64(2.0), np.float64(3.0), keys=((1,), (1,)), shape=(3,))
    np.testing.assert_array_equal(scalar, [0.0, 5.0, 0.0])


def test_scatter_sum_has_a_rule(rng):
    a, b, whole = rng.standard_normal((2, 3)), rng.standard_normal((1, 3)), rng.standard_normal((4, 3))

    def f(whole, a, b):
        s = ix.scatter_sum(whole, a, b, keys=((), (slice(0, 2),), (slice(1, 2), slice(None))), shape=(4, 3))
        return (np.sin(s) * s).sum()

    assert avalon.gradcheck(f, whole, a, b)


@pytest.mark.parametrize("accumulate", [False, True])
def test_gradients_of_gradients_through_sliced_loops(accumulate):
    """A Hessian-vector product through the loop: the inner gradient's tape (scatters and adds) is
    differentiated again; compiled with or without the pass, the numbers agree with torch's."""
    h, W = data(1)
    h, v = h[:, :6], np.random.default_rng(2).standard_normal((4, 6, 8))

    def inner(h, W):
        _, (gh, _) = avalon.grad(recurrent_loss, h, W)
        return (gh * v).sum()

    tape = avalon.grad_tape(inner, h, W)
    got = tape.compile(accumulate=accumulate)(h, W)[1]
    th, tW = torch.tensor(h, requires_grad=True), torch.tensor(W)
    s = 0
    for t in range(6):
        s = torch.tanh(th[:, t] @ tW + s)
    (gh,) = torch.autograd.grad((s * s).sum(), th, create_graph=True)
    (hv,) = torch.autograd.grad((gh * torch.tensor(v)).sum(), th)
    np.testing.assert_allclose(got, hv.numpy(), rtol=1e-9, atol=1e-12)


def test_scatter_sum_on_a_strict_array_api_backend(rng):
    """Without numpy's in-place views: regions are read and assigned, new axes dropped from keys."""
    xps = pytest.importorskip("array_api_strict")
    a, b, whole = rng.standard_normal((2, 3)), rng.standard_normal((1, 3)), rng.standard_normal((4, 3))
    keys = ((), (slice(0, 2),), (None, 3))
    want = whole.copy()
    want[0:2] += a
    want[3] += b[0]
    got = ix.scatter_sum(*(xps.asarray(v) for v in (whole, a, b)), keys=keys, shape=(4, 3))
    assert type(got).__module__.startswith("array_api_strict")
    np.testing.assert_array_equal(np.asarray(got), want)
    got = ix.scatter_sum(xps.asarray(a), xps.asarray(b), keys=keys[1:], shape=(4, 3))
    np.testing.assert_array_equal(np.asarray(got), np.concatenate([a, np.zeros((1, 3)), b]))


def test_the_profiler_without_optimize_times_the_recorded_scatters():
    """`profile_tape(optimize=False)` promises that no pass changes the tape: this one included."""
    from avalon.profile import profile_tape

    h, W = data(3)
    tape = avalon.grad_tape(recurrent_loss, h[:, :5], W)
    plain = profile_tape(tape, repeat=1, optimize=False)
    assert [r["id"] for r in plain.rows] == [n.id for n in tape.calls]
    assert "scatter_sum" in [r["op"] for r in profile_tape(tape, repeat=1).rows]
