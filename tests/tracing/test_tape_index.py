"""Tracers answer `requires_grad` and whether an in-place write is exact from an index of the tape
kept up to date as it grows (tracer._TapeIndex): the answers are those of reading the whole tape
afresh, however the questions and the recording interleave."""
import numpy as np
import pytest

import avalon
from avalon import nn
from avalon.backend import is_inexact
from avalon.tape import Call, Input


def requires_grad_read_afresh(trace, node):
    """The definition, read from the whole tape at once."""
    requiring = set()
    for n in trace.tape.nodes:
        if isinstance(n, Input) and n.role == "param":
            requiring.add(n)
        elif isinstance(n, Call) and n.prim.differentiable and n not in trace.no_grad and \
                is_inexact(n.dtype) and any(a in requiring for a in n.inputs):
            requiring.add(n)
    return node in requiring


def test_answers_while_the_tape_grows_are_those_of_reading_it_afresh():
    avalon.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(5, 5), nn.Tanh())])
    asked = []

    def f(model, x):
        h = x
        for layer in model:
            h = layer(h)
            for t in (h, x, h * 2, (x * 3).sum()):
                asked.append((t.requires_grad, requires_grad_read_afresh(t._trace, t._node)))
            with avalon.no_grad():
                quiet = layer(h) if isinstance(layer, nn.Linear) else h + 1
            asked.append((quiet.requires_grad, requires_grad_read_afresh(quiet._trace, quiet._node)))
        return h.sum()

    avalon.grad(f, model, np.ones((2, 5), np.float32))
    assert len(asked) == 8 * 5
    assert all(ours == afresh for ours, afresh in asked)
    assert {ours for ours, _ in asked} == {True, False}


def test_a_gradient_cut_after_it_was_recorded_no_longer_requires_one():
    """Inside a gradient taken under no_grad, values require gradients (torch.func's grad ignores
    the outer no_grad); its results are then cut from differentiation, after they were recorded."""
    avalon.manual_seed(0)
    model = nn.Linear(3, 3)
    asked = {}

    def inner(model, x):
        out = model(x).sum()
        asked["inside"] = out.requires_grad
        return out

    def f(model, x):
        with avalon.no_grad():
            value, (g, _) = avalon.grad(inner, model, x)
        asked["value"] = value.requires_grad
        asked["gradient"] = g.weight.requires_grad
        asked["derived"] = (g.weight * 2).requires_grad
        return model(x).sum() + (g.weight * 0).sum()

    avalon.grad(f, model, np.ones((2, 3), np.float32))
    assert asked == {"inside": True, "value": False, "gradient": False, "derived": False}


def test_a_write_into_a_buffer_in_a_loop_is_refused_while_a_view_of_it_lives():
    def decode(x, keep_view):
        out = avalon.zeros(4, 3)
        kept = []
        for t in range(4):
            out[t] = x[t] * 2
            if keep_view and t == 1:
                kept.append(out[0])  # a live view: later writes would change it too
        return out.sum()

    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    value, (g,) = avalon.grad(lambda x: decode(x, False), x)
    np.testing.assert_allclose(g, np.full((4, 3), 2.0))
    with pytest.raises(avalon.UnsupportedConstruct, match="shares memory"):
        avalon.grad(lambda x: decode(x, True), x)
