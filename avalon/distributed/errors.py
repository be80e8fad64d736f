"""The errors of avalon.distributed: each says what happened, on which rank, and what to do."""
from ..errors import AvalonError, _where

INSTALL = ("install OpenMPI and mpi4py: `apt-get install -y openmpi-bin libopenmpi-dev` (or your cluster's MPI "
           "module), then `pip install 'avalon[distributed]'` (mpi4py)")


class DistributedError(AvalonError, RuntimeError):
    """A process group or a collective was used in a way that cannot work (no group, a bad rank, MPI missing)."""

    def __init__(self, message, fix=None):
        from ..tracing.source import user_location  # tracing builds on modules that import this one

        lines = [message, *_where(user_location())]
        super().__init__("\n".join(lines + ([f"  fix: {fix}"] if fix else [])))


class CollectiveTimeout(DistributedError, TimeoutError):
    """A collective did not complete within the process group's timeout: another rank died or stopped
    answering. The job is aborted when this error leaves the program (the other ranks would wait forever).

    `collective` names the call, `rank` this process, `waiting_for` the ranks that had not joined, as far
    as this rank can tell (all the others), `timeout` the group's timeout in seconds.
    """

    def __init__(self, collective, rank, world_size, timeout):
        self.collective, self.rank, self.timeout = collective, rank, timeout
        self.waiting_for = [r for r in range(world_size) if r != rank]
        super().__init__(
            f"{collective} on rank {rank} of {world_size} did not complete within the group's timeout of "
            f"{timeout:g} s: rank(s) {self.waiting_for} did not join (dead, stalled, or running other code)",
            "find why that rank stopped (its own error above, a deadlock, uneven numbers of batches per rank: use "
            "DistributedSampler); raise init_process_group(timeout=...) if the step is legitimately that slow. "
            "The job is aborted; restart it from the last checkpoint (fit(..., checkpoint=path, resume=True))")
