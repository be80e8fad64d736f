"""The PyTorch models of the export tests (a ResNet-18, an LSTM classifier, a Transformer encoder, an
MLP with RMSNorm, recurrent layers, and the MLP and CNN of exports.py), small inputs for them, and
`export_with`, which exports a model by one of the exporter settings in SETTINGS."""
import io
import os
import tempfile
import warnings

import numpy as np
import torch
from torch import nn

from tests.onnx.exports import cnn, images, mlp, rows

# setting -> (torch.onnx.export keywords, whether every parameter keeps its state_dict name)
SETTINGS = {
    "legacy": (dict(dynamo=False), False),  # constant folding: BatchNorm folded, weights transposed
    "legacy-names": (dict(dynamo=False, do_constant_folding=False), True),
    "legacy-training": (dict(dynamo=False, training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False),
                        True),
    "dynamo": (dict(dynamo=True), False),  # optimize=True: BatchNorm folded, weights renamed
    "dynamo-names": (dict(dynamo=True, optimize=False), True),
    "dynamo-opset23": (dict(dynamo=True, optimize=False, opset_version=23), True),
}


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block: two 3×3 convolutions with BatchNorm, and a 1×1 projection
    of the shortcut when the shape changes."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    """torchvision's resnet18 (same layers and state_dict names), random weights."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths, inplanes = (64, 128, 256, 512), 64
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(inplanes, planes, stride),
                                                         BasicBlock(planes, planes)))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class LSTMClassifier(nn.Module):
    def __init__(self, features=6, hidden=8, classes=3):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class Recurrent(nn.Module):
    """A two-layer bidirectional GRU, a ReLU RNN or a two-layer bidirectional time-first LSTM under a
    Linear, reading the output and the final states (so every ONNX output of the op is used)."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.rnn = {"gru": lambda: nn.GRU(6, 5, num_layers=2, batch_first=True, bidirectional=True),
                    "rnn": lambda: nn.RNN(6, 5, nonlinearity="relu", batch_first=True),
                    "lstm": lambda: nn.LSTM(6, 5, num_layers=2, bidirectional=True)}[kind]()
        self.fc = nn.Linear(5 if kind == "rnn" else 10, 3)

    def forward(self, x):
        if self.kind == "lstm":
            out, (h, c) = self.rnn(x.transpose(0, 1))
            return self.fc(out[-1]) + h.sum(0).sum(-1, keepdim=True) + c.mean()
        out, h = self.rnn(x)
        return self.fc(out[:, -1]) + h.sum()


def recurrent(kind):
    torch.manual_seed(0)
    return Recurrent(kind).eval()


def rms_mlp():
    """An MLP with RMSNorm and SiLU: an opset 23 export writes RMSNormalization for it."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.RMSNorm(16), nn.SiLU(), nn.Linear(16, 3)).eval()


def _settled(model, x):
    """A few training-mode calls so BatchNorm's running statistics are not their initial values."""
    with torch.no_grad():
        model.train()
        for seed in range(2):
            model(x * (1.5 + seed) + 0.3)
    return model.eval()


def resnet18():
    torch.manual_seed(0)
    return _settled(ResNet18(), torch.randn(2, 3, 32, 32))


def lstm():
    torch.manual_seed(0)
    return LSTMClassifier().eval()


def transformer():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False).eval()
    with torch.no_grad():  # the layers start as copies of one; an optimizing exporter would store them once
        for p in model.layers[1].parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def small_images(batch=2, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, 3, 32, 32)).astype(np.float32)


def series(batch=2, seed=1, length=5, features=6):
    return np.random.default_rng(seed).standard_normal((batch, length, features)).astype(np.float32)


def tokens(batch=2, seed=1):
    return series(batch, seed, length=5, features=16)


MODELS = {"mlp": (mlp, rows), "cnn": (cnn, images), "resnet18": (resnet18, small_images), "lstm": (lstm, series),
          "transformer": (transformer, tokens), "rms_mlp": (rms_mlp, rows)}


# models the legacy (TorchScript) exporter cannot export: it has no form for aten::rms_norm
DYNAMO_ONLY = {"rms_mlp"}


def export_with(setting, model, x):
    """The ONNX bytes of `model` exported by `setting` (a key of SETTINGS) with a dynamic batch axis;
    a dynamo export's external weights are folded back into the bytes."""
    options, _ = SETTINGS[setting]
    x = torch.from_numpy(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not options["dynamo"]:
            f = io.BytesIO()
            torch.onnx.export(model, (x,), f, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "batch"}}, **options)
            return f.getvalue()
        program = torch.onnx.export(model, (x,), input_names=["x"], output_names=["y"],
                                    dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), verbose=False,
                                    **options)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.onnx")
            program.save(path, external_data=False)
            with open(path, "rb") as f:
                return f.read()
