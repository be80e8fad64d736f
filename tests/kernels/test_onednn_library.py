"""Loading oneDNN: status checks, the on/off switch, and its OpenMP pool in a forked child."""
import ctypes

import numpy as np
import pytest
from forked_child import exit_code_of_forked

from avalon.errors import AvalonError
from avalon.kernels import onednn
from avalon.kernels.onednn import library

needs_onednn = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")


def _sgemm_square(n, threads):
    """A raw dnnl_sgemm of ones (n×n by n×n) on `threads` OpenMP threads; every entry must be n."""
    a = np.ones((n, n), np.float32)
    c = np.zeros_like(a)
    library.prepare(threads)
    f = library.library().dnnl_sgemm
    f.argtypes = [ctypes.c_char, ctypes.c_char] + [ctypes.c_int64] * 3 + [ctypes.c_float, ctypes.c_void_p,
                  ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_void_p, ctypes.c_int64]
    library.check(f(b"N", b"N", n, n, n, 1.0, a.ctypes.data, n, a.ctypes.data, n, 0.0, c.ctypes.data, n), "sgemm")
    return bool((c == n).all())


def test_a_failed_call_raises_an_avalon_error_naming_the_call_and_the_way_out():
    with pytest.raises(onednn.OneDNNError, match=r"oneDNN dnnl_x failed: invalid arguments\..*set_enabled\(False\)"):
        library.check(2, "dnnl_x")
    assert issubclass(onednn.OneDNNError, AvalonError)
    library.check(0, "dnnl_x")


def test_the_switch_turns_onednn_off_and_back():
    previous = onednn.set_enabled(False)
    try:
        assert not onednn.enabled()
    finally:
        onednn.set_enabled(previous)
    assert onednn.enabled() == (previous and onednn.available())


@needs_onednn
def test_loads_version_3():
    assert onednn.version() >= (3, 0, 0)
    assert library.engine() and library.stream()


@needs_onednn
def test_a_forked_child_runs_onednn_after_the_parent_used_two_threads():
    # GNU OpenMP's team does not survive fork: a two-thread call in the child would wait forever
    assert _sgemm_square(256, threads=2)
    code = exit_code_of_forked(lambda: _sgemm_square(256, threads=2), "a oneDNN call hung in a forked child")
    assert code == 0


@needs_onednn
@pytest.mark.parametrize("switch", ["1", "0"])
def test_the_library_loads_with_avalon_unless_switched_off(switch):
    """Loaded at import, as PyTorch's kernels are (its relocation is not a step's memory)."""
    import os
    import subprocess
    import sys
    code = "import avalon; from avalon.kernels.onednn import library; print('lib' in library._loaded)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, "AVALON_ONEDNN": switch})
    assert result.stdout.strip() == str(switch == "1")


@needs_onednn
def test_threads_is_the_count_prepare_sets(monkeypatch):
    import avalon
    gomp = library._gomp()
    keep = gomp.omp_get_max_threads()
    try:
        for count in (3, 1):
            assert library.threads(count) == count
            library.prepare(count)
            assert gomp.omp_get_max_threads() == count
        monkeypatch.setitem(avalon.threads._state, "threads", 2)  # what avalon.set_num_threads(2) records
        assert library.threads() == 2
        library.prepare()
        assert gomp.omp_get_max_threads() == 2
        monkeypatch.setitem(avalon.threads._state, "threads", None)
        gomp.omp_set_num_threads(3)
        assert library.threads() == 3  # OpenMP's own count, left as it is
    finally:
        gomp.omp_set_num_threads(keep)


@needs_onednn
def test_threads_is_one_in_a_forked_child():
    code = exit_code_of_forked(lambda: library.threads() == library.threads(2) == 1, "threads() hung in a child")
    assert code == 0
