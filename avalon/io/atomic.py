"""Atomic file writes for checkpoints, and the clean-up of what killed writes left behind.

A checkpoint is written to a temporary file in the target's folder, flushed to disk, and renamed over
the target: the target is always either the old file or the complete new one, never a mix. Any failure
removes the temporary file. A process killed mid-write (kill -9, power loss) cannot remove its own, so
temporary files carry a recognisable name with the writer's host and pid,

    .model.safetensors.avalon-partial-<host>-<pid>-<random>.tmp

and the next save into that folder removes those whose writer is gone (same host, pid no longer
running) or that nobody has touched for `STALE_AFTER_S` seconds (any host; a live writer keeps its
file's modification time fresh as it writes).
"""
import contextlib
import errno
import os
import re
import socket
import tempfile
import time

from .safetensors_format import CheckpointError, CheckpointWriteError

__all__ = ["write_atomically", "remove_stale_temporaries", "temporary_prefix", "STALE_AFTER_S"]

STALE_AFTER_S = 60 * 60
_TAG = "avalon-partial"
_PATTERN = re.compile(rf"^\..*\.{_TAG}-(?P<host>[A-Za-z0-9_-]*)-(?P<pid>\d+)-[a-z0-9_]+\.tmp$", re.DOTALL)


def _host():
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:32]


def temporary_prefix(path, pid=None):
    """The start of the name of a temporary file that `path` is written through (by process `pid`)."""
    base = os.path.basename(path)[:100]  # room for the rest within the usual 255-byte name limit
    return f".{base}.{_TAG}-{_host()}-{os.getpid() if pid is None else pid}-"


def check_target(path):
    """Refuse, before anything is written, a path that cannot receive a file."""
    folder = os.path.dirname(os.path.abspath(path))
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise CheckpointError(f"cannot save to {path}: it is a folder; give a file name such as "
                              f"{os.path.join(path, 'model.safetensors')}")
    if not os.path.isdir(folder):
        raise CheckpointError(f"cannot save to {path}: the folder {folder} does not exist")


def write_atomically(path, header, arrays):
    """Write `header` then the bytes of `arrays` to `path`, atomically (see the module's docstring)."""
    check_target(path)
    # Through a symlink (latest.safetensors -> run3/model.safetensors) the file it points to is replaced,
    # as torch.save's plain open() would write it, and the link stays a link.
    destination = os.path.realpath(path) if os.path.islink(path) else path
    folder = os.path.dirname(os.path.abspath(destination))
    remove_stale_temporaries(folder)
    try:
        mode = _mode_for(destination)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=temporary_prefix(destination), suffix=".tmp")
    except OSError as e:
        raise _write_error(path, folder, e) from None
    opened = False
    try:
        with os.fdopen(fd, "wb") as f:
            opened = True  # from here on the file object owns (and closes) the descriptor
            write_payload(f, header, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, destination)
    except BaseException as e:
        if not opened:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(e, OSError) and not isinstance(e, CheckpointError):
            raise _write_error(path, folder, e) from None
        raise


def write_payload(f, header, arrays):
    """The file's bytes, written without copying the arrays (a seam the failure-injection tests use)."""
    f.write(header)
    for array in arrays:
        if array.size:
            f.write(memoryview(array.reshape(-1)).cast("B"))


def remove_stale_temporaries(folder, now=None):
    """Remove the temporary files of killed saves in `folder`; the names of those removed.

    Never raises: a file another process removes first, or a folder that cannot be listed, is skipped.
    """
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    host = _host()
    for entry in entries:
        match = _PATTERN.match(entry.name)
        if match is None:
            continue
        with contextlib.suppress(OSError):
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
            gone = match["host"] == host and not _running(int(match["pid"]))
            if old or gone:
                os.unlink(entry.path)
                removed.append(entry.name)
    return removed


def _running(pid):
    """Whether process `pid` exists on this machine (a pid we may not signal exists too)."""
    if os.name == "nt":
        return True  # os.kill would terminate it there; the age rule alone applies
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OverflowError:
        return False  # not a pid this system can have
    return True


def _write_error(path, folder, error):
    """The OS's refusal, naming the user's path (not the temporary file's) and what to do."""
    reason = error.strerror or str(error) or type(error).__name__
    if isinstance(error, PermissionError) or error.errno == errno.EROFS:
        why = f"the folder {folder} is not writable ({reason}): save somewhere else, or fix its permissions"
    else:
        why = reason
    return CheckpointWriteError(f"cannot save to {path}: {why}. The old file (if any) is intact")


def _mode_for(path):
    """Keep an existing file's permissions; a new file gets the usual ones (0o666 less the umask)."""
    if os.path.exists(path):
        return os.stat(path).st_mode & 0o7777
    return 0o666 & ~_umask()


def _umask():
    # Reading it from /proc leaves it alone: setting and restoring it would race other threads' writes.
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    umask = os.umask(0)
    os.umask(umask)
    return umask
