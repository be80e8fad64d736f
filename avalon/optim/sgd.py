"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""
from ..backend import namespace
from ..kernels.onednn import gemm
from ._inplace import new_state
from .optimizer import Optimizer, OptimizerError


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's update rule.

    g <- g + weight_decay * p;  buf <- momentum * buf + (1 - dampening) * g  (buf = g at the first step);
    g <- g + momentum * buf (nesterov) or buf;  p <- p - lr * g.

    >>> opt = avalon.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> loss, grads = avalon.grad(loss_fn, model, x, y); opt.step(grads[0])
    """

    _state_keys = ("momentum_buffer",)
    _nonnegative = ("lr", "momentum", "weight_decay")

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group):
        super()._validate(group)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise OptimizerError("Nesterov momentum requires a momentum and zero dampening",
                                 fix="pass momentum > 0 and dampening=0, or nesterov=False")

    def _update(self, param, grad, state, group, temps):
        xp, (temp,) = namespace(param), temps
        momentum, dampening = group["momentum"], group["dampening"]
        direction = grad
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = new_state(param)
                buf[...] = grad
            elif not gemm.axpby(1 - dampening, grad, momentum, buf):  # one pass on oneDNN (float32)
                buf *= momentum
                buf += grad if dampening == 0 else xp.multiply(grad, 1 - dampening, out=temp)  # 1.0 * g is g
            if group["nesterov"]:
                direction = xp.multiply(buf, momentum, out=temp)
                direction += grad
            else:
                direction = buf
        if not gemm.axpby(-group["lr"], direction, 1.0, param):
            param -= xp.multiply(direction, group["lr"], out=temp)
