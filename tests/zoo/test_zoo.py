"""A zoo of real-style PyTorch model files, ported by renaming `torch` to `avalon` (issue #8).

Each file in `models/` is ordinary PyTorch code in the style of a public repository. It is imported
twice: as it is, and from its source text with every "torch" replaced by "avalon" (what `sed` would
do; nothing else changes). The PyTorch model's state_dict is loaded into the Avalon model, and then
forward outputs (train and eval mode), the loss, every parameter gradient, the state after two
optimiser steps (parameters, BatchNorm running statistics) and, where a file has them, greedy
generation and what hooks stored must agree with PyTorch. Each is checked on two calls: the second,
with halved float inputs, runs Avalon's compiled replay (or a retrace), which must not repeat the
first call's values.

What a model file provides (the zoo's interface, written in PyTorch like the rest):

- `make_model()`: the model;  `loss_fn(model, *example_batch())`: a scalar loss;
- `example_batch()`, `example_inputs()`: the loss's arguments and the forward's (fixed seeds);
- optional `forward(model, *inputs)`: the forward when the model is not called directly (a GAN's
  ModuleDict); `make_optimizer(model)`: the file's own optimiser instead of SGD;
  `decode(model, *inputs)`: deterministic generation (greedy / top-k=1), compared exactly;
  `sample(model, *inputs)`: random generation, compared by shape; `probe(model, *inputs)`: what
  forward hooks stored, or an evaluation metric; `after_backward(model)`: what gradient hooks stored.

The example data come from the PyTorch file (torch's random generator), converted with
`avalon.tensor`. Whether training draws random numbers (dropout, randn_like, DropPath) is read from
PyTorch itself: two runs under different seeds. Then train-mode outputs are compared by shape,
gradients in eval mode, and after the steps only the buffers PyTorch reproduces under both seeds.
"""
import copy
import functools
import importlib.util
import linecache
import sys
import types
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

import avalon
import avalon.optim

torch = pytest.importorskip("torch")
pytest.importorskip("torch.utils.checkpoint")  # patched in the reference step

pytestmark = [pytest.mark.filterwarnings("ignore:Initializing zero-element tensors"),
              pytest.mark.filterwarnings("ignore:enable_nested_tensor")]

RTOL, ATOL = 1e-4, 1e-5
MODELS = Path(__file__).parent / "models"
NAMES = sorted(path.stem for path in MODELS.glob("*.py"))


def _with_file(function):
    """The zoo names whose PyTorch file defines `function`."""
    return [n for n in NAMES if hasattr(torch_module(n), function)]


# loading: as written, and renamed

def _exec_module(module_name, filename, text):
    module = types.ModuleType(module_name)
    module.__file__ = filename
    sys.modules[module_name] = module  # dataclasses look their module up while the class is made
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)  # tracebacks, source lines
    exec(compile(text, filename, "exec"), module.__dict__)
    return module


@functools.cache
def torch_module(name):
    path = MODELS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"zoo_torch_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def renamed_source(name):
    """The file's text after the user's one mechanical edit."""
    return (MODELS / f"{name}.py").read_text().replace("torch", "avalon")


@functools.cache
def avalon_module(name):
    return _exec_module(f"zoo_avalon_{name}", str(MODELS / f"{name}.avalon.py"), renamed_source(name))


# data: PyTorch's examples in both libraries, results as numpy

def _map(fn, value):
    if isinstance(value, (tuple, list)):
        return type(value)(_map(fn, v) for v in value)
    if isinstance(value, dict):
        return {k: _map(fn, v) for k, v in value.items()}
    return fn(value)


def _to_avalon(value):
    return _map(lambda v: avalon.tensor(v.numpy()) if isinstance(v, torch.Tensor) else v, value)


def _examples(name, which):
    """(Avalon's, PyTorch's) copies of the example data `which` ("example_batch" or "example_inputs")."""
    theirs = getattr(torch_module(name), which)()
    return _to_avalon(theirs), theirs


def _two_calls(name, which):
    """The example data, then the same with floating-point arrays halved: Avalon traces the first call
    and replays compiled code for the second, which must not give the first call's values."""
    ours, theirs = _examples(name, which)
    yield "first call", ours, theirs
    halve = functools.partial(_map, lambda v: v * 0.5 if v.dtype.kind == "f" else v)
    yield "second call", halve(ours), _map(lambda v: v * 0.5 if v.is_floating_point() else v, theirs)


def _leaves(value, path="result"):
    """[(path, leaf)] of a nested result, containers described by their length or keys; tensors and
    arrays become numpy arrays."""
    if isinstance(value, (tuple, list)):
        return [(f"len({path})", len(value))] + \
            [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [(f"keys({path})", sorted(value))] + \
            [leaf for k in sorted(value) for leaf in _leaves(value[k], f"{path}[{k!r}]")]
    if isinstance(value, torch.Tensor):
        value = value.detach().numpy()
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        value = np.asarray(value)
    return [(path, value)]


def assert_same(ours, theirs, what, shapes_only=False):
    """Avalon's result equals PyTorch's: same structure, arrays of the same dtype and shape with values
    within float32 tolerance (unless `shapes_only`), other values equal (floats within tolerance)."""
    mine, expected = _leaves(ours), _leaves(theirs)
    assert [p for p, _ in mine] == [p for p, _ in expected], f"{what}: structure differs"
    for (path, a), (_, b) in zip(mine, expected):
        if isinstance(b, float):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"{what}: {path}")
            continue
        if not isinstance(b, np.ndarray):
            assert (len(a) if shapes_only and isinstance(a, str) else a) == \
                (len(b) if shapes_only and isinstance(b, str) else b), f"{what}: {path}"
            continue
        assert isinstance(a, np.ndarray), f"{what}: {path} is {type(a).__name__}, PyTorch gives an array"
        assert a.shape == b.shape and a.dtype == b.dtype, \
            f"{what}: {path} is {a.dtype}{a.shape}, PyTorch's {b.dtype}{b.shape}"
        if not shapes_only:
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"{what}: {path}")


# models: the same weights in both

def _randomise_normalisation(model):
    """PyTorch starts normalisation layers' statistics and affine parameters at 1 and 0: random ones
    make them count."""
    norms = (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm)
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, norms):
                continue
            for scale in (getattr(module, "weight", None), getattr(module, "running_var", None)):
                if scale is not None:
                    scale.copy_(torch.rand_like(scale) + 0.5)
            for shift in (getattr(module, "bias", None), getattr(module, "running_mean", None)):
                if shift is not None:
                    shift.copy_(torch.randn_like(shift) * 0.1)


def _torch_model(name):
    torch.manual_seed(0)
    model = torch_module(name).make_model()
    _randomise_normalisation(model)
    return model


def pair(name):
    """(Avalon's model, PyTorch's model) built by the two imports of one file, PyTorch's weights in both."""
    theirs = _torch_model(name)
    avalon.manual_seed(0)
    ours = avalon_module(name).make_model()
    assert list(ours.state_dict()) == list(theirs.state_dict()), "state_dict keys differ"
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _forward(module, model, inputs):
    custom = getattr(module, "forward", None)
    return custom(model, *inputs) if custom else model(*inputs)


def _torch_optimizer(name, model):
    module = torch_module(name)
    return module.make_optimizer(model) if hasattr(module, "make_optimizer") else \
        torch.optim.SGD(model.parameters(), lr=0.1)


def _avalon_optimizer(name, model):
    module = avalon_module(name)
    return module.make_optimizer(model) if hasattr(module, "make_optimizer") else \
        avalon.optim.SGD(model.parameters(), lr=0.1)


def _run_once(function, *args, use_reentrant=None, preserve_rng_state=True, **kwargs):
    return function(*args, **kwargs)


def _torch_steps(name, model, batches, seed=0):
    """PyTorch's training steps, one per batch (train mode, random numbers drawn from `seed`): the
    losses and the state after the last step.

    Checkpointed segments run once: PyTorch runs them again in the backward pass and so updates the
    BatchNorm statistics inside them twice (pytorch/pytorch#96136, open); Avalon recomputes on the
    tape and counts the batch once, as an unchecked model does. Gradients are the same either way."""
    model.train()
    opt = _torch_optimizer(name, model)
    torch.manual_seed(seed)
    losses = []
    for batch in batches:
        opt.zero_grad()
        with mock.patch.object(torch.utils.checkpoint, "checkpoint", _run_once):
            loss = torch_module(name).loss_fn(model, *batch)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return losses, copy.deepcopy(model.state_dict())


@functools.cache
def torch_randomness(name):
    """(whether training draws random numbers, the buffers that come out of a step the same anyway),
    found by running PyTorch's step twice under different seeds. Parameters are left out: an Adam
    step's first update is about lr·sign(gradient), the same under many seeds but not all."""
    batches = [torch_batch for _, _, torch_batch in _two_calls(name, "example_batch")]
    models = [_torch_model(name) for _ in range(2)]
    (losses1, state1), (losses2, state2) = (_torch_steps(name, m, batches, seed) for m, seed in zip(models, (1, 2)))
    buffers = {n for n, _ in models[0].named_buffers()}
    reproducible = {k for k in state1 if k in buffers and torch.equal(state1[k], state2[k])}
    return not torch.equal(losses1[0], losses2[0]), reproducible


# the tests

def test_the_zoo_is_ported_by_renaming_only():
    assert len(NAMES) >= 14
    for name in NAMES:
        assert "avalon" not in (MODELS / f"{name}.py").read_text(), name
        assert "torch" not in renamed_source(name), name


@pytest.mark.parametrize("name", NAMES)
def test_renamed_file_builds_the_same_model(name):
    """The renamed file imports, builds a model with PyTorch's state_dict keys, parameter names and
    shapes, and makes example data like PyTorch's (shapes and dtypes: the random values differ)."""
    ours, theirs = pair(name)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    for which in ("example_batch", "example_inputs"):
        assert_same(getattr(avalon_module(name), which)(), getattr(torch_module(name), which)(), which,
                    shapes_only=True)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", NAMES)
def test_forward_matches(name, mode):
    ours, theirs = pair(name)
    getattr(ours, mode)()
    getattr(theirs, mode)()
    random = mode == "train" and torch_randomness(name)[0]
    for call, inputs, torch_inputs in _two_calls(name, "example_inputs"):
        assert_same(_forward(avalon_module(name), ours, inputs), _forward(torch_module(name), theirs, torch_inputs),
                    f"{mode}-mode output, {call}", shapes_only=random)


@pytest.mark.parametrize("name", NAMES)
def test_loss_and_gradients_match(name):
    """The loss and every parameter's gradient (in eval mode where training draws random numbers), and
    what gradient hooks stored, on two calls."""
    ours, theirs = pair(name)
    mode = "eval" if torch_randomness(name)[0] else "train"
    getattr(ours, mode)()
    getattr(theirs, mode)()
    for call, batch, torch_batch in _two_calls(name, "example_batch"):
        loss, grads = avalon.grad(avalon_module(name).loss_fn, ours, *batch, argnums=0)
        theirs.zero_grad()
        expected = torch_module(name).loss_fn(theirs, *torch_batch)
        expected.backward()
        assert_same(loss, expected, f"loss, {call}")
        expected_grads = {n: p.grad if p.grad is not None else torch.zeros_like(p)
                          for n, p in theirs.named_parameters()}
        assert list(grads[0].keys()) == list(expected_grads)
        assert_same(dict(grads[0].items()), expected_grads, f"gradients, {call}")
        if hasattr(torch_module(name), "after_backward"):
            assert_same(avalon_module(name).after_backward(ours), torch_module(name).after_backward(theirs),
                        f"after backward, {call}")


@pytest.mark.parametrize("name", NAMES)
def test_training_steps_match(name):
    """Two optimiser steps in train mode (the second replays the compiled step on the updated weights
    and uses the optimiser's state): the losses, and the state afterwards (parameters, BatchNorm
    running statistics), all of it or, where training draws random numbers, the buffers PyTorch
    reproduces under any seed."""
    ours, theirs = pair(name)
    ours.train()
    opt = _avalon_optimizer(name, ours)
    losses, torch_batches = [], []
    for _, batch, torch_batch in _two_calls(name, "example_batch"):
        loss, grads = avalon.grad(avalon_module(name).loss_fn, ours, *batch, argnums=0)
        opt.step(grads[0])
        losses.append(loss)
        torch_batches.append(torch_batch)
    expected_losses, expected_state = _torch_steps(name, theirs, torch_batches)
    random, reproducible = torch_randomness(name)
    if not random:
        assert_same(losses, expected_losses, "losses")
    keys = [k for k in expected_state if k in reproducible or not random]
    state = ours.state_dict()
    assert_same({k: state[k] for k in keys}, {k: expected_state[k] for k in keys}, "state after the steps")


@pytest.mark.parametrize("name", _with_file("decode"))
def test_greedy_generation_matches(name):
    ours, theirs = pair(name)
    ours.eval()
    theirs.eval()
    inputs, torch_inputs = _examples(name, "example_inputs")
    assert_same(avalon_module(name).decode(ours, *inputs), torch_module(name).decode(theirs, *torch_inputs),
                "generated")


@pytest.mark.parametrize("name", _with_file("sample"))
def test_sampled_generation_has_torch_shapes(name):
    ours, theirs = pair(name)
    ours.eval()
    theirs.eval()
    inputs, torch_inputs = _examples(name, "example_inputs")
    assert_same(avalon_module(name).sample(ours, *inputs), torch_module(name).sample(theirs, *torch_inputs),
                "sampled", shapes_only=True)


@pytest.mark.parametrize("name", _with_file("probe"))
def test_probe_matches(name):
    """What a file reads after forward calls (activations its hooks stored, its evaluation metrics), on
    two calls."""
    ours, theirs = pair(name)
    ours.eval()
    theirs.eval()
    for call, inputs, torch_inputs in _two_calls(name, "example_inputs"):
        assert_same(avalon_module(name).probe(ours, *inputs), torch_module(name).probe(theirs, *torch_inputs),
                    f"probe, {call}")
