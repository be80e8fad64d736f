"""avalon.fit under DDP (run_fit.py): rank 0 alone shows progress and writes checkpoints, the history is
averaged over the ranks (the same on both), and a run resumed from the last checkpoint ends where the
uninterrupted run ends; ranks that would resume from different epochs are refused."""
import json

import numpy as np

from mpi_launch import mpirun, needs_mpi


def run(path, epochs, mode):
    result = mpirun("run_fit.py", path, epochs, mode)
    assert result.returncode == 0, result.stderr
    return {rank: json.loads(lines[-1]) for rank, lines in result.reports.items()}


@needs_mpi
def test_fit_under_ddp_with_a_checkpoint_and_a_resumed_run(tmp_path):
    whole = run(tmp_path / "whole.safetensors", 2, "fresh")
    assert whole[0]["shown"] == [True, True] and whole[1]["shown"] == [False, False]
    assert whole[0]["saved"] == [1, 2] and whole[1]["saved"] == []
    assert whole[0]["epochs"] == whole[1]["epochs"] and whole[0]["steps"] == whole[1]["steps"]
    assert whole[0]["checksum"] == whole[1]["checksum"]
    epochs = whole[0]["epochs"]
    assert len(epochs["loss"]) == 2 and set(epochs) >= {"loss", "val_loss", "val_accuracy"}
    # 40 samples, 2 ranks, batches of 5: 4 steps per epoch, each loss the mean of the two ranks'
    assert len(whole[0]["steps"]["loss"]) == 8
    assert np.isclose(epochs["loss"][0], np.mean(whole[0]["steps"]["loss"][:4]))

    first = run(tmp_path / "resumed.safetensors", 1, "fresh")  # stopped after one epoch, then started again
    assert first[0]["saved"] == [1]
    split = run(tmp_path / "resumed.safetensors", 2, "split")  # refused on both ranks, nothing trained
    assert all("the ranks differ (from 0 to 1 epochs" in split[r]["error"] and "shared file system" in
               split[r]["error"] for r in (0, 1)), split
    assert split[0]["unchanged"] and split[1]["unchanged"]  # rank 0 had loaded the file: put back
    resumed = run(tmp_path / "resumed.safetensors", 2, "resume")
    assert resumed[0]["saved"] == [2] and resumed[1]["saved"] == []
    assert resumed[0]["checksum"] == resumed[1]["checksum"]
    assert np.isclose(resumed[0]["checksum"], whole[0]["checksum"], rtol=1e-6)
    assert np.allclose(resumed[0]["epochs"]["loss"], epochs["loss"], rtol=1e-6)
