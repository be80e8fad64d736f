"""What a rule reads is read from its code (`avalon.tracing.release.reads`), and the forward pass of
a cached gradient's first call drops the values no tracer stands for and no rule reads."""
import numpy as np
import pytest

import avalon
from avalon import nn
from avalon.ops import PRIMITIVES
from avalon.ops.primitive import Primitive
from avalon.tracing import Trace, record, release


def primitive_with(rule):
    prim = Primitive.__new__(Primitive)  # not registered: PRIMITIVES stays as it is
    prim.vjp = rule
    return prim


def reading_out_through_a_closure(g, out, x):
    return (g * np.asarray(1.0, np.float32) * (lambda: out)(),)


def reading_everything(g, out, x, y):
    names = locals()
    return names["g"], names["g"]


@pytest.mark.parametrize("rule, expected", [
    (lambda g, out, a, b: (g, g), (False, frozenset())),
    (lambda g, out, a, b: (g * b, g * a), (False, frozenset({0, 1}))),
    (lambda g, out, x: (g * (1 - out * out),), (True, frozenset())),
    (reading_out_through_a_closure, (True, frozenset())),
    (reading_everything, (True, None)),
    (lambda g, out, *operands: tuple(g for _ in operands), (True, None)),
    (lambda g, out, x, y: (np.broadcast_to(g, x.shape).astype(x.dtype), g * x.ndim * y), (False, frozenset({1}))),
])
def test_what_a_rule_reads_is_what_its_code_loads(rule, expected):
    assert release.reads(primitive_with(rule)) == expected


def test_built_in_rules_as_read():
    assert release.reads(PRIMITIVES["add"]) == (False, frozenset())
    assert release.reads(PRIMITIVES["matmul"]) == (False, frozenset({0, 1}))
    assert release.reads(PRIMITIVES["tanh"])[0] is True
    # relu's mask is taken from its result (positive exactly where its input is), so a pre-activation
    # (a convolution's, a batch norm's) need not be kept for it: ResNet-ish's step holds 9 fewer
    assert release.reads(PRIMITIVES["relu"]) == (True, frozenset())
    no_rule = primitive_with(None)
    assert release.reads(no_rule) == (False, frozenset())


def test_einsums_rule_says_what_it_reads_of_a_call():
    """Each operand's gradient reads the other operands: a lone operand (a mean) is read by no one."""
    class Call:
        def __init__(self, *args):
            self.args = args

    einsum = PRIMITIVES["einsum"]
    assert release.reads(einsum, Call("x")) == (False, frozenset())
    assert release.reads(einsum, Call("x", "y")) == (False, frozenset({0, 1}))
    assert release.reads(einsum) == (True, None)  # without a call, only its code: it takes *operands


def mlp_loss(model, x):
    return (model(x) ** 2).mean()


def recorded(model, x, sweeping, kept=None):
    trace = Trace()
    if sweeping:
        release.release_values(trace)

    def f(model, x):
        h = x
        for layer in model:
            h = layer(h)
            if kept is not None:
                kept.append(h)  # the traced code holds every layer's output
        return (h ** 2).mean()

    recording = record(f, (model, x), trace=trace)
    release.sweep(trace)
    return recording


def test_values_no_rule_reads_go_and_those_code_holds_stay(monkeypatch, rng):
    monkeypatch.setattr(release, "_EVERY", 1)
    avalon.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(6) for m in (nn.Linear(8, 8), nn.Tanh())])
    x = rng.standard_normal((4, 8)).astype(np.float32)
    swept = recorded(model, x, sweeping=True).tape
    calls = [n for n in swept.nodes if n.kind == "call"]
    dropped = {n.prim.name for n in calls if n.value is None}
    kept_values = {n.prim.name for n in calls if n.value is not None}
    # matmul and add results are read by no rule (tanh's reads its own output, matmul its operands)
    assert {"matmul", "add"} <= dropped and "tanh" in kept_values
    assert all(n.value is not None for n in calls if n.prim.name == "tanh")

    held = []
    swept_but_held = recorded(model, x, sweeping=True, kept=held).tape
    held_nodes = {t._node for t in held}
    assert all(n.value is not None for n in held_nodes)
    plain = recorded(model, x, sweeping=False).tape
    assert all(n.value is not None for n in plain.nodes)
    assert len(swept_but_held.nodes) == len(plain.nodes)


def test_values_code_keeps_for_long_are_looked_at_a_few_times_each(monkeypatch, rng):
    """Sweeping after every tracer, a trace whose code keeps every layer's output until it returns
    looks at each kept call about log(n) times, not once per sweep (which would be quadratic), and
    once the code lets go of them, what goes is what goes when nothing is kept."""
    from avalon.tracing import tracer

    monkeypatch.setattr(release, "_EVERY", 1)
    looks = []
    is_held = tracer.is_held
    monkeypatch.setattr(tracer, "is_held", lambda trace, node: looks.append(node) or is_held(trace, node))
    avalon.manual_seed(0)
    model = nn.ModuleList([nn.Linear(4, 4) for _ in range(60)])
    x = np.ones((2, 4), np.float32)

    def dropped_when(keeping):
        def f(model, x):
            h, kept = x, []
            for layer in model:
                h = h + np.tanh(layer(h))
                if keeping:
                    kept.append(h)
            kept.clear()
            return (h ** 2).mean()

        trace = Trace()
        release.release_values(trace)
        tape = record(f, (model, x), trace=trace).tape
        release.sweep(trace)
        return [i for i, n in enumerate(tape.nodes) if n.kind == "call" and n.value is None], tape

    dropped_kept, tape = dropped_when(keeping=True)
    calls = sum(n.kind == "call" for n in tape.nodes)
    assert len(looks) < 12 * calls, (len(looks), calls)  # once per sweep would be ~calls² / 2
    assert dropped_kept == dropped_when(keeping=False)[0] != []
