"""Run a check in a forked child and fail the test if the child never finishes (a split waiting on a
pool inherited without its threads would hang it forever)."""
import os
import signal
import time

import pytest


def exit_code_of_forked(check, hang_message, seconds=10.0):
    """The exit code of a forked child that exits 0 when `check()` is true, else 1."""
    pid = os.fork()
    if pid == 0:
        os._exit(0 if check() else 1)
    for _ in range(int(seconds / 0.05)):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(hang_message)
