"""avalon.detect_anomaly() (torch.autograd's): inside it every call checks the floating values it
produces, forward and backward, traced, eager or replayed from the cache, and the first NaN or
infinity raises `avalon.AnomalyError` naming the node, primitive, module scope, forward or backward
(the forward call a backward one differentiates) and the user's line. Outside it replays carry no
check at all."""
import inspect

import numpy as np
import pytest

import avalon
import avalon.nn as nn


def log_loss(x):
    y = np.log(x)  # NaN for a negative x
    return y.sum()


def sqrt_loss(x):
    y = np.sqrt(x)  # finite at 0; its gradient there is not
    return y.sum()


def _line(fn, offset):
    return inspect.getsourcelines(fn)[1] + offset


def test_forward_nan_names_call_primitive_position_and_line_traced_and_replayed():
    bad = np.array([1.0, -1.0, 2.0])
    avalon.clear_cache()
    for attempt in ("traced", "replayed"):
        with avalon.detect_anomaly(), pytest.raises(avalon.AnomalyError) as info:
            avalon.grad(log_loss, bad)
        message = str(info.value)
        assert message.startswith("detect_anomaly: a forward call %"), attempt
        assert "= log(%" in message and "(primitive log)" in message and "produced nan at position [1]" in message
        assert (info.value.filename, info.value.lineno) == (__file__, _line(log_loss, 1))
        assert "y = np.log(x)" in message and "fix:" in message
    value, _ = avalon.grad(log_loss, bad)  # outside: the plain replay, no check
    assert np.isnan(value)


def test_backward_only_infinity_names_the_forward_call_it_differentiates():
    at_zero = np.array([4.0, 0.0])
    value, (grad,) = avalon.grad(sqrt_loss, at_zero)  # traced outside: the replay below is cached
    assert np.isfinite(value) and np.isinf(grad[1])
    for attempt in ("replayed", "traced"):
        if attempt == "traced":
            avalon.clear_cache()
        with avalon.detect_anomaly(), pytest.raises(avalon.AnomalyError) as info:
            avalon.grad(sqrt_loss, at_zero)
        message = str(info.value)
        assert message.startswith("detect_anomaly: a backward call %"), attempt
        assert "part of the gradient of" in message and "sqrt" in message
        assert "produced inf at position [1]" in message
        assert (info.value.filename, info.value.lineno) == (__file__, _line(sqrt_loss, 1))  # the forward line


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        return (self.fc(x) ** 2).log()  # -inf where fc's output is 0


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Identity(), Block())

    def forward(self, x):
        return self.layers(x).sum()


def test_a_nested_module_call_names_its_scope_on_first_call_and_replay():
    model = Net()
    x = np.ones((1, 2), np.float32)
    zero = np.zeros((1, 2), np.float32)
    with avalon.no_grad():
        model.layers[1].fc.weight[...] = 0
        model.layers[1].fc.bias[...] = 0
    for attempt in ("traced", "replayed"):
        with avalon.detect_anomaly(), pytest.raises(avalon.AnomalyError) as info:
            model(zero if attempt == "traced" else x)
        assert "(primitive log in layers.1)" in str(info.value), attempt
        assert "produced -inf at position [0, 0]" in str(info.value)
        assert info.value.lineno == _line(Block.forward, 1)


def test_the_plain_replay_has_no_check_and_the_checked_one_is_made_once():
    compiled = avalon.trace(log_loss, np.ones(3)).compile()
    assert "finite" not in compiled.source
    assert np.isnan(compiled(np.array([-1.0, 1.0, 1.0]))[0])
    with avalon.detect_anomaly():
        assert compiled(np.ones(3))[0] == 0.0
        with pytest.raises(avalon.AnomalyError, match="produced nan at position \\[0\\]"):
            compiled(np.array([-1.0, 1.0, 1.0]))
    assert np.isnan(compiled(np.array([-1.0, 1.0, 1.0]))[0])  # off again: the plain replay


def test_eager_calls_integer_results_and_finite_values_pass():
    with avalon.detect_anomaly():
        with pytest.raises(avalon.AnomalyError, match="an eager call of log produced nan"):
            avalon.log(avalon.tensor([-1.0]))
        np.testing.assert_array_equal(avalon.argmax(avalon.tensor([1.0, 3.0])), 1)
        avalon.grad(log_loss, np.array([1.0, 2.0]))


def test_torch_spellings_set_and_restore_the_mode():
    assert not avalon.is_anomaly_enabled()
    avalon.autograd.set_detect_anomaly(True)
    try:
        assert avalon.is_anomaly_enabled()
        with avalon.autograd.set_detect_anomaly(False):
            assert not avalon.is_anomaly_enabled()
        assert avalon.is_anomaly_enabled()
    finally:
        avalon.autograd.set_detect_anomaly(False)
    assert avalon.autograd.detect_anomaly is avalon.detect_anomaly

    @avalon.detect_anomaly()
    def checked(x):
        assert avalon.is_anomaly_enabled()
        return avalon.grad(log_loss, x)

    with pytest.raises(avalon.AnomalyError):
        checked(np.array([-1.0]))
    assert not avalon.is_anomaly_enabled()
    with pytest.raises(ValueError, match="check_nan"):
        avalon.detect_anomaly(check_nan=False).__enter__()
    assert not avalon.is_anomaly_enabled()
