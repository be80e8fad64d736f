"""Checkpoint files never fail raw: crafted and damaged files, hostile pickles, failed and killed saves.

Every malformed safetensors file raises `CorruptCheckpointError` naming the file and the entry that is
wrong, returns nothing and changes nothing; a `.pt` file that pickles code is refused with Avalon's own
message naming the blocked global; a save that fails for any reason leaves the old file intact and no
temporary file behind, and the temporary files of killed saves are removed by the next save.
"""
import errno
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import warnings

import numpy as np
import pytest

import avalon
import avalon.nn as nn
from avalon.io import CheckpointError, CheckpointWriteError, CorruptCheckpointError, atomic, load_torch_state_dict

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ---- a generator of malformed safetensors files --------------------------------------------------------

def _raw(header, data=b"", *, length=None):
    """A file from a header (a dict, or JSON text as str/bytes) and data bytes, written without Avalon."""
    if isinstance(header, (dict, list, int, float, type(None))):
        header = json.dumps(header)
    if isinstance(header, str):
        header = header.encode("utf-8")
    return (len(header) if length is None else length).to_bytes(8, "little") + header + data


def _good():
    """(header, data) of a small valid file: weight (2, 3) F32 at 0-24, bias (3,) F32 at 24-36."""
    weight = np.arange(6, dtype="<f4").reshape(2, 3)
    bias = np.ones(3, dtype="<f4")
    header = {"weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "bias": {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]}}
    return header, weight.tobytes() + bias.tobytes()


def _edit(**changes):
    """The good file with entries replaced: _edit(weight={"dtype": ...}) merges into weight's entry."""
    header, data = _good()
    for name, change in changes.items():
        if isinstance(change, dict) and isinstance(header.get(name), dict):
            header[name] = {**header[name], **change}
        else:
            header[name] = change
    return _raw(header, data)


def _nested(depth, leaf="1"):
    return "[" * depth + leaf + "]" * depth


def _avalon(info, tensors=None):
    """A file whose __metadata__["avalon"] is `info` (a dict or raw text) over the good file's tensors."""
    header, data = _good()
    header["__metadata__"] = {"avalon": info if isinstance(info, str) else json.dumps(info)}
    return _raw(header, data)


def _tree(tree, **extra):
    dtypes = {"weight": "float32", "bias": "float32"}
    return _avalon({"format_version": 1, "avalon_version": "0", "dtypes": dtypes, "tree": tree, **extra})


_GOOD_TREE = {"dict": [["weight", {"tensor": "weight"}], ["bias", {"tensor": "bias"}]]}
W, B = "tensor 'weight'", "tensor 'bias'"


def malformed_files():
    """{case: (file bytes, the entry the error must name)}: each a way a checkpoint can be damaged or crafted."""
    header, data = _good()
    good = _raw(header, data)
    deep = 100_000  # beyond any recursion limit
    cases = {
        # the length prefix and the header as a whole
        "empty file": (b"", "the header length"),
        "5 bytes": (good[:5], "the header length"),
        "huge header length": (_raw(header, data, length=2 ** 63), "the header length"),
        "header length over the limit": (_raw(header, data, length=100 * 1024 * 1024 + 1), "the header length"),
        "header length past the end": (_raw(header, data, length=len(json.dumps(header)) + len(data) + 1),
                                       "the header"),
        "cut in the header": (good[:20], "the header"),
        "not utf-8": (_raw(b"\xff\xfe{}"), "the header"),
        "not json": (_raw("{weight: 1}", data), "the header"),
        "header is a list": (_raw([1, 2], data), "the header"),
        "header is a string": (_raw('"weights"', data), "the header"),
        "header is a number": (_raw("42"), "the header"),
        "header is null": (_raw("null"), "the header"),
        "deeply nested json": (_raw('{"weight": ' + _nested(deep) + "}", data), "the header"),
        "deeply nested objects": (_raw('{"a":' * deep + "1" + "}" * deep), "the header"),
        "int of 10000 digits": (_raw('{"weight": {"dtype": "F32", "shape": [' + "9" * 10000 + "]}}"), "the header"),
        "duplicate name": (_raw(json.dumps(header)[:-1] + ', "weight": ' + json.dumps(header["weight"]) + "}", data),
                           "entry 'weight'"),
        # one entry
        "entry is a list": (_edit(weight=[0, 24]), W),
        "entry is null": (_edit(weight=None), W),
        "entry is a string": (_edit(weight="F32"), W),
        # dtypes
        "list as dtype": (_edit(weight={"dtype": ["F32"]}), W),
        "dict as dtype": (_edit(weight={"dtype": {"F32": 1}}), W),
        "null dtype": (_edit(weight={"dtype": None}), W),
        "missing dtype": (_raw({"weight": {"shape": [2, 3], "data_offsets": [0, 24]}, "bias": header["bias"]}, data),
                          W),
        "unknown dtype": (_edit(weight={"dtype": "F32X"}), W),
        "lower-case dtype": (_edit(weight={"dtype": "f32"}), W),
        "dtype of the wrong size": (_edit(weight={"dtype": "F64"}), W),
        "bf16 with the wrong size": (_edit(bias={"dtype": "BF16"}), B),
        # shapes
        "shape product overflows int64": (_edit(weight={"shape": [2 ** 32, 2 ** 32]}), W),
        "shape product overflows with a zero": (_edit(weight={"shape": [0, 2 ** 62, 8]}), W),
        "dimension beyond int64": (_edit(weight={"shape": [2 ** 70]}), W),
        "dimension beyond uint64": (_edit(weight={"shape": [2 ** 64 + 6]}), W),
        "negative dimension": (_edit(weight={"shape": [-2, -3]}), W),
        "float dimension": (_edit(weight={"shape": [2.0, 3]}), W),
        "bool dimension": (_edit(weight={"shape": [True, 6]}), W),
        "string dimension": (_edit(weight={"shape": ["2", 3]}), W),
        "shape is a number": (_edit(weight={"shape": 6}), W),
        "shape is null": (_edit(weight={"shape": None}), W),
        "nested shape": (_edit(weight={"shape": [[2], [3]]}), W),
        "shape nested 500 deep": (_raw(json.dumps(header).replace("[2, 3]", _nested(500)), data), W),
        "65 dimensions": (_edit(weight={"shape": [1] * 65}), W),
        "shape disagrees with the bytes": (_edit(weight={"shape": [3, 3]}), W),
        # offsets
        "offsets out of range": (_edit(bias={"data_offsets": [24, 4000]}), B),
        "offsets beyond int64": (_edit(bias={"data_offsets": [24, 2 ** 64]}), B),
        "negative offset": (_edit(weight={"data_offsets": [-24, 0], "shape": [2, 3]}), W),
        "reversed offsets": (_edit(bias={"data_offsets": [36, 24]}), B),
        "three offsets": (_edit(bias={"data_offsets": [24, 36, 48]}), B),
        "string offsets": (_edit(bias={"data_offsets": ["24", "36"]}), B),
        "float offsets": (_edit(bias={"data_offsets": [24.0, 36.0]}), B),
        "bool offsets": (_edit(weight={"data_offsets": [False, True], "shape": [], "dtype": "BOOL"}), W),
        "NaN offsets": (_raw(json.dumps(header).replace("[24, 36]", "[NaN, 36]"), data), B),
        "missing offsets": (_raw({"weight": header["weight"], "bias": {"dtype": "F32", "shape": [3]}}, data), B),
        "overlapping tensors": (_edit(bias={"data_offsets": [12, 24]}, weight={"data_offsets": [0, 24]})
                                [:-12], B),
        "gap between tensors": (_raw({"weight": header["weight"],
                                      "bias": {**header["bias"], "data_offsets": [28, 40]}}, data + b"\0" * 4), B),
        "two tensors on the same bytes": (_raw({"weight": header["weight"], "bias": header["bias"],
                                                "copy": {**header["bias"]}}, data), "tensor '"),
        # the data
        "truncated data": (good[:-3], B),
        "no data": (good[:len(good) - len(data)], "tensor '"),
        "trailing bytes": (good + b"\0" * 8, "the data"),
        "data but no tensors": (_raw({}, b"\0" * 16), "the data"),
        # __metadata__
        "metadata is a list": (_edit(__metadata__=["format", "pt"]), "__metadata__"),
        "metadata is a string": (_edit(__metadata__="pt"), "__metadata__"),
        "metadata is a number": (_edit(__metadata__=3), "__metadata__"),
        "metadata value is a number": (_edit(__metadata__={"format": 3}), "__metadata__['format']"),
        "metadata value is null": (_edit(__metadata__={"format": None}), "__metadata__['format']"),
        "metadata value is a list": (_edit(__metadata__={"format": ["pt"]}), "__metadata__['format']"),
        "metadata value is an object": (_edit(__metadata__={"format": {"a": "b"}}), "__metadata__['format']"),
        "metadata nested deeply": (_raw('{"__metadata__": {"format": ' + _nested(deep) + "}}"), "the header"),
        # Avalon's description in __metadata__["avalon"]
        "avalon metadata not json": (_avalon("{tree"), "__metadata__['avalon']"),
        "avalon metadata a list": (_avalon("[1, 2]"), "__metadata__['avalon']"),
        "avalon metadata nested deeply": (_avalon(_nested(deep)), "__metadata__['avalon']"),
        "format version a string": (_tree(_GOOD_TREE, format_version="1"), "format_version"),
        "format version missing": (_avalon({"tree": _GOOD_TREE}), "format_version"),
        "format version negative": (_tree(_GOOD_TREE, format_version=-1), "format_version"),
        "dtypes a list": (_tree(_GOOD_TREE, dtypes=["float32"]), "dtypes"),
        "dtypes disagree": (_tree(_GOOD_TREE, dtypes={"weight": "int64"}), "dtypes['weight']"),
        "dtypes name a missing tensor": (_tree(_GOOD_TREE, dtypes={"other": "float32"}), "dtypes['other']"),
        "dtypes value a list": (_tree(_GOOD_TREE, dtypes={"weight": ["float32"]}), "dtypes['weight']"),
        "tree missing": (_avalon({"format_version": 1}), "tree"),
        "tree a list": (_tree([1, 2]), "tree"),
        "unknown tree kind": (_tree({"pickle": "os.system"}), "tree"),
        "tree value a list": (_tree({"value": [1, 2]}), "tree"),
        "tree names a missing tensor": (_tree({"dict": [["w", {"tensor": "other"}]]}), "tree at w"),
        "tree tensor name a list": (_tree({"dict": [["w", {"tensor": ["weight"]}]]}), "tree"),
        "tree key a list": (_tree({"dict": [[["weight"], {"tensor": "weight"}], ["bias", {"tensor": "bias"}]]}),
                            "tree"),
        "tree key an object": (_tree({"dict": [[{"k": 1}, {"tensor": "weight"}]]}), "tree"),
        "tree pair of three": (_tree({"dict": [["weight", {"tensor": "weight"}, 1]]}), "tree"),
        "tree leaves a tensor out": (_tree({"dict": [["weight", {"tensor": "weight"}]]}), B),
        "tree nested deeply": (_avalon('{"format_version": 1, "tree": ' + '{"list": [' * deep + '{"tensor": "weight"}'
                                       + "]}" * deep + "}"), "__metadata__['avalon']"),
        "tree bad deep inside": (_tree({"dict": [["a", {"list": [{"tuple": [{"nope": 1}]}]}]]}), "tree at a.0.0"),
    }
    return cases


_CASES = malformed_files()


def test_the_generator_starts_from_a_valid_file(tmp_path):
    path = tmp_path / "good.safetensors"
    path.write_bytes(_raw(*_good()))
    state = avalon.load(path)
    np.testing.assert_array_equal(state["weight"], np.arange(6, dtype=np.float32).reshape(2, 3))
    path.write_bytes(_tree(_GOOD_TREE))
    np.testing.assert_array_equal(avalon.load(path)["bias"], np.ones(3, np.float32))
    assert len(_CASES) >= 80


def _model():
    model = nn.Linear(3, 2)
    return model, {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("case", list(_CASES))
def test_a_malformed_file_raises_corrupt_checkpoint_error_naming_file_and_entry(tmp_path, case):
    content, entry = _CASES[case]
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(content)
    model, before = _model()
    result = "unset"
    with pytest.raises(CorruptCheckpointError) as info:
        result = avalon.load(path)
    message = str(info.value)
    assert str(path) in message and entry in message, message
    assert "\n  fix: " in message  # what to do, as every AvalonError says
    assert info.value.path == str(path) and entry in info.value.entry
    assert isinstance(info.value, avalon.AvalonError) and isinstance(info.value, ValueError)
    assert len(message) < 600  # a crafted header cannot blow up the message
    assert result == "unset" and path.read_bytes() == content and os.listdir(tmp_path) == [path.name]
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    if "avalon" not in case and "tree" not in case and "format version" not in case and "dtypes" not in case:
        with pytest.raises(CorruptCheckpointError, match="crafted.safetensors"):  # same checks, other readers
            load_torch_state_dict(path)


def test_header_only_reads_validate_the_header_too(tmp_path):
    path = tmp_path / "crafted.safetensors"
    for case in ("list as dtype", "shape product overflows int64", "metadata value is a number", "header is a list",
                 "deeply nested json", "offsets out of range"):
        path.write_bytes(_CASES[case][0])
        with pytest.raises(CorruptCheckpointError, match=_CASES[case][1].replace("[", r"\[")):
            avalon.io.read_metadata(path)


def test_a_header_length_that_starts_like_a_pickle_is_still_safetensors(tmp_path):
    """640 = 0x280: the file starts with 0x80 0x02, a pickle's protocol-2 opcode; it is read as safetensors."""
    header, data = _good()
    text = json.dumps(header)
    path = tmp_path / "m.safetensors"
    path.write_bytes(_raw(text + " " * (640 - len(text)), data))
    assert path.read_bytes()[:2] == b"\x80\x02"
    np.testing.assert_array_equal(avalon.load(path)["bias"], np.ones(3, np.float32))


def test_a_valid_but_unsupported_dtype_is_not_called_corrupt(tmp_path):
    path = tmp_path / "f8.safetensors"
    path.write_bytes(_edit(bias={"dtype": "F8_E4M3", "shape": [12]}))
    with pytest.raises(CheckpointError, match="'bias' has dtype F8_E4M3, which numpy") as info:
        avalon.load(path)
    assert not isinstance(info.value, CorruptCheckpointError)


def test_every_truncation_and_random_damage_gives_a_checkpoint_error_or_a_value(tmp_path):
    """Fuzz: no prefix of a real checkpoint loads, and no byte flip fails with anything but CheckpointError."""
    path = tmp_path / "m.safetensors"
    avalon.save({"model": nn.Linear(3, 2).state_dict(), "epoch": 3, "lr": [0.1]}, path)
    good = path.read_bytes()
    damaged = tmp_path / "damaged.safetensors"
    data_start = 8 + int.from_bytes(good[:8], "little")
    for n in [*range(data_start + 16), *range(data_start + 16, len(good), 5)]:
        damaged.write_bytes(good[:n])
        with pytest.raises(CorruptCheckpointError, match="damaged.safetensors"):
            avalon.load(damaged)
    rng = random.Random(0)
    outcomes = set()
    for _ in range(250):
        content = bytearray(good)
        for _ in range(rng.randint(1, 3)):
            content[rng.randrange(len(content))] = rng.randrange(256)
        damaged.write_bytes(bytes(content))
        try:
            avalon.load(damaged)
            outcomes.add("loaded")  # a flip inside the data (or in JSON whitespace) is invisible
        except CheckpointError as e:
            assert "damaged.safetensors" in str(e)
            outcomes.add(type(e).__name__)
    assert "CorruptCheckpointError" in outcomes


def test_paths_that_name_no_file_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="path must be a str"):
        avalon.load(0)  # would be a file descriptor (stdin) to open()
    with pytest.raises(CheckpointError, match="path must be a str"):
        avalon.load(["model.safetensors"])
    with pytest.raises(CheckpointError, match="path is empty"):
        avalon.load("")
    with pytest.raises(CheckpointError, match="is a folder"):
        avalon.load(tmp_path)
    with pytest.raises(CheckpointError, match="is a folder"):
        load_torch_state_dict(tmp_path)


# ---- pickles ----------------------------------------------------------------------------------------

class _Payload:
    """Unpickling this runs a shell command (creates a marker file): what a hostile .pt file does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _assert_refused(path, blocked, marker=None):
    with pytest.raises(CheckpointError) as info:
        load_torch_state_dict(path)
    message = str(info.value)
    assert message.startswith(f"{path} was refused: it pickles the global {blocked}"), message
    assert "weights_only=False" not in message and "weights_only` set to `False" not in message
    shown = "".join(traceback.format_exception(info.value))
    assert "weights_only=False" not in shown and "weights_only` set to `False" not in shown  # no chained text
    assert "torch.save(model.state_dict(), path)" in message
    assert not isinstance(info.value, CorruptCheckpointError)
    if marker is not None:
        assert not os.path.exists(marker)


def test_a_hostile_pickle_is_refused_naming_the_global_it_would_call(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    path = tmp_path / "hostile.pt"
    torch.save({"weight": torch.ones(2), "x": _Payload(marker)}, path)
    _assert_refused(path, f"{os.system.__module__}.system", marker)
    legacy = tmp_path / "legacy.pt"
    torch.save({"x": _Payload(marker)}, legacy, _use_new_zipfile_serialization=False)
    _assert_refused(legacy, f"{os.system.__module__}.system", marker)
    bare = tmp_path / "bare.bin"
    bare.write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    with pytest.raises(CheckpointError) as info:
        load_torch_state_dict(bare)
    assert "weights_only=False" not in "".join(traceback.format_exception(info.value))
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="load_torch_state_dict"):
        avalon.load(path)
    assert not marker.exists()


def test_a_pickled_module_is_refused_naming_its_class(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "whole_model.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), path)
    _assert_refused(path, "torch.nn.modules.container.Sequential")


def test_the_blocked_global_is_read_from_each_of_torchs_messages():
    from avalon.io.torch_import import blocked_global

    assert blocked_global("Trying to load unsupported GLOBAL posix.system whose module posix is blocked.") == \
        "posix.system"
    assert blocked_global("Unsupported global: GLOBAL a.b.C was not an allowed global by default.") == "a.b.C"
    assert blocked_global("Can only build Tensor, Parameter, OrderedDict or types allowlisted via "
                          "`add_safe_globals`, but got <class 'pkg.Thing'>") == "pkg.Thing"
    assert blocked_global("Unsupported operand 149") is None


@pytest.mark.parametrize("ninth", [b"{", b"x"])
def test_a_damaged_pt_file_is_corrupt_not_refused(tmp_path, ninth):
    pytest.importorskip("torch")
    path = tmp_path / "cut.pt"
    path.write_bytes(b"PK\x03\x04" + os.urandom(4) + ninth + os.urandom(63))  # "{" there is safetensors' mark
    with pytest.raises(CorruptCheckpointError, match="cut.pt: the file: it is not a readable PyTorch checkpoint"):
        load_torch_state_dict(path)


@pytest.mark.parametrize("kind", ["sparse", "meta", "quantized"])
def test_tensors_numpy_cannot_hold_are_refused_naming_the_entry(tmp_path, kind):
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own deprecation notice for quantized tensors
        tensor = {"sparse": lambda: torch.eye(3).to_sparse(), "meta": lambda: torch.empty(3, device="meta"),
                  "quantized": lambda: torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.qint8)}[kind]()
        path = tmp_path / f"{kind}.pt"
        torch.save({"layer": {"weight": tensor}, "epoch": 1}, path)
        with pytest.raises(CheckpointError, match=r"(?s)^\S*\.pt: tensor 'layer.weight' is a .*numpy cannot hold.*"
                                                  r"nothing was loaded.*fix: "):
            load_torch_state_dict(path)


# ---- bfloat16 ---------------------------------------------------------------------------------------

def test_bfloat16_torch_weights_load_as_torch_loads_them_into_float32(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    reference = torch.nn.Linear(4, 3)
    half = {k: v.to(torch.bfloat16) for k, v in reference.state_dict().items()}
    reference.load_state_dict(half)  # torch casts into the float32 parameters
    torch.save(half, tmp_path / "bf16.pt")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    safetensors_torch.save_file(half, str(tmp_path / "bf16.safetensors"))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    expected = reference(torch.tensor(x)).detach().numpy()
    for loader, name in [(load_torch_state_dict, "bf16.pt"), (load_torch_state_dict, "bf16.safetensors"),
                         (avalon.load, "bf16.safetensors")]:
        model = nn.Linear(4, 3)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # not one warning per file, per tensor or per load
            model.load_state_dict(loader(tmp_path / name))
        assert model.weight.dtype == np.float32
        np.testing.assert_array_equal(np.asarray(model.weight), reference.weight.detach().numpy())
        np.testing.assert_allclose(model(x), expected, rtol=1e-6, atol=1e-6)


# ---- saving -----------------------------------------------------------------------------------------

def _temporaries(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


def test_saving_to_an_empty_path_or_a_folder_refuses_before_writing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    model = nn.Linear(2, 2)
    for bad, message in [("", "path is empty"), ("runs", "is a folder"), ("runs/", "is a folder"),
                         (str(tmp_path), "is a folder"), (3, "path must be a str"), (None, "path must be a str"),
                         ("missing/model.safetensors", "does not exist")]:
        with pytest.raises(CheckpointError, match=message):
            avalon.save(model, bad)
        assert sorted(os.listdir(tmp_path)) == ["runs"] and os.listdir(tmp_path / "runs") == []


def test_a_read_only_folder_names_the_users_path(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"

    def refuse(dir, prefix, suffix):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, prefix + "x1y2z3" + suffix))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(CheckpointWriteError) as info:
        avalon.save(nn.Linear(2, 2), path)
    message = str(info.value)
    assert message.startswith(f"cannot save to {path}: the folder {tmp_path} is not writable"), message
    assert ".tmp" not in message and "avalon-partial" not in message
    assert isinstance(info.value, OSError) and isinstance(info.value, avalon.AvalonError)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_really_read_only_folder_names_the_users_path(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(CheckpointWriteError, match=f"cannot save to {folder / 'm.safetensors'}: the folder"):
            avalon.save(nn.Linear(2, 2), folder / "m.safetensors")
    finally:
        folder.chmod(0o755)


class _Injected(Exception):
    pass


def _raise(error):
    def fail(*args, **kwargs):
        raise error
    return fail


@pytest.mark.parametrize("where", ["write_payload", "fdopen", "fsync", "chmod", "replace"])
@pytest.mark.parametrize("error", [_Injected("boom"), KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left"),
                                   MemoryError()], ids=["exception", "interrupt", "disk full", "memory"])
def test_any_failure_during_the_write_removes_the_temporary_and_keeps_the_old_file(tmp_path, monkeypatch, where,
                                                                                   error):
    path = tmp_path / "model.safetensors"
    avalon.save({"w": np.arange(4.0)}, path)
    original = path.read_bytes()
    target = atomic if where == "write_payload" else os
    monkeypatch.setattr(target, where, _raise(error))
    expected = CheckpointWriteError if isinstance(error, OSError) else type(error)
    with pytest.raises(expected) as info:
        avalon.save({"w": np.arange(1000.0)}, path)
    monkeypatch.undo()
    if isinstance(error, OSError):
        assert str(info.value).startswith(f"cannot save to {path}: No space left")
        assert ".tmp" not in str(info.value)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == [path.name]


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_are_removed_at_the_next_save_in_that_folder(tmp_path):
    old = time.time() - atomic.STALE_AFTER_S - 60
    files = {
        atomic.temporary_prefix("model.safetensors", pid=_dead_pid()) + "abc_12.tmp": (None, False),
        atomic.temporary_prefix("other.safetensors", pid=_dead_pid()) + "zz9.tmp": (None, False),
        atomic.temporary_prefix("model.safetensors") + "live1.tmp": (None, True),  # a save in progress here
        atomic.temporary_prefix("model.safetensors") + "old1.tmp": (old, False),  # untouched for an hour
        f".model.safetensors.{atomic._TAG}-elsewhere-{os.getpid() + 1}-r1.tmp": (None, True),  # other host
        f".model.safetensors.{atomic._TAG}-elsewhere-1234-r2.tmp": (old, False),
        ".model.safetensors.q8z1w0ab.tmp": (old, True),  # not ours: not touched
        "notes.tmp": (old, True),
    }
    for name, (mtime, _) in files.items():
        (tmp_path / name).write_bytes(b"partial")
        if mtime is not None:
            os.utime(tmp_path / name, (mtime, mtime))
    avalon.save({"w": np.ones(3)}, tmp_path / "model.safetensors")
    kept = sorted(name for name, (_, keep) in files.items() if keep)
    assert _temporaries(tmp_path) == kept
    np.testing.assert_array_equal(avalon.load(tmp_path / "model.safetensors")["w"], np.ones(3))


_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    import avalon
    from avalon.io import atomic
    path, generation, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "midwrite":  # the next save stops half-way through its data and waits to be killed
        def half_then_wait(f, header, arrays):
            f.write(header)
            f.write(memoryview(arrays[0].reshape(-1)[: arrays[0].size // 2]).cast("B"))
            f.flush()
            print("midwrite", flush=True)
            time.sleep(60)
    while True:
        generation += 1
        avalon.save({"w": np.full(2_000_000, generation, np.float32), "generation": generation}, path)
        print(generation, flush=True)
        if mode == "midwrite":
            atomic.write_payload = half_then_wait
""")


def test_kill_9_during_saves_leaves_the_old_or_the_new_file_never_a_mix(tmp_path):
    """Killed at a random moment of back-to-back saves, or for certain half-way through writing the data."""
    path = tmp_path / "model.safetensors"
    avalon.save({"w": np.full(2_000_000, 0, np.float32), "generation": 0}, path)
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    rng = random.Random(0)
    last = 0
    for attempt, mode in enumerate(["random", "midwrite", "random", "random"]):
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(last + 1000), mode],
                                  stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert writer.stdout.readline().strip()  # it has imported avalon and finished one save
            if mode == "midwrite":
                assert writer.stdout.readline().strip() == "midwrite"
            else:
                time.sleep(rng.uniform(0.0, 0.08))  # then dies at a random point of a later one
        finally:
            writer.kill()
            writer.wait()
            writer.stdout.close()
        if mode == "midwrite":
            assert len(_temporaries(tmp_path)) >= 1  # the killed save's half-written file, until a save cleans it
        state = avalon.load(path)
        generation = state["generation"]
        assert generation > last and np.all(state["w"] == generation), f"attempt {attempt}: a mixed file"
        last = generation
    avalon.save({"x": np.ones(2)}, tmp_path / "next.safetensors")  # the next save in that folder
    assert _temporaries(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors", "next.safetensors"]
