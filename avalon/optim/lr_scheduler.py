"""Learning-rate schedulers: PyTorch's classes, formulas and stepping rules, so lr sequences match.

A scheduler rewrites `group["lr"]` of its optimiser's parameter groups each time `step()` is called
(after `optimizer.step`). Most follow PyTorch's *chainable* form (each step scales the current lr), so
several schedulers may act on one optimiser. Arguments that would make a step divide by zero or give a
negative or NaN lr are refused up front; a step computing one is refused, changing nothing.

>>> sched = avalon.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
>>> for epoch in range(30):
...     train_one_epoch(); sched.step()
"""
import math
import types
from bisect import bisect_right
from collections import Counter

from . import _schedule_checks as check

from .optimizer import Optimizer, OptimizerError

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR", "LinearLR", "CosineAnnealingLR",
           "CosineAnnealingWarmRestarts", "OneCycleLR", "SequentialLR", "ReduceLROnPlateau"]


def _lrs(optimizer):
    return [group["lr"] for group in optimizer.param_groups]


def _per_group(name, optimizer, value):
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise OptimizerError(f"{name} has {len(value)} values but the optimiser has "
                                 f"{len(optimizer.param_groups)} parameter groups", fix="give one per group")
        return list(value)
    return [value] * len(optimizer.param_groups)


def _cosine(base, eta_min, t, period):
    """Half a cosine from `base` (t = 0) down to `eta_min` (t = period)."""
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / period)) / 2


def _check_optimizer(optimizer):
    if not isinstance(optimizer, Optimizer):
        raise OptimizerError(f"{type(optimizer).__name__} is not an avalon Optimizer",
                             fix="pass the avalon.optim optimiser whose learning rate is to change")


class LRScheduler:
    """Base class: `step()`, `get_last_lr()`, `state_dict()`, `load_state_dict()`.

    Subclasses implement `get_lr()` (the lrs for the new `last_epoch`). Creating a scheduler records
    each group's `initial_lr` and performs the first step (epoch 0).
    """

    def __init__(self, optimizer, last_epoch=-1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        if last_epoch != -1:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise OptimizerError(f"param_groups[{i}] has no 'initial_lr', needed to resume at "
                                         f"last_epoch={last_epoch}",
                                         fix="load the optimiser's state dict first, or start with last_epoch=-1")
        with check.all_or_nothing(self, optimizer):  # a refused first step leaves the groups as they were
            if last_epoch == -1:
                for group in optimizer.param_groups:
                    group.setdefault("initial_lr", group["lr"])
            self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
            self.last_epoch = last_epoch
            self._initial_step()

    def _initial_step(self):
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self):
        """The learning rates for the current `last_epoch` (computed from the current ones)."""
        raise NotImplementedError

    def get_last_lr(self):
        """The learning rates the last `step()` set, one per parameter group."""
        return list(self._last_lr)

    def step(self):
        """Advance one epoch (or one batch, for per-batch schedules) and set the new learning rates; a
        negative or non-finite one is refused (OptimizerError) and nothing changes."""
        with check.all_or_nothing(self, self.optimizer):
            self._step_count += 1
            self._update_lr()

    def _update_lr(self, epoch=None):
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        self._set_lrs(values)

    def _set_lrs(self, values):
        values = check.learning_rates(self, values)
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = _lrs(self.optimizer)

    def state_dict(self):
        """Every attribute except the optimiser (restore with `load_state_dict`)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore what `state_dict` returned; anything but such a dict, or unknown keys, raise and change
        nothing."""
        check.loadable(self, state_dict)
        self.__dict__.update(state_dict)

    def __repr__(self):
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={getattr(self, '_last_lr', None)})"


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(epoch), one function or one per group.

    >>> sched = LambdaLR(opt, lambda epoch: 0.95 ** epoch)
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer(optimizer)
        self.lr_lambdas = _per_group("lr_lambda", optimizer, lr_lambda)
        if not all(callable(fn) for fn in self.lr_lambdas):
            raise OptimizerError(f"LambdaLR: lr_lambda must be a function of the epoch (one, or one per group), "
                                 f"got {lr_lambda!r}", fix="pass e.g. lambda epoch: 0.95 ** epoch")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self):
        """As the base class; functions are not saved, callable objects' attributes are."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else dict(fn.__dict__)
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        saved = state.pop("lr_lambdas", [None] * len(self.lr_lambdas))
        super().load_state_dict(state)
        for fn, attributes in zip(self.lr_lambdas, saved):
            if attributes is not None:
                fn.__dict__.update(attributes)


class StepLR(LRScheduler):
    """Multiply the lr by `gamma` every `step_size` epochs.

    >>> sched = StepLR(opt, step_size=30, gamma=0.1)   # 0.05 for epochs 0-29, 0.005 for 30-59 ...
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        check.positive_int("StepLR", "step_size", step_size)
        check.nonnegative("StepLR", "gamma", gamma)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _lrs(self.optimizer)
        return [lr * self.gamma for lr in _lrs(self.optimizer)]

    def _closed_form_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the lr by `gamma` at each epoch listed in `milestones`.

    >>> sched = MultiStepLR(opt, milestones=[30, 80], gamma=0.1)
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        check.nonnegative("MultiStepLR", "gamma", gamma)
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return _lrs(self.optimizer)
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in _lrs(self.optimizer)]

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.milestones = Counter(self.milestones)  # a checkpoint gives it back as a plain dict

    def _closed_form_lr(self):
        milestones = sorted(self.milestones.elements())
        return [base * self.gamma ** bisect_right(milestones, self.last_epoch) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the lr by `gamma` every epoch.

    >>> sched = ExponentialLR(opt, gamma=0.9)
    """

    def __init__(self, optimizer, gamma, last_epoch=-1):
        check.nonnegative("ExponentialLR", "gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return _lrs(self.optimizer)
        return [lr * self.gamma for lr in _lrs(self.optimizer)]

    def _closed_form_lr(self):
        return [base * self.gamma ** self.last_epoch for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the lr by a factor going linearly from `start_factor` to `end_factor` over `total_iters` epochs.

    >>> sched = LinearLR(opt, start_factor=0.1, total_iters=5)   # a linear warm-up
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if not 0 < start_factor <= 1.0:
            raise OptimizerError(f"start_factor is {start_factor}; it must be in (0, 1] (PyTorch: Starting "
                                 "multiplicative factor expected to be greater than 0 and less or equal to 1.)")
        if not 0 <= end_factor <= 1.0:
            raise OptimizerError(f"end_factor is {end_factor}; it must be in [0, 1] (PyTorch: Ending "
                                 "multiplicative factor expected to be between 0 and 1.)")
        check.positive_int("LinearLR", "total_iters", total_iters, zero_ok=True)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in _lrs(self.optimizer)]
        if self._is_initial or self.last_epoch > self.total_iters:
            return _lrs(self.optimizer)
        change = self.end_factor - self.start_factor
        factor = 1.0 + change / (self.total_iters * self.start_factor + (self.last_epoch - 1) * change)
        return [lr * factor for lr in _lrs(self.optimizer)]

    def _closed_form_lr(self):
        done = min(self.total_iters, self.last_epoch) / self.total_iters
        return [base * (self.start_factor + (self.end_factor - self.start_factor) * done) for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the initial lr to `eta_min` over `T_max` epochs (then back up, periodically).

    lr_t = eta_min + (initial_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2, applied recursively as PyTorch does.

    >>> sched = CosineAnnealingLR(opt, T_max=100)
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        check.positive("CosineAnnealingLR", "T_max", T_max)
        check.nonnegative("CosineAnnealingLR", "eta_min", eta_min)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        groups = self.optimizer.param_groups
        if self._is_initial:
            return _lrs(self.optimizer)
        if self._step_count == 1 and self.last_epoch > 0:
            return self._closed_form_lr()
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            return [group["lr"] + (base - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                    for base, group in zip(self.base_lrs, groups)]
        ratio = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / \
            (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
        return [ratio * (group["lr"] - self.eta_min) + self.eta_min for group in groups]

    def _closed_form_lr(self):
        return [_cosine(base, self.eta_min, self.last_epoch, self.T_max) for base in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine annealing restarted every `T_i` epochs, with T_0 = `T_0` and T_{i+1} = T_mult * T_i (SGDR).

    `step()` advances one epoch; `step(epoch)` accepts fractional epochs, for per-batch use:

    >>> sched = CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2)
    >>> for epoch in range(20):
    ...     for i, (x, y) in enumerate(loader):
    ...         ...; sched.step(epoch + i / len(loader))
    """

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        if not isinstance(T_0, int) or T_0 <= 0:
            raise OptimizerError(f"T_0 must be a positive integer, got {T_0!r}",
                                 fix="pass the first restart period in epochs, e.g. T_0=10")
        if not isinstance(T_mult, int) or T_mult < 1:
            raise OptimizerError(f"T_mult must be an integer >= 1, got {T_mult!r}",
                                 fix="pass T_mult=1 (equal periods) or 2 (doubling)")
        check.nonnegative("CosineAnnealingWarmRestarts", "eta_min", eta_min,
                          f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [_cosine(base, self.eta_min, self.T_cur, self.T_i) for base in self.base_lrs]

    def step(self, epoch=None):
        """Advance one epoch, or jump to `epoch` (a float: a fraction of an epoch is allowed)."""
        with check.all_or_nothing(self, self.optimizer):
            self._advance(epoch)

    def _advance(self, epoch):
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur %= self.T_i
                self.T_i *= self.T_mult
        elif epoch < 0:
            raise OptimizerError(f"epoch must be non-negative, got {epoch}",
                                 fix="pass an epoch >= 0, or call step() without one")
        elif epoch >= self.T_0:
            if self.T_mult == 1:
                self.T_cur = epoch % self.T_0
            else:
                n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                self.T_i = self.T_0 * self.T_mult ** n
        else:
            self.T_i = self.T_0
            self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self._set_lrs(self.get_lr())


class OneCycleLR(LRScheduler):
    """The 1cycle policy: lr rises from max_lr / div_factor to `max_lr`, then anneals to a tiny minimum.

    Stepped after every batch, `total_steps` times (or `epochs * steps_per_epoch`). With
    `cycle_momentum` the momentum (SGD's `momentum`, or Adam-style `betas[0]`) moves inversely between
    `max_momentum` and `base_momentum`. `three_phase=True` adds the original paper's third phase;
    `anneal_strategy` is 'cos' or 'linear'.

    >>> sched = OneCycleLR(opt, max_lr=0.1, epochs=10, steps_per_epoch=len(loader))
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        _check_optimizer(optimizer)
        if total_steps is not None:
            if not isinstance(total_steps, int) or total_steps <= 0:
                raise OptimizerError(f"total_steps must be a positive integer, got {total_steps!r}",
                                     fix="pass the number of optimiser steps, e.g. epochs * len(loader)")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
                if not isinstance(value, int) or value <= 0:
                    raise OptimizerError(f"{name} must be a positive integer, got {value!r}",
                                         fix=f"pass {name} as an int >= 1")
            self.total_steps = epochs * steps_per_epoch
        else:
            raise OptimizerError("OneCycleLR needs total_steps, or epochs and steps_per_epoch",
                                 fix="pass total_steps=..., or epochs=... and steps_per_epoch=len(loader)")
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise OptimizerError(f"pct_start must be a float in [0, 1], got {pct_start!r}",
                                 fix="pass pct_start=0.3 (the fraction of steps spent raising the lr)")
        if anneal_strategy not in ("cos", "linear"):
            raise OptimizerError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}",
                                 fix="pass anneal_strategy='cos' or 'linear'")
        check.positive("OneCycleLR", "div_factor", div_factor)
        check.positive("OneCycleLR", "final_div_factor", final_div_factor)
        self.anneal_strategy = anneal_strategy
        up = float(pct_start * self.total_steps) - 1
        if three_phase:
            self._phases = [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                            (float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr",
                             "base_momentum", "max_momentum"),
                            (self.total_steps - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            self._phases = [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                            (self.total_steps - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        check.one_cycle_phases(self._phases, self.total_steps, pct_start)
        if cycle_momentum and "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
            raise OptimizerError(f"{type(optimizer).__name__} has neither momentum nor betas to cycle",
                                 fix="pass cycle_momentum=False")
        max_lrs = _per_group("max_lr", optimizer, max_lr)
        for peak in max_lrs:
            check.nonnegative("OneCycleLR", "max_lr", peak)
        if last_epoch == -1:
            for peak, group in zip(max_lrs, optimizer.param_groups):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = "betas" in optimizer.defaults
            if last_epoch == -1:
                highs = _per_group("max_momentum", optimizer, max_momentum)
                lows = _per_group("base_momentum", optimizer, base_momentum)
                for high, low, group in zip(highs, lows, optimizer.param_groups):
                    self._set_momentum(group, high)
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group, value):
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise OptimizerError(f"OneCycleLR was stepped {step} times, but total_steps is {self.total_steps}",
                                 fix="create it with total_steps (or epochs * steps_per_epoch) covering every step")
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr_from, lr_to, m_from, m_to) in enumerate(self._phases):
                if step <= end or i == len(self._phases) - 1:
                    pct = (step - start) / (end - start)
                    lrs.append(self._anneal(group[lr_from], group[lr_to], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[m_from], group[m_to], pct))
                    break
                start = end
        return lrs


class SequentialLR(LRScheduler):
    """Run `schedulers` one after another, switching at the epochs in `milestones`.

    >>> warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
    >>> decay = CosineAnnealingLR(opt, T_max=95)
    >>> sched = SequentialLR(opt, [warmup, decay], milestones=[5])
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        _check_optimizer(optimizer)
        if len(schedulers) < 1:
            raise OptimizerError("SequentialLR needs at least one scheduler",
                                 fix="pass the schedulers to run one after another")
        for i, scheduler in enumerate(schedulers):
            if isinstance(scheduler, ReduceLROnPlateau):
                raise OptimizerError(f"scheduler {i} is a ReduceLROnPlateau, which SequentialLR cannot step",
                                     "ReduceLROnPlateau.step needs the monitored metric")
            if getattr(scheduler, "optimizer", None) is not optimizer:
                raise OptimizerError(f"scheduler {i} ({type(scheduler).__name__}) belongs to another optimiser",
                                     fix="create every scheduler on the optimiser given to SequentialLR")
        if len(milestones) != len(schedulers) - 1:
            raise OptimizerError(f"SequentialLR got {len(schedulers)} schedulers and {len(milestones)} milestones",
                                 fix="give one milestone fewer than schedulers")
        self._schedulers = list(schedulers)
        self._milestones = list(milestones)
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in self._schedulers:  # undo the first step each one took when it was created
            scheduler.last_epoch -= 1
        self._schedulers[bisect_right(self._milestones, 0)]._initial_step()
        self._last_lr = self._schedulers[bisect_right(self._milestones, 0)].get_last_lr()

    def step(self):
        """Step the scheduler whose turn it is (the next one starts from its epoch 0 at its milestone)."""
        with check.all_or_nothing(self, self.optimizer):
            self._advance()

    def _advance(self):
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        check.loadable(self, state_dict)
        state = dict(state_dict)
        inner = state.pop("_schedulers", [])
        if len(inner) != len(self._schedulers):
            raise OptimizerError(f"the state dict holds {len(inner)} schedulers, this SequentialLR "
                                 f"{len(self._schedulers)}")
        for scheduler, saved in zip([self, *self._schedulers], [state, *inner]):
            check.loadable(scheduler, saved)  # all of them before any is loaded
        super().load_state_dict(state)
        for scheduler, saved in zip(self._schedulers, inner):
            scheduler.load_state_dict(saved)


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by `factor` when a monitored metric stops improving for `patience` epochs.

    `step(metric)` once per epoch. mode 'min' (a loss) or 'max' (an accuracy); improvement means beating
    the best value by `threshold` (relative with threshold_mode 'rel', absolute with 'abs'); after a
    reduction, `cooldown` epochs are ignored; lrs never go below `min_lr` (one value or one per group).

    >>> sched = ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=3)
    >>> sched.step(val_loss)
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0, eps=1e-8):
        _check_optimizer(optimizer)
        if factor >= 1.0:
            raise OptimizerError(f"factor must be < 1.0, got {factor} (PyTorch: Factor should be < 1.0.)")
        check.nonnegative("ReduceLROnPlateau", "factor", factor)
        for value in min_lr if isinstance(min_lr, (list, tuple)) else [min_lr]:
            check.nonnegative("ReduceLROnPlateau", "min_lr", value)
        if mode not in ("min", "max"):
            raise OptimizerError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise OptimizerError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.optimizer = optimizer
        self.factor = factor
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lr
        self.min_lrs = _per_group("min_lr", optimizer, min_lr)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = _lrs(optimizer)
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics):
        """Record this epoch's `metrics` (a number or 0-d array) and reduce the lr if it has plateaued."""
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            raise OptimizerError(f"ReduceLROnPlateau.step() got {type(metrics).__name__} {metrics!r} as the metric",
                                 fix="pass the monitored value as a number, e.g. step(float(val_loss))") from None
        with check.all_or_nothing(self, self.optimizer):
            self._advance(current)

    def _advance(self, current):
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = _lrs(self.optimizer)

    @property
    def in_cooldown(self):
        """True while reductions are paused after the last one (`cooldown` epochs)."""
        return self.cooldown_counter > 0

    def _reduce_lr(self):
        if len(self.min_lrs) != len(self.optimizer.param_groups):
            if self.default_min_lr is None:
                raise OptimizerError("the optimiser has gained parameter groups since ReduceLROnPlateau was "
                                     "created with one min_lr per group", fix="set scheduler.min_lrs to match")
            self.min_lrs = [self.default_min_lr] * len(self.optimizer.param_groups)
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new

    def _is_better(self, value, best):
        if self.mode == "min":
            return value < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return value > (best * (self.threshold + 1.0) if self.threshold_mode == "rel" else best + self.threshold)
