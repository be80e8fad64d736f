"""Adamax: Adam with the infinity norm in place of the second moment."""
from ..backend import namespace
from ._inplace import buffer, lerp_
from .optimizer import Optimizer


class Adamax(Optimizer):
    """Adamax, PyTorch's update rule.

    m <- lerp(m, g, 1 - beta1);  u <- max(beta2 * u, |g| + eps);  p <- p - lr / (1 - beta1^t) * m / u.

    >>> opt = avalon.optim.Adamax(model.parameters(), lr=2e-3)
    """

    _state_keys = ("step", "exp_avg", "exp_inf")
    _nonnegative = ("lr", "eps", "weight_decay")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, *, maximize=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group, temps):
        xp, (temp,) = namespace(param), temps
        beta1, beta2 = group["betas"]
        step = state["step"] = state.get("step", 0.0) + 1
        exp_avg, exp_inf = buffer(state, "exp_avg", param), buffer(state, "exp_inf", param)
        lerp_(exp_avg, grad, 1 - beta1, temp)
        exp_inf *= beta2
        norm = xp.abs(grad, out=temp)
        norm += group["eps"]
        xp.maximum(exp_inf, norm, out=exp_inf)
        update = xp.divide(exp_avg, exp_inf, out=temp)
        update *= group["lr"] / (1 - beta1 ** step)
        param -= update
