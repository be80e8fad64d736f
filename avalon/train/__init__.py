"""The training loop, written once: `avalon.fit(model, loss_fn, loader, optimizer, epochs)` -> `History`.

>>> history = avalon.fit(model, lambda m, x, y: F.cross_entropy(m(x), y), train_loader, opt, epochs=5,
...                      val_loader=val_loader, metrics={"accuracy": accuracy})
>>> history.plot()
"""
from .fit import evaluate, fit
from .history import History

__all__ = ["fit", "evaluate", "History"]
