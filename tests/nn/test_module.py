"""Module and Parameter: registration, traversal, state_dict, cached calls, gradients, repr."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
from avalon.tracing import record


class Affine(nn.Module):
    """A user-written layer: y = x @ weight.T + bias, with a running mean of its output."""

    def __init__(self, n_in, n_out, bias=True):
        super().__init__()
        self.n_in, self.n_out = n_in, n_out
        self.weight = nn.Parameter(np.random.randn(n_out, n_in).astype(np.float32))
        self.bias = nn.Parameter(np.random.randn(n_out).astype(np.float32)) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.register_buffer("running", np.zeros(n_out, np.float32))
        self.register_buffer("scratch", np.zeros(n_out, np.float32), persistent=False)

    def forward(self, x):
        y = x @ self.weight.T
        if self.bias is not None:
            y = y + self.bias
        if self.training:
            self.running = 0.5 * self.running + 0.5 * y.mean(0)
        return y

    def extra_repr(self):
        return f"n_in={self.n_in}, n_out={self.n_out}"


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = Affine(4, 5)
        self.fc2 = Affine(5, 3, bias=False)
        self.scale = 2.0

    def forward(self, x):
        return self.fc2(np.tanh(self.fc1(x))) * self.scale


def reference(net, x):
    h = np.tanh(x @ net.fc1.weight.T + net.fc1.bias)
    return (h @ net.fc2.weight.T) * net.scale


def test_parameter_assignment_registers_a_parameter_sharing_memory():
    w = np.ones((2, 3), np.float32)
    m = nn.Module()
    m.weight = nn.Parameter(w)
    assert isinstance(m.weight, nn.Parameter) and isinstance(m.weight, avalon.Tensor)
    assert np.shares_memory(m.weight, w) and m.weight.requires_grad
    assert [(n, p is m.weight) for n, p in m.named_parameters()] == [("weight", True)]
    assert type(m.weight * 2) is avalon.Tensor  # arithmetic gives values, not parameters
    replacement = np.zeros((2, 3), np.float32)
    m.weight = replacement  # a plain array replaces the parameter, which stays registered
    assert isinstance(m._parameters["weight"], nn.Parameter) and "weight" not in vars(m)
    assert np.shares_memory(m.weight, replacement)


def test_reregistering_keeps_order_and_moves_names_between_kinds():
    m = Affine(2, 3)
    m.register_parameter("weight", nn.Parameter(np.zeros((3, 2), np.float32)))
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    m.register_buffer("bias", np.zeros(3, np.float32))
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    assert [n for n, _ in m.named_buffers()] == ["running", "scratch", "bias"]
    m.bias = nn.Parameter(np.ones(3, np.float32))
    assert "bias" not in dict(m.named_buffers()) and (m.bias == 1).all()
    with pytest.raises(avalon.AvalonError, match="invalid name"):
        m.register_buffer("a.b", np.zeros(1))


def test_assignment_before_init_is_explained():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(2))

    with pytest.raises(avalon.AvalonError, match="super\\(\\).__init__\\(\\)"):
        Bad()


def test_traversal_names_and_order():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == ["fc1.weight", "fc1.bias", "fc2.weight"]
    assert [n for n, _ in net.named_buffers()] == ["fc1.running", "fc1.scratch", "fc2.running", "fc2.scratch"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "fc2"]
    assert [n for n, _ in net.named_children()] == ["fc1", "fc2"]
    assert list(net.children()) == [net.fc1, net.fc2]
    assert len(list(net.parameters())) == 3 and len(list(net.buffers())) == 4
    assert [n for n, _ in net.named_parameters(prefix="model", recurse=False)] == []
    assert [n for n, _ in net.fc1.named_parameters(prefix="fc1")] == ["fc1.weight", "fc1.bias"]
    assert net.get_submodule("fc2") is net.fc2
    assert {"fc1", "fc2", "forward"} <= set(dir(net)) and {"weight", "running"} <= set(dir(net.fc1))


def test_shared_parameter_is_listed_once_and_gets_the_summed_gradient():
    tied = Net()
    tied.fc1 = Affine(5, 5)
    tied.fc2 = Affine(5, 5, bias=False)
    tied.fc2.weight = tied.fc1.weight
    assert [n for n, _ in tied.named_parameters()] == ["fc1.weight", "fc1.bias"]
    assert list(tied.state_dict())[:3] == ["fc1.weight", "fc1.bias", "fc1.running"]
    assert "fc2.weight" in tied.state_dict()
    x = np.random.randn(3, 5)
    tied.double()
    assert tied.fc2.weight is tied.fc1.weight and tied.fc1.weight.dtype == np.float64
    result = avalon.gradcheck(lambda m, x: m(x).sum(), tied, x)
    assert result, str(result)


def test_state_dict_keys_values_and_round_trip():
    net, other = Net(), Net()
    sd = net.state_dict()
    assert list(sd) == ["fc1.weight", "fc1.bias", "fc1.running", "fc2.weight", "fc2.running"]
    assert sd["fc1.weight"] is net.fc1.weight
    held = other.fc1.weight
    result = other.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert other.fc1.weight is held  # copied in place: optimisers keep valid references
    for key, value in sd.items():
        np.testing.assert_array_equal(other.state_dict()[key], value)


def test_load_state_dict_casts_to_the_model_dtype():
    net = Net()
    sd = {k: v.astype(np.float64) for k, v in net.state_dict().items()}
    other = Net()
    other.load_state_dict(sd)
    assert other.fc1.weight.dtype == np.float32
    np.testing.assert_allclose(other.fc1.weight, net.fc1.weight)


@pytest.mark.parametrize("change, message", [
    (lambda sd: sd.pop("fc1.bias"), "missing keys: fc1.bias"),
    (lambda sd: sd.__setitem__("fc3.weight", np.ones(2)), "unexpected keys: fc3.weight"),
    (lambda sd: sd.__setitem__("fc2.weight", np.ones((3, 4), np.float32)), "size mismatch for fc2.weight"),
])
def test_load_state_dict_errors_change_nothing(change, message):
    source, target = Net(), Net()
    sd = {k: v.copy() for k, v in source.state_dict().items()}
    change(sd)
    before = {k: v.copy() for k, v in target.state_dict().items()}
    with pytest.raises(avalon.AvalonError, match=message) as info:
        target.load_state_dict(sd)
    assert "nothing was changed" in str(info.value)
    for key, value in target.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_load_state_dict_non_strict_reports_keys():
    net = Net()
    sd = dict(net.state_dict())
    sd.pop("fc1.bias")
    sd["extra"] = np.ones(1)
    missing, unexpected = Net().load_state_dict(sd, strict=False)
    assert missing == ["fc1.bias"] and unexpected == ["extra"]


def test_load_torch_state_dict():
    torch = pytest.importorskip("torch")
    net = Net()
    sd = {k: torch.from_numpy(v.copy() + 1) for k, v in net.state_dict().items()}
    net.load_state_dict(sd)
    np.testing.assert_array_equal(net.fc1.bias, sd["fc1.bias"].numpy())


def test_call_on_arrays_traces_once_then_replays_and_updates_buffers():
    avalon.clear_cache()
    net = Net()
    x = np.random.randn(2, 4).astype(np.float32)
    calls = []
    original = Affine.forward

    def counting(self, x):
        calls.append(1)
        return original(self, x)

    Affine.forward = counting
    try:
        first = net(x)
        assert len(calls) == 2
        second = net(x)
        assert len(calls) == 2  # replayed, not traced
        np.testing.assert_allclose(first, reference(net, x), rtol=1e-5)
        np.testing.assert_array_equal(first, second)
        # the running mean is state: every replay writes it back, in place
        running = net.fc1.running
        y1 = x @ net.fc1.weight.T + net.fc1.bias
        np.testing.assert_allclose(running, 0.75 * y1.mean(0), rtol=1e-5)
        net(x)
        assert net.fc1.running is running
        np.testing.assert_allclose(running, 0.875 * y1.mean(0), rtol=1e-5)
        # eval mode is part of the cache key: it traces again and stops updating
        net.eval()
        net(x)
        assert len(calls) == 4
        np.testing.assert_allclose(running, 0.875 * y1.mean(0), rtol=1e-5)
        # so is a plain attribute
        net.scale = 3.0
        np.testing.assert_allclose(net(x), reference(net, x), rtol=1e-5)
        assert len(calls) == 6
    finally:
        Affine.forward = original


def test_grad_of_a_model_mirrors_its_parameters():
    net = Net()
    x = np.random.randn(3, 4).astype(np.float32)
    loss, grads = avalon.grad(lambda m, x: (m(x) ** 2).mean(), net, x)
    g = grads[0]
    assert list(g.keys()) == ["fc1.weight", "fc1.bias", "fc2.weight"]
    assert g.fc1.weight.shape == (5, 4) and g["fc2.weight"].shape == (3, 5)
    assert g.of(net.fc1.bias) is g.fc1.bias
    assert grads[1].shape == x.shape
    np.testing.assert_allclose(loss, (reference(net, x) ** 2).mean(), rtol=1e-5)


def test_gradcheck_through_a_model():
    net = Net().double()
    x = np.random.randn(3, 4)
    result = avalon.gradcheck(lambda m, x: (m(x) ** 2).sum(), net, x)
    assert result, str(result)


def test_frozen_parameter_gets_no_gradient_but_is_saved():
    m = Affine(3, 2)
    m.weight = nn.Parameter(m.weight, requires_grad=False)
    _, grads = avalon.grad(lambda m, x: m(x).sum(), m, np.ones((1, 3), np.float32))
    assert list(grads[0].keys()) == ["bias"]
    assert "weight" in m.state_dict() and len(list(m.parameters())) == 2


def test_module_scopes_and_parameter_names_on_the_tape():
    net = Net()
    tape = record(lambda m, x: m(x).sum(), (net, np.ones((1, 4), np.float32))).tape
    names = [n.name for n in tape.inputs]
    assert names[:3] == ["fc1.weight", "fc1.bias", "fc2.weight"]
    scopes = {n.scope for n in tape.calls}
    assert {"fc1", "fc2"} <= scopes


def test_train_eval_apply_and_to():
    net = Net()
    assert net.eval() is net and not net.fc1.training
    net.train()
    assert all(m.training for m in net.modules())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Affine", "Affine", "Net"]
    net.to(np.float64)
    assert net.fc1.weight.dtype == np.float64 and net.fc1.running.dtype == np.float64
    with pytest.raises(avalon.AvalonError):
        net.train("yes")


def test_repr_like_pytorch():
    assert repr(Net()) == (
        "Net(\n"
        "  (fc1): Affine(n_in=4, n_out=5)\n"
        "  (fc2): Affine(n_in=5, n_out=3)\n"
        ")")
    outer = nn.Module()
    outer.inner = Net()
    assert repr(outer) == (
        "Module(\n"
        "  (inner): Net(\n"
        "    (fc1): Affine(n_in=4, n_out=5)\n"
        "    (fc2): Affine(n_in=5, n_out=3)\n"
        "  )\n"
        ")")


def test_shape_error_names_layer_shapes_and_user_line():
    layer = Affine(4, 3)

    def check(x):
        if x.shape[-1] != layer.n_in:
            raise nn.module.shape_error(layer, "(*, 4)", x.shape)

    with pytest.raises(avalon.ShapeError) as info:
        check(np.ones((2, 5)))  # the line the error must point at
    message = str(info.value)
    assert "Affine(n_in=4, n_out=3) expected input of shape (*, 4), got (2, 5)" in message
    assert "test_module.py" in message and "check(np.ones((2, 5)))" not in message
    assert "raise nn.module.shape_error" in message


def test_torch_module_conveniences():
    torch = pytest.importorskip("torch")

    def build(nn):
        return nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))

    ours, theirs = build(nn), build(torch.nn)
    for model in (ours, theirs):
        assert model.requires_grad_(False) is model
        model[2].requires_grad_(True)
        assert model.zero_grad() is None and model.share_memory() is model
        model.set_submodule("1", type(model[1]).__mro__[0]())
    assert [p.requires_grad for p in ours.parameters()] == [p.requires_grad for p in theirs.parameters()]
    assert ours.get_parameter("0.weight") is ours[0].weight
    with pytest.raises(avalon.AvalonError, match="no parameter 'nope'"):
        ours.get_parameter("0.nope")
    _, grads = avalon.grad(lambda m, x: m(x).sum(), ours, np.ones((4, 2), np.float32))
    assert list(grads[0].keys()) == ["2.weight", "2.bias"]  # what torch's backward fills
    assert ours.half()[0].weight.dtype == np.float16 and isinstance(ours[0].weight, nn.Parameter)
    assert not ours[0].weight.requires_grad  # casting keeps a frozen parameter frozen
    assert avalon.compile(ours) is ours and avalon.compile()(ours) is ours  # torch.compile's stand-in


def test_arrays_kept_in_plain_attributes_are_state():
    """word_language_model's pattern: a mask made in forward, kept in a plain attribute and reused;
    and an attribute a forward stores for inspection, updated at every call."""
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.mask = None

        def forward(self, x):
            if self.mask is None or self.mask.size(0) != x.shape[0]:
                self.mask = avalon.triu(avalon.ones(x.shape[0], x.shape[0]))
            out = self.mask @ self.fc(x)
            self.last = out.detach()
            return out

    model = Masked()
    for n in (4, 4, 4, 5, 5):
        x = np.random.default_rng(n).standard_normal((n, 3)).astype(np.float32)
        out = model(x)
        expected = np.triu(np.ones((n, n))) @ (x @ np.asarray(model.fc.weight).T + model.fc.bias)
        np.testing.assert_allclose(out, expected, rtol=1e-5)
        assert type(model.mask) is avalon.Tensor and model.mask.shape == (n, n)
        np.testing.assert_allclose(model.last, out)  # this call's value, replays included
        assert type(model.last) is avalon.Tensor
    _, grads = avalon.grad(lambda m, x: m(x).sum(), model, x)
    assert sorted(grads[0].keys()) == ["fc.bias", "fc.weight"]  # attributes get no gradient
    assert "mask" not in model.state_dict()


def test_torch_nn_parallel_and_parameter_modules():
    torch = pytest.importorskip("torch")
    from avalon.nn.parameter import Parameter

    assert Parameter is nn.Parameter
    inner = nn.Linear(3, 2)
    wrapped = nn.DataParallel(inner)
    theirs = torch.nn.DataParallel(torch.nn.Linear(3, 2))
    assert list(wrapped.state_dict()) == list(theirs.state_dict()) == ["module.weight", "module.bias"]
    x = np.ones((4, 3), np.float32)
    np.testing.assert_allclose(wrapped(x), inner(x))
    np.testing.assert_allclose(nn.parallel.data_parallel(inner, x, range(2)), inner(x))
    wrapped.load_state_dict(theirs.state_dict())
    np.testing.assert_allclose(wrapped(x), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-6)


def test_to_where_nothing_changes_keeps_the_very_parameters():
    """`model.to(device)` after building the optimiser is common in ported scripts: a move or cast
    that changes nothing must leave the objects the optimiser holds in place, as torch does."""
    model = nn.Linear(2, 2)
    weight, bias = model.weight, model.bias
    for call in (lambda: model.to("cpu"), lambda: model.to(avalon.device("cpu")), model.float,
                 lambda: model.to(np.float32), model.cpu):
        call()
        assert model.weight is weight and model.bias is bias
    model.double()
    assert model.weight is not weight and model.weight.dtype == np.float64
    assert isinstance(model.weight, nn.Parameter)


def test_a_tensor_given_as_a_parameter_is_trainable_as_in_torch():
    """A plain Tensor (whose own requires_grad is False, as torch's) registered or assigned as a
    parameter becomes a trainable Parameter, as torch's Parameter(t) does."""
    model = nn.Linear(2, 2)
    model.weight = avalon.zeros(2, 2)
    model.register_parameter("extra", avalon.randn(3))
    listed = nn.ParameterList([avalon.ones(2)])
    for p in (model.weight, model.extra, listed[0]):
        assert isinstance(p, nn.Parameter) and p.requires_grad
    _, grads = avalon.grad(lambda m, x: (m(x).sum() + m.extra.sum()), model, np.ones((1, 2), np.float32))
    assert sorted(grads[0].keys()) == ["bias", "extra", "weight"]
