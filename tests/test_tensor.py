"""avalon.Tensor against torch.Tensor: factories, methods, in-place methods, torch's attributes, the
boundary with numpy and with torch, and what the tape keeps (plain arrays)."""
import copy

import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F

torch = pytest.importorskip("torch")

X = np.array([[0.5, -1.25, 2.0, 0.75], [-0.3, 1.5, -2.2, 0.1], [1.1, 0.2, -0.4, -0.9]], np.float32)
IDX = np.array([[0, 2], [1, 3], [3, 0]], np.int64)


def _numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    if isinstance(value, (tuple, list)):
        return [_numpy(v) for v in value]
    return value


def both(expression, **extra):
    """`expression` evaluated on an avalon Tensor and on a torch tensor holding the same values."""
    ours = eval(expression, {"T": avalon, "np": np, "x": avalon.tensor(X), "idx": avalon.tensor(IDX),
                             **{k: avalon.tensor(v) for k, v in extra.items()}})
    theirs = eval(expression, {"T": torch, "np": np, "x": torch.tensor(X), "idx": torch.tensor(IDX),
                               **{k: torch.tensor(v) for k, v in extra.items()}})
    return ours, theirs


def assert_same(ours, theirs):
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, avalon.Tensor), f"got {type(ours).__name__}, not a Tensor"
        assert ours.shape == tuple(theirs.shape)
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=1e-6, atol=1e-6)
    elif isinstance(theirs, (tuple, list)):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same(a, b)
    else:
        assert ours == theirs


FACTORIES = [
    "T.zeros(2, 3)", "T.zeros((2, 3), dtype=T.int64)", "T.ones(4)", "T.full((2, 2), 7)", "T.full((2,), 1.5)",
    "T.full((2,), True)", "T.arange(5)", "T.arange(0, 1, 0.25)", "T.linspace(0, 1, 5)", "T.eye(3)",
    "T.tensor([1, 2])", "T.tensor([1.0, 2.0])", "T.tensor(np.arange(3.0))", "T.tensor(3.5)",
    "T.zeros_like(x)", "T.ones_like(idx)", "T.full_like(x, 2.0)", "T.empty(2, 3).shape",
    "T.as_tensor(np.ones(2, np.float32))", "T.from_numpy(np.ones(2, np.int32))",
    "T.randn(3, 2).shape", "T.rand(2).dtype == T.float32", "T.randint(10, (4,)).dtype == T.int64",
    "T.randint(3, 10, (4,)).shape", "T.randperm(6).shape", "T.Tensor(2, 3).shape", "T.Tensor([1, 2])",
    "T.LongTensor([1, 2])", "T.FloatTensor([[1], [2]])",
]


@pytest.mark.parametrize("expression", FACTORIES)
def test_factories_match_torch(expression):
    assert_same(*both(expression))


def test_randint_ranges_follow_torch():
    avalon.manual_seed(0)
    high_only = avalon.randint(5, (2000,))
    low_high = avalon.randint(3, 5, (2000,))
    assert set(np.unique(high_only)) == {0, 1, 2, 3, 4} and set(np.unique(low_high)) == {3, 4}
    assert sorted(np.asarray(avalon.randperm(7))) == list(range(7))


METHODS = [
    "x.view(2, -1)", "x.view(-1)", "x.view((4, 3))", "x.unsqueeze(0)", "x.unsqueeze(-1).squeeze(-1)",
    "x.permute(1, 0)", "x.transpose(0, 1)", "x.t()", "x.flatten()", "x.reshape(2, 6)", "x.contiguous()",
    "x.sum(1, keepdim=True)", "x.sum(dim=0)", "x.mean()", "x.mean(-1)", "x.std()", "x.var(0)", "x.std(1, keepdim=True)",
    "x.max()", "x.max(1)", "x.min(dim=0)", "x.argmax(1)", "x.argmin()", "x.amax(1)", "x.prod(0)", "x.cumsum(1)",
    "x.float()", "x.double()", "x.long()", "x.int()", "x.bool()", "x.half()", "(x > 0).float().mean()",
    "x.to(T.float64)", "x.type_as(idx)", "x.abs()", "x.exp()", "x.abs().sqrt()", "x.pow(2)", "x.clamp(-0.5, 0.5)",
    "x.clamp(min=0)", "x.sigmoid()", "x.tanh()", "x.relu()", "x.neg()", "x.sign()", "x.softmax(-1)",
    "x.log_softmax(1)", "x.masked_fill(x > 0, 0.0)", "x.tril()", "x.triu(1)", "x.gather(1, idx)",
    "x.index_select(1, idx[0])", "x.narrow(1, 1, 2)", "x.chunk(2, 1)", "x.split(1, 0)", "x.unbind(1)",
    "x.repeat(2, 1)", "x.expand(2, 3, 4)", "x[0].expand_as(x)", "x.flip(0)", "x.norm()", "x.matmul(x.t())",
    "x.mm(x.t())", "x.eq(x)", "x.ne(0)", "x.gt(0)", "x.add(1, alpha=2)", "x.sub(x)", "x.mul(2)", "x.div(2)",
    "x.new_zeros(2, 3)", "x.new_ones((2,))", "x.new_full((2,), 3.0)", "x.new_empty(2).shape", "x.new_tensor([1.0])",
    "x.size(0)", "x.size(-1)", "tuple(x.size())", "x.dim()", "x.numel()", "x.nelement()", "x.is_floating_point()",
    "idx.is_floating_point()", "x.is_contiguous()", "x.t().is_contiguous()", "x.element_size()", "x[0, 0].item()",
    "x.tolist()", "x.detach()", "x.data", "x.clone()", "x.all()", "(x > 0).any(1)", "x.round()", "x.floor()",
    "x.reciprocal()", "x.abs().rsqrt()", "x.logsumexp(1)", "x.where(x > 0, x * 2)", "x.ceil()",
    "x.maximum(x * 0)", "x.unflatten(1, (2, 2))", "x.view_as(x.t())", "x.reshape_as(x.t())",
    "x.repeat_interleave(2, dim=0)",
]


@pytest.mark.parametrize("expression", METHODS)
def test_methods_match_torch(expression):
    assert_same(*both(expression))


def test_plain_arrays_users_pass_in_stay_numpy():
    a = np.arange(6.0).reshape(2, 3)
    assert type(a.max(axis=0)) is np.ndarray
    assert not isinstance(a, avalon.Tensor) and isinstance(avalon.tensor(a), avalon.Tensor)


def test_numpy_functions_keep_numpy_meaning_on_tensors():
    t = avalon.tensor(X)
    plain = X
    np.testing.assert_allclose(np.std(t), np.std(plain))  # numpy's ddof=0, while t.std() is unbiased
    assert not np.isclose(float(t.std()), float(np.std(plain)))
    np.testing.assert_array_equal(np.max(t, axis=0), plain.max(axis=0))
    np.testing.assert_array_equal(np.repeat(t[0], 2), np.repeat(plain[0], 2))  # each element twice
    np.testing.assert_array_equal(np.transpose(t, (1, 0)), plain.T)
    assert [np.asarray(a).tolist() for a in np.nonzero(t > 1)] == [a.tolist() for a in np.nonzero(plain > 1)]
    for result in (np.concatenate([t, t]), np.tanh(t), t + 1, np.sort(t, axis=0), np.stack([t, t])):
        assert type(result) is avalon.Tensor
    assert type(np.asarray(t)) is np.ndarray and np.shares_memory(np.asarray(t), t)
    assert type(t.numpy()) is np.ndarray and np.shares_memory(t.numpy(), t)


INPLACE = [
    ("x.zero_()", None), ("x.fill_(2.5)", None), ("x.copy_(x.flip(0))", None), ("x.add_(1)", None),
    ("x.add_(x, alpha=0.5)", None), ("x.sub_(2)", None), ("x.mul_(x)", None), ("x.div_(4)", None),
    ("x.clamp_(-1, 1)", None), ("x.clamp_(min=0)", None), ("x.masked_fill_(x < 0, 9.0)", None),
    ("x.exp_()", None), ("x.neg_()", None), ("x.pow_(2)", None), ("x.abs_()", None), ("x.sigmoid_()", None),
    ("x.tanh_()", None), ("x.relu_()", None), ("x.scatter_(1, idx, x[:, :2] * 10)", None),
    ("x.scatter_(1, idx, 5.0)", None), ("x.scatter_add_(1, idx, x[:, :2].clone())", None),
    ("x.index_fill_(1, idx[0], -7.0)", None), ("x.index_copy_(0, idx[:2, 1] % 3, x[:2] * 3)", None),
    ("x.index_add_(0, idx[:, 0] % 3, x.clone())", None), ("x.addcmul_(x, x, value=0.5)", None),
    ("x.addcdiv_(x, x + 10, value=2)", None), ("x.lerp_(x * 0 + 1, 0.25)", None),
    ("x[:, :3].fill_diagonal_(4.0)", None), ("x.t().mul_(3)", None), ("x.data.mul_(2)", None),
    ("x.detach().add_(1)", None), ("x[1].copy_(x[0])", None),
]


@pytest.mark.parametrize("expression,_", INPLACE)
def test_inplace_methods_match_torch(expression, _):
    ours = {"T": avalon, "x": avalon.tensor(X), "idx": avalon.tensor(IDX)}
    theirs = {"T": torch, "x": torch.tensor(X), "idx": torch.tensor(IDX)}
    result = eval(expression, ours)
    expected = eval(expression, theirs)
    assert_same(ours["x"], theirs["x"])  # the change reached the tensor itself
    np.testing.assert_allclose(np.asarray(result), expected.numpy(), rtol=1e-6)
    if expression.startswith("x."):
        assert expression.startswith("x.data") or expression.startswith("x.t()") or \
            expression.startswith("x.detach") or result is ours["x"]  # returns the tensor itself


def test_random_inplace_methods_draw_from_avalon_generator():
    avalon.manual_seed(1)
    w = avalon.empty(200, 300).normal_(mean=1.0, std=0.02)
    assert abs(float(w.mean()) - 1.0) < 1e-3 and abs(float(w.std()) - 0.02) < 1e-3
    u = avalon.empty(10000)
    assert u.data.uniform_(-0.1, 0.1) is not u  # `.data` is a view of the same memory
    assert -0.1 <= float(u.min()) and float(u.max()) < 0.1 and float(u.std()) > 0.05
    b = avalon.zeros(10000).bernoulli_(0.3)
    assert abs(float(b.mean()) - 0.3) < 0.02
    avalon.manual_seed(1)
    again = avalon.empty(200, 300).normal_(mean=1.0, std=0.02)
    np.testing.assert_array_equal(w, again)


def test_inplace_that_cannot_keep_the_dtype_is_refused_like_torch():
    ints = avalon.arange(4)
    with pytest.raises(RuntimeError):
        torch.arange(4).mul_(0.5)
    with pytest.raises(avalon.AvalonError, match="int64 tensor"):
        ints.mul_(0.5)
    np.testing.assert_array_equal(ints, [0, 1, 2, 3])  # unchanged


GLOBAL_SCALE = avalon.ones(3)


def test_inplace_on_a_tensor_from_outside_traced_code_is_refused_at_the_users_line():
    def f(x):
        GLOBAL_SCALE.mul_(2)  # the offending line: a replay would not repeat it
        return (x * GLOBAL_SCALE).sum()

    with pytest.raises(avalon.UnsupportedConstruct, match=r"in-place method \.mul_\(\)") as info:
        avalon.grad(f, np.ones(3, np.float32))
    assert "GLOBAL_SCALE.mul_(2)" in str(info.value) and "test_tensor.py" in str(info.value)
    np.testing.assert_array_equal(GLOBAL_SCALE, [1, 1, 1])


def test_torch_attributes():
    t = avalon.tensor(X)
    assert t.device == "cpu" and t.device.type == "cpu" and str(t.device) == "cpu"
    assert t.device == avalon.device("cpu") and avalon.device("cuda:1").index == 1
    assert t.is_cuda is False and t.grad is None and t.requires_grad is False and t.is_leaf
    assert t.to("cpu") is t and t.cpu() is t and t.to(avalon.device("cpu")) is t
    assert t.to(avalon.float64).dtype == np.float64 and t.to(avalon.arange(2)).dtype == np.int64
    assert t.to("cpu", copy=True) is not t
    assert isinstance(t.item() if t.size == 1 else t.sum().item(), float)
    assert isinstance(avalon.arange(3).sum().item(), int)
    p = nn.Parameter(avalon.zeros(2))
    assert {p: "w"}[p] == "w"  # hashable by identity, as torch's


def test_backward_and_cuda_say_what_to_do():
    loss = avalon.tensor(1.5)
    with pytest.raises(avalon.AvalonError, match=r"avalon\.grad\(loss_fn, model, x, y\)"):
        loss.backward()
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(avalon.AvalonError, match=r"pip install 'avalon\[gpu\]'"):
            loss.cuda()
        with pytest.raises(avalon.AvalonError, match=r"pip install 'avalon\[gpu\]'"):
            loss.to("cuda")


def test_isinstance_holds_for_tracers_inside_traced_code():
    seen = []

    def f(x):
        seen.append(isinstance(x, avalon.Tensor))
        return x.sum()

    avalon.grad(f, np.ones(2, np.float32))
    assert seen == [True]
    assert not isinstance(np.ones(2), avalon.Tensor) and not isinstance(3.0, avalon.Tensor)


def test_factories_and_new_methods_work_inside_traced_code():
    def f(x):
        T = x.size(1)
        positions = avalon.arange(T).unsqueeze(0)                        # a Tensor constant, then recorded
        mask = avalon.tril(avalon.ones(T, T)).view(1, T, T)
        pad = x.new_zeros(x.size(0), 1).view(-1, 1)
        scores = (x.unsqueeze(1) * mask).sum(-1) + positions
        return avalon.cat([scores, pad], dim=1).sum()

    x = avalon.randn(2, 4)
    value, (g,) = avalon.grad(f, x)
    tx = torch.tensor(np.asarray(x), requires_grad=True)
    T = 4
    expected = torch.cat([(tx.unsqueeze(1) * torch.tril(torch.ones(T, T)).view(1, T, T)).sum(-1)
                          + torch.arange(T).unsqueeze(0), tx.new_zeros(2, 1)], dim=1).sum()
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=1e-5)
    np.testing.assert_allclose(g, tx.grad.numpy(), rtol=1e-5)


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        return self.head(F.relu(self.fc(x)))


def loss_fn(model, x, y):
    return F.cross_entropy(model(x), y)


def test_what_users_get_back_is_a_tensor():
    avalon.manual_seed(0)
    model = Small()
    x, y = avalon.randn(5, 4), avalon.tensor([0, 1, 1, 0, 1])
    assert all(isinstance(p, nn.Parameter) and isinstance(p, avalon.Tensor) for p in model.parameters())
    assert type(model(x)) is avalon.Tensor and type(model(x)) is avalon.Tensor  # traced, then replayed
    loss, grads = avalon.grad(loss_fn, model, x, y)
    assert type(loss) is avalon.Tensor and loss.shape == ()
    assert all(type(g) is avalon.Tensor for _, g in grads[0])
    assert type(avalon.exp(np.zeros(2))) is avalon.Tensor  # eager calls on plain arrays too
    batches = list(avalon.data.DataLoader(avalon.data.TensorDataset(np.ones((4, 2)), np.arange(4)), batch_size=2))
    assert all(type(b) is avalon.Tensor for batch in batches for b in batch)
    assert batches[0][0].size(0) == 2 and batches[0][0].to("cpu") is batches[0][0]
    accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert isinstance(accuracy, float)
    assert sum(p.numel() for p in model.parameters()) == 4 * 3 + 3 + 3 * 2 + 2


def test_tapes_and_replays_hold_plain_arrays():
    model = Small()
    tape = avalon.grad_tape(loss_fn, model, avalon.randn(5, 4), avalon.tensor([0, 1, 1, 0, 1]))
    for node in tape.nodes:
        if node.value is not None:
            assert type(node.value) is np.ndarray or np.isscalar(node.value), (node, type(node.value))


def test_requires_grad_false_freezes_a_parameter():
    avalon.manual_seed(0)
    model = Small()
    x, y = avalon.randn(5, 4), avalon.tensor([0, 1, 1, 0, 1])
    _, grads = avalon.grad(loss_fn, model, x, y)
    assert "fc.weight" in grads[0]
    model.fc.weight.requires_grad_(False)
    _, grads = avalon.grad(loss_fn, model, x, y)  # freezing retraces
    assert "fc.weight" not in grads[0] and "fc.bias" in grads[0]
    opt = avalon.optim.SGD(model.parameters(), lr=0.5)
    before = model.fc.weight.copy()
    opt.step(grads[0])
    np.testing.assert_array_equal(model.fc.weight, before)
    frozen = nn.Parameter(np.ones(2, np.float32), requires_grad=False)
    assert not frozen.requires_grad and not copy.deepcopy(frozen).requires_grad
    assert isinstance(copy.deepcopy(model).fc.weight, nn.Parameter)


def test_torch_tensors_are_taken_at_the_boundary():
    avalon.manual_seed(0)
    model = Small()
    torch_x, torch_y = torch.randn(5, 4), torch.tensor([0, 1, 1, 0, 1])
    expected = loss_fn(model, avalon.tensor(torch_x.numpy()), avalon.tensor(torch_y.numpy()))
    np.testing.assert_allclose(F.cross_entropy(model(torch_x), torch_y), expected, rtol=1e-6)
    loss, (_, gx, gy) = avalon.grad(loss_fn, model, torch_x, torch_y)
    assert type(gx) is avalon.Tensor and gx.shape == (5, 4) and gy is None
    from avalon.autodiff import cache

    entries = len(cache._entries)
    for _ in range(3):
        avalon.grad(loss_fn, model, torch.randn(5, 4), torch_y)
    assert len(cache._entries) == entries  # cached by shape and dtype, not retraced
    joined = avalon.cat([torch.ones(2), avalon.zeros(2)])
    assert type(joined) is avalon.Tensor and joined.tolist() == [1, 1, 0, 0]
    shared = torch.zeros(3)
    param = nn.Parameter(shared)
    param.fill_(2.0)
    assert shared.tolist() == [2.0, 2.0, 2.0]  # zero-copy


def test_gradcheck_runs_functions_that_use_torch_methods():
    def f(x):
        return (x.view(2, 3).softmax(-1) * x.view(2, 3).t().sum(1, keepdim=True).t()).sum()

    assert avalon.gradcheck(f, np.random.default_rng(0).standard_normal(6))


def test_tensor_constructor_errors_say_what_to_pass():
    with pytest.raises(avalon.AvalonError, match="pass sizes"):
        avalon.Tensor([1], [2])
    with pytest.raises(AttributeError, match="no attribute 'nope_'"):
        avalon.zeros(2).nope_()


def test_loaded_checkpoints_hold_tensors(tmp_path):
    model = Small()
    avalon.save(model.state_dict(), tmp_path / "state.safetensors")
    avalon.save(model, tmp_path / "model.safetensors")
    for path in ("state.safetensors", "model.safetensors"):
        state = avalon.load(tmp_path / path)
        assert all(type(v) is avalon.Tensor for v in state.values())
        model.load_state_dict(state)
    torch.save({k: torch.tensor(np.asarray(v)) for k, v in model.state_dict().items()}, tmp_path / "t.pt")
    assert all(type(v) is avalon.Tensor for v in avalon.io.load_torch_state_dict(tmp_path / "t.pt").values())


def test_data_and_item_inside_traced_code():
    x = np.array([1.0, 2.0, 3.0])
    _, (g,) = avalon.grad(lambda x: (x.data * x).sum(), x)
    np.testing.assert_array_equal(g, x)  # .data is a constant, as torch's
    with pytest.raises(avalon.UnsupportedConstruct, match="data-dependent"):
        avalon.grad(lambda x: x * x.item(0), x)
    assert avalon.tensor([[1, 2]]).view() is not None and avalon.tensor([5, 6]).item(1) == 6


def test_factories_take_torchs_keywords_and_refuse_misspelt_ones():
    for made in (avalon.zeros(2, layout=None, pin_memory=False), avalon.ones_like(avalon.zeros(2), device="cpu"),
                 avalon.randint(3, (2,), requires_grad=False)):
        assert isinstance(made, avalon.Tensor)
    with pytest.raises(TypeError, match="dtpye"):
        avalon.zeros(2, dtpye=np.int64)  # a typo is an error, not silently float32
