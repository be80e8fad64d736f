"""Adadelta: unit-corrected steps from running averages of squared gradients and squared updates."""
from ..backend import namespace
from .optimizer import Optimizer, OptimizerError, _stored, _weight_decay


class Adadelta(Optimizer):
    """Adadelta, PyTorch's update rule.

    v <- rho * v + (1 - rho) * g²;  Δ = sqrt(u + eps) / sqrt(v + eps) * g;  u <- rho * u + (1 - rho) * Δ²;
    p <- p - lr * Δ.

    >>> opt = avalon.optim.Adadelta(model.parameters())
    """

    _state_keys = ("step", "square_avg", "acc_delta")
    _nonnegative = ("lr", "eps", "weight_decay")

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *, maximize=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group):
        super()._validate(group)
        if not 0.0 <= group["rho"] <= 1.0:
            raise OptimizerError(f"invalid rho: {group['rho']} (must be in [0, 1])")

    def _update(self, param, grad, state, group):
        xp = namespace(param)
        rho, eps = group["rho"], group["eps"]
        param, grad = _weight_decay(param, grad, group)
        square_avg = _stored(state, "square_avg", param) * rho + (1 - rho) * grad * grad
        acc_delta = _stored(state, "acc_delta", param)
        delta = xp.sqrt(acc_delta + eps) / xp.sqrt(square_avg + eps) * grad
        acc_delta = acc_delta * rho + (1 - rho) * delta * delta
        new_state = {"step": state.get("step", 0.0) + 1, "square_avg": square_avg, "acc_delta": acc_delta}
        return param - group["lr"] * delta, new_state
