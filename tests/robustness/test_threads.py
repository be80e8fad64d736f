"""Threads (issue #10): concurrent calls on one model give the serial results; while one thread traces,
other threads see the model's own arrays, never tracers; no tracer is left behind; concurrent first
calls keep one cache entry; concurrent random draws keep the generator valid. Every test repeats its
race for several rounds, as one round passes by luck too often."""
import threading
import weakref

import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
from avalon.autodiff import cache
from avalon.tracing import Tracer

THREADS = 6
ROUNDS = 20

pytestmark = pytest.mark.filterwarnings("ignore::avalon.RetraceWarning")  # the rounds retrace on purpose


def run_together(work, n=THREADS):
    """Run `work(i)` in n threads released together; their results in order (a failure re-raised)."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def body(i):
        try:
            barrier.wait(10)
            results[i] = work(i)
        except BaseException as error:  # reported by the test's own thread
            errors.append(error)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 8)
        self.mid = nn.Linear(8, 8)
        self.tied = nn.Linear(8, 8)
        self.tied.weight = self.mid.weight  # a tied weight: one input, bound into both layers
        self.out = nn.Linear(8, 3)
        self.mask = np.array([1, 0, 1, 1, 0, 1, 1, 1], np.float32)  # a plain-attribute array

    def forward(self, x):
        h = np.tanh(self.fc(x)) * self.mask
        return self.out(np.tanh(self.tied(np.tanh(self.mid(h)))))


def loss_fn(model, x, y):
    return F.mse_loss(model(x), y)


def holds_no_tracer(model):
    for module in model.modules():
        values = [*module._parameters.values(), *module._buffers.values(), *vars(module).values()]
        if any(isinstance(v, Tracer) for v in values):
            return False
    return True


def batches(n, rng):
    return [(rng.standard_normal((4, 5), dtype=np.float32), rng.standard_normal((4, 3), dtype=np.float32))
            for _ in range(n)]


def test_concurrent_grads_on_one_model_give_the_serial_results():
    avalon.manual_seed(0)
    model = Net()
    data = batches(THREADS, np.random.default_rng(0))
    params = {name: p for name, p in model.named_parameters()}
    serial = [avalon.grad(loss_fn, model, x, y) for x, y in data]
    for _ in range(ROUNDS):
        avalon.clear_cache()  # every thread traces at once, then replays
        for _ in range(2):
            got = run_together(lambda i: avalon.grad(loss_fn, model, *data[i]))
            for (loss, grads), (want_loss, want_grads) in zip(got, serial):
                assert float(loss) == float(want_loss)
                for name in params:
                    np.testing.assert_array_equal(grads[0][name], want_grads[0][name])
                np.testing.assert_array_equal(grads[1], want_grads[1])
    assert holds_no_tracer(model)
    assert {name: p for name, p in model.named_parameters()} == params  # the very same arrays


def test_concurrent_calls_of_a_captured_model_give_the_serial_results():
    avalon.manual_seed(1)
    model = Net()
    data = batches(THREADS, np.random.default_rng(1))
    closure = lambda x, y: F.mse_loss(model(x), y)  # noqa: E731 - the model is captured, not passed
    serial = [avalon.grad(closure, x, y) for x, y in data]
    for _ in range(ROUNDS):
        avalon.clear_cache()
        got = run_together(lambda i: avalon.grad(closure, *data[i]))
        for (loss, grads), (want_loss, want_grads) in zip(got, serial):
            assert float(loss) == float(want_loss)
            np.testing.assert_array_equal(grads[0], want_grads[0])
    assert holds_no_tracer(model)


class Slow(nn.Module):
    """A forward that, in the thread named 'tracer', stops half-way until told to go on: after it
    has assigned a buffer and a plain attribute, so both are tracers in what that thread sees."""

    def __init__(self, inside, go_on):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.register_buffer("steps", np.zeros((), np.float32))
        self.scale = np.float32(2.0) * np.ones(2, np.float32)
        self.inside, self.go_on = inside, go_on

    def forward(self, x):
        self.steps = self.steps + 1
        self.scale = self.scale * 1.0
        out = self.fc(x) * self.scale
        if threading.current_thread().name == "tracer":
            assert isinstance(self.fc.weight, Tracer) and isinstance(self.steps, Tracer)
            assert isinstance(self.scale, Tracer)  # a plain-attribute array
            assert all(isinstance(p, Tracer) for _, p in self.named_parameters())
            assert all(isinstance(b, Tracer) for b in self.buffers())
            assert all(isinstance(v, Tracer) for v in self.state_dict().values())
            self.inside.set()
            assert self.go_on.wait(10)
        return out


def test_while_one_thread_traces_others_see_the_models_own_arrays():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for _ in range(ROUNDS // 4):
        inside, go_on = threading.Event(), threading.Event()
        model = Slow(inside, go_on)
        weight, steps, scale = model.fc.weight, model.steps, model.scale
        expected = (x @ weight.T + model.fc.bias) * 2.0
        traced = []
        worker = threading.Thread(target=lambda: traced.append(model(x)), name="tracer")
        worker.start()
        try:
            assert inside.wait(10)
            assert model.fc.weight is weight and model.steps is steps and model.scale is scale
            assert all(type(v) is not Tracer for v in model.state_dict().values())
            assert [p for p in model.parameters()] == [weight, model.fc.bias]
            assert list(model.buffers()) == [steps] and model.get_parameter("fc.weight") is weight
            assert all(not isinstance(v, Tracer) for v in vars(model).values())
            assert type(avalon.exp(np.zeros(2))) is avalon.Tensor
            np.testing.assert_array_equal(model.fc(x), x @ weight.T + model.fc.bias)
            out = model(x)  # traces on its own, alongside
            assert type(out) is avalon.Tensor
            np.testing.assert_allclose(out, expected, rtol=1e-6)
            assert holds_no_tracer(model)
        finally:
            go_on.set()
            worker.join(10)
        assert not worker.is_alive()
        np.testing.assert_allclose(traced[0], expected, rtol=1e-6)
        assert holds_no_tracer(model)
        assert model.fc.weight is weight and not isinstance(model.steps, Tracer)
        assert float(model.steps) in (1.0, 2.0)  # each call wrote back its own step


def test_concurrent_first_calls_of_one_function_keep_one_cache_entry():
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal(7) for _ in range(THREADS)]
    for _ in range(ROUNDS):
        def f(x):  # a new function each round: its first calls are concurrent
            return (np.sin(x) * x).sum()

        got = run_together(lambda i: avalon.grad(f, xs[i]))
        for (value, (g,)), x in zip(got, xs):
            assert float(value) == pytest.approx(float((np.sin(x) * x).sum()), rel=1e-12)
            np.testing.assert_allclose(g, np.cos(x) * x + np.sin(x), rtol=1e-12)
        ref = weakref.ref(f)
        assert sum(1 for key in list(cache._entries) if key[0] == ref) == 1


def test_concurrent_random_draws_keep_the_seeded_generator_valid():
    draws = 20
    for _ in range(ROUNDS // 4):
        avalon.manual_seed(7)
        serial = [np.asarray(avalon.randn(64)) for _ in range(THREADS * draws)]
        avalon.manual_seed(7)
        got = run_together(lambda i: [np.asarray(avalon.randn(64)) for _ in range(draws)])
        # each draw takes a whole block from the one stream: the blocks are the serial ones, in some order
        assert sorted(map(bytes, (b for blocks in got for b in blocks))) == sorted(map(bytes, serial))


def test_concurrent_dropout_replays_draw_valid_masks():
    avalon.manual_seed(3)
    model = nn.Sequential(nn.Linear(4, 64), nn.Dropout(0.5))
    x = np.ones((8, 4), np.float32)
    dense = np.asarray(model[0](x))
    for _ in range(ROUNDS // 4):
        avalon.clear_cache()
        outs = run_together(lambda i: [np.asarray(model(x)) for _ in range(5)])
        for out in (o for thread in outs for o in thread):
            kept = out != 0
            np.testing.assert_allclose(out[kept], 2 * dense[kept], rtol=1e-6)
            assert 0.3 < kept.mean() < 0.7
        masks = {bytes(o != 0) for thread in outs for o in thread}
        assert len(masks) == THREADS * 5  # every call drew its own mask


@avalon.register_holder
class Affine:
    """A holder of the default kind (its array attributes): traced through a view, as a Module."""

    def __init__(self, rng):
        self.w = rng.standard_normal((3, 3))
        self.parts = [rng.standard_normal(3)]


class Pair:
    """A holder with its own `assign` and no `view`: bound in place, one trace at a time."""

    def __init__(self, a, b):
        self.a, self.b = a, b


avalon.register_holder(Pair, named_arrays=lambda p: [("a", p.a, "param"), ("b", p.b, "param")],
                       assign=lambda p, values: [setattr(p, k, v) for k, v in values.items()])


def test_holders_of_a_user_class_give_the_serial_results_and_keep_their_arrays():
    rng = np.random.default_rng(4)
    affine, pair = Affine(rng), Pair(rng.standard_normal(3), rng.standard_normal(3))
    w, part, a, b = affine.w, affine.parts[0], pair.a, pair.b
    xs = [rng.standard_normal(3) for _ in range(THREADS)]

    def loss(affine, pair, x):
        return np.tanh(affine.w @ x + affine.parts[0] * pair.a).sum() + (pair.b * x).sum()

    serial = [avalon.grad(loss, affine, pair, x) for x in xs]
    for _ in range(ROUNDS // 2):
        avalon.clear_cache()
        got = run_together(lambda i: avalon.grad(loss, affine, pair, xs[i]))
        for (value, grads), (want, want_grads) in zip(got, serial):
            assert float(value) == float(want)
            np.testing.assert_array_equal(grads[0].w, want_grads[0].w)
            np.testing.assert_array_equal(grads[1].a, want_grads[1].a)
        assert affine.w is w and affine.parts[0] is part and pair.a is a and pair.b is b


class Scaler(Pair):
    """A callable in-place holder a closure uses (adopted at its scope); in the thread named 'tracer'
    it stops while bound, until told to go on."""

    inside, go_on = threading.Event(), threading.Event()

    def __call__(self, x):
        with avalon.tracing.scope(self):
            if threading.current_thread().name == "tracer":
                assert isinstance(self.a, Tracer)
                self.inside.set()
                assert self.go_on.wait(10)
            return np.tanh(x * self.a) + self.b


def test_a_replay_reading_an_in_place_holder_waits_for_the_trace_that_binds_it():
    rng = np.random.default_rng(6)
    scaler = Scaler(rng.standard_normal(3), rng.standard_normal(3))
    a, b, x = scaler.a, scaler.b, rng.standard_normal(3)
    f = lambda x: scaler(x).sum()  # noqa: E731
    want, (want_g,) = avalon.grad(f, x)  # cached: the next calls replay, reading scaler's arrays
    for _ in range(3):
        Scaler.inside.clear(), Scaler.go_on.clear()
        other = lambda x: scaler(x).sum() * 2  # noqa: E731 - a new function: it traces
        tracer = threading.Thread(target=lambda: avalon.grad(other, x), name="tracer")
        replays = []
        replayer = threading.Thread(target=lambda: replays.append(avalon.grad(f, x)))
        tracer.start()
        try:
            assert Scaler.inside.wait(10)
            replayer.start()
            replayer.join(0.2)
            assert replayer.is_alive()  # waiting for the binding to be undone
        finally:
            Scaler.go_on.set()
            tracer.join(10)
            replayer.join(10)
        value, (g,) = replays[0]
        assert float(value) == float(want)
        np.testing.assert_array_equal(g, want_g)
        assert scaler.a is a and scaler.b is b
    assert len(avalon.explain_cache(f).events) == 1  # the waiting calls replayed: f traced once


def test_gradcheck_leaves_the_model_to_other_threads():
    avalon.manual_seed(5)
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
    weight = model[0].weight
    x = np.random.default_rng(5).standard_normal((2, 3))
    seen = []
    done = threading.Event()

    def reader():
        while not done.is_set():
            seen.append(model[0].weight)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert avalon.gradcheck(lambda m, x: m(x).sum(), model, x)
    finally:
        done.set()
        thread.join(10)
    assert seen and all(w is weight for w in seen)  # never the check's float64 copies
    assert model[0].weight is weight and weight.dtype == np.float32


class Noting(nn.Module):
    """A forward that writes: an array attribute (a state output) and a plain one, then may fail."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        self.last = self.fc(x).mean(0)
        self.traced_by = threading.current_thread().name
        if x.shape[0] == 3:
            raise ValueError("three rows")
        return self.last * 2


def test_what_forward_assigns_reaches_the_model_after_the_call_and_a_failure_leaves_no_tracer():
    model = Noting()
    x = np.arange(4, dtype=np.float32).reshape(2, 2)
    for _ in range(3):
        out = model(x)
        expected = (x @ model.fc.weight.T + model.fc.bias).mean(0)
        assert type(model.last) is avalon.Tensor
        np.testing.assert_allclose(model.last, expected, rtol=1e-6)
        np.testing.assert_allclose(out, 2 * expected, rtol=1e-6)
        assert model.traced_by == threading.current_thread().name
    last = model.last
    with pytest.raises(ValueError, match="three rows"):
        model(np.ones((3, 2), np.float32))
    assert model.last is last and holds_no_tracer(model)
    assert model.traced_by == threading.current_thread().name  # Python's own writes happen, as eagerly


class MadeOnFirstCall(nn.Module):
    """Registers a parameter, a buffer and a layer in its first forward (as lazy layers do)."""

    def forward(self, x):
        if "w" not in self._parameters:
            self.w = nn.Parameter(np.ones((x.shape[-1], 2), np.float32))
            self.register_buffer("count", np.zeros((), np.float32))
            self.head = nn.Linear(2, 1)
        self.count = self.count + 1
        return self.head(x @ self.w)


def test_members_registered_by_the_traced_forward_reach_the_model():
    model = MadeOnFirstCall()
    x = np.ones((3, 4), np.float32)
    first = model(x)
    assert list(model.state_dict()) == ["w", "count", "head.weight", "head.bias"]
    assert isinstance(model.w, nn.Parameter) and isinstance(model.head, nn.Linear) and float(model.count) == 1
    np.testing.assert_allclose(first, x @ model.w @ model.head.weight.T + model.head.bias, rtol=1e-6)
    np.testing.assert_allclose(model(x), first, rtol=1e-6)
    assert float(model.count) == 2 and holds_no_tracer(model)


class WeightNormed(nn.Module):
    """torch's weight_norm done by hand: a forward pre-hook sets `weight` from `g` and `v`."""

    def __init__(self, rng):
        super().__init__()
        self.v = nn.Parameter(rng.standard_normal((2, 3)))
        self.g = nn.Parameter(np.array([[2.0], [0.5]]))
        self.register_forward_pre_hook(lambda module, args: module.reweigh())

    def reweigh(self):
        self.weight = self.g * self.v / np.sqrt((self.v * self.v).sum(1, keepdims=True))

    def forward(self, x):
        return x @ self.weight.T


def test_a_hook_that_sets_the_weight_is_traced_on_the_models_view():
    rng = np.random.default_rng(8)
    model, x = WeightNormed(rng), rng.standard_normal((4, 3))
    norms = np.linalg.norm(model.v, axis=1, keepdims=True)
    columns = x.sum(0)  # d(sum of outputs)/d(weight[i, j]) for every row i
    for _ in range(3):  # a trace, then replays
        value, (grads, _) = avalon.grad(lambda m, x: m(x).sum(), model, x)
        np.testing.assert_allclose(value, (x @ (model.g * model.v / norms).T).sum(), rtol=1e-12)
        np.testing.assert_allclose(grads.g[:, 0], (columns * model.v / norms).sum(1), rtol=1e-12)
        np.testing.assert_allclose(model.weight, model.g * model.v / norms, rtol=1e-12)
        assert holds_no_tracer(model)
