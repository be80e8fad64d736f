"""Weights in an external data file: read from the model's folder, refused outside it or when truncated."""
import os

import numpy as np
import onnx
import pytest
import torch

import avalon.onnx
from avalon.onnx import OnnxError
from tests.onnx.exports import export, mlp, rows


def _save_external(tmp_path, location="weights.bin"):
    model, x = mlp(), rows()
    proto = onnx.load_from_string(export(model, torch.from_numpy(x)))
    onnx.save_model(proto, tmp_path / "mlp.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    return model, x


def _point_at(tmp_path, location):
    """Rewrite every external tensor of mlp.onnx to point at `location`."""
    proto = onnx.load(tmp_path / "mlp.onnx", load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    (tmp_path / "mlp.onnx").write_bytes(proto.SerializeToString())


def test_external_weights_load_from_the_models_folder(tmp_path):
    model, x = _save_external(tmp_path)
    ours = avalon.onnx.load(tmp_path / "mlp.onnx")
    np.testing.assert_allclose(ours(x), model(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    as_bytes = avalon.onnx.load((tmp_path / "mlp.onnx").read_bytes(), base_dir=tmp_path)
    np.testing.assert_array_equal(as_bytes(x), ours(x))


def test_bytes_with_external_weights_need_a_base_dir(tmp_path):
    _save_external(tmp_path)
    with pytest.raises(OnnxError, match="pass base_dir="):
        avalon.onnx.load((tmp_path / "mlp.onnx").read_bytes())


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/hostname", "sub/../../secret.bin"])
def test_paths_leaving_the_folder_are_refused(tmp_path, location):
    folder = tmp_path / "model"
    folder.mkdir()
    _save_external(folder)
    (tmp_path / "secret.bin").write_bytes(b"\0" * 4096)
    _point_at(folder, location)
    with pytest.raises(OnnxError, match="outside the model's folder"):
        avalon.onnx.load(folder / "mlp.onnx")


def test_a_symlink_leaving_the_folder_is_refused(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    _save_external(folder)
    os.replace(folder / "weights.bin", tmp_path / "weights.bin")
    os.symlink(tmp_path / "weights.bin", folder / "weights.bin")
    with pytest.raises(OnnxError, match="symlink"):
        avalon.onnx.load(folder / "mlp.onnx")


def test_a_truncated_data_file_is_refused_before_reading(tmp_path):
    _save_external(tmp_path)
    data = (tmp_path / "weights.bin").read_bytes()
    (tmp_path / "weights.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(OnnxError, match="truncated"):
        avalon.onnx.load(tmp_path / "mlp.onnx")
