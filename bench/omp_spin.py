"""How GNU OpenMP's spinning after a parallel region affects a training step at 2 threads (issue #9).

oneDNN's kernels (batch norm, pooling, convolutions) run on GNU OpenMP threads; after a region its
worker spins for GOMP_SPINCOUNT iterations before it sleeps, and meanwhile Avalon's own worker thread
(ops/threads_split.py, conv_split.py) wants the same core for the next numpy pass. GOMP_SPINCOUNT is
read once, when libgomp loads, so each setting runs in a fresh process; the settings alternate round by
round, so a busy machine slows them alike. "default" leaves the variable unset: Avalon then sets
avalon.kernels.onednn.library.SPINCOUNT; 300000 is libgomp's own default.

Run: `python bench/omp_spin.py [rounds] [workload] [settings]`, e.g.
`python bench/omp_spin.py 3 ResNet-ish default,300000,0`; prints each setting's median step (wall ms,
the median of 5 steps in each round) and its ratio to the first setting.
"""
import json  # noqa: I001
import os
import statistics
import subprocess
import sys
import time

STEPS = 5


def worker(name):
    sys.argv[1:2] = ["2"]  # the harness reads the thread count from the first argument
    import harness  # noqa: F401 - sets 2 threads before numpy loads
    import steps

    models = steps.load_models("avalon")
    x, y = steps.batch_of(name, None, models)
    step = steps.avalon_step(models, name, x, y)[1]
    for _ in range(2):
        step()
    times = []
    for _ in range(STEPS):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(json.dumps({"ms": 1e3 * statistics.median(times)}))


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    name = sys.argv[2] if len(sys.argv) > 2 else "ResNet-ish"
    settings = (sys.argv[3] if len(sys.argv) > 3 else "default,300000,0").split(",")
    results = {s: [] for s in settings}
    for _ in range(rounds):
        for setting in settings:
            env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2", MKL_NUM_THREADS="2")
            env.pop("GOMP_SPINCOUNT", None)
            if setting != "default":
                env["GOMP_SPINCOUNT"] = setting
            done = subprocess.run([sys.executable, __file__, "--worker", name], env=env, capture_output=True,
                                  text=True, check=True)
            results[setting].append(json.loads(done.stdout.strip().splitlines()[-1])["ms"])
    base = statistics.median(results[settings[0]])
    for setting, values in results.items():
        ms = statistics.median(values)
        print(f"{name} at 2 threads, GOMP_SPINCOUNT={setting}: {ms:.1f} ms ({ms / base:.2f}x)  rounds: "
              + ", ".join(f"{v:.0f}" for v in values))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2])
    else:
        main()
