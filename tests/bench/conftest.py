"""The `bench` marker: tests of the benchmarks themselves (smoke runs, their FLOP counts), kept quick
with small batches; `-m "not bench"` leaves them out."""


def pytest_configure(config):
    config.addinivalue_line("markers", "bench: checks of bench/ (smoke runs and counts), quick")
