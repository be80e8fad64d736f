"""Buffers written in parts are mapped without huge pages (avalon/pages.py): `pages.empty` itself, the
oneDNN scratchpad, the LSTM layer's workspace and a compiled step's arena holding it (while an arena
without such a result keeps np.empty); only written pages are resident; `settle` turns only fully
written 2 MiB ranges into huge pages, adding nothing resident; values unchanged."""
import sys
import threading

import numpy as np
import pytest

import avalon
import avalon.nn as nn
from avalon import pages
from avalon.kernels import onednn

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
needs_onednn = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")


def mapping(address):
    """(resident bytes, VmFlags) of the mapping of this process holding `address`."""
    rss = flags = inside = None
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and ":" not in head:
                start, end = (int(a, 16) for a in head.split("-"))
                inside = start <= address < end
            elif inside and head == "Rss:":
                rss = int(line.split()[1]) * 1024
            elif inside and head == "VmFlags:":
                flags = line.split()[1:]
    return rss, flags


def no_huge_pages(array):
    flags = mapping(array.ctypes.data if isinstance(array, np.ndarray) else array)[1]
    return "nh" in flags and "hg" not in flags


def test_a_large_buffer_is_mapped_without_huge_pages_and_only_written_pages_are_resident():
    a = pages.empty(16 << 20)
    assert a.dtype == np.uint8 and a.shape == (16 << 20,) and a.flags.writeable and a.ctypes.data % 4096 == 0
    assert no_huge_pages(a)
    a[5 << 20] = 7  # one page: with huge pages, a whole 2 MiB one
    assert mapping(a.ctypes.data)[0] <= 64 << 10
    view = a[1 << 20:].view(np.float32)
    view[:4] = 1.5
    assert a[(1 << 20) + 3] == 0x3F and a[5 << 20] == 7


def test_settle_gives_huge_pages_to_fully_written_ranges_only_and_keeps_what_is_resident():
    a = pages.empty(16 << 20)
    assert a.ctypes.data % pages.HUGE == 0
    a[:4 << 20] = 1  # two whole huge pages
    a[(6 << 20) + 5] = 2  # one 4 KiB page of the fourth
    before = sum(mapping(a.ctypes.data + k * pages.HUGE)[0] for k in (0, 3))
    pages.settle(a)
    assert mapping(a.ctypes.data + (6 << 20))[1].count("nh") == 1  # the partly written range stays as it was
    assert mapping(a.ctypes.data + (6 << 20))[0] <= 64 << 10
    written, _ = mapping(a.ctypes.data)
    if "hg" in mapping(a.ctypes.data)[1]:  # MADV_COLLAPSE's kernels (6.1+): its own mapping now
        assert written == 4 << 20 and written + mapping(a.ctypes.data + (6 << 20))[0] <= before
    assert (a[:4 << 20] == 1).all() and a[(6 << 20) + 5] == 2 and a[(6 << 20) + 6] == 0


def collapses():
    """Whether `settle` can give huge pages here (MADV_COLLAPSE: Linux 6.1+)."""
    a = pages.empty(pages.SMALLEST)
    a[...] = 1
    pages.settle(a)
    return "hg" in mapping(a.ctypes.data)[1]


def test_small_buffers_and_the_switch_keep_np_empty(monkeypatch):
    assert pages.empty(1000).base is None
    monkeypatch.setattr(pages, "HUGE_PAGES", True)
    assert pages.empty(16 << 20).base is None


@needs_onednn
def test_the_onednn_scratchpad_is_mapped_without_huge_pages():
    from avalon.kernels.onednn import primitive

    seen = []
    thread = threading.Thread(target=lambda: seen.append(no_huge_pages(primitive._scratchpad(8 << 20))))  # its own
    thread.start(), thread.join()
    assert seen == [True]


def lstm_step(features=128, size=256, steps=50, batch=32):  # bench/steps.py's LSTM: a 31 MB oneDNN workspace
    avalon.manual_seed(0)
    model = nn.LSTM(features, size)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, features)).astype(np.float32)

    def loss(model, x):
        return np.tanh(model(x)[0][-1]).sum()  # (the sum of a view may be one: it would keep the workspace)

    return model, x, loss


@needs_onednn
def test_the_lstm_workspace_and_a_compiled_steps_arena_holding_it_are_mapped_without_huge_pages():
    from avalon.ops import lstm_layer as ll

    model, x, loss = lstm_step()
    w = {k: v for k, v in model.state_dict().items()}
    h0 = np.zeros((32, 256), np.float32)
    ws = ll.lstm_layer(x, h0, h0, w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"] + w["bias_hh_l0"])
    assert no_huge_pages(ws)

    tape = avalon.grad_tape(loss, model, x)
    inputs = [*model.parameters(), x]
    compiled = tape.compile()
    got = compiled(*inputs)
    arena = compiled.fn.workspaces[0]
    (big,) = [a for a in arena if a.nbytes >= pages.SMALLEST]  # the workspace; after `settle`, only its
    assert any(no_huge_pages(big.ctypes.data + k) for k in range(0, big.nbytes, pages.HUGE))  # unwritten parts
    if collapses():  # and its fully written ranges were settled after the first call
        assert any("hg" in mapping(big.ctypes.data + k)[1] for k in range(0, big.nbytes, pages.HUGE))
    for g, want in zip(got, tape.compile(workspace=False)(*inputs)):
        np.testing.assert_array_equal(g, want)


def test_an_arena_without_partial_results_keeps_np_empty():
    model = nn.Sequential(nn.Linear(512, 2048), nn.ReLU(), nn.Linear(2048, 10))
    x = np.random.default_rng(0).standard_normal((1024, 512)).astype(np.float32)
    tape = avalon.grad_tape(lambda m, x: m(x).sum(), model, x)
    compiled = tape.compile()
    compiled(*model.parameters(), x)
    arena = compiled.fn.workspaces[0]
    assert arena and all(not no_huge_pages(a) for a in arena)
