"""Scenario (2 ranks), argv[1]:
- `kill`: rank 1 dies (SIGKILL) while rank 0 waits in all_reduce under a 60 s timeout: the launcher ends the job.
- `stall`: rank 1 stays alive but never joins; rank 0's all_reduce raises CollectiveTimeout after the group's
  3 s timeout (rank 0 reports `<rank> <waiting_for> <timeout>`), the error leaves the program and the job ends.
"""
import datetime
import os
import signal
import sys
import time

import numpy as np

import avalon.distributed as dist
from report import say

mode = sys.argv[1]
dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=60 if mode == "kill" else 3))
rank = dist.get_rank()
dist.barrier()  # both ranks are up
if rank == 1:
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(600)  # alive, not answering
grads = np.ones(4, np.float32)
try:
    dist.all_reduce(grads)
except dist.CollectiveTimeout as error:
    say(0, f"{error.rank} {error.waiting_for} {error.timeout}")
    raise
