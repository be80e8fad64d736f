"""avalon.heap: once Avalon computes (a tape compiled, oneDNN loaded), arrays freed by one step are
handed to the next without page faults; blocks over MMAP_THRESHOLD still go back to the system; a
threshold set in the environment is left as it is. Each case runs in a fresh process: the settings are
process-wide and set once."""
import json
import os
import subprocess
import sys

import pytest

from avalon import heap
from avalon.kernels import onednn

# Child code: the page faults of allocating and writing a freed 3 MiB array again (below numpy's 4 MiB
# huge-page advice, so each 4 KiB page faults once), the first time and the fewest of three times, and
# the resident set given back when a 48 MiB one is freed. `setup` runs first. (glibc's own defaults map
# the first 3 MiB block, then raise the threshold when it is freed: its second one faults in new heap.)
_PROBE = """if True:
    import json, resource, numpy as np
    {setup}
    def rss_mb():
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("VmRSS:")) / 1024
    faults = []
    for _ in range(3):
        np.ones(3 << 18, np.float32)  # allocated, written and freed
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        np.ones(3 << 18, np.float32)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    big = np.ones(12 << 20, np.float32)
    held = rss_mb()
    del big
    print(json.dumps({{"first": faults[0], "fewest": min(faults), "big_freed_mb": held - rss_mb(),
                      "set": {result}}}))
"""

_COMPILE = """import avalon
    avalon.trace(lambda x: (x * 2).sum(), np.ones(3, np.float32)).compile()"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine not in ("x86_64", "aarch64"),
                                reason="glibc on Linux")


def _child(code, **env):
    """The last line `code` prints in a fresh process, run without any malloc setting of ours plus `env`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def _probe(setup, result="None", **env):
    return json.loads(_child(_PROBE.format(setup=setup, result=result), **{"AVALON_ONEDNN": "0", **env}))


def test_under_glibcs_defaults_the_first_reallocation_faults():
    assert _probe("pass")["first"] >= 400  # 768 pages of 4 KiB


def test_after_a_tape_is_compiled_freed_arrays_are_reused_without_faults_and_large_ones_given_back():
    seen = _probe(_COMPILE)
    assert seen["first"] < 50
    assert seen["big_freed_mb"] > 40  # 48 MiB: over MMAP_THRESHOLD


def test_it_is_set_once_and_reports_it():
    seen = _probe("from avalon import heap; first, again = heap.keep_freed_memory(), heap.keep_freed_memory()",
                  result="[first, again]")
    assert seen["set"] == [True, False] and seen["first"] < 50


@pytest.mark.parametrize("env", [{"MALLOC_MMAP_THRESHOLD_": "131072"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"}])
def test_a_threshold_set_in_the_environment_is_left_as_it_is(env):
    seen = _probe(_COMPILE + "\n    from avalon import heap; set_now = heap.keep_freed_memory()",
                  result="set_now", **env)
    assert seen["set"] is False
    if "MALLOC_MMAP_THRESHOLD_" in env:  # fixed at 128 KiB: every reallocation faults
        assert seen["fewest"] >= 700
    else:
        assert seen["first"] >= 400


def test_switched_off_it_leaves_glibc_alone():
    seen = _probe("from avalon import heap; heap.KEEP_FREED = False\n    " + _COMPILE)
    assert seen["first"] >= 400


@pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")
def test_loading_onednn_sets_it():
    seen = _probe("from avalon.kernels.onednn import library; assert library.library() is not None",
                  AVALON_ONEDNN="1")
    assert seen["first"] < 50


def test_the_thresholds_are_glibcs_own_dynamic_ceiling():
    assert heap.MMAP_THRESHOLD == 32 << 20 and heap.TRIM_THRESHOLD == 2 * heap.MMAP_THRESHOLD


_REPLAY = """if True:
    import resource, numpy as np
    import avalon
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1024, 256), dtype=np.float32), rng.standard_normal((256, 256), dtype=np.float32)
    def loss(w, x):
        return (np.tanh(x @ w) * np.exp(x)).sum()  # 1 MiB intermediates, allocated at every call
    for _ in range(3):
        avalon.grad(loss, w, x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        avalon.grad(loss, w, x)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


@pytest.mark.parametrize("fixed_small", [False, True])
def test_a_cached_gradient_step_reuses_its_pages(fixed_small):
    """The whole point: a replayed step faults in no new pages (with the threshold fixed at 128 KiB in
    the environment, as Avalon once held it, each call faults its intermediates in again)."""
    faults = float(_child(_REPLAY, **({"MALLOC_MMAP_THRESHOLD_": "131072"} if fixed_small else {})))
    if fixed_small:
        assert faults > 200, faults
    else:
        assert faults < 30, faults
