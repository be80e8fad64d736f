"""GNU OpenMP's spin count: set by avalon.kernels.onednn.library before libgomp loads (its workers
spinning after a region took the core Avalon's own worker thread needed at 2 threads), and a user's
value kept."""
import os
import subprocess
import sys

import pytest

from avalon.kernels import onednn

needs_onednn = pytest.mark.skipif(not onednn.available(), reason="oneDNN (avalon[fast]) is not installed")

_PROBE = ("import os, numpy\n"
          "def gomp(): return 'libgomp' in open('/proc/self/maps').read()\n"
          "before = gomp()\n"
          "import avalon; from avalon.kernels.onednn import library; assert library.library() is not None\n"
          "print(os.environ.get('GOMP_SPINCOUNT'), before, gomp())")


def _probe(**env):
    environment = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    environment.update(env)
    done = subprocess.run([sys.executable, "-c", _PROBE], env=environment, capture_output=True, text=True,
                          check=True, timeout=120)
    return done.stdout.split()


@needs_onednn
def test_the_spin_count_is_set_before_libgomp_loads_and_a_users_value_is_kept():
    from avalon.kernels.onednn import library

    # libgomp is not loaded before Avalon's; libdnnl (loading it) is loaded after the variable is set
    assert _probe() == [library.SPINCOUNT, "False", "True"]
    assert _probe(GOMP_SPINCOUNT="300000") == ["300000", "False", "True"]
