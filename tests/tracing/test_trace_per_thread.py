"""The traces being recorded belong to the thread recording them: while one thread traces, avalon
calls in another thread compute eagerly (they used to return tracers of the other thread's tape)."""
import threading

import numpy as np

import avalon


def test_calls_in_another_thread_stay_eager_while_one_traces():
    inside, release = threading.Event(), threading.Event()

    def traced(x):
        inside.set()
        release.wait(10)  # hold the trace open while the other thread computes
        return np.tanh(x).sum()

    worker = threading.Thread(target=lambda: avalon.grad(traced, np.ones(3)))
    worker.start()
    try:
        assert inside.wait(10)
        results = [avalon.exp(np.zeros(2)) for _ in range(50)]
        assert all(type(r) is avalon.Tensor for r in results)
        np.testing.assert_array_equal(results[-1], [1.0, 1.0])
        assert avalon.tracing.current() is None
    finally:
        release.set()
        worker.join(10)
    assert not worker.is_alive()
