"""Module hooks against PyTorch: the same model with the same hooks in both libraries, called three
times on different inputs (the first call traces, the next two replay compiled code)."""
import warnings

import numpy as np
import pytest

import avalon
import avalon.nn as nn
from avalon.nn.module import _static
from avalon.tracing.callbacks import HookError

torch = pytest.importorskip("torch")

CALLS = 3
TOL = dict(rtol=1e-5, atol=1e-5)


def build(nn):
    """A small MLP written once for both libraries."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 6)
            self.act = nn.Tanh()
            self.fc2 = nn.Linear(6, 3)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    return Net()


def pair():
    """(avalon model, torch model) with the same weights."""
    theirs = build(torch.nn)
    ours = build(nn)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def inputs(n=CALLS, shape=(5, 4)):
    rng = np.random.default_rng(1)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]


def t(x, grad=False):
    return torch.from_numpy(np.array(x)).requires_grad_(grad)


def close(ours, theirs):
    np.testing.assert_allclose(np.asarray(ours), theirs.detach().numpy(), **TOL)


def loss_fn(model, x):
    return (model(x) ** 2).sum()


def torch_grads(model, x, grad_x=False):
    model.zero_grad()
    x = t(x, grad_x)
    (model(x) ** 2).sum().backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}, x.grad


def assert_same_grads(ours, theirs):
    assert list(ours.keys()) == list(theirs)
    for name, g in theirs.items():
        close(ours[name], g)


# forward hooks


def test_forward_hook_sees_each_calls_activation_traced_and_replayed():
    ours, theirs = pair()
    seen, their_seen = [], []
    ours.fc1.register_forward_hook(lambda m, args, out: seen.append((m, args, out.detach())))
    theirs.fc1.register_forward_hook(lambda m, args, out: their_seen.append((m, args, out.detach())))
    for i, x in enumerate(inputs()):
        close(ours(x), theirs(t(x)))
        assert len(seen) == len(their_seen) == i + 1  # once per call, replays included
        (module, args, out), (_, their_args, their_out) = seen[-1], their_seen[-1]
        assert module is ours.fc1
        assert isinstance(args, tuple) and len(args) == len(their_args) == 1
        assert isinstance(out, avalon.Tensor) and isinstance(args[0], avalon.Tensor)
        close(args[0], their_args[0])
        close(out, their_out)
    assert not np.allclose(seen[0][2], seen[1][2])  # each call's own values, not the traced ones


def test_stored_activations_are_not_overwritten_by_later_calls():
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4))
    acts = []
    model[1].register_forward_hook(lambda m, args, out: acts.append(out.detach()))
    xs = inputs()
    for x in xs:  # the replay writes later layers into dead buffers, but never into one a hook was given
        model(x)
    for x, act in zip(xs, acts):
        np.testing.assert_allclose(act, np.tanh(x @ model[0].weight.T + model[0].bias), **TOL)


def test_forward_hook_returning_an_output_changes_values_and_gradients():
    ours, theirs = pair()
    ours.act.register_forward_hook(lambda m, args, out: out * 2 + 1)
    theirs.act.register_forward_hook(lambda m, args, out: out * 2 + 1)
    for x in inputs():
        close(ours(x), theirs(t(x)))
        _, grads = avalon.grad(loss_fn, ours, x)
        expected, _ = torch_grads(theirs, x)
        assert_same_grads(grads[0], expected)


class Scale(nn.Module):
    """A layer with a keyword argument."""

    def forward(self, x, factor=1.0):
        return x * factor


def test_forward_hook_with_kwargs_sees_keyword_arguments():
    seen = []
    model = Scale()
    model.register_forward_hook(lambda m, args, kwargs, out: seen.append((kwargs, out)), with_kwargs=True)
    for x in inputs():
        model(x, factor=3.0)
        assert seen[-1][0] == {"factor": 3.0}
        np.testing.assert_allclose(seen[-1][1], 3 * x)
    assert len(seen) == CALLS


def test_forward_pre_hook_returning_inputs_changes_values_and_gradients():
    ours, theirs = pair()
    ours.fc2.register_forward_pre_hook(lambda m, args: args[0] * 0.5)
    theirs.fc2.register_forward_pre_hook(lambda m, args: args[0] * 0.5)
    calls = []
    ours.register_forward_pre_hook(lambda m, args: calls.append(args[0].copy()))
    for x in inputs():
        close(ours(x), theirs(t(x)))
        np.testing.assert_array_equal(calls[-1], x)
        _, grads = avalon.grad(loss_fn, ours, x)
        expected, _ = torch_grads(theirs, x)
        assert_same_grads(grads[0], expected)


def test_forward_pre_hook_with_kwargs_replaces_args_and_kwargs():
    model = Scale()
    model.register_forward_pre_hook(lambda m, args, kwargs: ((args[0] + 1,), {"factor": 2.0}),
                                    with_kwargs=True)
    for x in inputs():
        np.testing.assert_allclose(model(x, factor=5.0), (x + 1) * 2.0, rtol=1e-6)


def test_hooks_run_in_torchs_order_prepend_included():
    ours, theirs = pair()
    order, their_order = [], []
    for model, log in ((ours, order), (theirs, their_order)):
        model.fc1.register_forward_hook(lambda m, a, o, log=log: log.append("hook"))
        model.fc1.register_forward_hook(lambda m, a, o, log=log: log.append("first"), prepend=True)
        model.fc1.register_forward_pre_hook(lambda m, a, log=log: log.append("pre"))
        model.fc1.register_forward_pre_hook(lambda m, a, log=log: log.append("pre first"), prepend=True)
    for x in inputs():
        ours(x)
        theirs(t(x))
    assert order == their_order == ["pre first", "pre", "first", "hook"] * CALLS


def test_always_call_hook_runs_when_forward_fails():
    def build_failing(nn):
        class Failing(nn.Module):
            def forward(self, x):
                raise ValueError("broken layer")
        return Failing()

    for model in (build_failing(nn), build_failing(torch.nn)):
        seen = []
        model.register_forward_hook(lambda m, args, out: seen.append(("always", out)), always_call=True)
        model.register_forward_hook(lambda m, args, out: seen.append(("normal", out)))
        x = inputs(1)[0]
        with pytest.raises(ValueError, match="broken layer"):
            model(x if isinstance(model, nn.Module) else t(x))
        assert seen == [("always", None)]


# removal and the compile cache


def test_remove_stops_the_calls_and_the_module_keys_as_before():
    ours, _ = pair()
    key = _static(ours)
    seen = []
    handle = ours.fc1.register_forward_hook(lambda m, args, out: seen.append(1))
    assert _static(ours) != key  # registering retraces
    xs = inputs()
    ours(xs[0])
    ours(xs[1])
    handle.remove()
    handle.remove()  # a second removal does nothing
    ours(xs[2])
    assert seen == [1, 1]
    assert "_hooks" not in vars(ours.fc1) and _static(ours) == key


def test_registering_on_a_submodule_of_an_already_cached_model_retraces():
    ours, _ = pair()
    x = inputs(1)[0]
    before = np.asarray(ours(x)).copy()
    ours.fc2.register_forward_hook(lambda m, args, out: out + 100)
    np.testing.assert_allclose(ours(x), before + 100, rtol=1e-6)


def test_handle_as_context_manager():
    ours, _ = pair()
    seen = []
    with ours.fc2.register_forward_hook(lambda m, args, out: seen.append(out)):
        ours(inputs(1)[0])
    ours(inputs(1)[0])
    assert len(seen) == 1


def test_two_instances_with_hooks_each_call_their_own():
    first, second = build(nn), build(nn)
    second.load_state_dict(first.state_dict())
    seen = []
    for model in (first, second):
        model.fc1.register_forward_hook(lambda m, args, out: seen.append(m))
    x = inputs(1)[0]
    first(x), second(x), first(x), second(x)
    assert seen == [first.fc1, second.fc1, first.fc1, second.fc1]


# backward hooks


def test_full_backward_hook_sees_grad_input_and_grad_output_per_call():
    ours, theirs = pair()
    seen, their_seen = [], []
    ours.fc2.register_full_backward_hook(lambda m, gi, go: seen.append((m, gi, go)))
    theirs.fc2.register_full_backward_hook(lambda m, gi, go: their_seen.append((m, gi, go)))
    for i, x in enumerate(inputs()):
        _, grads = avalon.grad(loss_fn, ours, x)
        expected, their_x_grad = torch_grads(theirs, x, grad_x=True)
        assert_same_grads(grads[0], expected)
        close(grads[1], their_x_grad)
        assert len(seen) == len(their_seen) == i + 1
        (module, gi, go), (_, their_gi, their_go) = seen[-1], their_seen[-1]
        assert module is ours.fc2 and len(gi) == len(their_gi) == 1 and len(go) == len(their_go) == 1
        close(gi[0], their_gi[0])
        close(go[0], their_go[0])


def test_full_backward_hook_on_a_first_layer_whose_input_gets_no_gradient():
    ours, theirs = pair()
    seen, their_seen = [], []
    ours.fc1.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go)))
    theirs.fc1.register_full_backward_hook(lambda m, gi, go: their_seen.append((gi, go)))
    for x in inputs():
        avalon.grad(loss_fn, ours, x, argnums=0)  # the input is not differentiated, as in torch
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch says the hook fires for the outputs only
            torch_grads(theirs, x)
        (gi, go), (their_gi, their_go) = seen[-1], their_seen[-1]
        assert gi == their_gi == (None,)
        close(go[0], their_go[0])
    assert len(seen) == len(their_seen) == CALLS


def test_full_backward_hook_returning_grad_input_changes_upstream_gradients():
    ours, theirs = pair()
    ours.act.register_full_backward_hook(lambda m, gi, go: (gi[0] * 3,))
    theirs.act.register_full_backward_hook(lambda m, gi, go: (gi[0] * 3,))
    for x in inputs():
        _, grads = avalon.grad(loss_fn, ours, x)
        expected, their_x_grad = torch_grads(theirs, x, grad_x=True)
        assert_same_grads(grads[0], expected)
        close(grads[1], their_x_grad)


def test_full_backward_pre_hook_replaces_grad_output():
    ours, theirs = pair()
    seen, their_seen = [], []
    for model, log in ((ours, seen), (theirs, their_seen)):
        model.fc2.register_full_backward_pre_hook(lambda m, go: (go[0] * -2,))
        model.fc2.register_full_backward_hook(lambda m, gi, go, log=log: log.append(go[0]))
    for x in inputs():
        _, grads = avalon.grad(loss_fn, ours, x)
        expected, _ = torch_grads(theirs, x, grad_x=True)
        assert_same_grads(grads[0], expected)
        close(seen[-1], their_seen[-1])
    assert len(seen) == CALLS


def test_backward_hook_on_a_module_whose_input_is_used_elsewhere_too():
    def build_residual(nn):
        class Residual(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def forward(self, x):
                return self.fc(x) + x  # x also flows around fc: fc's grad_input is its own part alone
        return Residual()

    ours, theirs = build_residual(nn), build_residual(torch.nn)
    ours.load_state_dict(theirs.state_dict())
    seen, their_seen = [], []
    ours.fc.register_full_backward_hook(lambda m, gi, go: seen.append(gi[0]))
    theirs.fc.register_full_backward_hook(lambda m, gi, go: their_seen.append(gi[0]))
    for x in inputs(shape=(2, 4)):
        avalon.grad(loss_fn, ours, x)
        torch_grads(theirs, x, grad_x=True)
        close(seen[-1], their_seen[-1])


def test_backward_hook_returning_the_wrong_number_of_gradients_is_refused():
    ours, _ = pair()
    ours.fc2.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    with pytest.raises(HookError, match="returned 2 gradients for 1"):
        avalon.grad(loss_fn, ours, inputs(1)[0])


def test_pre_hook_with_kwargs_returning_something_else_is_refused():
    ours, _ = pair()
    ours.register_forward_pre_hook(lambda m, args, kwargs: args, with_kwargs=True)
    with pytest.raises(HookError, match=r"return None, or a tuple \(new_args, new_kwargs\)"):
        ours(inputs(1)[0])


# gradient hooks on traced values inside forward (Grad-CAM)


def build_gradcam(nn):
    class GradCam(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Linear(4, 6)
            self.head = nn.Linear(6, 3)
            self.gradients = []

        def save_gradient(self, grad):
            self.gradients.append(grad.detach().clone())

        def forward(self, x):
            feats = self.features(x).relu()
            feats.register_hook(self.save_gradient)
            return self.head(feats)

    return GradCam()


def test_gradcam_register_hook_stores_each_calls_gradient():
    ours, theirs = build_gradcam(nn), build_gradcam(torch.nn)
    ours.load_state_dict(theirs.state_dict())
    for i, x in enumerate(inputs()):
        _, grads = avalon.grad(lambda m, x: (m(x)[:, 1] ** 2).sum(), ours, x)
        theirs.zero_grad()
        (theirs(t(x))[:, 1] ** 2).sum().backward()
        assert len(ours.gradients) == len(theirs.gradients) == i + 1
        close(ours.gradients[-1], theirs.gradients[-1])
        close(grads[0].features.weight, theirs.features.weight.grad)
    assert not np.allclose(ours.gradients[0], ours.gradients[1])


def test_gradient_hook_registered_from_a_forward_hook_per_call():
    """pytorch-grad-cam's pattern: a forward hook on a layer registers a gradient hook on its output."""
    def attach(model, store):
        def save_gradient(grad):
            store.append(grad.detach().clone())

        def on_output(module, args, output):
            output.register_hook(save_gradient)

        return model.fc1.register_forward_hook(on_output)

    ours, theirs = pair()
    stored, expected = [], []
    attach(ours, stored), attach(theirs, expected)
    for i, x in enumerate(inputs()):
        avalon.grad(loss_fn, ours, x)
        torch_grads(theirs, x)
        assert len(stored) == len(expected) == i + 1
        close(stored[-1], expected[-1])


def test_what_a_hook_stores_is_values_for_the_user_and_traced_for_forward():
    """A hook appends its layer's output; forward uses what was stored (the intermediate-features
    recipe), so it carries gradients; after each call the user finds that call's values, also as numpy."""
    def build_wrapper(nn, torch):
        class Features(nn.Module):
            def __init__(self, model):
                super().__init__()
                self.model, self.kept, self.as_numpy = model, [], []
                model.fc1.register_forward_hook(self.keep)

            def keep(self, module, args, output):
                self.kept.append(output.clone())
                self.as_numpy.append(output.detach().cpu().numpy())

            def forward(self, x):
                self.kept.clear()
                out = self.model(x)
                return out.sum() + (self.kept[-1] ** 2).mean()

        return Features

    ours_model, theirs_model = pair()
    ours = build_wrapper(nn, avalon)(ours_model)
    theirs = build_wrapper(torch.nn, torch)(theirs_model)
    def run(model, x):
        return model(x)

    for i, x in enumerate(inputs()):  # traced, then replayed (where forward's Python, clear(), does not run)
        loss, grads = avalon.grad(run, ours, x)
        theirs.zero_grad()
        expected = theirs(t(x))
        expected.backward()
        close(loss, expected)
        assert_same_grads(grads[0], {n: p.grad for n, p in theirs.named_parameters()})
        assert isinstance(ours.kept[-1], avalon.Tensor)
        close(ours.kept[-1], theirs.kept[-1])
        assert type(ours.as_numpy[-1]) is np.ndarray and len(ours.as_numpy) == i + 1
        np.testing.assert_allclose(ours.as_numpy[-1], theirs.as_numpy[-1], **TOL)
