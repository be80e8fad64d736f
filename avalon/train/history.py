"""`History`: what `fit` recorded, per epoch and per step, with a matplotlib plot."""
from ..errors import AvalonError

__all__ = ["History"]


class History:
    """Values recorded during training.

    `history.epochs[name]` (also `history[name]`) has one value per epoch ('loss', 'lr', 'val_loss',
    'val_<metric>'); `history.steps[name]` one per optimiser step ('loss', 'lr').

    >>> history = avalon.fit(model, loss_fn, loader, opt, epochs=5, val_loader=val)
    >>> history["val_loss"]
    [0.91, 0.55, 0.42, 0.37, 0.35]
    >>> history.plot()
    """

    def __init__(self):
        self.epochs = {}
        self.steps = {}

    def log_step(self, **values):
        """Append one value per name to `steps` (call once per optimiser step)."""
        for name, value in values.items():
            self.steps.setdefault(name, []).append(value)

    def log_epoch(self, **values):
        """Append one value per name to `epochs` (call once per epoch)."""
        for name, value in values.items():
            self.epochs.setdefault(name, []).append(value)

    def __getitem__(self, name):
        if name not in self.epochs:
            raise KeyError(f"no per-epoch values named {name!r}; recorded: {sorted(self.epochs)}")
        return self.epochs[name]

    def __contains__(self, name):
        return name in self.epochs

    def __len__(self):
        """The number of epochs recorded."""
        return max((len(v) for v in self.epochs.values()), default=0)

    def plot(self):
        """A matplotlib Figure: the losses (every step, and per epoch with validation) and the val metrics.

        Needs matplotlib (`pip install matplotlib`); in a notebook the figure shows itself.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise AvalonError("History.plot needs matplotlib: pip install matplotlib") from None
        extra = [name for name in self.epochs if name.startswith("val_") and name != "val_loss"]
        figure, axes = plt.subplots(1, 1 + bool(extra), figsize=(6 + 4 * bool(extra), 4), squeeze=False)
        losses = axes[0][0]
        epochs = len(self)
        step_losses = self.steps.get("loss", [])
        if step_losses:
            per_epoch = len(step_losses) / max(epochs, 1)
            losses.plot([(i + 1) / per_epoch for i in range(len(step_losses))], step_losses, alpha=0.3,
                        label="loss (step)")
        for name in ("loss", "val_loss"):
            if name in self.epochs:
                losses.plot(range(1, epochs + 1), self.epochs[name], marker="o", label=name)
        losses.set_xlabel("epoch")
        losses.set_ylabel("loss")
        losses.legend()
        if extra:
            for name in extra:
                axes[0][1].plot(range(1, epochs + 1), self.epochs[name], marker="o", label=name)
            axes[0][1].set_xlabel("epoch")
            axes[0][1].legend()
        figure.tight_layout()
        return figure

    def __repr__(self):
        last = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.epochs.items() if v and isinstance(v[-1], float))
        return f"History({len(self)} epochs{': ' + last if last else ''})"
