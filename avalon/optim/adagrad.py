"""Adagrad: per-coordinate learning rates from the running sum of squared gradients."""
from ..backend import namespace
from ._inplace import buffer
from .optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad, PyTorch's update rule.

    clr = lr / (1 + (t - 1) * lr_decay);  s <- s + g * g;  p <- p - clr * g / (sqrt(s) + eps).
    As in PyTorch, the state (step 0, sum = initial_accumulator_value) exists from construction.

    >>> opt = avalon.optim.Adagrad(model.parameters(), lr=1e-2)
    """

    _state_keys = ("step", "sum")
    _nonnegative = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, *,
                 maximize=False):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        super().__init__(params, defaults)

    def add_param_group(self, param_group):
        """Add a parameter group; as in PyTorch, its Adagrad state starts at once (step 0, the initial sum)."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for param in group["params"]:
            self.state[param] = {"step": 0.0,
                                 "sum": namespace(param).full_like(param, group["initial_accumulator_value"])}

    def _update(self, param, grad, state, group, temps):
        xp, (temp,) = namespace(param), temps
        step = state["step"] = state.get("step", 0.0) + 1
        clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
        total = buffer(state, "sum", param, group["initial_accumulator_value"])
        total += xp.multiply(grad, grad, out=temp)
        std = xp.sqrt(total, out=temp)
        std += group["eps"]
        update = xp.divide(grad, std, out=temp)
        update *= clr
        param -= update
