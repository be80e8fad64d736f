"""PyTorch exports load as trainable Modules: outputs match PyTorch and onnxruntime, names equal
torch's state_dict keys, gradients match torch's, the batch axis stays dynamic, BatchNorm trains."""
import numpy as np
import onnxruntime
import pytest
import torch

import avalon
import avalon.onnx
from tests.onnx.exports import attention, cnn, export, images, mlp, rows, sequences


def _runtime(data, x):
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("opset", [9, 13, 17])
@pytest.mark.parametrize("make, inputs", [(mlp, rows), (cnn, images), (attention, sequences)],
                         ids=["mlp", "cnn", "attention"])
def test_outputs_match_torch_and_onnxruntime(make, inputs, opset):
    model, x = make(), inputs()
    data = export(model, torch.from_numpy(x), opset_version=opset)
    ours = avalon.onnx.load(data)
    y = ours(x)
    np.testing.assert_allclose(y, model(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, _runtime(data, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make, inputs", [(mlp, rows), (cnn, images)], ids=["mlp", "cnn"])
def test_parameter_names_are_torch_state_dict_names(make, inputs):
    model = make()
    ours = avalon.onnx.load(export(model, torch.from_numpy(inputs())))
    expected = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    assert set(ours.state_dict()) == expected
    assert {k for k, _ in ours.named_parameters()} == {k for k, _ in model.named_parameters()}
    assert {k for k, _ in ours.named_buffers()} == {k for k, _ in model.named_buffers()} & expected
    for name, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, model.state_dict()[name].numpy())


def test_fresh_batchnorm_keeps_its_own_buffers():
    """torch stores equal initial weights once (running_var = Identity(weight)); each keeps its name."""
    model, x = cnn(trained_statistics=False), images()
    ours = avalon.onnx.load(export(model, torch.from_numpy(x)))
    assert {k for k, _ in ours.named_buffers()} == {"1.running_mean", "1.running_var", "5.running_mean",
                                                    "5.running_var"}
    assert ours.get_parameter("1.weight") is not ours.get_buffer("1.running_var")


@pytest.mark.parametrize("make, inputs", [(mlp, rows), (cnn, images)], ids=["mlp", "cnn"])
def test_gradients_match_torch(make, inputs):
    model, x = make(), inputs()
    ours = avalon.onnx.load(export(model, torch.from_numpy(x)))
    w = np.random.default_rng(2).standard_normal(model(torch.from_numpy(x)).shape).astype(np.float32)
    loss, grads = avalon.grad(lambda m, v: (m(v) * w).sum(), ours, x)
    (model(torch.from_numpy(x)) * torch.from_numpy(w)).sum().backward()
    assert len(list(grads[0])) == len(list(model.parameters()))
    for name, p in model.named_parameters():
        np.testing.assert_allclose(grads[0][name], p.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)


def test_dynamic_batch_axis_runs_at_other_sizes():
    model = cnn()
    ours = avalon.onnx.load(export(model, torch.from_numpy(images(2))))
    for batch in (1, 5):
        x = images(batch, seed=batch)
        np.testing.assert_allclose(ours(x), model(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_batch_and_length_stay_dynamic_through_shape_arithmetic():
    model = attention()
    ours = avalon.onnx.load(export(model, torch.from_numpy(sequences()), dynamic_axes={"x": {0: "b", 1: "n"}}))
    x = sequences(3, 7)
    np.testing.assert_allclose(ours(x), model(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_training_mode_updates_batchnorm_statistics_as_torch():
    model, x = cnn(), images(4)
    ours = avalon.onnx.load(export(model, torch.from_numpy(x)))
    ours.train()
    model.train()
    y = ours(x)
    np.testing.assert_allclose(y, model(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    for name in ("1.running_mean", "1.running_var", "5.running_mean", "5.running_var"):
        np.testing.assert_allclose(ours.get_buffer(name), model.state_dict()[name].numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=name)


def test_fine_tuning_lowers_the_loss():
    model, x = mlp(), rows(16)
    ours = avalon.onnx.load(export(model, torch.from_numpy(x)))
    target = np.arange(16) % 3
    opt = avalon.optim.SGD(ours.parameters(), lr=0.1)
    before = ours.get_parameter("0.weight").copy()
    losses = []
    for _ in range(5):
        loss, grads = avalon.grad(lambda m, v: -m(v)[np.arange(16), target].mean(), ours, x)
        opt.step(grads[0])
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    assert not np.allclose(ours.get_parameter("0.weight"), before)


def test_inputs_by_name_and_from_a_file(tmp_path):
    model, x = mlp(), rows()
    path = tmp_path / "mlp.onnx"
    path.write_bytes(export(model, torch.from_numpy(x)))
    ours = avalon.onnx.load(path)
    np.testing.assert_allclose(ours(x=x), ours(x), rtol=0, atol=0)
    assert ours.input_names == ["x"] and ours.output_names == ["y"]
