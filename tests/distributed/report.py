"""How a scenario's ranks report to the test: one file per rank (mpirun forwards the ranks' stdout in
chunks, so lines printed by two ranks at once can interleave)."""
import os


def say(rank, text):
    with open(os.path.join(os.environ["SCENARIO_OUT"], f"rank{rank}.txt"), "a") as file:
        file.write(f"{text}\n")
