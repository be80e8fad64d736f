"""Adamax: Adam with the infinity norm in place of the second moment."""
from ..backend import namespace
from .optimizer import Optimizer, _stored, _weight_decay, lerp


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

    def _update(self, param, grad, state, group):
        xp = namespace(param)
        beta1, beta2 = group["betas"]
        step = state.get("step", 0.0) + 1
        param, grad = _weight_decay(param, grad, group)
        exp_avg = lerp(_stored(state, "exp_avg", param), grad, 1 - beta1)
        exp_inf = xp.maximum(_stored(state, "exp_inf", param) * beta2, xp.abs(grad) + group["eps"])
        clr = group["lr"] / (1 - beta1 ** step)
        return param - clr * (exp_avg / exp_inf), {"step": step, "exp_avg": exp_avg, "exp_inf": exp_inf}
