"""Every optimiser follows PyTorch's parameter trajectory for 20 steps on the same gradients (float64)."""
import numpy as np
import pytest

import avalon.optim as optim

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (5,)]
STEPS = 20

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.5, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.9), eps=1e-3, maximize=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, amsgrad=True, weight_decay=0.3)),
    ("RMSprop", dict()),
    ("RMSprop", dict(momentum=0.9, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(alpha=0.9, eps=1e-3, centered=True, maximize=True)),
    ("RMSprop", dict(lr=0.001, momentum=0.5)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-5)),
    ("Adagrad", dict(lr=0.1, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1, maximize=True)),
    ("Adamax", dict()),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, maximize=True)),
    ("NAdam", dict()),
    ("NAdam", dict(lr=0.01, momentum_decay=0.01, weight_decay=0.1)),
    ("NAdam", dict(weight_decay=0.1, decoupled_weight_decay=True, betas=(0.7, 0.95))),
    ("RAdam", dict()),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, betas=(0.9, 0.99))),
    ("RAdam", dict(weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
]

# Per-group options that differ from the defaults, one set per optimiser (the second group uses them).
GROUP_OPTIONS = {
    "SGD": (dict(lr=0.1, momentum=0.9), dict(lr=0.01, momentum=0.5, nesterov=True)),
    "Adam": (dict(lr=0.01), dict(lr=0.05, betas=(0.5, 0.9), amsgrad=True, weight_decay=0.2)),
    "AdamW": (dict(lr=0.01), dict(lr=0.05, weight_decay=0.5)),
    "RMSprop": (dict(lr=0.01), dict(lr=0.02, centered=True, momentum=0.3)),
    "Adagrad": (dict(lr=0.1), dict(lr=0.3, lr_decay=0.2)),
    "Adadelta": (dict(lr=1.0), dict(lr=0.3, rho=0.5)),
    "Adamax": (dict(lr=0.01), dict(lr=0.03, betas=(0.5, 0.5))),
    "NAdam": (dict(lr=0.01), dict(lr=0.03, momentum_decay=0.1)),
    "RAdam": (dict(lr=0.01), dict(lr=0.03, betas=(0.8, 0.95))),
}


@pytest.fixture(autouse=True)
def _torch_float64():
    # PyTorch keeps NAdam's mu_product and the step counters in the default dtype: use float64 there too.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _problem(seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(STEPS)]
    return params, grads


def _run_both(name, make_groups, seed=0, dtype=np.float64, **options):
    """Step torch's and avalon's optimiser on the same gradients; yield both parameter lists per step."""
    params, grads = _problem(seed, dtype)
    ours = [p.copy() for p in params]
    theirs = [torch.tensor(p) for p in params]
    opt = getattr(optim, name)(make_groups(ours), **options)
    ref = getattr(torch.optim, name)(make_groups(theirs), **options)
    for step_grads in grads:
        for t, g in zip(theirs, step_grads):
            t.grad = torch.tensor(g)
        ref.step()
        opt.step(step_grads)
        yield ours, [t.detach().numpy() for t in theirs]


def _flat(params):
    return params


@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_trajectory_matches_torch(name, options):
    for step, (ours, theirs) in enumerate(_run_both(name, _flat, **options)):
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13, err_msg=f"{name} step {step + 1}")


@pytest.mark.parametrize("name", sorted(GROUP_OPTIONS))
def test_param_groups_with_their_own_options_match_torch(name):
    first, second = GROUP_OPTIONS[name]

    def groups(params):
        return [dict(params=[params[0]], **first), dict(params=[params[1]], **second)]

    for step, (ours, theirs) in enumerate(_run_both(name, groups, seed=1, weight_decay=0.01)):
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13, err_msg=f"{name} step {step + 1}")


@pytest.mark.parametrize("name", sorted(GROUP_OPTIONS))
def test_float32_parameters_stay_float32_and_follow_torch(name):
    torch.set_default_dtype(torch.float32)
    for ours, theirs in _run_both(name, _flat, seed=2, dtype=np.float32, **GROUP_OPTIONS[name][0]):
        assert all(p.dtype == np.float32 for p in ours)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name", sorted(GROUP_OPTIONS))
def test_state_dict_from_torch_resumes_on_the_same_trajectory(name):
    """Ten torch steps, its state dict loaded into ours, ten more steps on both: same parameters."""
    options = GROUP_OPTIONS[name][1]
    params, grads = _problem(3)
    theirs = [torch.tensor(p) for p in params]
    ref = getattr(torch.optim, name)(theirs, **options)
    for step_grads in grads[:10]:
        for t, g in zip(theirs, step_grads):
            t.grad = torch.tensor(g)
        ref.step()
    ours = [t.detach().numpy().copy() for t in theirs]
    opt = getattr(optim, name)(ours, **options)
    opt.load_state_dict(ref.state_dict())
    for step_grads in grads[10:]:
        for t, g in zip(theirs, step_grads):
            t.grad = torch.tensor(g)
        ref.step()
        opt.step(step_grads)
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a, t.detach().numpy(), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("name,options", [(n, o[1]) for n, o in sorted(GROUP_OPTIONS.items())] +
                         [("SGD", dict(lr=0.1))], ids=lambda v: v if isinstance(v, str) else "")
def test_state_dict_layout_matches_torch(name, options):
    params, grads = _problem(4)
    theirs = [torch.tensor(p) for p in params]
    ours = [p.copy() for p in params]
    ref = getattr(torch.optim, name)(theirs, **options)
    opt = getattr(optim, name)(ours, **options)
    for step_grads in grads[:3]:
        for t, g in zip(theirs, step_grads):
            t.grad = torch.tensor(g)
        ref.step()
        opt.step(step_grads)
    mine, torch_sd = opt.state_dict(), ref.state_dict()
    assert mine["state"].keys() == torch_sd["state"].keys()
    for index, entry in torch_sd["state"].items():
        assert mine["state"][index].keys() == entry.keys()
        for key, value in entry.items():
            np.testing.assert_allclose(np.asarray(mine["state"][index][key]), value.numpy(), rtol=1e-11)
    (group,), (torch_group,) = mine["param_groups"], torch_sd["param_groups"]
    assert group["params"] == torch_group["params"]
    for key, value in group.items():
        assert torch_group[key] == value, key
