"""Adam and AdamW (Adam with decoupled weight decay), with AMSGrad."""
from ..backend import namespace
from .optimizer import Optimizer, _stored, _at_least, _betas, lerp


class Adam(Optimizer):
    """Adam, PyTorch's update rule (with `amsgrad`, `maximize`, L2 or decoupled weight decay).

    m <- lerp(m, g, 1 - beta1);  v <- beta2 * v + (1 - beta2) * g * g;
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)   (max of v's with amsgrad).

    >>> opt = avalon.optim.Adam(model.parameters(), lr=1e-3)
    """

    _state_keys = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _validate(self, group):
        for key in ("lr", "eps", "weight_decay"):
            _at_least(group, key)
        _betas(group)

    def _update(self, param, grad, state, group):
        xp = namespace(param)
        lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        step = state.get("step", 0.0) + 1
        if decay != 0:
            if group["decoupled_weight_decay"]:
                param = param * (1 - lr * decay)
            else:
                grad = grad + decay * param
        exp_avg = lerp(_stored(state, "exp_avg", param), grad, 1 - beta1)
        exp_avg_sq = _stored(state, "exp_avg_sq", param) * beta2 + (1 - beta2) * grad * grad
        step_size = lr / (1 - beta1 ** step)
        correction2_sqrt = (1 - beta2 ** step) ** 0.5
        new_state = {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
        if group["amsgrad"]:
            exp_avg_sq = xp.maximum(_stored(state, "max_exp_avg_sq", param), exp_avg_sq)
            new_state["max_exp_avg_sq"] = exp_avg_sq
        denom = xp.sqrt(exp_avg_sq) / correction2_sqrt + eps
        return param - step_size * (exp_avg / denom), new_state


class AdamW(Adam):
    """Adam with decoupled weight decay (p <- p * (1 - lr * weight_decay) before the Adam step).

    >>> opt = avalon.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
