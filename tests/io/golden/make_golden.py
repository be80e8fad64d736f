"""Writes the golden checkpoints of checkpoint format 1. Run by hand once per format version, never by tests:

    python tests/io/golden/make_golden.py

The values are exact binary fractions given by formulas, which tests/io/test_golden.py repeats.
"""
import os

import numpy as np

import avalon
import avalon.nn as nn
import avalon.optim as optim

HERE = os.path.dirname(os.path.abspath(__file__))


def mlp():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model.load_state_dict({
        "0.weight": (np.arange(12, dtype=np.float32).reshape(4, 3) - 5.5) / 4,
        "0.bias": np.array([0.5, -0.25, 1.0, 0.0], np.float32),
        "2.weight": (np.arange(8, dtype=np.float32).reshape(2, 4) - 3) / 8,
        "2.bias": np.array([0.125, -1.0], np.float32),
    })
    return model


def main():
    model = mlp()
    avalon.save(model, os.path.join(HERE, "mlp.safetensors"))
    opt = optim.SGD(model.parameters(), lr=0.5, momentum=0.75)
    opt.step([np.full(p.shape, 0.25, p.dtype) for p in model.parameters()])
    avalon.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 7, "tag": "golden"},
                os.path.join(HERE, "checkpoint.safetensors"), metadata={"note": "format 1 golden file"})


if __name__ == "__main__":
    main()
