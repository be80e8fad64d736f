"""RAdam: Adam whose adaptive step is switched on once the variance estimate is reliable."""
from ..backend import namespace
from .optimizer import Optimizer, _adam_moments, _weight_decay


class RAdam(Optimizer):
    """RAdam, PyTorch's update rule.

    m, v as in Adam;  rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t);
    rho_t > 5: p <- p - lr * m̂ * sqrt(1 - beta2^t) / (sqrt(v) + eps) * r_t  (the rectification term),
    else p <- p - lr * m̂, with m̂ = m / (1 - beta1^t).

    >>> opt = avalon.optim.RAdam(model.parameters(), lr=1e-3)
    """

    _state_keys = ("step", "exp_avg", "exp_avg_sq")
    _nonnegative = ("lr", "eps", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, maximize=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group):
        xp = namespace(param)
        lr, (beta1, beta2) = group["lr"], group["betas"]
        step = state.get("step", 0.0) + 1
        param, grad = _weight_decay(param, grad, group)
        exp_avg, exp_avg_sq = _adam_moments(state, param, grad, group["betas"])
        new_state = {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
        correction1, correction2 = 1 - beta1 ** step, 1 - beta2 ** step
        corrected = exp_avg / correction1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2 ** step) / correction2
        if rho_t > 5.0:
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            adaptive = correction2 ** 0.5 / (xp.sqrt(exp_avg_sq) + group["eps"])
            return param - corrected * lr * adaptive * rect, new_state
        return param - corrected * lr, new_state
