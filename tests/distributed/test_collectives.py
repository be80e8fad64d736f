"""Collectives across 2 MPI processes (run_collectives.py), and what a process without a group is told."""
import subprocess
import sys

import numpy as np
import pytest

import avalon.distributed as dist
from mpi_launch import ROOT, mpirun, needs_mpi, outputs


@needs_mpi
def test_collectives_in_float32_and_float64_across_two_ranks():
    result = mpirun("run_collectives.py")
    assert result.returncode == 0, result.stderr
    assert outputs(result) == {0: ["ok"], 1: ["ok"]}


def test_import_avalon_does_not_start_mpi():
    code = "import sys, avalon, avalon.distributed; print('mpi4py.MPI' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_collectives_without_a_process_group_say_what_to_call():
    with pytest.raises(dist.DistributedError, match="init_process_group"):
        dist.all_reduce(np.ones(3))
    with pytest.raises(dist.DistributedError, match="init_process_group"):
        dist.get_rank()
    assert not dist.is_initialized()


def test_bad_arguments_are_refused_before_mpi_starts():
    with pytest.raises(dist.DistributedError, match="backend 'nccl'"):
        dist.init_process_group("nccl")
    with pytest.raises(dist.DistributedError, match="timedelta"):
        dist.init_process_group("mpi", timeout=5)
    assert not dist.is_initialized()


def test_without_mpi4py_the_error_gives_the_install_commands():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import avalon.distributed as d\n"
            "try:\n    d.init_process_group('mpi')\nexcept d.DistributedError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "apt-get install -y openmpi-bin libopenmpi-dev" in out.stdout and "avalon[distributed]" in out.stdout, \
        out.stdout + out.stderr
