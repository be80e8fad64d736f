"""RAdam: Adam whose adaptive step is switched on once the variance estimate is reliable."""
from ..backend import namespace
from ._inplace import adam_moments_
from .optimizer import Optimizer


class RAdam(Optimizer):
    """RAdam, PyTorch's update rule.

    m, v as in Adam;  rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t);
    rho_t > 5: p <- p - lr * m̂ * sqrt(1 - beta2^t) / (sqrt(v) + eps) * r_t  (the rectification term),
    else p <- p - lr * m̂, with m̂ = m / (1 - beta1^t).

    >>> opt = avalon.optim.RAdam(model.parameters(), lr=1e-3)
    """

    _state_keys = ("step", "exp_avg", "exp_avg_sq")
    _temporaries = 2
    _nonnegative = ("lr", "eps", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, maximize=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group, temps):
        xp, (temp, adaptive) = namespace(param), temps
        lr, (beta1, beta2) = group["lr"], group["betas"]
        step = state["step"] = state.get("step", 0.0) + 1
        exp_avg, exp_avg_sq = adam_moments_(state, param, grad, group["betas"], temp)
        correction1, correction2 = 1 - beta1 ** step, 1 - beta2 ** step
        update = xp.divide(exp_avg, correction1, out=temp)  # the bias-corrected first moment
        update *= lr
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / correction2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            xp.sqrt(exp_avg_sq, out=adaptive)
            adaptive += group["eps"]
            update *= xp.divide(correction2 ** 0.5, adaptive, out=adaptive)
            update *= rect
        param -= update
