"""fit trains a tiny model on generated data (the loss falls), records a History, steps schedulers, plots."""
import functools
import io
import sys

import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F
import avalon.optim as optim
from avalon.data import DataLoader, TensorDataset
from avalon.train import evaluate


def blobs(n, seed):
    """Two Gaussian classes in 2-D, centred at (-1, -1) and (1, 1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = (rng.standard_normal((n, 2)) * 0.7 + (2 * y[:, None] - 1)).astype(np.float32)
    return x, y


def loss_fn(m, x, y):
    return F.cross_entropy(m(x), y)


def accuracy(output, y):
    return float((output.argmax(1) == y).mean())


def setup(seed=0, lr=0.1):
    avalon.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    train = DataLoader(TensorDataset(*blobs(128, seed)), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(*blobs(64, seed + 100)), batch_size=64)
    return model, optim.SGD(model.parameters(), lr=lr, momentum=0.9), train, val


def test_fit_trains_a_tiny_classifier_and_the_loss_falls():
    model, opt, train, val = setup()
    initial = evaluate(model, loss_fn, val)["loss"]
    history = avalon.fit(model, loss_fn, train, opt, epochs=12, val_loader=val, metrics={"accuracy": accuracy},
                         progress=False)
    assert initial > 0.5
    assert history["loss"][-1] < 0.25 * history["loss"][0]
    assert history["val_loss"][-1] < 0.3 * initial and history["val_loss"][-1] < 0.1
    assert history["val_accuracy"][-1] >= 0.9
    assert model.training  # evaluation restored the training flag


def test_history_records_every_step_and_epoch_means():
    model, opt, train, val = setup()
    history = avalon.fit(model, loss_fn, train, opt, epochs=3, val_loader=val, progress=False)
    assert len(history) == 3 and len(history.steps["loss"]) == 3 * len(train) == 12
    assert sorted(history.epochs) == ["loss", "lr", "val_loss"]
    for epoch in range(3):
        steps = history.steps["loss"][4 * epoch:4 * epoch + 4]
        assert history["loss"][epoch] == pytest.approx(np.mean(steps))  # equal batches: plain mean
    assert "3 epochs" in repr(history) and "val_loss=" in repr(history)


def test_fit_is_repeatable_under_manual_seed():
    runs = []
    for _ in range(2):
        model, opt, train, val = setup(seed=3)
        runs.append(avalon.fit(model, loss_fn, train, opt, epochs=2, progress=False).steps["loss"])
    assert runs[0] == runs[1]


def test_schedulers_step_once_per_epoch():
    model, opt, train, _ = setup()
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    history = avalon.fit(model, loss_fn, train, opt, epochs=3, scheduler=sched, progress=False)
    assert history["lr"] == [0.1, 0.05, 0.025]
    assert history.steps["lr"][:5] == [0.1] * 4 + [0.05]
    assert opt.param_groups[0]["lr"] == 0.0125


def test_reduce_on_plateau_gets_the_validation_loss():
    seen = []

    class Recording(optim.lr_scheduler.ReduceLROnPlateau):
        def step(self, metrics):
            seen.append(metrics)
            super().step(metrics)

    model, opt, train, val = setup()
    history = avalon.fit(model, loss_fn, train, opt, epochs=3, val_loader=val, scheduler=Recording(opt),
                         progress=False)
    assert seen == history["val_loss"]


def test_each_epoch_line_keeps_its_mean_loss_and_validation_metrics(monkeypatch):
    tqdm_auto = pytest.importorskip("tqdm.auto")
    import tqdm as tqdm_package

    written = io.StringIO()
    monkeypatch.setattr(tqdm_auto, "tqdm", functools.partial(tqdm_package.tqdm, file=written))
    model, opt, train, val = setup()
    history = avalon.fit(model, loss_fn, train, opt, epochs=2, val_loader=val, metrics={"accuracy": accuracy})
    lines = [line.rsplit("\r", 1)[-1] for line in written.getvalue().strip().split("\n")]  # what stays on screen
    assert len(lines) == 2
    for epoch, line in enumerate(lines):
        assert line.startswith(f"epoch {epoch + 1}/2") and "4/4" in line, line
        assert f"loss={history['loss'][epoch]:.4g}" in line, line  # the epoch's mean, not the last batch's
        assert f"val_loss={history['val_loss'][epoch]:.4g}" in line, line
        assert f"val_accuracy={history['val_accuracy'][epoch]:.4g}" in line, line
    assert history.steps["loss"][3] != history["loss"][0]  # so the mean is not the last batch's loss


def test_progress_without_tqdm_says_to_install_it_and_changes_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # an import of it fails
    model, opt, train, _ = setup()
    before = [p.copy() for p in model.parameters()]
    with pytest.raises(avalon.AvalonError, match=r"progress=True needs tqdm(.|\n)*pip install tqdm") as refused:
        avalon.fit(model, loss_fn, train, opt, epochs=1)
    assert "progress=False" in str(refused.value) and __file__ in str(refused.value)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.parameters()))
    history = avalon.fit(model, loss_fn, train, opt, epochs=1, progress=False)
    assert len(history) == 1


def test_bad_uses_say_what_to_do():
    model, opt, train, _ = setup()
    with pytest.raises(avalon.AvalonError, match="val_loader"):
        avalon.fit(model, loss_fn, train, opt, epochs=1, metrics={"accuracy": accuracy})
    triples = DataLoader(TensorDataset(*blobs(8, 0), np.zeros(8)), batch_size=4)
    with pytest.raises(avalon.AvalonError, match=r"\(x, y\) batches, got a list of 3"):
        avalon.fit(model, loss_fn, triples, opt, epochs=1, progress=False)


def test_plot_draws_the_recorded_values(monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    model, opt, train, val = setup()
    history = avalon.fit(model, loss_fn, train, opt, epochs=2, val_loader=val, metrics={"accuracy": accuracy},
                         progress=False)
    figure = history.plot()
    losses, metrics = figure.axes
    lines = {line.get_label(): line for line in losses.lines}
    assert list(lines["loss (step)"].get_ydata()) == history.steps["loss"]
    assert list(lines["val_loss"].get_ydata()) == history["val_loss"]
    assert list(metrics.lines[0].get_ydata()) == history["val_accuracy"]
    matplotlib.pyplot.close(figure)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(avalon.AvalonError, match="pip install matplotlib"):
        history.plot()


def test_evaluate_runs_a_loss_written_with_tensor_methods():
    # A ported loss uses torch-style methods (`.pow()`, `.mean(dim)`), which plain numpy outputs lack.
    avalon.manual_seed(0)
    model = nn.Linear(3, 1)
    x = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
    y = x.sum(1, keepdims=True)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    loss_fn = lambda m, x, y: (m(x) - y).pow(2).mean(dim=0).sum()  # noqa: E731
    expected = float(((x @ model.weight.T + model.bias - y) ** 2).mean())
    assert evaluate(model, loss_fn, loader)["loss"] == pytest.approx(expected, rel=1e-5)
