"""Layout time of the workbench's TapeView on a ResNet-18 forward+backward tape.

Targets (issue 4): the view opens in under 2 s, collapsed to at most ~150 visible nodes; opening one
module takes under 1 s. Printed, not asserted.

    .venv/bin/python bench/layout.py [--size 32]
"""
import argparse
import time

import numpy as np

import avalon
import avalon.nn as nn
from avalon.widgets import TapeView
from avalon.widgets import render


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision's resnet18 layout (conv1, bn1, maxpool, layer1…layer4 of two BasicBlocks, fc)."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        widths = [64, 128, 256, 512]
        cin = 64
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, width, stride),
                                                         BasicBlock(width, width, 1)))
            cin = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).reshape(x.shape[0], -1))


def loss_fn(model, x, y):
    return nn.functional.cross_entropy(model(x), y)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="image side (the tape's size does not depend on it)")
    opts = parser.parse_args()
    render.require_dot()
    avalon.manual_seed(0)
    model = ResNet18()
    x = np.random.default_rng(0).standard_normal((2, 3, opts.size, opts.size)).astype(np.float32)
    y = np.array([1, 3])
    tape, t_trace = timed(lambda: avalon.grad_tape(loss_fn, model, x, y))
    n_forward = sum(n.phase == "forward" for n in tape.nodes)
    print(f"ResNet-18 forward+backward tape: {len(tape.nodes)} nodes ({n_forward} forward), "
          f"traced in {t_trace:.2f} s (not part of the layout)")

    render.layout("digraph warm { a -> b }")  # the first `dot` process start is not the view's
    view, t_open = timed(lambda: TapeView(tape))
    shown = len(view.pane.graph.units())
    print(f"open TapeView:            {t_open:.3f} s  ({shown} units visible; target < 2 s, ≤ ~150 units)")

    g = view.pane.graph
    closed = [unit[1] for unit in g.units() if unit[0] in "sr"]  # one box per closed module
    worst = 0.0
    for key in closed[:6]:
        _, t = timed(lambda: view.expand(key))
        worst = max(worst, t)
        print(f"expand {key:<20} {t:.3f} s  ({len(g.units())} units)")
        view.collapse_all()
    _, t_select = timed(lambda: view.select("conv_weight_grad"))
    print(f"select a hidden node:     {t_select:.3f} s  (reveals its module)")
    _, t_all = timed(view.expand_all)
    print(f"open all (≤ {view.max_layout} units): {t_all:.3f} s  ({len(view.pane.graph.units())} units)")
    print(f"worst single expand:      {worst:.3f} s  (target < 1 s)")


if __name__ == "__main__":
    main()
