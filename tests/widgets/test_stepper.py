"""BackwardStepper on real tapes: the order of the steps, the gradients at each, flags and jumps."""
import json
import re

import numpy as np
import pytest

import avalon
from avalon.widgets import BackwardStepper
from avalon.widgets.stepper import ARRIVING, FORWARD, LEAVING

from workbench_models import marked_lines, mse, with_nan


def test_steps_run_backwards_over_the_forward_calls(small):
    f, W1, W2, x = small
    st = BackwardStepper(f, W1, W2, x)
    forward_calls = [n for n in st.tape.calls if n.phase == "forward"]
    assert [s.forward for s in st.steps] == forward_calls[::-1]
    assert st.position == 0 and st.current is forward_calls[-1]
    assert st.step() is forward_calls[-2] and st.position == 1
    assert st.back() is forward_calls[-1] and st.back() is forward_calls[-1]  # stays at the first
    st.play()
    assert st.position == len(st.steps) - 1 and st.current is forward_calls[0]
    assert st.step() is forward_calls[0]  # stays at the last


def test_gradients_leaving_a_matmul_are_the_true_gradients(small):
    f, W1, W2, x = small
    st = BackwardStepper(f, W1, W2, x)
    first_matmul = next(n for n in st.tape.calls if n.prim.name == "matmul")  # x @ W1
    st.goto(first_matmul)
    assert st.current is first_matmul
    leaving = {operand.name: g.value for operand, g in st.step_now.leaving}
    _, (gW1, _, gx) = avalon.grad(f, W1, W2, x)
    np.testing.assert_allclose(leaving["W1"], gW1, rtol=1e-12)
    np.testing.assert_allclose(leaving["x"], gx, rtol=1e-12)
    # the highlights: forward node, arriving gradient, leaving gradients
    svg = st.svg
    s = st.step_now
    assert f"#{st.pane.element_of(s.forward)} > path, " in svg and FORWARD in svg
    assert st.pane.element_of(s.arriving) in svg and ARRIVING in svg and LEAVING in svg
    assert "gradient arriving" in st.canvas.side and "gradient leaving to" in st.canvas.side


def test_next_button_and_slider_move_the_step(small):
    f, W1, W2, x = small
    st = BackwardStepper(f, W1, W2, x)
    assert st.slider.value == 1 and "step 1 / " in st.status.value  # the slider counts as the status does
    st.next_button.click()
    assert st.position == 1 and st.slider.value == 2
    st.slider.value = 4
    assert st.position == 3
    assert "step 4 / " in st.status.value
    assert st.slider.max == len(st.steps)


def test_jump_box_goes_to_a_node_or_says_why_not(small):
    f, W1, W2, x = small
    st = BackwardStepper(f, W1, W2, x)
    st.jump_box.value = "tanh"
    assert st.current.prim.name == "tanh"
    st.jump_box.value = "x"  # an input: no rule ran for it; the status says so instead of raising
    assert st.current.prim.name == "tanh"
    assert "not differentiated" in st.status.value and "avalon-bad" in st.status.value


def test_goto_first_nonfinite_names_the_op_and_line():
    W = np.array([[1.0, -1.0], [1.0, 1.0]])
    x = np.array([[1.0, 2.0], [0.5, 0.25]])
    st = BackwardStepper(with_nan, W, x)
    node = st.goto_first_nonfinite()
    assert node.prim.name == "sqrt"  # its rule divides by sqrt(negative) = NaN
    flag = next(f for f in st.flags if f["kind"] == "non-finite")
    assert flag["forward"] is node and flag["step"] == st.position
    line = marked_lines(with_nan, "NaN-LINE")[0]
    assert node.location.lineno == line and f":{line}:" in flag["message"]
    assert "np.sqrt(x @ W)" in flag["message"]
    assert "non-finite" in st.canvas.side


def test_a_finite_pass_has_no_nonfinite_step(small):
    f, W1, W2, x = small
    st = BackwardStepper(f, W1, W2, x)
    st.step()
    assert st.goto_first_nonfinite() is None and st.position == 1
    assert not [f for f in st.flags if f["kind"] == "non-finite"]


def test_thresholds_flag_vanishing_and_exploding(net):
    model, x, y = net
    st = BackwardStepper(mse, model, x, y)
    assert st.flags == []
    assert "No gradient flagged" in st.flag_list.value and "1e-7" in st.flag_list.value
    st.set_thresholds(exploding=1e-30)
    assert st.flags and {f["kind"] for f in st.flags} == {"exploding"}
    assert f"{len(st.flags)} flagged gradients" in st.flag_list.value
    st.set_thresholds(vanishing=1e30, exploding=1e31)
    kinds = {f["kind"] for f in st.flags}
    assert kinds == {"vanishing"}
    assert all(f["location"] for f in st.flags)
    st.high.value = 1e-30  # the widget's box does the same
    assert st.exploding == 1e-30


def test_goto_a_module_node_and_follow_the_selection(net):
    model, x, y = net
    st = BackwardStepper(mse, model, x, y)
    node = st.goto("encoder.layers.1.fc")  # the first node of that module differentiated
    assert node.scope.startswith("encoder.layers.1")
    with pytest.raises(KeyError):
        st.goto("x")  # an input has no rule


def test_static_html_holds_every_step(small):
    f, W1, W2, x = small
    st = BackwardStepper(f, W1, W2, x)
    page = st.to_html()
    data = json.loads(re.search(r'<script type="application/json" class="avalon-data">(.*?)</script>',
                                page, re.S).group(1).replace("<\\/", "</"))
    assert len(data["steps"]) == len(st.steps)
    assert all(step["css"] and "step" in step["panel"] for step in data["steps"])
    # each step scrolls the graph to the node it differentiates
    assert [step["focus"] for step in data["steps"]] == [st.pane.element_of(s.forward) for s in st.steps]
    assert data["focus"] == data["steps"][st.position]["focus"]
    assert "<script src" not in page


def test_a_click_on_a_module_box_goes_to_its_first_step(net):
    model, x, y = net
    st = BackwardStepper(mse, model, x, y, max_nodes=12)  # small budget: the encoder starts closed
    g = st.pane.graph
    assert "encoder" not in g.expanded and st.position == 0
    st.canvas.event = {"action": "select", "target": st.pane.element_of("encoder"), "stamp": 1}
    # backward runs from the last block: the encoder's first step is in its last layer, now opened
    assert g.scope_of[st.current.id].startswith("encoder.layers.2")
    assert "encoder" in g.expanded
