"""Forward hooks, a forward pre-hook and a tensor gradient hook as model code uses them: the
well-known "intermediate features" recipe (hooks store layer outputs and the wrapper returns them,
gradient included), an activation logger that stores detached outputs, an input-scaling pre-hook,
a removed hook, and a Grad-CAM style register_hook on the last feature map."""
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class SmallCNN(nn.Module):
    def __init__(self, num_classes=5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.ReLU(),
            nn.Conv2d(6, 8, 3, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(8 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, num_classes)
        # placeholder for the gradients
        self.gradients = None

    # hook for the gradients of the activations
    def activations_hook(self, grad):
        self.gradients = grad

    def forward(self, x):
        x = self.features(x)
        # register the hook
        h = x.register_hook(self.activations_hook)
        x = self.pool(x)
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)

    # method for the gradient extraction
    def get_activations_gradient(self):
        return self.gradients


class FeatureExtractor(nn.Module):
    def __init__(self, model: nn.Module, layers: Iterable[str]):
        super().__init__()
        self.model = model
        self.layers = layers
        self._features = {layer: torch.empty(0) for layer in layers}

        for layer_id in layers:
            layer = dict([*self.model.named_modules()])[layer_id]
            layer.register_forward_hook(self.save_outputs_hook(layer_id))

    def save_outputs_hook(self, layer_id: str) -> Callable:
        def fn(_, __, output):
            self._features[layer_id] = output
        return fn

    def forward(self, x: Tensor):
        logits = self.model(x)
        return logits, self._features


activation = {}


def get_activation(name):
    def hook(model, input, output):
        activation[name] = output.detach()
    return hook


def scale_input(module, args):
    return (args[0] * 0.5,)


def make_model():
    model = FeatureExtractor(SmallCNN(), layers=["features.2", "fc1"])
    model.model.fc2.register_forward_hook(get_activation('fc2'))
    model.model.features[3].register_forward_hook(get_activation('conv2'))
    model.model.fc1.register_forward_pre_hook(scale_input)
    handle = model.model.fc2.register_forward_hook(lambda m, inp, out: out * 0)
    handle.remove()
    return model


def loss_fn(model, x, y):
    logits, features = model(x)
    penalty = sum(f.pow(2).mean() for f in features.values())
    return F.cross_entropy(logits, y) + 0.1 * penalty


def example_batch():
    torch.manual_seed(0)
    return torch.randn(2, 3, 8, 8), torch.randint(0, 5, (2,))


def example_inputs():
    return example_batch()[:1]


def probe(model, x):
    """What the activation logger holds after a forward pass."""
    model(x)
    return dict(activation)


def after_backward(model):
    """What the Grad-CAM hook caught: the gradient of the loss at the last feature map."""
    return model.model.get_activations_gradient()
