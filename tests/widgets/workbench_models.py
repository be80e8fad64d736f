"""Small models and functions the widget tests (and the browser test's notebook) draw."""
import numpy as np

import avalon.nn as nn


class Block(nn.Module):
    """One residual-free block; stacked copies are identical, so the graph can roll them up."""

    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return np.tanh(self.fc(x))


class Encoder(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.layers = nn.ModuleList([Block(width) for _ in range(depth)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class Net(nn.Module):
    """encoder.layers.0 … encoder.layers.{depth-1}, then a head."""

    def __init__(self, width=4, depth=3, classes=2):
        super().__init__()
        self.encoder = Encoder(width, depth)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.encoder(x))


def mse(model, x, y):
    return ((model(x) - y) ** 2).mean()


def net_and_data(width=4, depth=3, batch=5, seed=0):
    rng = np.random.default_rng(seed)
    import avalon

    avalon.manual_seed(seed)
    model = Net(width, depth)
    x = rng.standard_normal((batch, width)).astype(np.float32)
    y = rng.standard_normal((batch, 2)).astype(np.float32)
    return model, x, y


def two_layer(W1, W2, x):
    """A tiny function without modules: every node is drawn."""
    h = np.tanh(x @ W1)
    return ((h @ W2) ** 2).mean()


def with_nan(W, x):
    """sqrt of a product with negative entries: NaN values, and NaN gradients from the sqrt's rule."""
    with np.errstate(invalid="ignore"):
        y = np.sqrt(x @ W)  # NaN-LINE
        return (y * 1.0).sum()


def three_problems(W, x):
    """Three unsupported constructs, on the lines marked PROBLEM."""
    h = x @ W
    if h.sum() > 0:  # PROBLEM bool
        h = h * 2
    rows = [r * 1 for r in h]  # PROBLEM iteration
    top = h[:1]  # a view of h, still held
    h[0] = 1.0  # PROBLEM setitem
    return h.sum() + rows[0].sum() + top.sum()


def marked_lines(fn, marker):
    """Line numbers of this file's lines containing `marker` inside `fn`."""
    import inspect

    lines, start = inspect.getsourcelines(fn)
    return [start + i for i, line in enumerate(lines) if marker in line]
