"""Small PyTorch models exported to ONNX bytes (the TorchScript exporter: dynamo=False, which needs no
onnxscript), with names kept: do_constant_folding=False keeps every weight as its own named
initializer, so the ONNX names are torch's state_dict keys."""
import io
import warnings

import numpy as np
import torch


def export(model, x, dynamic_axes=None, **options):
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), f, dynamo=False, do_constant_folding=False, input_names=["x"],
                          output_names=["y"], dynamic_axes=dynamic_axes or {"x": {0: "batch"}},
                          **options)
    return f.getvalue()


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.GELU(), torch.nn.Linear(16, 16), torch.nn.Tanh(),
                               torch.nn.Dropout(0.2), torch.nn.Linear(16, 3), torch.nn.LogSoftmax(dim=1)).eval()


def cnn(trained_statistics=True):
    """Conv + BatchNorm + ReLU + MaxPool, a strided Conv, global average pooling, a Linear head; a few
    training-mode calls first so the running statistics are not their initial values."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 4, 3, stride=2, padding=1, groups=2),
                                torch.nn.BatchNorm2d(4), torch.nn.Hardswish(), torch.nn.AvgPool2d(2),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 5))
    if trained_statistics:
        with torch.no_grad():
            for _ in range(3):
                model(torch.randn(4, 3, 8, 8) * 2 + 0.5)
    return model.eval()


def images(batch=2, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, 3, 8, 8)).astype(np.float32)


def rows(batch=4, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, 6)).astype(np.float32)


class SelfAttention(torch.nn.Module):
    """One attention block written with view/transpose/softmax/LayerNorm: its export computes the
    head shapes from Shape → Gather → Concat → Reshape, so batch and length must stay dynamic."""

    def __init__(self, width=8, heads=2):
        super().__init__()
        self.heads, self.qkv, self.norm = heads, torch.nn.Linear(width, 3 * width), torch.nn.LayerNorm(width)

    def forward(self, x):
        batch, length, width = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attention = torch.softmax(q @ k.transpose(-1, -2) / (width // self.heads) ** 0.5, dim=-1)
        return self.norm((attention @ v).transpose(1, 2).reshape(batch, length, width) + x)


def attention():
    torch.manual_seed(0)
    return SelfAttention().eval()


def sequences(batch=2, length=5, seed=1):
    return np.random.default_rng(seed).standard_normal((batch, length, 8)).astype(np.float32)
