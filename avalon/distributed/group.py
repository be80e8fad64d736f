"""The process group: one per program, over MPI's COMM_WORLD, with a timeout every collective honours.

`import avalon` never imports `mpi4py.MPI` (importing it initialises MPI, which a program that does not
train across processes must not pay for, and which fails outside `mpirun` on some clusters): only
`init_process_group` does.
"""
import atexit
import datetime
import sys

from .errors import INSTALL, DistributedError

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)  # torch's default for non-NCCL backends


class _Group:
    def __init__(self, mpi, comm, timeout):
        self.mpi, self.comm, self.timeout = mpi, comm, timeout
        self.rank, self.size = comm.Get_rank(), comm.Get_size()


_group = None
_broken = []  # groups a collective timed out in: a request is still pending, so MPI cannot finalise


def _mpi():
    """mpi4py's MPI module (initialising MPI), or a DistributedError saying how to install it."""
    try:
        import mpi4py
    except ImportError:
        raise DistributedError("init_process_group(backend='mpi') needs mpi4py, which is not installed",
                               INSTALL) from None
    mpi4py.rc.threads = False  # collectives are called from one thread: no need for MPI_THREAD_MULTIPLE
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as error:
        raise DistributedError(f"mpi4py is installed but cannot load an MPI library ({error})", INSTALL) from None
    return MPI


def init_process_group(backend="mpi", init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    """Join the process group of all processes `mpirun` started (one process when run plainly).

    As torch's: `backend` is "mpi" (the only one; None means it too); ranks and the world size come from
    the MPI launcher, so `world_size` and `rank`, when given, must agree with it. `timeout` (a
    `datetime.timedelta`, default 30 minutes) bounds every collective: a rank that stops answering makes
    the others raise `CollectiveTimeout` instead of hanging.

    >>> avalon.distributed.init_process_group("mpi", timeout=datetime.timedelta(minutes=5))
    """
    global _group
    if _group is not None:
        raise DistributedError("init_process_group was called twice: the process group exists already",
                               "call it once at the start of the program (destroy_process_group() ends it)")
    if backend not in (None, "mpi"):
        raise DistributedError(f"backend {backend!r} is not available: Avalon's process groups run on MPI",
                               "pass backend='mpi' and launch with `mpirun -n N python script.py`")
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    if not isinstance(timeout, datetime.timedelta) or timeout.total_seconds() <= 0:
        raise DistributedError(f"timeout={timeout!r} is not a positive datetime.timedelta",
                               "pass e.g. timeout=datetime.timedelta(minutes=10)")
    if init_method not in (None, "env://") or store is not None:
        raise DistributedError("init_method and store are not used: MPI's launcher connects the processes",
                               "leave them out and launch with `mpirun -n N python script.py`")
    mpi = _mpi()
    comm = mpi.COMM_WORLD
    for name, given, actual in (("world_size", world_size, comm.Get_size()), ("rank", rank, comm.Get_rank())):
        if given not in (-1, None) and given != actual:
            raise DistributedError(f"init_process_group({name}={given}) but mpirun gave this process {name} {actual}",
                                   f"leave {name} out: MPI's launcher decides it")
    _group = _Group(mpi, comm, timeout.total_seconds())


def destroy_process_group(group=None):
    """Leave the process group (MPI itself is finalised when the program ends)."""
    global _group
    current()
    _group = None


def is_initialized():
    """Whether `init_process_group` was called (and the group not destroyed)."""
    return _group is not None


def is_available():
    """Whether distributed training can work here: mpi4py is installed (MPI is not started to find out)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_mpi_available():
    """Whether the MPI backend can work here (the only backend: `is_available()`)."""
    return is_available()


def get_rank(group=None):
    """This process's rank, 0 .. world_size - 1."""
    return current().rank


def get_world_size(group=None):
    """The number of processes in the group."""
    return current().size


def get_backend(group=None):
    """"mpi", the group's backend."""
    current()
    return "mpi"


def current():
    """The process group, or a DistributedError saying to create it."""
    if _group is None:
        raise DistributedError("the default process group has not been initialized",
                               "call avalon.distributed.init_process_group('mpi') first")
    return _group


def active():
    """The group when there is one with more than one process, else None (the collectives of one
    process are identities: single-process code needs no branch)."""
    return _group if _group is not None and _group.size > 1 else None


def mark_broken(group):
    """A collective of `group` timed out: the job is aborted when the program ends."""
    _broken.append(group)


def _abort_if_broken():
    # A timed-out collective leaves a request pending that the dead or stalled rank will never complete:
    # MPI_Finalize would wait for it. Abort instead, which also ends the ranks still waiting elsewhere.
    if _broken:
        sys.stderr.flush()
        _broken[0].comm.Abort(1)


atexit.register(_abort_if_broken)
