"""RMSprop, plain or centred, with momentum."""
from ..backend import namespace
from .optimizer import Optimizer, _stored, _weight_decay, lerp


class RMSprop(Optimizer):
    """RMSprop, PyTorch's update rule.

    v <- alpha * v + (1 - alpha) * g * g;  centred: ḡ <- lerp(ḡ, g, 1 - alpha), v~ = v - ḡ²;
    d = sqrt(v~) + eps;  momentum: buf <- momentum * buf + g / d, p <- p - lr * buf; else p <- p - lr * g / d.

    >>> opt = avalon.optim.RMSprop(model.parameters(), lr=1e-2, momentum=0.9, centered=True)
    """

    _state_keys = ("step", "square_avg", "momentum_buffer", "grad_avg")
    _nonnegative = ("lr", "eps", "momentum", "weight_decay", "alpha")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, *,
                 maximize=False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, param, grad, state, group):
        xp = namespace(param)
        alpha, momentum = group["alpha"], group["momentum"]
        param, grad = _weight_decay(param, grad, group)
        square_avg = _stored(state, "square_avg", param) * alpha + (1 - alpha) * grad * grad
        new_state = {"step": state.get("step", 0.0) + 1, "square_avg": square_avg}
        if group["centered"]:
            grad_avg = lerp(_stored(state, "grad_avg", param), grad, 1 - alpha)
            new_state["grad_avg"] = grad_avg
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg = avg + group["eps"]
        if momentum > 0:
            buf = _stored(state, "momentum_buffer", param) * momentum + grad / avg
            new_state["momentum_buffer"] = buf
            return param - group["lr"] * buf, new_state
        return param - group["lr"] * (grad / avg), new_state
