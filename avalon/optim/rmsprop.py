"""RMSprop, plain or centred, with momentum."""
from ..backend import namespace
from ._inplace import buffer, decay_squares_, lerp_
from .optimizer import Optimizer


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

    def _update(self, param, grad, state, group, temps):
        xp, (temp,) = namespace(param), temps
        alpha, momentum = group["alpha"], group["momentum"]
        state["step"] = state.get("step", 0.0) + 1
        square_avg = buffer(state, "square_avg", param)
        decay_squares_(square_avg, grad, alpha, temp)
        if group["centered"]:
            grad_avg = buffer(state, "grad_avg", param)
            lerp_(grad_avg, grad, 1 - alpha, temp)
            avg = xp.multiply(grad_avg, grad_avg, out=temp)
            xp.sqrt(xp.subtract(square_avg, avg, out=avg), out=avg)
        else:
            avg = xp.sqrt(square_avg, out=temp)
        avg += group["eps"]
        update = xp.divide(grad, avg, out=temp)
        if momentum > 0:
            buf = buffer(state, "momentum_buffer", param)
            buf *= momentum
            buf += update
            update = xp.multiply(buf, group["lr"], out=temp)
        else:
            update *= group["lr"]
        param -= update
