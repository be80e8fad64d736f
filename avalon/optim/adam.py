"""Adam and AdamW (Adam with decoupled weight decay), with AMSGrad."""
from ..backend import namespace
from ._inplace import adam_moments_, buffer
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam, PyTorch's update rule (with `amsgrad`, `maximize`, L2 or decoupled weight decay).

    m <- lerp(m, g, 1 - beta1);  v <- beta2 * v + (1 - beta2) * g * g;
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)   (max of v's with amsgrad).

    >>> opt = avalon.optim.Adam(model.parameters(), lr=1e-3)
    """

    _state_keys = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _nonnegative = ("lr", "eps", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 maximize=False, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group, temps):
        xp, (temp,) = namespace(param), temps
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        step = state["step"] = state.get("step", 0.0) + 1
        exp_avg, exp_avg_sq = adam_moments_(state, param, grad, group["betas"], temp)
        if group["amsgrad"]:
            max_exp_avg_sq = buffer(state, "max_exp_avg_sq", param)
            exp_avg_sq = xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        denom = xp.sqrt(exp_avg_sq, out=temp)
        denom /= (1 - beta2 ** step) ** 0.5
        denom += eps
        update = xp.divide(exp_avg, denom, out=temp)
        update *= lr / (1 - beta1 ** step)
        param -= update


class AdamW(Adam):
    """Adam with decoupled weight decay (p <- p * (1 - lr * weight_decay) before the Adam step).

    >>> opt = avalon.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
