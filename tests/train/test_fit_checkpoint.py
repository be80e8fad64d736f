"""fit(checkpoint=..., resume=True): a run stopped after any epoch goes on from its last checkpoint to
the same weights, optimiser state, schedule and history as a run never stopped; a checkpoint that does
not fit the run changes nothing (issue #10, atomic state changes)."""
import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
import avalon.optim as optim
from avalon.data import DataLoader, TensorDataset
from avalon.io import CheckpointError, CorruptCheckpointError


def loss_fn(m, x, y):
    return F.cross_entropy(m(x), y)


def run(width=16, scheduler=True):
    """A model, optimiser, scheduler and loader, the same at every call (no shuffling: epochs repeat)."""
    avalon.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 2)).astype(np.float32), rng.integers(0, 2, 64)
    model = nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, 2))
    opt = optim.Adam(model.parameters(), lr=0.05)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5) if scheduler else None
    return model, opt, sched, DataLoader(TensorDataset(x, y), batch_size=16)


def snapshot(model, opt, sched):
    state = {k: np.array(v) for k, v in model.state_dict().items()}
    optimiser = {i: {k: np.array(v) for k, v in s.items()} for i, s in opt.state_dict()["state"].items()}
    return state, optimiser, opt.param_groups[0]["lr"], None if sched is None else sched.last_epoch


def assert_same(a, b):
    (ma, oa, lra, ea), (mb, ob, lrb, eb) = a, b
    assert ma.keys() == mb.keys() and all(np.allclose(ma[k], mb[k], rtol=1e-6, atol=1e-7) for k in ma)
    assert oa.keys() == ob.keys() and all(np.allclose(oa[i][k], ob[i][k], rtol=1e-6, atol=1e-7)
                                          for i in oa for k in oa[i])
    assert lra == lrb and ea == eb


@pytest.mark.parametrize("stop_after", [1, 3])
def test_a_stopped_run_resumes_to_the_uninterrupted_result(tmp_path, stop_after):
    model, opt, sched, loader = run()
    whole = avalon.fit(model, loss_fn, loader, opt, 4, scheduler=sched, progress=False)
    expected = snapshot(model, opt, sched)

    path = tmp_path / "run.safetensors"
    model, opt, sched, loader = run()
    avalon.fit(model, loss_fn, loader, opt, stop_after, scheduler=sched, progress=False, checkpoint=path)
    model, opt, sched, loader = run()  # a new process: everything built afresh, then resumed
    history = avalon.fit(model, loss_fn, loader, opt, 4, scheduler=sched, progress=False, checkpoint=path,
                         resume=True)
    assert_same(snapshot(model, opt, sched), expected)
    assert np.allclose(history["loss"], whole["loss"], rtol=1e-6) and len(history) == 4
    assert len(history.steps["loss"]) == len(whole.steps["loss"])
    assert avalon.load(path)["epochs_done"] == 4


def test_a_run_interrupted_mid_epoch_resumes_from_the_last_finished_epoch(tmp_path):
    model, opt, sched, loader = run()
    avalon.fit(model, loss_fn, loader, opt, 3, scheduler=sched, progress=False)
    expected = snapshot(model, opt, sched)

    path = tmp_path / "run.safetensors"
    model, opt, sched, loader = run()
    batches = iter(range(100))

    class Crash(Exception):
        pass

    def crashing_loader():
        for batch in loader:
            if next(batches) == 6:  # the third batch of the second epoch
                raise Crash
            yield batch

    class Loader:
        def __iter__(self):
            return crashing_loader()

        def __len__(self):
            return len(loader)

    with pytest.raises(Crash):
        avalon.fit(model, loss_fn, Loader(), opt, 3, scheduler=sched, progress=False, checkpoint=path)
    assert avalon.load(path)["epochs_done"] == 1
    model, opt, sched, loader = run()
    avalon.fit(model, loss_fn, loader, opt, 3, scheduler=sched, progress=False, checkpoint=path, resume=True)
    assert_same(snapshot(model, opt, sched), expected)


def test_resume_without_a_file_starts_afresh(tmp_path):
    path = tmp_path / "new.safetensors"
    model, opt, sched, loader = run()
    history = avalon.fit(model, loss_fn, loader, opt, 2, scheduler=sched, progress=False, checkpoint=path,
                         resume=True)
    assert len(history) == 2 and path.exists()


def test_a_finished_run_resumed_trains_nothing_more(tmp_path):
    path = tmp_path / "run.safetensors"
    model, opt, sched, loader = run()
    avalon.fit(model, loss_fn, loader, opt, 2, scheduler=sched, progress=False, checkpoint=path)
    done = snapshot(model, opt, sched)
    model, opt, sched, loader = run()
    history = avalon.fit(model, loss_fn, loader, opt, 2, scheduler=sched, progress=False, checkpoint=path,
                         resume=True)
    assert_same(snapshot(model, opt, sched), done) and len(history) == 2


def mismatched(tmp_path):
    """A checkpoint of a wider model: its model entry cannot load into the run's."""
    path = tmp_path / "wide.safetensors"
    model, opt, sched, loader = run(width=32)
    avalon.fit(model, loss_fn, loader, opt, 1, scheduler=sched, progress=False, checkpoint=path)
    return path


def test_a_checkpoint_of_another_model_changes_nothing(tmp_path):
    path = mismatched(tmp_path)
    model, opt, sched, loader = run()
    before, on_disk = snapshot(model, opt, sched), path.read_bytes()
    with pytest.raises(CheckpointError, match="its model does not fit .*nothing was changed"):
        avalon.fit(model, loss_fn, loader, opt, 3, scheduler=sched, progress=False, checkpoint=path, resume=True)
    assert_same(snapshot(model, opt, sched), before)
    assert path.read_bytes() == on_disk


@pytest.mark.parametrize("failing", ["optimizer", "scheduler"])
def test_a_failure_loading_any_part_puts_the_earlier_parts_back(tmp_path, failing, monkeypatch):
    path = tmp_path / "run.safetensors"
    model, opt, sched, loader = run()
    avalon.fit(model, loss_fn, loader, opt, 2, scheduler=sched, progress=False, checkpoint=path)
    model, opt, sched, loader = run()
    avalon.fit(model, loss_fn, loader, opt, 1, scheduler=sched, progress=False)  # some state of its own
    before = snapshot(model, opt, sched)
    target = opt if failing == "optimizer" else sched

    def broken(state):
        raise KeyboardInterrupt  # the worst moment: after the earlier parts were loaded

    monkeypatch.setattr(target, "load_state_dict", broken)
    with pytest.raises(KeyboardInterrupt):
        avalon.fit(model, loss_fn, loader, opt, 3, scheduler=sched, progress=False, checkpoint=path, resume=True)
    monkeypatch.undo()
    assert_same(snapshot(model, opt, sched), before)


def test_bad_checkpoints_are_refused_before_anything_changes(tmp_path):
    model, opt, sched, loader = run()
    before = snapshot(model, opt, sched)
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(CorruptCheckpointError, match="damaged.safetensors"):
        avalon.fit(model, loss_fn, loader, opt, 2, scheduler=sched, progress=False, checkpoint=damaged, resume=True)
    other = tmp_path / "weights.safetensors"
    avalon.save(model, other)
    with pytest.raises(CheckpointError, match="not a checkpoint written by fit"):
        avalon.fit(model, loss_fn, loader, opt, 2, scheduler=sched, progress=False, checkpoint=other, resume=True)
    path = tmp_path / "run.safetensors"
    m2, o2, s2, l2 = run()
    avalon.fit(m2, loss_fn, l2, o2, 3, scheduler=s2, progress=False, checkpoint=path)
    with pytest.raises(CheckpointError, match="3 epochs long, past epochs=2"):
        avalon.fit(model, loss_fn, loader, opt, 2, scheduler=sched, progress=False, checkpoint=path, resume=True)
    with pytest.raises(CheckpointError, match="has scheduler state, but this run has none"):
        avalon.fit(model, loss_fn, loader, opt, 4, progress=False, checkpoint=path, resume=True)
    assert_same(snapshot(model, opt, sched), before)


def test_resume_needs_a_checkpoint_and_an_unwritable_folder_fails_before_training(tmp_path):
    model, opt, sched, loader = run()
    before = snapshot(model, opt, sched)
    with pytest.raises(avalon.AvalonError, match="resume=True needs the checkpoint"):
        avalon.fit(model, loss_fn, loader, opt, 1, resume=True, progress=False)
    with pytest.raises(avalon.AvalonError):
        avalon.fit(model, loss_fn, loader, opt, 1, progress=False, checkpoint=tmp_path / "missing" / "run.safetensors")
    assert_same(snapshot(model, opt, sched), before)
