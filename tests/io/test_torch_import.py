"""load_torch_state_dict: .pt/.pth through torch.load(weights_only=True), .safetensors without torch."""
import sys
import warnings

import numpy as np
import pytest

import avalon
import avalon.nn as nn
from avalon.io import CheckpointError, load_torch_state_dict

torch = pytest.importorskip("torch")


def _torch_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


def _avalon_model():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def _same_as_torch(state, reference):
    assert list(state) == list(reference)
    for key, tensor in reference.items():
        assert isinstance(state[key], np.ndarray)
        assert state[key].dtype == tensor.numpy().dtype, key
        np.testing.assert_array_equal(state[key], tensor.numpy())


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin"])
def test_torch_save_files_load_as_numpy_and_give_the_same_outputs(tmp_path, suffix):
    reference = _torch_model().eval()
    path = tmp_path / f"model{suffix}"
    torch.save(reference.state_dict(), path)
    state = load_torch_state_dict(path)
    _same_as_torch(state, reference.state_dict())
    model = _avalon_model()
    model.load_state_dict(state)
    model.eval()
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x), reference(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_a_training_checkpoint_keeps_its_nesting(tmp_path):
    reference = _torch_model()
    path = tmp_path / "ckpt.pt"
    torch.save({"model": reference.state_dict(), "epoch": 4, "lrs": [0.1, 0.01]}, path)
    loaded = load_torch_state_dict(path)
    assert loaded["epoch"] == 4 and loaded["lrs"] == [0.1, 0.01]
    _same_as_torch(loaded["model"], reference.state_dict())


def test_bfloat16_becomes_float32_exactly_and_silently(tmp_path):
    values = torch.tensor([1.5, -2.25, 3.0e5], dtype=torch.bfloat16)
    path = tmp_path / "bf16.pt"
    torch.save({"w": values, "i": torch.arange(3)}, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch casts into float32 parameters without a word: so do we
        state = load_torch_state_dict(path)
    assert state["w"].dtype == np.float32 and state["i"].dtype == np.int64
    np.testing.assert_array_equal(state["w"], values.float().numpy())


def test_a_pickled_object_is_refused_not_executed(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(_torch_model(), path)  # the whole module: a pickle of classes, not a state dict
    expected = r"(?s)^\S*model.pt was refused: it pickles the global torch.nn.modules.container.Sequential.*" \
               r"torch.save\(model.state_dict\(\), path\)"
    with pytest.raises(CheckpointError, match=expected) as info:
        load_torch_state_dict(path)
    assert "weights_only=False" not in str(info.value) and info.value.__suppress_context__


def test_safetensors_from_the_safetensors_package_and_from_avalon_need_no_torch(tmp_path, monkeypatch):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    reference = _torch_model().state_dict()
    packaged = tmp_path / "torch.safetensors"
    safetensors_torch.save_file(dict(reference), str(packaged))
    ours = tmp_path / "avalon.safetensors"
    avalon.save({k: v.numpy() for k, v in reference.items()}, ours)
    bf16 = tmp_path / "bf16.safetensors"
    half = torch.tensor([[0.5, -1.75], [2.0, 65280.0]], dtype=torch.bfloat16)
    safetensors_torch.save_file({"h": half}, str(bf16))
    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` now fails
    for path in (packaged, ours):
        state = load_torch_state_dict(path)
        assert sorted(state) == sorted(reference)
        for key, tensor in reference.items():
            np.testing.assert_array_equal(state[key], tensor.numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state = load_torch_state_dict(bf16)
    np.testing.assert_array_equal(state["h"], [[0.5, -1.75], [2.0, 65280.0]])
    with pytest.raises(CheckpointError, match="pip install torch"):
        load_torch_state_dict(tmp_path / "model.pt")


def test_missing_and_damaged_files(tmp_path):
    with pytest.raises(CheckpointError, match="no PyTorch checkpoint"):
        load_torch_state_dict(tmp_path / "absent.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(avalon.io.CorruptCheckpointError, match="bad.pt: the file: it is not a readable PyTorch"):
        load_torch_state_dict(bad)
