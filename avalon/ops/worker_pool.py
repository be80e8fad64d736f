"""The threads that run a split pass's other parts beside the calling thread (conv_split's batch
parts, threads_split's row blocks): one pool per user, grown on demand and made again in a forked
child, which inherits the pool without its threads (work sent there would never run)."""
import os
import threading
from concurrent.futures import ThreadPoolExecutor


class WorkerPool:
    """`pool(count)`: an executor with at least `count - 1` threads named `name_…`."""

    def __init__(self, name):
        self.name = name
        self._executor = None
        self._workers = 0
        self._pid = None
        self._lock = threading.Lock()

    def __call__(self, count):
        with self._lock:
            forked = self._pid != os.getpid()
            if forked or self._workers < count - 1:
                if self._executor is not None and not forked:
                    self._executor.shutdown(wait=False)
                self._executor = ThreadPoolExecutor(count - 1, thread_name_prefix=self.name)
                self._workers, self._pid = count - 1, os.getpid()
            return self._executor
