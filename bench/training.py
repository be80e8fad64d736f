"""A whole training step, side by side with PyTorch: forward, backward and an Adam update of the same
model on the same batch, for an MLP on 28×28 inputs and a LeNet-5 CNN.

Run: `python bench/training.py` (one process; one BLAS/intra-op thread for both libraries; medians of
interleaved rounds; prints a table and the ratio avalon / torch per step — below 1 is faster).
"""
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import avalon  # noqa: E402

ROUNDS, STEPS = 7, 10


def mlp(nn, F):
    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.fc3 = nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)

        def forward(self, x):
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))

    return MLP()


def lenet(nn, F):
    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))

    return LeNet()


def avalon_stepper(build, x, y, state):
    import avalon.nn as nn
    import avalon.nn.functional as F

    model = build(nn, F)
    model.load_state_dict(state)
    opt = avalon.optim.Adam(model.parameters(), lr=1e-3)

    def loss_fn(model, x, y):
        return F.cross_entropy(model(x), y)

    def step():
        loss, grads = avalon.grad(loss_fn, model, x, y, argnums=0)
        opt.step(grads[0])
        return loss

    return step


def torch_stepper(torch, build, x, y, state):
    import torch.nn as nn
    import torch.nn.functional as F

    model = build(nn, F)
    model.load_state_dict(state)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(tx), ty)
        loss.backward()
        opt.step()
        return loss

    return step


def median_step(step):
    start = time.perf_counter()
    for _ in range(STEPS):
        step()
    return (time.perf_counter() - start) / STEPS


def main():
    try:
        import torch
    except ImportError:
        sys.exit("bench/training.py compares against PyTorch: pip install torch==2.13.0")
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(f"{'model':10} {'batch':>5} {'avalon':>10} {'torch':>10} {'ratio':>7}")
    for name, build, batch in [("MLP", mlp, 64), ("LeNet-5", lenet, 32)]:
        x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, batch)
        import torch.nn as tnn
        import torch.nn.functional as tF

        state = build(tnn, tF).state_dict()
        steppers = {"avalon": avalon_stepper(build, x, y, state), "torch": torch_stepper(torch, build, x, y, state)}
        first = {k: float(s().detach() if k == "torch" else s()) for k, s in steppers.items()}  # warm-up: avalon traces and compiles here
        assert abs(first["avalon"] - first["torch"]) < 1e-4, f"{name}: the two losses differ: {first}"
        times = {k: [] for k in steppers}
        for _ in range(ROUNDS):  # interleaved, so drifts in machine load hit both alike
            for k, s in steppers.items():
                times[k].append(median_step(s))
        a, t = statistics.median(times["avalon"]), statistics.median(times["torch"])
        print(f"{name:10} {batch:5d} {a * 1e3:8.2f}ms {t * 1e3:8.2f}ms {a / t:7.2f}")


if __name__ == "__main__":
    main()
