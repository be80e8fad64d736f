"""PyTorch exports of an MLP, a CNN with BatchNorm and pooling, a ResNet-18, an LSTM, a Transformer
encoder and an RMSNorm MLP, by every exporter setting (tests/onnx/torch_models.py: SETTINGS), load as
trainable Modules: outputs match PyTorch at the export's batch size and another; with the names kept,
every parameter gradient of one `avalon.grad` matches PyTorch's, and where they are not, the input's
gradient does; the tape is scoped by torch's modules. Also: recurrent layers, a training-mode export, a
default export to a file with external weights, and an imported ResNet-18 backbone that fine-tunes
under a new head with part of it frozen."""
import functools
import io
import warnings

import numpy as np
import onnx
import pytest
import torch

import avalon
import avalon.onnx
from tests.onnx.torch_models import (DYNAMO_ONLY, MODELS, SETTINGS, export_with, recurrent, resnet18, series,
                                     small_images)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                        "ignore::UserWarning")
CASES = [(model, setting) for model in MODELS for setting in SETTINGS
         if model not in DYNAMO_ONLY or SETTINGS[setting][0]["dynamo"]]
NAMED = [(model, setting) for model, setting in CASES if SETTINGS[setting][1]]


@functools.lru_cache(maxsize=None)
def exported(model, setting):
    """(torch model, its ONNX bytes), exported once per test process."""
    make, inputs = MODELS[model]
    torch_model = make()
    return torch_model, export_with(setting, torch_model, inputs())


@pytest.mark.parametrize("model, setting", CASES, ids=[f"{m}-{s}" for m, s in CASES])
def test_outputs_match_torch_at_any_batch_size(model, setting):
    torch_model, data = exported(model, setting)
    ours = avalon.onnx.load(data)
    for batch in (2, 3):  # exported at 2; the batch axis stays dynamic
        x = MODELS[model][1](batch, seed=batch)
        with torch.no_grad():
            expected = torch_model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(ours(x), expected, rtol=1e-4, atol=2e-5)


def test_exports_use_the_operators_they_are_named_for():
    """The cases cover what they claim: default exports fold BatchNorm into Conv, the name-keeping ones
    keep it, both write the LSTM op, opset 23 writes Attention and RMSNormalization."""
    def op_types(model, setting):
        return {node.op_type for node in onnx.load_from_string(exported(model, setting)[1]).graph.node}

    assert "BatchNormalization" not in op_types("resnet18", "legacy") | op_types("resnet18", "dynamo")
    assert "BatchNormalization" in op_types("resnet18", "legacy-names") & op_types("resnet18", "dynamo-names")
    assert "LSTM" in op_types("lstm", "legacy") & op_types("lstm", "dynamo-names")
    assert "Attention" in op_types("transformer", "dynamo-opset23")
    assert "RMSNormalization" in op_types("rms_mlp", "dynamo-opset23")
    assert onnx.load_from_string(exported("mlp", "dynamo-opset23")[1]).opset_import[0].version == 23


@pytest.mark.parametrize("model, setting", NAMED, ids=[f"{m}-{s}" for m, s in NAMED])
def test_parameter_gradients_match_torch(model, setting):
    torch_model, data = exported(model, setting)
    ours = avalon.onnx.load(data)
    x = MODELS[model][1](3, seed=7)
    weights = np.random.default_rng(0).standard_normal(ours(x).shape).astype(np.float32)
    _, grads = avalon.grad(lambda m, v: (m(v) * weights).sum(), ours, x)
    torch_model.zero_grad()
    (torch_model(torch.from_numpy(x)) * torch.from_numpy(weights)).sum().backward()
    expected = dict(torch_model.named_parameters())
    assert {name for name, _ in ours.named_parameters()} == set(expected)
    for name, p in expected.items():
        scale = np.abs(p.grad.numpy()).max()
        np.testing.assert_allclose(grads[0][name], p.grad.numpy(), rtol=1e-3, atol=1e-4 * scale, err_msg=name)


@pytest.mark.parametrize("setting", ["legacy-names", "dynamo-names"])
@pytest.mark.parametrize("kind", ["gru", "rnn", "lstm"])
def test_recurrent_layers_match_torch_with_gradients(kind, setting):
    """Stacked and bidirectional GRU and LSTM layers and a ReLU RNN (the ONNX GRU, LSTM and RNN ops, or
    the exporter's unrolled steps) at another batch size than the export's, with every gradient."""
    torch_model = recurrent(kind)
    ours = avalon.onnx.load(export_with(setting, torch_model, series()))
    x = series(3, seed=4)
    _, grads = avalon.grad(lambda m, v: m(v).sum(), ours, x)
    y = torch_model(torch.from_numpy(x))
    y.sum().backward()
    np.testing.assert_allclose(ours(x), y.detach().numpy(), rtol=1e-4, atol=1e-5)
    expected = dict(torch_model.named_parameters())
    assert {name for name, _ in ours.named_parameters()} == set(expected)
    for name, p in expected.items():
        np.testing.assert_allclose(grads[0][name], p.grad.numpy(), rtol=1e-3, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("setting", ["legacy-names", "dynamo", "dynamo-names"])
def test_tape_scopes_are_torch_module_paths(setting):
    """The legacy exporter writes module paths into node names, the dynamo one into node metadata;
    either way the imported model's tape (and the workbench) groups its calls by torch's modules."""
    _, data = exported("resnet18", setting)
    tape = avalon.trace(avalon.onnx.load(data), small_images())
    scopes = {node.scope for node in tape}
    assert {"conv1", "bn1", "layer1.0.conv1", "layer2.0.downsample.0", "layer4.1.bn2", "fc"} <= scopes


class ScaledMLP(torch.nn.Module):
    """A learnable scalar (a temperature) beside a Linear: with names kept it stays a parameter."""

    def __init__(self):
        super().__init__()
        self.fc, self.scale = torch.nn.Linear(6, 3), torch.nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        return self.fc(x) * self.scale + 1e-3


@pytest.mark.parametrize("setting", ["legacy-names", "dynamo-names"])
def test_a_learnable_scalar_stays_a_parameter(setting):
    from tests.onnx.exports import rows
    torch_model = ScaledMLP().eval()
    ours = avalon.onnx.load(export_with(setting, torch_model, rows()))
    assert {name for name, _ in ours.named_parameters()} == {"fc.weight", "fc.bias", "scale"}


@pytest.mark.parametrize("model", ["lstm", "transformer", "rms_mlp"])
def test_exporter_made_scalars_are_constants(model):
    """An optimized dynamo export stores epsilons, scales and the zero of an initial state as one-element
    initializers (val_N); they are not parameters (an optimiser would train them)."""
    torch_model, data = exported(model, "dynamo")
    ours = avalon.onnx.load(data)
    generated = [t.name for t in onnx.load_from_string(data).graph.initializer if t.name.startswith("val_")
                 and np.prod(t.dims) <= 1]
    assert generated
    assert not {name for name, _ in ours.named_parameters()} & set(generated)


RENAMED = [(model, setting) for model, setting in CASES if not SETTINGS[setting][1]]


@pytest.mark.parametrize("model, setting", RENAMED, ids=[f"{m}-{s}" for m, s in RENAMED])
def test_input_gradients_match_torch_where_weights_are_renamed(model, setting):
    """Folded or renamed weights have no torch counterpart, but the gradient with respect to the input
    does, and every imported parameter gets a gradient (so such an import still fine-tunes)."""
    torch_model, data = exported(model, setting)
    ours = avalon.onnx.load(data)
    x = MODELS[model][1](3, seed=7)
    weights = np.random.default_rng(0).standard_normal(ours(x).shape).astype(np.float32)
    _, grads = avalon.grad(lambda m, v: (m(v) * weights).sum(), ours, x)
    tx = torch.from_numpy(x).requires_grad_(True)
    (torch_model(tx) * torch.from_numpy(weights)).sum().backward()
    scale = np.abs(tx.grad.numpy()).max()
    np.testing.assert_allclose(grads[1], tx.grad.numpy(), rtol=1e-3, atol=1e-4 * scale)
    for name, p in ours.named_parameters():
        assert grads[0][name].shape == p.shape and np.any(grads[0][name] != 0), name


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_exports_with_a_dynamic_length_run_at_another(kind, dynamo):
    torch_model = recurrent(kind)
    x = torch.from_numpy(series())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            data = torch.onnx.export(torch_model, (x,), dynamo=True, optimize=False, input_names=["x"], verbose=False,
                                     dynamic_shapes=({0: torch.export.Dim("b"), 1: torch.export.Dim("t")},)
                                     ).model_proto.SerializeToString()
        else:
            f = io.BytesIO()
            torch.onnx.export(torch_model, (x,), f, dynamo=False, do_constant_folding=False, input_names=["x"],
                              dynamic_axes={"x": {0: "b", 1: "t"}})
            data = f.getvalue()
    longer = series(3, seed=2, length=9)
    np.testing.assert_allclose(avalon.onnx.load(data)(longer), torch_model(torch.from_numpy(longer)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


class Classifier(avalon.nn.Module):
    """An imported backbone under a new Linear head."""

    def __init__(self, backbone, features, classes):
        super().__init__()
        self.backbone, self.head = backbone, avalon.nn.Linear(features, classes)

    def forward(self, x):
        return self.head(self.backbone(x))


@pytest.mark.parametrize("setting", ["legacy-names", "dynamo-names"])
def test_imported_resnet_backbone_fine_tunes_under_a_new_head(setting):
    torch_model = resnet18()
    torch_model.fc = torch.nn.Identity()  # the backbone: 512 features
    backbone = avalon.onnx.load(export_with(setting, torch_model, small_images()))
    model = Classifier(backbone, 512, 4).train()
    model.backbone.conv1.requires_grad_(False)  # the stem stays frozen
    model.backbone.layer1.requires_grad_(False)
    frozen = {name: p.copy() for name, p in model.named_parameters() if not p.requires_grad}
    trained = {name: p.copy() for name, p in model.named_parameters() if p.requires_grad}
    statistics = {name: b.copy() for name, b in model.named_buffers()}
    assert len(frozen) == 1 + 2 * 2 * 3 and len(trained) == 62 - len(frozen) + 2 - 2  # the old fc is gone
    x, target = small_images(8, seed=3), np.arange(8) % 4
    opt = avalon.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    losses = []
    for _ in range(4):
        loss, grads = avalon.grad(lambda m, v, t: avalon.nn.functional.cross_entropy(m(v), t), model, x, target)
        opt.step(grads[0])
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    for name, before in frozen.items():
        np.testing.assert_array_equal(model.get_parameter(name), before, err_msg=name)
    changed = [name for name, before in trained.items() if not np.allclose(model.get_parameter(name), before)]
    assert set(changed) == set(trained)
    moved = [name for name, before in statistics.items() if not np.allclose(model.get_buffer(name), before)]
    assert set(moved) == set(statistics)  # every BatchNorm's running statistics, the frozen ones' too


def test_default_export_to_a_file_with_external_weights(tmp_path):
    """`torch.onnx.export(model, args, path)` with every default (dynamo, optimized) writes the weights
    to `<model>.onnx.data` beside the model; loading the path reads them from there."""
    torch_model, x = resnet18(), small_images()
    path = tmp_path / "resnet18.onnx"
    torch.onnx.export(torch_model, (torch.from_numpy(x),), str(path), verbose=False)
    assert (tmp_path / "resnet18.onnx.data").stat().st_size > 10 * path.stat().st_size
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(avalon.onnx.load(path)(x), expected, rtol=1e-4, atol=2e-5)


def test_a_model_exported_in_training_mode_trains_with_batch_statistics():
    """`training=TrainingMode.TRAINING` writes BatchNormalization with training_mode=1: outputs use the
    batch's statistics, the running mean updates as torch's, the running variance as the ONNX spec says
    (with the batch's biased variance, where torch uses the unbiased one)."""
    from tests.onnx.exports import cnn, images

    torch_model, x = cnn().train(), images(4)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch_model, (torch.from_numpy(x),), f, dynamo=False, do_constant_folding=False,
                          training=torch.onnx.TrainingMode.TRAINING, input_names=["x"])
    ours = avalon.onnx.load(f.getvalue()).train()
    with torch.no_grad():  # tracing ran the model in training mode: start both from the exported statistics
        for name, value in ours.named_buffers():
            torch_model.get_buffer(name).copy_(torch.from_numpy(value))
    seen = {}

    def keep_input(module, args, out):
        seen["x"] = args[0].detach().numpy()

    torch_model[1].register_forward_hook(keep_input)
    old_var = ours.get_buffer("1.running_var").copy()
    np.testing.assert_allclose(ours(x), torch_model(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.get_buffer("1.running_mean"), torch_model.get_buffer("1.running_mean").numpy(),
                               rtol=1e-5, atol=1e-6)
    biased = seen["x"].var(axis=(0, 2, 3))
    np.testing.assert_allclose(ours.get_buffer("1.running_var"), 0.9 * old_var + 0.1 * biased, rtol=1e-5, atol=1e-6)
