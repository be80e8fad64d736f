"""bench/steps.py: its CI smoke mode runs every workload in both libraries, its subprocesses get the
issue's environment, and its hand-counted FLOPs (the GEMM floor's numerator) are PyTorch's own count."""
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

pytestmark = pytest.mark.bench

BENCH = Path(__file__).resolve().parents[2] / "bench"
BATCH = 2


def _load(name):
    """A bench/ module under a name of its own (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "BENCH_THREADS"}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    return env


def test_smoke_mode_runs_every_workload_in_both_libraries():
    done = subprocess.run([sys.executable, str(BENCH / "steps.py"), "--smoke"], capture_output=True,
                          text=True, timeout=240, env=_bench_env())
    assert done.returncode == 0, done.stderr[-4000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 5, done.stdout  # the header, then one row per workload
    for name in ("MLP", "LeNet", "ResNet-ish", "LSTM", "Transformer"):
        assert any(row.startswith(f"| {name}, batch {BATCH} |") for row in rows), (name, done.stdout)


def test_subprocesses_get_the_thread_count_and_lose_the_openblas_tuning():
    probe = ("import json, sys; sys.path.insert(0, sys.argv[1]); import harness; "
             "print(json.dumps(harness.subprocess_env(2)))")
    done = subprocess.run([sys.executable, "-c", probe, str(BENCH)], capture_output=True, text=True,
                          timeout=60, env=_bench_env(OPENBLAS_CORETYPE="Haswell", OPENBLAS_L2_SIZE="524288"))
    assert done.returncode == 0, done.stderr
    env = json.loads(done.stdout)
    assert "OPENBLAS_CORETYPE" not in env and "OPENBLAS_L2_SIZE" not in env
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["BENCH_THREADS"] == "2"


def test_avalons_processes_get_its_spin_count_and_pytorchs_what_its_users_get():
    """torch loads libgomp before Avalon could set GOMP_SPINCOUNT: the harness sets it first for Avalon's
    processes (and mixed ones); a PyTorch process gets the environment's, or libgomp's default."""
    from avalon.kernels.onednn import library

    probe = ("import json, os, sys; sys.path.insert(0, sys.argv[1]); import harness; "
             "print(json.dumps([os.environ['GOMP_SPINCOUNT'], harness.subprocess_env(2)['GOMP_SPINCOUNT'], "
             "harness.subprocess_env(2, 'avalon')['GOMP_SPINCOUNT'], "
             "harness.subprocess_env(2, 'torch').get('GOMP_SPINCOUNT')]))")
    for given, expected in ((None, [library.SPINCOUNT] * 3 + [None]), ("0", ["0"] * 4)):
        env = _bench_env()
        env.pop("GOMP_SPINCOUNT", None)
        if given is not None:
            env["GOMP_SPINCOUNT"] = given
        done = subprocess.run([sys.executable, "-c", probe, str(BENCH)], capture_output=True, text=True,
                              timeout=60, env=env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == expected


def test_neither_librarys_step_inherits_the_openmp_thread_count_the_other_left():
    probe = """if True:
        import json, sys; sys.path.insert(0, sys.argv[1])
        import harness, steps, torch
        from avalon.kernels.onednn import library
        theirs, ours = steps.load_models("torch"), steps.load_models("avalon")
        x, y = steps.batch_of("MLP", 2, theirs)
        torch_fn, avalon_fn = steps.torch_step(theirs, "MLP", x, y)[1], steps.avalon_step(ours, "MLP", x, y)[1]
        torch.set_num_threads(1)  # as a one-thread oneDNN call of Avalon's may leave it
        torch_fn()
        seen = [torch.get_num_threads()]
        torch.set_num_threads(1)  # as PyTorch may leave it
        avalon_fn()
        print(json.dumps(seen + [library.threads()]))
    """
    done = subprocess.run([sys.executable, "-c", probe, str(BENCH)], capture_output=True, text=True,
                          timeout=120, env=_bench_env(BENCH_THREADS="2"))
    assert done.returncode == 0, done.stderr[-4000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [2, 2]


def test_each_library_runs_in_processes_of_its_own_on_the_same_weights():
    """In one process the libraries slowed each other down (OpenBLAS's spinning worker, a shared
    OpenMP pool): each is timed alone, PyTorch's processes never load Avalon, and the medians are
    merged over every process's steps."""
    worker = [sys.executable, str(BENCH / "steps.py"), "--worker", "time", "MLP", "--steps", "2", "--warmup", "0"]
    runs = []
    for library, other in (("avalon", "torch"), ("torch", "avalon"), ("avalon", "torch")):
        done = subprocess.run([*worker, "--library", library], capture_output=True, text=True, timeout=240,
                              env=_bench_env(BENCH_THREADS="2"))
        assert done.returncode == 0, done.stderr[-4000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        assert f"{library}_s" in runs[-1] and f"{other}_s" not in runs[-1]
    probe = ("import json, sys; sys.path.insert(0, sys.argv[1]); import steps; "
             "steps.measure_time('MLP', 2, steps=1, warmup=0, gemm_n=64, libraries=('torch',)); "
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'avalon')))")
    done = subprocess.run([sys.executable, "-c", probe, str(BENCH)], capture_output=True, text=True, timeout=120,
                          env=_bench_env())
    assert done.returncode == 0, done.stderr[-4000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []  # PyTorch alone: Avalon never loaded
    assert runs[0]["avalon_loss"] == runs[2]["avalon_loss"]  # the same weights in every process
    probe = ("import json, sys; sys.path.insert(0, sys.argv[1]); import steps; "
             "print(json.dumps(steps.merged(json.load(sys.stdin))))")  # raises where the first losses differ
    done = subprocess.run([sys.executable, "-c", probe, str(BENCH)], input=json.dumps(runs), capture_output=True,
                          text=True, timeout=60, env=_bench_env())
    assert done.returncode == 0, done.stderr[-4000:]
    merged = json.loads(done.stdout)
    assert merged["steps"] == 4
    assert merged["avalon_s"] == statistics.median(runs[0]["avalon_samples"] + runs[2]["avalon_samples"])
    assert merged["torch_s"] == statistics.median(runs[1]["torch_samples"])


def _counted(fn):
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def _unrolled_lstm_step(model, x, y):
    """The LSTM step with the cell written out (PyTorch's fused CPU LSTM is invisible to the counter)."""
    p = dict(model.lstm.named_parameters())
    h = c = torch.zeros(x.shape[0], model.lstm.hidden_size)
    for t in range(x.shape[1]):
        gates = (torch.nn.functional.linear(x[:, t], p["weight_ih_l0"], p["bias_ih_l0"])
                 + torch.nn.functional.linear(h, p["weight_hh_l0"], p["bias_hh_l0"]))
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
    torch.nn.functional.cross_entropy(model.fc(h), y).backward()


@pytest.mark.parametrize("name", ["MLP", "LeNet", "ResNet-ish", "LSTM", "Transformer"])
def test_flop_counts_are_pytorchs(name):
    models, flops = _load("models"), _load("flops")
    cls, shape, _ = models.WORKLOADS[name]
    torch.manual_seed(0)
    model, x, y = cls(), torch.randn(BATCH, *shape), torch.randint(0, models.CLASSES, (BATCH,))
    if name == "LSTM":
        counted = _counted(lambda: _unrolled_lstm_step(model, x, y))
    else:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.MATH):  # attention as matmuls, which the counter sees
            counted = _counted(lambda: torch.nn.functional.cross_entropy(model(x), y).backward())
    assert flops.COUNTS[name](BATCH) == counted
