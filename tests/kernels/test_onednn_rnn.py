"""oneDNN's LSTM primitive behind float32 `nn.LSTM` layers (`lstm_layer`, `lstm_layer_output`,
`lstm_layer_grad`: avalon/ops/lstm_layer.py, avalon/kernels/onednn/rnn.py), with `ONEDNN_LSTM` on:
outputs, final states and every gradient against torch.nn.LSTM and against the numpy path
(`set_enabled(False)`) over layers, directions, batch_first, given states, batch 1, unbatched input and
odd sizes; finite differences on a tiny layer; the switch obeyed by tapes compiled before it flipped;
the numpy path really running when off; the backward following the path its forward took; packed
sequences on `lstm_scan`; ONNX export as the LSTM operator; `lstm_scan` when `ONEDNN_LSTM` is off;
the scans' per-step products on sgemm; the caller's OpenMP thread count kept."""
import io

import numpy as np
import pytest

import avalon
import avalon.nn as nn
from avalon.kernels import onednn
from avalon.kernels.onednn import rnn
from avalon.nn.utils import rnn as rnn_utils
from avalon.ops import lstm_layer as ll

pytestmark = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")
torch = pytest.importorskip("torch")

CONFIGS = [
    dict(),
    dict(batch_first=True),
    dict(num_layers=2),
    dict(bidirectional=True),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(bias=False, batch_first=True),
]


def _ids(config):
    return "-".join(f"{k}={v}" for k, v in config.items()) or "default"


def _seeded(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _pair(input_size, hidden_size, **config):
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(input_size, hidden_size, **config)
    ours = nn.LSTM(input_size, hidden_size, **config)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _loss(model, x, states):
    y, (h_n, c_n) = model(x, states)
    return (y * np.cos(np.arange(y.size, dtype=np.float32).reshape(y.shape))).sum() + (h_n * h_n).sum() \
        + (c_n * 3).sum()


def _torch_grads(theirs, x, states):
    xt = torch.tensor(x, requires_grad=True)
    st = None if states is None else tuple(torch.tensor(s, requires_grad=True) for s in states)
    y, (h_n, c_n) = theirs(xt, st)
    weights = torch.cos(torch.arange(y.numel(), dtype=torch.float32)).reshape(y.shape)
    value = (y * weights).sum() + (h_n * h_n).sum() + (c_n * 3).sum()
    value.backward()
    grads = {k: p.grad.numpy() for k, p in theirs.named_parameters()}
    return value.item(), grads, xt.grad.numpy(), None if st is None else [s.grad.numpy() for s in st]


def _check(ours, theirs, x, states, rtol=2e-4, atol=2e-5):
    value, (grads, gx, gstates) = avalon.grad(_loss, ours, x, states)
    t_value, t_grads, t_gx, t_gstates = _torch_grads(theirs, x, states)
    np.testing.assert_allclose(value, t_value, rtol=rtol)
    for name, g in t_grads.items():
        np.testing.assert_allclose(grads[name], g, rtol=rtol, atol=atol, err_msg=name)
    np.testing.assert_allclose(gx, t_gx, rtol=rtol, atol=atol, err_msg="input")
    if states is not None:
        for g, t in zip(gstates, t_gstates):
            np.testing.assert_allclose(g, t, rtol=rtol, atol=atol, err_msg="initial state")
    return value, grads, gx


@pytest.fixture
def switched(monkeypatch):
    """Layers traced to `lstm_layer` (ONEDNN_LSTM on), oneDNN on; both restored afterwards."""
    monkeypatch.setattr(ll, "ONEDNN_LSTM", True)
    previous = onednn.set_enabled(True)
    yield
    onednn.set_enabled(previous)


@pytest.mark.parametrize("config", CONFIGS, ids=_ids)
@pytest.mark.parametrize("with_states", [False, True], ids=["zero-states", "given-states"])
def test_matches_torch_on_outputs_and_every_gradient(config, with_states, switched):
    ours, theirs = _pair(5, 7, **config)
    x = _seeded((3, 6, 5) if config.get("batch_first") else (6, 3, 5), 1)
    layers = config.get("num_layers", 1) * (2 if config.get("bidirectional") else 1)
    states = (_seeded((layers, 3, 7), 2), _seeded((layers, 3, 7), 3)) if with_states else None
    _check(ours, theirs, x, states)


@pytest.mark.parametrize("shape", [(1, 1, 3), (9, 1, 3), (2, 5, 3)], ids=["T1-N1", "T9-N1", "T2-N5"])
def test_odd_sizes_and_batch_one(shape, switched):
    ours, theirs = _pair(3, 13, bidirectional=True)
    _check(ours, theirs, _seeded(shape, 4), None)


def test_unbatched_input_and_a_non_contiguous_one(switched):
    ours, theirs = _pair(4, 6)
    x = _seeded((5, 4), 5)
    y, (h_n, c_n) = ours(x)
    yt, (ht, ct) = theirs(torch.tensor(x))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c_n, ct.detach().numpy(), rtol=1e-5, atol=1e-6)
    wide = _seeded((5, 3, 8), 6)[:, :, ::2]  # strided
    _check(ours, theirs, wide, None)


@pytest.mark.parametrize("config", [dict(), dict(num_layers=2, bidirectional=True, batch_first=True)], ids=_ids)
def test_onednn_and_numpy_paths_agree(config, switched):
    ours, _ = _pair(5, 7, **config)
    x = _seeded((3, 6, 5), 7)
    on = avalon.grad(_loss, ours, x, None)
    onednn.set_enabled(False)
    off = avalon.grad(_loss, ours, x, None)
    np.testing.assert_allclose(on[0], off[0], rtol=1e-5)
    for name, g in on[1][0].items():
        np.testing.assert_allclose(g, off[1][0][name], rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(on[1][1], off[1][1], rtol=1e-4, atol=1e-5)


def test_the_switch_holds_for_a_tape_compiled_before_it_flipped(switched, monkeypatch):
    ours, _ = _pair(4, 5, batch_first=True)
    x = _seeded((2, 6, 4), 8)
    calls = []
    for name in ("forward", "backward"):
        original = getattr(rnn, name)
        monkeypatch.setattr(rnn, name, lambda *a, _f=original, _n=name, **k: (calls.append(_n), _f(*a, **k))[1])

    def step(model, x):
        return avalon.grad(_loss, model, x, None)

    first = step(ours, x)
    assert calls == ["forward", "backward"]
    again = step(ours, x)  # the cached replay
    assert calls == ["forward", "backward"] * 2
    onednn.set_enabled(False)
    off = step(ours, x)
    assert calls == ["forward", "backward"] * 2  # the numpy path ran
    np.testing.assert_allclose(off[0], first[0], rtol=1e-5)
    np.testing.assert_allclose(again[0], first[0], rtol=0)
    for name, g in first[1][0].items():
        np.testing.assert_allclose(off[1][0][name], g, rtol=1e-4, atol=1e-5, err_msg=name)


def test_the_backward_takes_the_path_its_forward_took(switched):
    rng = np.random.default_rng(0)
    steps, batch, features, size = 4, 2, 3, 5
    x = rng.standard_normal((steps, batch, features)).astype(np.float32)
    h0, c0 = (rng.standard_normal((batch, size)).astype(np.float32) for _ in range(2))
    w_ih = rng.uniform(-0.4, 0.4, (4 * size, features)).astype(np.float32)
    w_hh = rng.uniform(-0.4, 0.4, (4 * size, size)).astype(np.float32)
    bias = rng.standard_normal(4 * size).astype(np.float32)
    g = rng.standard_normal((steps + 1, batch, size)).astype(np.float32)
    results = []
    for forward_on in (True, False):
        onednn.set_enabled(forward_on)
        ws = ll.lstm_layer.impl(x, h0, c0, w_ih, w_hh, bias, reverse=True)
        assert ws[0] == (1.0 if forward_on else 0.0)  # the header names the path
        onednn.set_enabled(not forward_on)
        results.append((ll.lstm_layer_output.impl(ws, x, h0, c0, w_ih, w_hh, bias, reverse=True).copy(),
                        ll.lstm_layer_grad.impl(g, ws, x, h0, c0, w_ih, w_hh, bias, reverse=True)))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-4, atol=1e-5)


def test_finite_differences_on_a_tiny_layer(switched):
    """Central differences of the float32 oneDNN forward, step 1e-2, against its gradients."""
    model = nn.LSTM(2, 3)
    x = _seeded((4, 2, 2), 9)
    _, (grads, gx, _) = avalon.grad(_loss, model, x, None)

    def value():
        return float(_loss(model, x, None))

    for name in ("weight_ih_l0", "weight_hh_l0", "bias_hh_l0"):
        param = getattr(model, name)
        for index in [(0,) * param.ndim, tuple(s - 1 for s in param.shape)]:
            keep = param[index].copy()
            param[index] = keep + 1e-2
            up = value()
            param[index] = keep - 1e-2
            down = value()
            param[index] = keep
            assert abs((up - down) / 2e-2 - grads[name][index]) < 2e-2 * (1 + abs(grads[name][index])), name


def test_the_tape_holds_the_fused_layer_without_a_projection(switched):
    model = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    tape = avalon.grad_tape(_loss, model, _seeded((5, 2, 3), 1), None)
    names = [n.prim.name for n in tape.calls]
    assert names.count("lstm_layer") == 4 and names.count("lstm_layer_grad") == 4
    assert "lstm_scan" not in names and "matmul" not in names


def test_packed_sequences_keep_the_masked_scan(switched):
    ours, theirs = _pair(3, 4)
    x = _seeded((5, 3, 3), 10)

    def loss(model, x):
        out, (h_n, c_n) = model(rnn_utils.pack_padded_sequence(x, [2, 5, 1], enforce_sorted=False))
        return (rnn_utils.pad_packed_sequence(out)[0] ** 2).sum() + (c_n * c_n).sum()

    tape = avalon.grad_tape(loss, ours, x)
    names = [n.prim.name for n in tape.calls]
    assert "lstm_scan" in names and "lstm_layer" not in names
    value, _ = avalon.grad(loss, ours, x)
    out, (_, ct) = theirs(torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), [2, 5, 1], enforce_sorted=False))
    expected = (torch.nn.utils.rnn.pad_packed_sequence(out)[0] ** 2).sum() + (ct * ct).sum()
    np.testing.assert_allclose(value, expected.item(), rtol=1e-5)


def test_plans_are_cached_per_shape_and_direction():
    first = rnn.plan(3, 2, 4, 5, False)
    assert rnn.plan(3, 2, 4, 5, False) is first
    assert rnn.plan(3, 2, 4, 5, True) is not first
    assert first.workspace_bytes > 0


def test_export_writes_the_layer_as_onnx_lstm_operators(switched):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    import avalon.onnx
    model = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    x = _seeded((2, 5, 3), 11)

    def run(model, x):
        y, (h_n, c_n) = model(x)
        return y, h_n, c_n

    buffer = io.BytesIO()
    avalon.onnx.export(run, (model, x), buffer, input_names=["x"], dynamic_axes={"x": {1: "steps"}})
    graph = onnx.load_from_string(buffer.getvalue())
    assert [n.op_type for n in graph.graph.node].count("LSTM") == 4
    session = ort.InferenceSession(buffer.getvalue())
    for steps in (5, 8):  # a dynamic sequence length
        longer = _seeded((2, steps, 3), 12)
        for ours, theirs in zip(run(model, longer), session.run(None, {"x": longer})):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_layers_trace_to_lstm_layer_by_default_and_to_lstm_scan_when_switched(monkeypatch):
    def loss(model, x):
        return (model(x)[0] ** 2).sum()

    assert ll.ONEDNN_LSTM is True
    names = [n.prim.name for n in avalon.grad_tape(loss, nn.LSTM(3, 4), _seeded((5, 2, 3), 1)).calls]
    assert "lstm_layer" in names and "lstm_scan" not in names
    monkeypatch.setattr(ll, "ONEDNN_LSTM", False)

    def loss2(model, x):
        return (model(x)[0] ** 2).sum()

    names = [n.prim.name for n in avalon.grad_tape(loss2, nn.LSTM(3, 4), _seeded((5, 2, 3), 1)).calls]
    assert "lstm_scan" in names and "lstm_layer" not in names


@pytest.mark.parametrize("name", ["LSTM", "GRU", "RNN"])
def test_the_scans_per_step_products_run_on_onednn_sgemm_and_on_numpy_when_off(name, monkeypatch):
    """lstm_scan, gru_scan, rnn_scan and their backward walks (ONEDNN_LSTM off): every per-step product
    on dnnl_sgemm while oneDNN is on, none when it is off, the same values both ways and as torch's."""
    from avalon.kernels.onednn import gemm
    monkeypatch.setattr(ll, "ONEDNN_LSTM", False)
    calls = []
    original = gemm.sgemm
    monkeypatch.setattr(gemm, "sgemm", lambda *a, **k: (calls.append(a[0].shape), original(*a, **k))[1])
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(5, 7, bidirectional=True)
    ours = getattr(nn, name)(5, 7, bidirectional=True)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = _seeded((6, 3, 5), 13)

    def loss(model, x):
        return (model(x)[0] ** 2).sum()

    previous = onednn.set_enabled(True)
    try:
        on = avalon.grad(loss, ours, x)
        assert len(calls) == 2 * 6 * 2  # 6 steps forward and back, 2 directions
        onednn.set_enabled(False)
        off = avalon.grad(loss, ours, x)
        assert len(calls) == 2 * 6 * 2
    finally:
        onednn.set_enabled(previous)
    expected = (theirs(torch.tensor(x))[0] ** 2).sum()
    expected.backward()
    for value, grads in (on, off):
        np.testing.assert_allclose(value, expected.item(), rtol=1e-5)
        for pname, p in theirs.named_parameters():
            np.testing.assert_allclose(grads[0][pname], p.grad.numpy(), rtol=2e-4, atol=2e-5, err_msg=pname)


@pytest.mark.parametrize("primitive", [False, True], ids=["scans", "lstm-primitive"])
def test_the_callers_openmp_thread_count_is_put_back(primitive, monkeypatch):
    """The LSTM's products run on one OpenMP thread; the count is per thread and shared with PyTorch
    in the same process, so it must come back (bench/steps.py alternates both libraries)."""
    monkeypatch.setattr(ll, "ONEDNN_LSTM", primitive)
    previous, threads = onednn.set_enabled(True), torch.get_num_threads()
    try:
        torch.set_num_threads(2)

        def loss(model, x):  # traced afresh with this test's switch
            return (model(x)[0] ** 2).sum()

        tape = avalon.grad_tape(loss, nn.LSTM(3, 4), _seeded((5, 2, 3), 1))
        assert ("lstm_layer" if primitive else "lstm_scan") in [n.prim.name for n in tape.calls]
        avalon.grad(loss, nn.LSTM(3, 4), _seeded((5, 2, 3), 1))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
        onednn.set_enabled(previous)


def test_the_lstm_primitive_runs_on_the_process_thread_count(monkeypatch):
    """It once ran on one thread whatever the count (a measurement spoiled by OpenBLAS's spinning
    worker); made and run at avalon.set_num_threads's count, its results are the one-thread ones."""
    from avalon.kernels.onednn import library

    ours, _ = _pair(3, 4, batch_first=True)
    x = _seeded((2, 5, 3), 2)
    loss = lambda m, x: (m(x)[0] ** 2).sum()  # noqa: E731
    previous = onednn.set_enabled(True)
    try:
        with library.keeping_threads():  # oneDNN calls set this thread's OpenMP count: put it back after
            monkeypatch.setitem(avalon.threads._state, "threads", 1)
            one = avalon.grad(loss, ours, x)
            monkeypatch.setitem(avalon.threads._state, "threads", 2)
            counts = []
            prepare = library.prepare
            monkeypatch.setattr(library, "prepare", lambda threads=None: counts.append(library.threads(threads))
                                or prepare(threads))
            plans = [key for key in rnn._cache._items if key[0] == (5, 2, 3, 4, False)]
            two = avalon.grad(loss, ours, x)
    finally:
        onednn.set_enabled(previous)
    made = [key for key in rnn._cache._items if key[0] == (5, 2, 3, 4, False)]
    assert counts and set(counts) == {2}
    assert {key[1] for key in made} - {key[1] for key in plans} <= {2} and any(key[1] == 2 for key in made)
    np.testing.assert_allclose(two[0], one[0], rtol=1e-5)
    for name, g in one[1][0].items():
        np.testing.assert_allclose(two[1][0][name], g, rtol=1e-4, atol=1e-6, err_msg=name)
