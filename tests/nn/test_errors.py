"""nn's input errors are structured like a primitive's: `avalon.check` and the workbench find the
user's line in `.location`, not only in the message."""
import sys

import numpy as np
import pytest

import avalon
import avalon.nn as nn
import avalon.nn.functional as F


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x):
        self.line = sys._getframe().f_lineno + 1
        return self.fc2(np.tanh(self.fc1(x)))


LINEAR = "Linear(in_features=4, out_features=6, bias=True)"
WRONG = np.ones((2, 5), np.float32)


def test_check_lists_a_layer_input_error_at_the_users_line():
    model = MLP()
    line = sys._getframe().f_lineno + 1
    problems = avalon.check(lambda x: model.fc1(x), WRONG)
    assert len(problems) == 1
    (problem,) = problems
    assert isinstance(problem, avalon.ShapeError)
    assert (problem.filename, problem.lineno) == (__file__, line)
    assert problem.code == "problems = avalon.check(lambda x: model.fc1(x), WRONG)"
    assert problem.primitive == LINEAR and problem.shapes == [(2, 5)]
    assert problem.why == "the last dimension must be in_features" and "(*, 4)" in problem.fix
    assert problem.node is problems.tape.nodes[-1]  # the spot on the partial tape
    # the message still reads what, where, why and what to do
    assert str(problem).splitlines() == [
        f"{LINEAR} expected input of shape (*, 4), got (2, 5)",
        f"  at {__file__}:{line} in <lambda>",
        "      problems = avalon.check(lambda x: model.fc1(x), WRONG)",
        "  why: the last dimension must be in_features",
        f"  fix: {problem.fix}"]


def test_calling_a_layer_on_arrays_raises_with_the_calling_line_as_location():
    model = MLP()
    with pytest.raises(avalon.ShapeError) as info:
        line = sys._getframe().f_lineno + 1
        model.fc1(WRONG)
    assert info.value.location.lineno == line and info.value.location.filename == __file__
    assert info.value.primitive == LINEAR and info.value.shapes == [(2, 5)]


def test_inside_a_model_the_location_is_the_forward_line_that_called_the_layer():
    model = MLP()
    with pytest.raises(avalon.ShapeError) as info:
        avalon.grad(lambda m, x: m(x).sum(), model, WRONG)
    assert (info.value.filename, info.value.lineno) == (__file__, model.line)
    (problem,) = avalon.check(lambda x: model(x), WRONG)
    assert problem.lineno == model.line and problem.code == "return self.fc2(np.tanh(self.fc1(x)))"


def test_functional_input_errors_carry_their_location_too():
    line = sys._getframe().f_lineno + 1
    (problem,) = avalon.check(lambda x: F.conv2d(x, np.ones((2, 3, 3, 3), np.float32)), np.ones((1, 4, 5, 5)))
    assert problem.lineno == line and problem.primitive == "conv2d" and problem.shapes == [(1, 4, 5, 5)]
    with pytest.raises(avalon.ShapeError) as info:
        line = sys._getframe().f_lineno + 1
        F.scaled_dot_product_attention(np.ones((2, 3)), np.ones((2, 4)), np.ones((2, 4)))
    assert info.value.lineno == line and info.value.primitive == "scaled_dot_product_attention"
    assert info.value.construct.startswith("scaled_dot_product_attention: query (…, L, E)")


def test_other_argument_errors_name_the_users_line_in_the_message():
    with pytest.raises(avalon.AvalonError) as info:
        line = sys._getframe().f_lineno + 1
        F.scaled_dot_product_attention(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3)), dropout_p=2.0)
    assert not isinstance(info.value, avalon.ShapeError)
    assert f"test_errors.py:{line}" in str(info.value) and "dropout_p must lie in [0, 1]" in str(info.value)
