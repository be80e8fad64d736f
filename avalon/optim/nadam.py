"""NAdam: Adam with Nesterov momentum and a momentum-decay schedule."""
from ..backend import namespace
from .optimizer import Optimizer, _stored, _at_least, _betas, lerp


class NAdam(Optimizer):
    """NAdam, PyTorch's update rule.

    mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay));  m, v as in Adam;  d = sqrt(v / (1 - beta2^t)) + eps;
    p <- p - lr * (1 - mu_t) / (1 - Π mu) * g / d - lr * mu_{t+1} / (1 - Π mu · mu_{t+1}) * m / d.

    >>> opt = avalon.optim.NAdam(model.parameters(), lr=2e-3)
    """

    _state_keys = ("step", "mu_product", "exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, maximize=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group):
        for key in ("lr", "eps", "weight_decay", "momentum_decay"):
            _at_least(group, key)
        _betas(group)

    def _update(self, param, grad, state, group):
        xp = namespace(param)
        lr, (beta1, beta2), decay = group["lr"], group["betas"], group["weight_decay"]
        step = state.get("step", 0.0) + 1
        if decay != 0:
            if group["decoupled_weight_decay"]:
                param = param * (1 - lr * decay)
            else:
                grad = grad + decay * param
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * group["momentum_decay"]))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * group["momentum_decay"]))
        mu_product = state.get("mu_product", 1.0) * mu
        exp_avg = lerp(_stored(state, "exp_avg", param), grad, 1 - beta1)
        exp_avg_sq = _stored(state, "exp_avg_sq", param) * beta2 + (1 - beta2) * grad * grad
        denom = xp.sqrt(exp_avg_sq / (1 - beta2 ** step)) + group["eps"]
        param = param + (-lr * (1.0 - mu) / (1.0 - mu_product)) * (grad / denom)
        param = param + (-lr * mu_next / (1.0 - mu_product * mu_next)) * (exp_avg / denom)
        return param, {"step": step, "mu_product": mu_product, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
