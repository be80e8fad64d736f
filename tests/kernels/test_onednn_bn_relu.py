"""Batch norm fused with the ReLU after it (avalon/compile/fuse_norm.py, ops/batch_norm.py's
`batch_norm_relu`): which chains the pass fuses and which it leaves, the switch, and replays with the
fusion on computing what they compute with it off, with oneDNN on and off (the numpy path then really
running), as PyTorch does, and as finite differences say."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
from avalon.compile import fuse_norm
from avalon.kernels import onednn
from avalon.ops import batch_norm as bn
from avalon.ops import elementwise as ew


class Block(nn.Module):
    """conv-BN-ReLU, conv-BN, + the input, ReLU: a residual block (both fused forms)."""

    def __init__(self, channels, bias=True):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + x)


def _model(channels=4, seed=0):
    avalon.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(), Block(channels),
                         nn.Flatten(), nn.Linear(channels * 5 * 6, 3))


def _loss(m, x, y):
    return F.cross_entropy(m(x), y)


def _batch(rng, n=3, dtype=np.float32):
    return rng.standard_normal((n, 3, 5, 6)).astype(dtype), rng.integers(0, 3, n)


@pytest.fixture
def fusion(monkeypatch):
    def set_to(on):
        monkeypatch.setattr(fuse_norm, "FUSE_BATCH_NORM_RELU", on)
    return set_to


@pytest.fixture(params=["onednn", "numpy"])
def path(request, onednn_on):
    """Each test twice: oneDNN on (where installed) and off."""
    if request.param == "onednn" and not onednn.available():
        pytest.skip("oneDNN (avalon[fast]) is not installed")
    onednn.set_enabled(request.param == "onednn")
    return request.param


def _step_tape(model, rng):
    x, y = _batch(rng)
    return avalon.grad_tape(_loss, model, x, y), [*model.parameters(), *model.buffers(), x, y]


def test_the_pass_fuses_both_forms_and_leaves_nothing_of_them(rng, fusion):
    fusion(True)
    tape, _ = _step_tape(_model(), rng)
    fused = fuse_norm.fuse_batch_norm_relu(tape)
    calls = [n for n in fused.calls if n.prim is bn.batch_norm_relu]
    assert [n.args[4] is None for n in calls] == [True, True, False]  # stem, block's first, block's second + x
    assert not [n for n in fused.calls if n.prim in (bn.batch_norm_apply, ew.relu)]
    assert [n for n in tape.calls if n.prim is bn.batch_norm_apply] and tape.calls  # its input untouched
    compiled = tape.compile()
    assert sum("batch_norm_relu(" in line for line in compiled.source.splitlines()) == 3
    fusion(False)
    assert fuse_norm.fuse_batch_norm_relu(tape) is tape
    assert "batch_norm_relu(" not in tape.compile().source


def test_chains_whose_parts_are_read_elsewhere_or_broadcast_stay(rng, fusion):
    fusion(True)
    bn_layer = nn.BatchNorm2d(4)
    x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)

    def kept_normalised(x):  # the normalised values are an output too
        y = bn_layer(x)
        return F.relu(y).sum() + y.sum()

    def broadcast_skip(x):  # the addend broadcasts: no single buffer of the ReLU's shape to add
        return F.relu(bn_layer(x) + x[:, :1]).sum()

    def kept_sum(x):  # the sum is read by another call
        s = bn_layer(x) + x
        return (F.relu(s) * s).sum()

    for f in (kept_normalised, broadcast_skip, kept_sum):
        tape = avalon.trace(f, x)
        assert not [n for n in fuse_norm.fuse_batch_norm_relu(tape).calls if n.prim is bn.batch_norm_relu], f
    tape = avalon.trace(lambda x: F.relu(bn_layer(x) + x).sum(), x)
    assert [n for n in fuse_norm.fuse_batch_norm_relu(tape).calls if n.prim is bn.batch_norm_relu]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_replays_compute_what_unfused_ones_do(rng, fusion, path, dtype):
    model = _model()
    x, y = _batch(rng, dtype=dtype)
    if dtype == np.float64:
        model = model.double()
    tape = avalon.grad_tape(_loss, model, x, y)
    inputs = [*model.parameters(), *model.buffers(), x, y]
    fusion(False)
    plain = tape.compile()(*inputs)
    fusion(True)
    compiled = tape.compile()
    assert "batch_norm_relu(" in compiled.source
    for _ in range(2):  # the second replay writes planned buffers and the workspace again
        for got, want in zip(compiled(*inputs), plain):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("in_parts", [True, False])
def test_the_fused_call_takes_onednn_only_off_the_part_by_part_path(rng, fusion, monkeypatch, onednn_on, in_parts):
    if not onednn.available():
        pytest.skip("oneDNN (avalon[fast]) is not installed")
    from avalon.kernels.onednn import norm as kernel
    calls = []
    real = kernel.forward
    monkeypatch.setattr(kernel, "forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(bn, "RELU_IN_PARTS", in_parts)
    fusion(True)
    x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    layer = nn.BatchNorm2d(4)
    compiled = avalon.trace(lambda m, x: F.relu(m(x) + x), layer, x).compile()
    assert "batch_norm_relu(" in compiled.source
    for on in (True, False):
        onednn.set_enabled(on)
        before = len(calls)
        got = compiled(*[np.asarray(a) for a in (*layer.parameters(), *layer.buffers())], x)[0]
        assert len(calls) - before == (1 if on and not in_parts else 0)
        mean, var = x.mean((0, 2, 3), keepdims=True), x.var((0, 2, 3), keepdims=True)
        np.testing.assert_allclose(got, np.maximum((x - mean) / np.sqrt(var + 1e-5) + x, 0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(64, 8, 32, 32), (3, 4, 5, 6), (70, 6, 1000), (9, 5)])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_part_by_part_gives_the_bits_of_the_whole_array_numpy_path(rng, monkeypatch, onednn_on, shape, affine, dtype):
    """Large shapes run in parts on both cores (threads_split), small ones whole; both match the numpy
    path's apply, add and maximum over the whole array bit for bit, and oneDNN's to rounding."""
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    skip = rng.standard_normal(shape).astype(dtype)
    stats = bn.batch_norm_stats(x)
    weight, bias = (rng.standard_normal(shape[1]).astype(dtype) for _ in range(2)) if affine else (None, None)
    for s in (None, skip):
        got = bn.batch_norm_relu(x, stats, weight, bias, s, 1e-5)
        monkeypatch.setattr(bn, "RELU_IN_PARTS", False)
        onednn.set_enabled(False)
        np.testing.assert_array_equal(got, bn.batch_norm_relu(x, stats, weight, bias, s, 1e-5))
        onednn.set_enabled(True)
        np.testing.assert_allclose(got, bn.batch_norm_relu(x, stats, weight, bias, s, 1e-5), rtol=1e-5, atol=1e-5)
        monkeypatch.setattr(bn, "RELU_IN_PARTS", True)


@pytest.mark.parametrize("written_over", ["x", "skip"])
def test_part_by_part_may_write_over_its_input(rng, written_over):
    """A replay may plan the result into the buffer of x or of the skip (their last reader): each part
    is read before it is written."""
    x, skip = (rng.standard_normal((64, 8, 32, 32)).astype(np.float32) for _ in range(2))
    stats, weight, bias = bn.batch_norm_stats(x), np.full(8, 0.5, np.float32), np.full(8, 0.1, np.float32)
    want = bn.batch_norm_relu(x, stats, weight, bias, skip, 1e-5)
    out = x if written_over == "x" else skip
    assert bn.batch_norm_relu.impl(x, stats, weight, bias, skip, 1e-5, out=out) is out  # as a replay calls it
    np.testing.assert_array_equal(out, want)


def test_a_training_step_matches_pytorch(rng, fusion, path):
    torch = pytest.importorskip("torch")
    fusion(True)
    model = _model(channels=5)
    x, y = _batch(rng, n=4)
    tmodel = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3, padding=1), torch.nn.BatchNorm2d(5), torch.nn.ReLU(),
                                 _TorchBlock(torch, 5), torch.nn.Flatten(), torch.nn.Linear(5 * 5 * 6, 3))
    tmodel.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in model.state_dict().items()})
    loss, grads = avalon.grad(_loss, model, x, y)
    tloss = torch.nn.functional.cross_entropy(tmodel(torch.tensor(x)), torch.tensor(y))
    tloss.backward()
    np.testing.assert_allclose(float(loss), tloss.item(), rtol=1e-5)
    theirs = dict(tmodel.named_parameters())
    assert list(grads[0].keys()) == list(theirs)
    for name, p in theirs.items():
        np.testing.assert_allclose(grads[0][name], p.grad.numpy(), rtol=2e-4, atol=2e-5, err_msg=name)


def _TorchBlock(torch, channels):
    class TorchBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(channels, channels, 3, padding=1)
            self.bn1 = torch.nn.BatchNorm2d(channels)
            self.conv2 = torch.nn.Conv2d(channels, channels, 3, padding=1)
            self.bn2 = torch.nn.BatchNorm2d(channels)

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + x)
    return TorchBlock()


def test_gradients_agree_with_finite_differences(rng, fusion, path):
    fusion(True)
    model = _model(channels=3).double()
    x, y = _batch(rng, n=3, dtype=np.float64)
    assert avalon.gradcheck(lambda x: _loss(model, x, y), x)
