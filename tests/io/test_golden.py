"""Checkpoints written by format 1 keep loading, with their values (the files are committed, never rewritten)."""
import os

import numpy as np

import avalon
import avalon.nn as nn
import avalon.optim as optim

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")

W0 = (np.arange(12, dtype=np.float32).reshape(4, 3) - 5.5) / 4
B0 = np.array([0.5, -0.25, 1.0, 0.0], np.float32)
W2 = (np.arange(8, dtype=np.float32).reshape(2, 4) - 3) / 8
B2 = np.array([0.125, -1.0], np.float32)


def test_golden_mlp_loads_with_its_values_and_description():
    state = avalon.load(os.path.join(GOLDEN, "mlp.safetensors"))
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for key, expected in zip(state, [W0, B0, W2, B2]):
        assert state[key].dtype == np.float32
        np.testing.assert_array_equal(state[key], expected)
    info = avalon.io.read_metadata(os.path.join(GOLDEN, "mlp.safetensors"))
    assert info["format_version"] == 1
    assert info["modules"] == {"": "Sequential", "0": "Linear", "1": "ReLU", "2": "Linear"}
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model.load_state_dict(state)
    x = np.array([[1.0, -2.0, 0.5], [0.0, 1.0, 2.0]], np.float32)
    np.testing.assert_allclose(model(x), np.maximum(x @ W0.T + B0, 0) @ W2.T + B2, rtol=1e-6)


def test_golden_training_checkpoint_restores_model_and_optimizer():
    saved = avalon.load(os.path.join(GOLDEN, "checkpoint.safetensors"))
    assert saved["epoch"] == 7 and saved["tag"] == "golden"
    # one SGD step (lr 0.5, momentum 0.75) with gradients of 0.25 everywhere
    for key, before in zip(["0.weight", "0.bias", "2.weight", "2.bias"], [W0, B0, W2, B2]):
        np.testing.assert_array_equal(saved["model"][key], before - 0.125)
    assert sorted(saved["optimizer"]["state"]) == [0, 1, 2, 3]
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model.load_state_dict(saved["model"])
    opt = optim.SGD(model.parameters(), lr=0.1)
    opt.load_state_dict(saved["optimizer"])
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[0]["momentum"] == 0.75
    opt.step([np.full(p.shape, 0.25, p.dtype) for p in model.parameters()])
    # buffer 0.75 * 0.25 + 0.25 = 0.4375; step 0.5 * 0.4375
    np.testing.assert_array_equal(model[0].bias, B0 - 0.125 - 0.21875)
    assert avalon.io.read_metadata(os.path.join(GOLDEN, "checkpoint.safetensors"))["metadata"] == \
        {"note": "format 1 golden file"}
