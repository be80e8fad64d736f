"""NAdam: Adam with Nesterov momentum and a momentum-decay schedule."""
from ..backend import namespace
from ._inplace import adam_moments_
from .optimizer import Optimizer


class NAdam(Optimizer):
    """NAdam, PyTorch's update rule.

    mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay));  m, v as in Adam;  d = sqrt(v / (1 - beta2^t)) + eps;
    p <- p - lr * (1 - mu_t) / (1 - Π mu) * g / d - lr * mu_{t+1} / (1 - Π mu · mu_{t+1}) * m / d.

    >>> opt = avalon.optim.NAdam(model.parameters(), lr=2e-3)
    """

    _state_keys = ("step", "mu_product", "exp_avg", "exp_avg_sq")
    _temporaries = 2
    _nonnegative = ("lr", "eps", "weight_decay", "momentum_decay")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, maximize=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group, temps):
        xp, (temp, denom) = namespace(param), temps
        lr, (beta1, beta2) = group["lr"], group["betas"]
        step = state["step"] = state.get("step", 0.0) + 1
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * group["momentum_decay"]))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * group["momentum_decay"]))
        mu_product = state["mu_product"] = state.get("mu_product", 1.0) * mu
        exp_avg, exp_avg_sq = adam_moments_(state, param, grad, group["betas"], temp)
        xp.sqrt(xp.divide(exp_avg_sq, 1 - beta2 ** step, out=denom), out=denom)
        denom += group["eps"]
        update = xp.divide(grad, denom, out=temp)
        update *= -lr * (1.0 - mu) / (1.0 - mu_product)
        param += update
        update = xp.divide(exp_avg, denom, out=temp)
        update *= -lr * mu_next / (1.0 - mu_product * mu_next)
        param += update
