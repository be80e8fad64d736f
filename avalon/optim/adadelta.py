"""Adadelta: unit-corrected steps from running averages of squared gradients and squared updates."""
from ..backend import namespace
from ._inplace import buffer, decay_squares_
from .optimizer import Optimizer, OptimizerError


class Adadelta(Optimizer):
    """Adadelta, PyTorch's update rule.

    v <- rho * v + (1 - rho) * g²;  Δ = sqrt(u + eps) / sqrt(v + eps) * g;  u <- rho * u + (1 - rho) * Δ²;
    p <- p - lr * Δ.

    >>> opt = avalon.optim.Adadelta(model.parameters())
    """

    _state_keys = ("step", "square_avg", "acc_delta")
    _temporaries = 2
    _nonnegative = ("lr", "eps", "weight_decay")

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, *, maximize=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group):
        super()._validate(group)
        if not 0.0 <= group["rho"] <= 1.0:
            raise OptimizerError(f"invalid rho: {group['rho']} (must be in [0, 1])")

    def _update(self, param, grad, state, group, temps):
        xp, (temp, delta) = namespace(param), temps
        rho, eps = group["rho"], group["eps"]
        state["step"] = state.get("step", 0.0) + 1
        square_avg, acc_delta = buffer(state, "square_avg", param), buffer(state, "acc_delta", param)
        decay_squares_(square_avg, grad, rho, temp)
        xp.sqrt(xp.add(acc_delta, eps, out=delta), out=delta)
        std = xp.sqrt(xp.add(square_avg, eps, out=temp), out=temp)
        delta /= std
        delta *= grad
        decay_squares_(acc_delta, delta, rho, temp)
        param -= xp.multiply(delta, group["lr"], out=temp)
