"""`fit`'s checkpoints: everything a training run needs to go on after it stopped.

At the end of each epoch `fit(..., checkpoint=path)` writes the model's and the optimiser's state
dicts, the scheduler's, the number of epochs done and the history, atomically (`avalon.save`: the
file is always the previous epoch's or the new one, never a mix). `fit(..., checkpoint=path,
resume=True)` reads it back and trains the remaining epochs; with no file there yet it starts from
the beginning, so one script serves the first run and every restart.

Resuming changes the model, the optimiser and the scheduler together or not at all: each is loaded
in turn (each `load_state_dict` checks everything before writing), and a failure in any of them puts
back the states the earlier ones had.
"""
import copy
import os

from ..io import CheckpointError, load, save

_FORMAT = "avalon.fit checkpoint 1"


def save_training(path, model, optimizer, scheduler, epochs_done, history):
    """Write the run's state after `epochs_done` epochs."""
    state = {"format": _FORMAT, "epochs_done": epochs_done, "model": model.state_dict(),
             "optimizer": optimizer.state_dict(), "history": {"epochs": history.epochs, "steps": history.steps}}
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    save(state, path)


def resume_training(path, model, optimizer, scheduler, epochs, history, agree=None):
    """The number of epochs already done, after loading the run saved at `path` (0, changing nothing,
    when there is no file yet). `history` gets the saved history.

    `agree(epochs_done)`, given, is called once on every rank whatever happened locally (-1 for a rank
    that could not load): it raises unless the ranks agree, and then every rank puts its states back,
    so a resume refused on one rank changes no rank."""
    # Copies: a model's state dict holds its live arrays, which loading writes into.
    saved = [(target, copy.deepcopy(target.state_dict())) for target in (model, optimizer, scheduler)
             if target is not None]
    loaded, error, done, state = [], None, 0, None
    try:
        if os.path.exists(path):
            state = load(path)
            _check(state, path, scheduler, epochs)
            done = _load_into(state, path, saved, loaded)
    except Exception as exc:
        error, done = exc, -1
    try:
        if agree is not None:
            agree(done)
    except BaseException:
        _put_back(saved, loaded)
        if error is not None:
            raise error from None  # this rank's own reason says more than the ranks' disagreement
        raise
    if error is not None:
        raise error
    if state is not None:
        history.epochs.update({k: list(v) for k, v in state["history"]["epochs"].items()})
        history.steps.update({k: list(v) for k, v in state["history"]["steps"].items()})
    return done


def _load_into(state, path, saved, loaded):
    """Load the saved parts into the run's model, optimiser and scheduler (`loaded` lists those done);
    any failure puts the loaded ones back."""
    try:
        for (target, _), key in zip(saved, ("model", "optimizer", "scheduler")):
            target.load_state_dict(state[key])
            loaded.append(target)
    except BaseException as error:
        _put_back(saved, loaded)
        if isinstance(error, Exception) and not isinstance(error, CheckpointError):
            raise CheckpointError(f"cannot resume from {path}: its {key} does not fit this run's {key} "
                                  f"({error}); nothing was changed. Resume with the model, optimiser and "
                                  "scheduler the checkpoint was made with, or start afresh without resume=True"
                                  ) from error
        raise
    return state["epochs_done"]


def _put_back(saved, loaded):
    for target, before in saved[:len(loaded)]:
        target.load_state_dict(before)
    loaded.clear()


def _check(state, path, scheduler, epochs):
    """Everything about the file that can be checked before any state changes."""
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise CheckpointError(f"{path} is not a checkpoint written by fit(checkpoint=...): resume=True reads "
                              "only those (load other checkpoints with avalon.load and load_state_dict)")
    done = state.get("epochs_done")
    history = state.get("history")
    if not isinstance(done, int) or done < 0 or not isinstance(history, dict) or \
            not all(isinstance(history.get(k), dict) for k in ("epochs", "steps")):
        raise CheckpointError(f"{path}: its epoch count or history is damaged; start afresh without resume=True")
    if done > epochs:
        raise CheckpointError(f"{path} holds a run {done} epochs long, past epochs={epochs}: pass epochs >= {done} "
                              "to train on from it")
    if (scheduler is None) != ("scheduler" not in state):
        has = "has" if "scheduler" in state else "has no"
        raise CheckpointError(f"{path} {has} scheduler state, but this run "
                              f"{'has none' if scheduler is None else 'has one'}: resume with the same scheduler "
                              "setting it was made with")
