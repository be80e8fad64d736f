"""avalon.save / avalon.load: exact round trips, atomic writes, clear errors on damaged files, nothing changed."""
import json
import os

import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.optim as optim
from avalon.io import CheckpointError, CorruptCheckpointError

ALL_DTYPES = [np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.float16, np.uint32, np.int32, np.float32,
              np.uint64, np.int64, np.float64]


def _model():
    return nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))


def _copies(model):
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


def _assert_same(a, b):
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        np.testing.assert_array_equal(a[key], b[key])


@pytest.fixture
def path(tmp_path):
    return tmp_path / "model.safetensors"


def test_module_round_trips_exactly(path, rng):
    model = _model()
    model.train()
    model(rng.standard_normal((8, 3)).astype(np.float32))  # moves the running statistics
    avalon.save(model, path)
    loaded = avalon.load(path)
    _assert_same(loaded, _copies(model))
    assert loaded["1.num_batches_tracked"].dtype == np.int64
    other = _model()
    other.load_state_dict(loaded)
    other.eval()
    model.eval()
    x = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(other(x), model(x))


def test_metadata_names_the_classes(path):
    avalon.save(_model(), path, metadata={"epoch": 3})
    info = avalon.io.read_metadata(path)
    assert info["class"].endswith("Sequential") and info["modules"]["1"] == "BatchNorm1d"
    assert info["dtypes"]["1.num_batches_tracked"] == "int64" and info["metadata"] == {"epoch": 3}
    assert info["format_version"] == avalon.io.FORMAT_VERSION == 1


@pytest.mark.parametrize("shape", [(), (0, 3), (2, 3, 1)])
def test_every_dtype_and_shape_round_trips(path, rng, shape):
    state = {np.dtype(d).name: (rng.standard_normal(shape) * 50).astype(d) for d in ALL_DTYPES}
    avalon.save(state, path)
    _assert_same(avalon.load(path), state)


def test_training_state_round_trips_with_its_nesting(path, rng):
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.01)
    opt.step([rng.standard_normal(p.shape).astype(np.float32) for p in model.parameters()])
    sched = optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4])
    sched.step()
    checkpoint = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                  "epoch": 1, "best": float("inf"), "name": "run", "pair": (1, 2.5), "nothing": None}
    avalon.save(checkpoint, path)
    loaded = avalon.load(path)
    assert loaded["epoch"] == 1 and loaded["best"] == float("inf") and loaded["pair"] == (1, 2.5)
    assert loaded["nothing"] is None and loaded["name"] == "run"
    assert list(loaded["optimizer"]["state"]) == [0, 1]  # int keys stay ints
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    np.testing.assert_array_equal(loaded["optimizer"]["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    opt2 = optim.Adam(model.parameters())
    opt2.load_state_dict(loaded["optimizer"])
    sched2 = optim.lr_scheduler.MultiStepLR(opt2, milestones=[2, 4])
    sched2.load_state_dict(loaded["scheduler"])
    for _ in range(4):
        sched.step()
        sched2.step()
        assert sched.get_last_lr() == sched2.get_last_lr()


def test_the_file_is_plain_safetensors_for_other_readers(path, rng):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    state = {"w": rng.standard_normal((3, 4)).astype(np.float32), "n": np.arange(5), "b": np.array([True])}
    avalon.save(state, path)
    _assert_same(dict(sorted(safetensors_numpy.load_file(str(path)).items())), dict(sorted(state.items())))
    other = path.with_name("other.safetensors")
    safetensors_numpy.save_file(state, str(other), metadata={"format": "np"})
    _assert_same(dict(sorted(avalon.load(other).items())), dict(sorted(state.items())))
    assert avalon.io.read_metadata(other) == {}


def _damaged(path, good):
    data = good.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    first = next(k for k in header if k != "__metadata__")

    def with_header(change):
        h = json.loads(data[8:8 + n])
        change(h)
        text = json.dumps(h).encode()
        return len(text).to_bytes(8, "little") + text + data[8 + n:]

    def shift(h):
        h[first]["data_offsets"][1] += 4

    def bad_shape(h):
        h[first]["shape"] = [-1]

    def bad_dtype(h):
        h[first]["dtype"] = "F32X"

    return {
        "empty": (b"", "fewer than the 8"),
        "cut in the length": (data[:5], "fewer than the 8"),
        "cut in the header": (data[:8 + n // 2], "truncated"),
        "cut in the data": (data[:-3], "truncated"),
        "trailing bytes": (data + b"\0" * 8, "belong to none"),
        "not json": (data[:8] + b"x" * n + data[8 + n:], "not valid JSON"),
        "huge header": ((2 ** 62).to_bytes(8, "little") + data[8:], "claims"),
        "overlapping tensors": (with_header(shift), "bytes for shape"),
        "negative shape": (with_header(bad_shape), "non-negative ints"),
        "unknown dtype": (with_header(bad_dtype), "not a safetensors dtype"),
        "not safetensors": (b"{}" + os.urandom(200), "claims|truncated|fewer"),
    }


@pytest.mark.parametrize("case", ["empty", "cut in the length", "cut in the header", "cut in the data",
                                  "trailing bytes", "not json", "huge header", "overlapping tensors",
                                  "negative shape", "unknown dtype", "not safetensors"])
def test_a_damaged_file_raises_a_clear_error_and_the_model_is_unchanged(path, tmp_path, case):
    model = _model()
    avalon.save(model, path)
    content, message = _damaged(path, path)[case]
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    target = _model()
    before = _copies(target)
    with pytest.raises(CheckpointError, match=message) as info:
        target.load_state_dict(avalon.load(bad))
    assert str(bad) in str(info.value)
    assert isinstance(info.value, CorruptCheckpointError) and isinstance(info.value, avalon.AvalonError)
    _assert_same(_copies(target), before)


def test_wrong_shapes_and_missing_keys_raise_and_change_nothing(path):
    avalon.save(nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 2)), path)
    target = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
    before = _copies(target)
    with pytest.raises(avalon.AvalonError, match="0.weight"):
        target.load_state_dict(avalon.load(path))
    _assert_same(_copies(target), before)
    avalon.save({"0.weight": np.zeros((5, 3), np.float32)}, path)
    with pytest.raises(avalon.AvalonError, match="missing keys: 0.bias"):
        target.load_state_dict(avalon.load(path))
    _assert_same(_copies(target), before)


def test_a_failed_save_leaves_the_old_file_intact(path, tmp_path, monkeypatch):
    model = _model()
    avalon.save(model, path)
    original = path.read_bytes()
    with pytest.raises(CheckpointError, match="cannot save a object"):
        avalon.save({"model": model.state_dict(), "extra": object()}, path)
    with pytest.raises(CheckpointError, match="complex128"):
        avalon.save({"z": np.zeros(2, np.complex128)}, path)

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        avalon.save({"w": np.ones(1000)}, path)
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]  # no temporary left behind


def test_a_new_file_gets_the_usual_permissions(path):
    umask = os.umask(0o022)
    try:
        avalon.save({"w": np.ones(2)}, path)
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("value,message", [
    ({1.5: np.ones(2)}, "keys must be strings or ints"),
    ({"a.b": np.ones(1), "a": {"b": np.ones(1)}}, "both be stored under the name 'a.b'"),
    ({"s": {1, 2}}, "cannot save a set at s"),
    ({"__metadata__": np.ones(2)}, "reserves that name"),
    ({"m": {"x": np.ones(1)}}, None),
])
def test_what_can_and_cannot_be_saved(path, value, message):
    if message is None:
        avalon.save(value, path)
        np.testing.assert_array_equal(avalon.load(path)["m"]["x"], [1.0])
        return
    with pytest.raises(CheckpointError, match=message):
        avalon.save(value, path)
    assert not path.exists()


def _cycle():
    value = {"w": np.ones(1)}
    value["again"] = [value]
    return value


def _nested(depth):
    value = np.ones(1)
    for _ in range(depth):
        value = {"a": value}
    return value


def _deep_list(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("value,metadata,message", [
    (_cycle(), None, "the dict at again.0 contains itself"),
    (_nested(5000), None, "nested more than 100 containers deep"),
    ({"w": np.ones(1)}, {"m": _deep_list(5000)}, "nested too deeply"),
])
def test_cycles_and_deep_nesting_are_refused_before_writing(path, value, metadata, message):
    with pytest.raises(CheckpointError, match=message):
        avalon.save(value, path, metadata=metadata)
    assert not path.exists()


def test_nesting_up_to_the_limit_round_trips(path):
    avalon.save(_nested(99), path)
    value = avalon.load(path)
    for _ in range(99):
        value = value["a"]
    np.testing.assert_array_equal(value, [1.0])


@pytest.mark.parametrize("dtype", [">f4", ">i8", ">f8", "<u2"])
def test_arrays_of_either_byte_order_round_trip(path, dtype):
    values = np.arange(6).astype(dtype).reshape(2, 3)
    avalon.save({"w": values}, path)
    loaded = avalon.load(path)["w"]
    assert loaded.dtype == values.dtype.newbyteorder("=")
    np.testing.assert_array_equal(loaded, values)


def test_a_pytorch_file_points_at_load_torch_state_dict(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(CheckpointError, match="load_torch_state_dict"):
        avalon.load(path)
    with pytest.raises(CheckpointError, match="load_torch_state_dict"):
        avalon.io.read_metadata(path)


def test_an_npz_archive_points_at_np_load(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, w=np.ones(2))
    with pytest.raises(CheckpointError, match=r"numpy .npz archive.*np.load\(path\)"):
        avalon.load(path)


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        avalon.load(tmp_path / "absent.safetensors")
    with pytest.raises(CheckpointError, match="does not exist"):
        avalon.save({"w": np.ones(1)}, tmp_path / "absent" / "w.safetensors")


def test_a_newer_format_asks_for_an_upgrade(path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    info = json.dumps({"format_version": 99, "avalon_version": "9.0", "tree": {"value": 1}})
    safetensors_numpy.save_file({"w": np.ones(1)}, str(path), metadata={"avalon": info})
    with pytest.raises(CheckpointError, match="upgrade avalon"):
        avalon.load(path)


def test_saving_through_a_symlink_replaces_the_file_it_points_to(tmp_path):
    run = tmp_path / "run3"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"old")
    link = tmp_path / "latest.safetensors"
    link.symlink_to(run / "model.safetensors")
    avalon.save({"w": np.arange(3.0)}, link)
    assert link.is_symlink()  # as torch.save writes through it
    np.testing.assert_array_equal(avalon.load(run / "model.safetensors")["w"], np.arange(3.0))
    assert sorted(os.listdir(run)) == ["model.safetensors"] and sorted(os.listdir(tmp_path)) == ["latest.safetensors",
                                                                                                  "run3"]
