"""A rank that dies ends the job; a rank that stays alive but stops answering makes the others raise
CollectiveTimeout within the group's timeout, and the job ends instead of hanging (run_faults.py)."""
import time

from mpi_launch import mpirun, needs_mpi, outputs


@needs_mpi
def test_a_killed_rank_ends_the_job():
    start = time.monotonic()
    result = mpirun("run_faults.py", "kill", timeout=50)
    assert result.returncode != 0
    assert time.monotonic() - start < 40  # the launcher ended it: rank 0's 60 s timeout did not run out


@needs_mpi
def test_a_stalled_rank_makes_the_other_raise_within_the_timeout_and_the_job_ends():
    start = time.monotonic()
    result = mpirun("run_faults.py", "stall", timeout=50)  # rank 1 would sleep 600 s
    elapsed = time.monotonic() - start
    assert result.returncode != 0 and elapsed < 40, (elapsed, result.stderr)
    assert outputs(result) == {0: ["0 [1] 3.0"]}
    assert "CollectiveTimeout: all_reduce on rank 0 of 2 did not complete within the group's timeout of 3 s: " \
           "rank(s) [1] did not join" in result.stderr, result.stderr
    assert "at " in result.stderr and "run_faults.py:27" in result.stderr  # the user's line
    assert "fix:" in result.stderr and "resume=True" in result.stderr
