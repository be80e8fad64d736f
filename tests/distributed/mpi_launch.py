"""Run a scenario script on 2 MPI processes, on the loopback interface only (the machine has 2 cores)."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
MPIRUN = ["mpirun", "--bind-to", "none", "--oversubscribe", "--mca", "btl", "self,vader",
          "--mca", "oob_tcp_if_include", "lo", "--mca", "btl_tcp_if_include", "lo"]


def have_mpi():
    if shutil.which("mpirun") is None:
        return False
    try:
        import mpi4py  # noqa: F401 - not mpi4py.MPI: this process must not start MPI
    except ImportError:
        return False
    return True


needs_mpi = pytest.mark.skipif(not have_mpi(), reason="OpenMPI and mpi4py are needed: bash scripts/setup.sh installs them")


def mpirun(script, *args, n=2, timeout=60, env=None):
    """CompletedProcess of `mpirun -n n python script args` (stdout and stderr as text); `.reports` holds
    what each rank said through report.say: {rank: [line, ...]}."""
    reports = tempfile.mkdtemp(prefix="avalon-scenario-")
    environment = {"SCENARIO_OUT": reports, **os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                   "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    command = [*MPIRUN, "-n", str(n), sys.executable, str(HERE / script), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment, cwd=ROOT)
    result.reports = {}
    for name in sorted(os.listdir(reports)):
        result.reports[int(name[len("rank"):-len(".txt")])] = Path(reports, name).read_text().splitlines()
    shutil.rmtree(reports)
    return result


def outputs(result):
    """{rank: [line, ...]}: what each rank reported."""
    return result.reports
