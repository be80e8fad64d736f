"""avalon.onnx.export of five Avalon models and a numpy function: the file passes the ONNX checker
(full check), onnxruntime reproduces Avalon's outputs, and a dynamic batch runs at another size."""
import io

import numpy as np
import onnx
import onnxruntime
import pytest

import avalon
import avalon.nn as nn
import avalon.onnx


def run(data, *inputs):
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})


def exported(model, x, **options):
    f = io.BytesIO()
    model_proto = avalon.onnx.export(model, x, f, **options)
    data = f.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    assert model_proto.SerializeToString() == data
    return data


def repeated(x, n):
    """x with n rows along axis 0, its rows repeated cyclically."""
    return np.take(x, np.arange(n) % x.shape[0], axis=0)


def mlp():
    avalon.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 16), nn.Tanh(), nn.Dropout(0.2),
                         nn.Linear(16, 3), nn.LogSoftmax(dim=1)).eval()


def cnn():
    """Conv, BatchNorm (statistics moved by a few training steps), ReLU, max and average pooling, a
    grouped strided conv, adaptive pooling, a Linear head."""
    avalon.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 4, 3, stride=2, padding=1, groups=2), nn.BatchNorm2d(4), nn.Hardswish(),
                          nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5))
    for _ in range(2):
        model(np.random.default_rng(3).standard_normal((4, 3, 8, 8)).astype(np.float32) * 2 + 0.5)
    return model.eval()


class Block(nn.Module):
    def __init__(self, channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(channels[0], channels[1], 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels[1])
        self.conv2 = nn.Conv2d(channels[1], channels[1], 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels[1])
        self.downsample = None if stride == 1 and channels[0] == channels[1] else nn.Sequential(
            nn.Conv2d(channels[0], channels[1], 1, stride=stride, bias=False), nn.BatchNorm2d(channels[1]))

    def forward(self, x):
        skip = x if self.downsample is None else self.downsample(x)
        return nn.functional.relu(self.bn2(self.conv2(nn.functional.relu(self.bn1(self.conv1(x))))) + skip)


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = nn.Sequential(Block((8, 8), 1), Block((8, 16), 2))
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(self.layer1(self.stem(x)).mean(axis=(2, 3)))


def resnet():
    avalon.manual_seed(0)
    return ResNet().eval()


class Classifier(nn.Module):
    """Embedding, a batch-first LSTM, its last step's output through a Linear head."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.lstm = nn.LSTM(6, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, tokens):
        out, (h, c) = self.lstm(self.embed(tokens))
        return self.head(out[:, -1] + h[0] * 0.5 + c[-1] * 0.25)


def lstm():
    avalon.manual_seed(0)
    return Classifier().eval()


def transformer():
    avalon.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True)
    return nn.TransformerEncoder(layer, 2).eval()


rng = np.random.default_rng(1)
MODELS = {
    "mlp": (mlp, rng.standard_normal((4, 6)).astype(np.float32)),
    "cnn": (cnn, rng.standard_normal((4, 3, 8, 8)).astype(np.float32)),
    "resnet": (resnet, rng.standard_normal((4, 3, 8, 8)).astype(np.float32)),
    "lstm": (lstm, rng.integers(0, 10, (4, 5))),
    "transformer": (transformer, rng.standard_normal((4, 5, 8)).astype(np.float32)),
}


@pytest.mark.parametrize("name", MODELS)
def test_model_matches_onnxruntime(name):
    make, x = MODELS[name]
    model = make()
    (y,) = run(exported(model, x), x)
    np.testing.assert_allclose(y, np.asarray(model(x)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_dynamic_batch_runs_at_another_size(name):
    make, x = MODELS[name]
    model = make()
    data = exported(model, x, input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}})
    graph = onnx.load_from_string(data).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    x7 = repeated(x, 7)
    (y,) = run(data, x7)
    np.testing.assert_allclose(y, np.asarray(model(x7)), rtol=1e-4, atol=1e-5)


def test_parameters_are_named_initializers_and_nodes_carry_scopes():
    model = resnet()
    graph = onnx.load_from_string(exported(model, MODELS["resnet"][1])).graph
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    for name, value in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue  # not used by the forward in eval mode
        np.testing.assert_array_equal(initializers[name], np.asarray(value))
    names = [n.name for n in graph.node]
    assert any(n.startswith("/layer1/1/downsample/0/Conv") for n in names)
    assert any(n.startswith("/layer1/0/conv2/Conv") for n in names)


def numpy_function(a, b):
    h = np.tanh(a @ b)
    return np.maximum(h, 0.1).sum(axis=1) + np.exp(-a[:, :2]).mean(), np.where(h > 0, h, -h)


def test_numpy_function_exports_with_several_outputs(tmp_path):
    a = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal((3, 5)).astype(np.float32)
    path = tmp_path / "f.onnx"
    avalon.onnx.export(numpy_function, (a, b), path, output_names=["total"])
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["a", "b"]
    assert [o.name for o in model.graph.output] == ["total", "output_1"]
    for got, want in zip(run(path.read_bytes(), a, b), numpy_function(a, b)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def mean_over_batch(a):
    return a - a.sum(axis=0) / a.shape[0], a * (1 / a.shape[0])


def test_numbers_computed_from_the_dynamic_batch_follow_it():
    a = rng.standard_normal((3, 4)).astype(np.float32)
    data = exported(mean_over_batch, a, dynamic_axes={"a": {0: "batch"}})
    a7 = repeated(a, 7) + 1
    for got, want in zip(run(data, a7), mean_over_batch(a7)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_training_mode_batch_norm_uses_the_batch_statistics_at_any_batch():
    model = cnn().train()
    x = MODELS["cnn"][1]
    state = {k: np.array(v) for k, v in model.state_dict().items()}
    data = exported(model, x, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    assert all(np.array_equal(v, np.asarray(model.state_dict()[k])) for k, v in state.items())  # untouched
    assert "BatchNormalization" not in {n.op_type for n in onnx.load_from_string(data).graph.node}
    x7 = repeated(x, 7) * 1.5
    (y,) = run(data, x7)
    np.testing.assert_allclose(y, np.asarray(model(x7)), rtol=1e-4, atol=1e-5)


def test_training_mode_dropout_draws_a_new_mask_in_onnxruntime():
    model = nn.Sequential(nn.Linear(6, 64), nn.Dropout(0.25)).train()
    x = MODELS["mlp"][1]
    data = exported(model, x, input_names=["x"], dynamic_axes={"x": [0]})
    ops = {n.op_type for n in onnx.load_from_string(data).graph.node}
    assert "RandomUniformLike" in ops
    x50 = repeated(x, 50)
    plain = np.asarray(model.eval()(x50))
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    first, second = (session.run(None, {"x": x50})[0] for _ in range(2))
    kept = first != 0
    np.testing.assert_allclose(first[kept], plain[kept] / 0.75, rtol=1e-5, atol=1e-6)
    assert 0.2 < 1 - kept.mean() < 0.3  # about p of 3200 values dropped
    assert not np.array_equal(first, second)


def masked(x, scale, *, mask, shift=1.0):
    return np.where(mask, x * scale, shift)


def test_a_last_dict_in_args_holds_keyword_arguments():
    x = MODELS["mlp"][1]
    mask = x[0] > 0  # one row, broadcast over the dynamic batch
    data = exported(masked, (x, np.array(2.0, np.float32), {"mask": mask}), input_names=["x", "scale", "mask"],
                    dynamic_axes={"x": [0]})
    assert [i.name for i in onnx.load_from_string(data).graph.input] == ["x", "scale", "mask"]
    x7 = repeated(x, 7)
    (y,) = run(data, x7, np.array(3.0, np.float32), ~mask)
    np.testing.assert_array_equal(y, masked(x7, np.float32(3.0), mask=~mask))


class Positions(nn.Module):
    """Sequence-first input plus a slice of a positional table as long as the input (`pe[:x.size(0)]`)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("pe", np.arange(40, dtype=np.float32).reshape(20, 1, 2) / 10)

    def forward(self, x):
        return x + self.pe[:x.shape[0]] * x[-1] + self.pe[x.shape[0] - 1:x.shape[0] + 1].sum()


def test_slices_as_long_as_a_dynamic_axis_follow_it():
    model = Positions()
    x = rng.standard_normal((5, 3, 2)).astype(np.float32)
    data = exported(model, x, input_names=["x"], dynamic_axes={"x": {0: "length", 1: "batch"}})
    x9 = rng.standard_normal((9, 4, 2)).astype(np.float32)
    (y,) = run(data, x9)
    np.testing.assert_allclose(y, np.asarray(model(x9)), rtol=1e-5, atol=1e-6)


class CausalAttention(nn.Module):
    """A GPT-style block whose causal mask and positions are built from the input's length
    (np.tril(np.ones((T, T))), np.arange(T)), as model code often writes them."""

    def __init__(self):
        super().__init__()
        self.qkv, self.pos = nn.Linear(8, 24), nn.Embedding(16, 8)

    def forward(self, x):
        length = x.shape[1]
        x = x + self.pos(np.arange(length))
        q, k, v = avalon.chunk(self.qkv(x), 3, dim=-1)
        scores = (q @ k.transpose(0, 2, 1)) / np.sqrt(8.0)
        scores = np.where(np.tril(np.ones((length, length), bool)), scores, -np.inf)
        bias = np.triu(np.full((1, length, length), -1e4, np.float32), 1)  # the same mask, additive
        return avalon.softmax(scores + bias, dim=-1) @ v


@pytest.mark.parametrize("opset", [11, None])
def test_masks_and_positions_built_from_a_dynamic_length_follow_it(opset):
    """The mask and the positions become Range and comparisons of the computed length (Range exists
    from opset 11); exported at length 5, run at 9 and 2."""
    avalon.manual_seed(0)
    model = CausalAttention().eval()
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    data = exported(model, x, input_names=["x"], dynamic_axes={"x": {0: "batch", 1: "length"}}, opset_version=opset)
    assert "Range" in {n.op_type for n in onnx.load_from_string(data).graph.node}
    for shape in ((3, 9, 8), (1, 2, 8)):
        other = rng.standard_normal(shape).astype(np.float32)
        (y,) = run(data, other)
        np.testing.assert_allclose(y, np.asarray(model(other)), rtol=1e-4, atol=1e-5)
