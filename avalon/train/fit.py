"""`fit` and `evaluate`: the ordinary training loop, written once, recording a `History`.

`fit` adds nothing a user could not write: its docstring shows the loop it runs, to copy and change.
"""
import math
import numbers
from collections.abc import Mapping

from ..autodiff import call, grad
from ..errors import AvalonError
from ..optim.lr_scheduler import ReduceLROnPlateau
from ..tracing import user_location
from ..io.atomic import check_target
from ..io.safetensors_format import checked_path
from .checkpoints import resume_training, save_training
from .history import History
from .ranks import averaged, rank_and_size, same_start

__all__ = ["fit", "evaluate"]


def fit(model, loss_fn, train_loader, optimizer, epochs, val_loader=None, metrics=None, scheduler=None,
        progress=True, checkpoint=None, resume=False):
    """Train `model` for `epochs` passes over `train_loader`; return a `History`.

    - `loss_fn(model, x, y) -> scalar loss` is what `avalon.grad` differentiates, e.g.
      `lambda m, x, y: F.cross_entropy(m(x), y)`.
    - Loaders yield `(x, y)` batches (a `DataLoader` over a `TensorDataset(x, y)`).
    - `metrics`: dict name -> `fn(output, target) -> float`, computed on `val_loader` from `model(x)` in
      eval mode and averaged over samples; recorded as `val_<name>`.
    - `scheduler` steps once per epoch (a `ReduceLROnPlateau` with the validation loss, or the training
      loss without `val_loader`); step per-batch schedules such as OneCycleLR in your own loop.
    - `progress`: a tqdm bar per epoch (tqdm.auto, so notebooks get the widget) that keeps the epoch's
      mean loss and validation metrics when it ends.
    - `checkpoint`: a file path; after each epoch the model, optimiser and scheduler states, the epoch
      count and the history are written to it atomically. With `resume=True` a run starts from that file
      when it exists (training the epochs left of `epochs`; the returned history holds them all) and from
      the beginning when it does not, so the same script serves the first run and every restart.
      Resuming changes the model, optimiser and scheduler together or not at all.
    - Under `avalon.distributed` (a `DistributedDataParallel` model, launched with mpirun), rank 0 alone
      shows progress and writes the checkpoint (every rank resumes from it: put it where all can read it),
      and the losses and metrics recorded are averaged over the ranks, so every rank's history is the same. A loader's
      sampler with `set_epoch` (DistributedSampler) is told each epoch's number before it.

    The loop it runs:

        history = History()
        for epoch in range(epochs):
            model.train()
            for x, y in train_loader:
                loss, grads = avalon.grad(loss_fn, model, x, y, argnums=0)
                optimizer.step(grads[0])
                history.log_step(loss=float(loss), lr=optimizer.param_groups[0]["lr"])
            results = evaluate(model, loss_fn, val_loader, metrics)       # in eval mode
            history.log_epoch(loss=<mean training loss>, **{"val_" + k: v for k, v in results.items()})
            scheduler.step()                                              # or .step(val_loss)

    >>> history = avalon.fit(model, lambda m, x, y: F.mse_loss(m(x), y), loader, opt, epochs=10)
    >>> history["loss"][-1] < history["loss"][0]
    """
    if metrics is not None and not isinstance(metrics, Mapping):
        _refuse(f"metrics is a {type(metrics).__name__}", "pass a dict of name -> fn(output, target) -> float")
    metrics = dict(metrics or {})
    _check_arguments(model, loss_fn, train_loader, optimizer, epochs, val_loader, metrics, scheduler)
    _check_checkpoint(checkpoint, resume)
    history = History()
    rank, _ = rank_and_size()
    if progress and rank == 0:
        _tqdm()  # refused before anything changes
    start = resume_training(checkpoint, model, optimizer, scheduler, epochs, history,
                            agree=lambda done: same_start(done, checkpoint)) if resume else 0
    was_training = model.training
    try:
        for epoch in range(start, epochs):
            model.train()
            lr = optimizer.param_groups[0]["lr"]
            total, count = 0.0, 0
            sampler = getattr(train_loader, "sampler", None)
            if callable(getattr(sampler, "set_epoch", None)):  # a DistributedSampler: this epoch's order
                sampler.set_epoch(epoch)
            bar = _progress(train_loader, f"epoch {epoch + 1}/{epochs}", progress and rank == 0)
            try:
                for batch in train_loader:
                    x, y = _split(batch)
                    loss, grads = grad(loss_fn, model, x, y, argnums=0)  # the model's gradient alone
                    optimizer.step(grads[0])
                    value, n = averaged({"loss": float(loss)})["loss"], _count(x)
                    total, count = total + value * n, count + n
                    history.log_step(loss=value, lr=lr)
                    if bar is not None:
                        bar.set_postfix(loss=f"{value:.4g}", refresh=False)
                        bar.update(1)
                results = {"loss": total / count if count else math.nan, "lr": lr}
                if val_loader is not None:
                    results.update({f"val_{k}": v for k, v in averaged(evaluate(model, loss_fn, val_loader, metrics)).items()})
                history.log_epoch(**results)
                if bar is not None:  # the epoch's figures stay on its line once the bar closes
                    bar.set_postfix({k: f"{v:.4g}" for k, v in results.items() if k != "lr"})
            finally:
                if bar is not None:
                    bar.close()
            if scheduler is not None:
                if isinstance(scheduler, ReduceLROnPlateau):
                    scheduler.step(results.get("val_loss", results["loss"]))
                else:
                    scheduler.step()
            if checkpoint is not None and rank == 0:
                save_training(checkpoint, model, optimizer, scheduler, epoch + 1, history)
    except BaseException:  # a failure leaves the training mode as the caller had it
        model.train(was_training)
        raise
    return history


def _refuse(what, fix):
    where = user_location()  # the user's fit line
    raise AvalonError(f"fit: {what}" + (f"\n  at {where}" if where else "") + f"\n  fix: {fix}")


def _check_arguments(model, loss_fn, train_loader, optimizer, epochs, val_loader, metrics, scheduler):
    """Every argument fit can check, checked before it changes the model (its training flag, its weights)
    or the optimiser: a mistake found in the second epoch would leave one epoch of training behind."""
    refuse = _refuse
    if not isinstance(epochs, numbers.Integral) or isinstance(epochs, bool) or epochs < 0:
        refuse(f"epochs is {epochs!r}", "pass the number of passes over train_loader, an integer >= 0")
    if not callable(loss_fn):
        refuse(f"loss_fn is a {type(loss_fn).__name__}, not a function",
               "pass loss_fn(model, x, y) -> scalar loss, e.g. lambda m, x, y: F.cross_entropy(m(x), y)")
    if not callable(getattr(optimizer, "step", None)) or not hasattr(optimizer, "param_groups"):
        refuse(f"optimizer is a {type(optimizer).__name__}", "pass an avalon.optim optimiser over model.parameters()")
    if not callable(getattr(model, "train", None)):
        refuse(f"model is a {type(model).__name__}, not a Module", "pass the nn.Module to train")
    for name, loader in (("train_loader", train_loader), ("val_loader", val_loader)):
        if loader is not None and not hasattr(loader, "__iter__"):
            refuse(f"{name} is a {type(loader).__name__}, which cannot be iterated",
                   "pass a DataLoader (or any iterable of (x, y) batches)")
    if metrics and val_loader is None:
        refuse("metrics are computed on the validation data, but no val_loader was given",
               "pass val_loader=... (it may be a loader over the training data)")
    for name, fn in metrics.items():
        if not callable(fn):
            refuse(f"metric {name!r} is a {type(fn).__name__}", "pass fn(output, target) -> float")
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        refuse(f"scheduler is a {type(scheduler).__name__}", "pass an avalon.optim.lr_scheduler scheduler, or None")
    own = {id(p) for p in model.parameters()} if callable(getattr(model, "parameters", None)) else set()
    held = [p for group in optimizer.param_groups for p in group["params"]]
    if own and held and not any(id(p) in own for p in held):
        refuse("the optimizer holds none of the model's parameters (built for another model, or for a copy?)",
               "build the optimiser from this model: optim.SGD(model.parameters(), lr=...)")


def _check_checkpoint(checkpoint, resume):
    if resume and checkpoint is None:
        _refuse("resume=True needs the checkpoint to resume from", "pass checkpoint='run.safetensors' as well")
    if checkpoint is not None:
        check_target(checked_path(checkpoint, "save to"))  # a folder that cannot be written fails now, not after an epoch


def evaluate(model, loss_fn, loader, metrics=None):
    """Mean loss (and metrics) over `loader` in eval mode: {'loss': ..., name: ...}, averaged per sample.

    The model's training flag is restored afterwards.

    >>> evaluate(model, loss_fn, val_loader, {"accuracy": lambda out, y: float((out.argmax(1) == y).mean())})
    """
    metrics = dict(metrics or {})
    was_training = model.training
    model.eval()
    try:
        sums, count = dict.fromkeys(["loss", *metrics], 0.0), 0
        for batch in loader:
            x, y = _split(batch)
            n = _count(x)
            # Through the compile cache, as in training: the loss is traced (so torch-style methods such
            # as `.pow()` work on its values) and replayed on later batches.
            sums["loss"] += float(call(loss_fn, (model, x, y))) * n
            if metrics:
                output = model(x)
                for name, fn in metrics.items():
                    sums[name] += float(fn(output, y)) * n
            count += n
    finally:
        model.train(was_training)
    return {name: value / count if count else math.nan for name, value in sums.items()}


def _split(batch):
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    _refuse(f"fit and evaluate expect (x, y) batches, got a {type(batch).__name__}"
            f"{f' of {len(batch)}' if isinstance(batch, (tuple, list)) else ''}",
            "make the dataset return (input, target) pairs, or write the loop yourself (see fit's docstring)")


def _count(x):
    shape = getattr(x, "shape", None)
    if shape:
        return int(shape[0])
    return len(x) if hasattr(x, "__len__") else 1


def _progress(loader, description, enabled):
    """One epoch's open tqdm bar (None when not shown), advanced by hand: iterating a tqdm closes it at
    the last batch, before the epoch's mean loss and validation figures could be written on it."""
    if not enabled:
        return None
    return _tqdm()(desc=description, total=len(loader) if hasattr(loader, "__len__") else None, leave=True)


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        _refuse("progress=True needs tqdm, which is not installed",
                "pip install tqdm (a dependency of avalon: reinstalling avalon brings it), or pass progress=False")
    return tqdm
