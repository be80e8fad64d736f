"""The opening layout at model scale: a ResNet-18 and a GPT-style model open as their top-level
modules (one box each for forward and backward), the code outside modules grouped by function, the
gradient outputs one node; modules open in place; a module too large to lay out opens partly."""
import re

import numpy as np
import pytest

import avalon
import avalon.nn as nn
from avalon.widgets import BackwardStepper, CheckView, Profiler, TapeView
from avalon.widgets.graph import TooLargeToOpen, node_title

from scale_models import ResNet18, GPT, gpt_step, resnet18_step


def _box_edges(dot, graph):
    """(tail, head) names of the edges drawn between boxes, by the boxes' keys."""
    names = {graph.dot_name(u): u[1] for u in graph.units() if u[0] != "n"}
    pairs = re.findall(r"^\s*(\w+) -> (\w+) \[", dot, re.M)
    return [(names[a], names[b]) for a, b in pairs if a in names and b in names]


def test_a_resnet18_training_step_opens_as_its_top_level_modules():
    f, model, x, y = resnet18_step()
    view = TapeView(f, model, x, y)
    g = view.pane.graph
    units = set(g.units())
    modules = {("s", name) for name in ResNet18.TOP}
    inputs = {("n", view.tape.find("x").id), ("n", view.tape.find("y").id)}
    # the flatten in ResNet18.forward and the loss function's ops, each one box
    groups = {("g", "forward()"), ("g", "classification_loss()")}
    assert units == modules | inputs | groups
    # every box holds its module's forward and backward nodes
    layer1 = g.units()[("s", "layer1")]
    assert {n.phase for n in layer1} == {"forward", "backward"}
    assert len(layer1) == len(g.subtree["layer1"])
    # the outputs: the loss, then 63 gradients (62 parameters and x) and 60 batch-norm statistics
    # grouped into two nodes
    dot = view.dot
    grads = sum(o.phase == "backward" for o in view.tape.outputs)
    assert grads == 63 and f'label="gradients ×{grads}"' in dot and 'label="outputs ×60"' in dot
    assert dot.count("shape=oval") == 3
    # the boxes are drawn in the forward order, with no edge back up (gradients follow the same edges)
    chain = ResNet18.TOP[:-1] + ["forward()", "fc", "classification_loss()"]
    assert _box_edges(dot, g) == list(zip(chain, chain[1:]))


def test_every_graph_view_opens_at_the_overview():
    f, model, x, y = resnet18_step()
    tape = avalon.grad_tape(f, model, x, y)
    top = {("s", name) for name in ResNet18.TOP}
    stepper = BackwardStepper(tape)
    # the first step differentiates the loss: its group is ringed, no module is opened for it
    assert {u for u in stepper.pane.graph.units() if u[0] == "s"} == top
    assert stepper.canvas.focus == stepper.pane.element_of(("g", "classification_loss()"))
    profiler = Profiler(tape, repeat=1, warmup=0)
    assert {u for u in profiler.pane.graph.units() if u[0] == "s"} == top
    check = CheckView(f, model, x, y)
    assert {u for u in check.pane.graph.units() if u[0] == "s"} == top


def test_a_gpt_opens_as_its_top_level_modules_and_its_blocks_roll_up():
    f, model, idx, targets = gpt_step(layers=4, seq=16)
    view = TapeView(f, model, idx, targets)
    g = view.pane.graph
    assert {u[1] for u in g.units() if u[0] == "s"} == set(GPT.TOP)
    view.expand("blocks")
    assert ("r", "blocks[0-3]") in g.units() and "blocks.0 … blocks.3" in view.svg
    view.collapse("blocks")
    assert ("s", "blocks") in g.units()


def test_double_click_opens_a_module_in_place_and_keeps_it_in_view():
    f, model, x, y = resnet18_step()
    view = TapeView(f, model, x, y)
    g = view.pane.graph
    box = view.pane.element_of("layer2")
    view.canvas.event = {"action": "toggle", "target": box, "stamp": 1}
    assert "layer2" in g.expanded
    assert {("s", "layer2.0"), ("s", "layer2.1")} <= set(g.units())  # different blocks: not rolled
    assert view.canvas.focus == g.cluster_id("layer2")  # the live view keeps the opened module in view
    assert f'id="{g.cluster_id("layer2")}"' in view.svg
    view.canvas.event = {"action": "toggle", "target": g.cluster_id("layer2"), "stamp": 2}
    assert ("s", "layer2") in g.units()  # a double click on its frame closes it again
    # the ops outside modules open like a module
    view.expand("classification_loss()")
    drawn = {node_title(g.by_id[u[1]]) for u in g.units() if u[0] == "n"}
    assert not g.grouped and "cross_entropy" in drawn
    view.collapse_all()
    assert g.grouped and ("g", "classification_loss()") in g.units()


class Wide(nn.Module):
    """Many ops of its own around one child module."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        for _ in range(30):
            x = np.tanh(x) * 0.5
        return self.fc(x)


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.wide = Wide()
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        return self.head(self.wide(x))


def test_a_module_too_large_to_lay_out_opens_partly_and_offers_its_parts():
    avalon.manual_seed(0)
    model = Outer()
    x = np.ones((2, 4), np.float32)

    def loss(m, x):
        return m(x).sum()

    view = TapeView(loss, model, x, max_nodes=20, max_layout=40)
    g = view.pane.graph
    assert ("s", "wide") in g.units()
    view.expand("wide")
    assert g.partial == {"wide"}
    units = g.units()
    assert ("p", "wide") in units and ("s", "wide.fc") in units and len(units) <= 40
    assert len(units[("p", "wide")]) == len(g.direct["wide"])  # its own ops, forward and backward
    assert "wide is too large to open whole" in view.status.value and "wide.fc" in view.status.value
    assert 'data-av-action="expand" data-av-target="wide.fc"' in view.canvas.side
    assert "wide: its own ops" in view.svg
    # a part opens on its own; the partly open module's box names the scope, so a click resolves
    view.handle("expand", "wide.fc")
    assert "wide.fc" in g.expanded and ("p", "wide") in g.units()
    assert view.pane.resolve(view.pane.element_of(("p", "wide"))) == ("scope", "wide")
    view.collapse("wide")
    assert g.partial == set() and ("s", "wide") in g.units()


def _many_ops(W, x):
    """A function without modules: all its ops are one group at the overview."""
    for _ in range(10):
        x = np.tanh(x @ W)
    return x.sum()


def test_the_ops_outside_modules_open_only_when_they_can_be_laid_out():
    W, x = np.eye(3) * 0.5, np.ones((2, 3))
    view = TapeView(_many_ops, W, x, max_nodes=20, max_layout=40)
    g = view.pane.graph
    assert ("g", "_many_ops()") in g.units() and len(g.units()) == 3  # W, x and the group
    with pytest.raises(TooLargeToOpen, match=r"the ops outside modules would draw \d+ units, more than "
                                             r"Graphviz lays out quickly \(max_layout=40\); nothing was opened"):
        view.expand("_many_ops()")
    assert g.grouped and len(g.units()) == 3  # as it was
    # a double click says so in the status line
    view.canvas.event = {"action": "toggle", "target": view.pane.element_of("_many_ops()"), "stamp": 1}
    assert "nothing was opened" in view.status.value and g.grouped
    # selecting one of its nodes rings the group's box and shows the node's panel
    tanh = next(n for n in view.tape.calls if n.prim.name == "tanh")
    view.select(tanh)
    assert g.grouped and view.canvas.focus == view.pane.element_of("_many_ops()")
    assert tanh.label in view.canvas.side
    # with room to lay them out, they open
    roomy = TapeView(_many_ops, W, x, max_nodes=20)
    roomy.expand("_many_ops()")
    assert not roomy.pane.graph.grouped and len(roomy.pane.graph.units()) > 60
    assert "nslimit=2; nslimit1=2;" in roomy.dot  # bounded layout passes (a 300-node one took minutes)


def test_a_click_on_an_output_oval_selects_its_node_or_says_what_the_group_is():
    f, model, x, y = resnet18_step()
    view = TapeView(f, model, x, y)
    uid = view.pane.uid
    view.canvas.event = {"action": "select", "target": f"{uid}_o0", "stamp": 1}
    assert view.selected is view.tape.outputs[0]  # the loss
    view.canvas.event = {"action": "select", "target": f"{uid}_og", "stamp": 2}
    assert "stands for many outputs" in view.status.value and view.selected is view.tape.outputs[0]


def test_the_static_page_shows_what_a_closed_module_holds_when_clicked():
    import json

    f, model, x, y = resnet18_step()
    view = TapeView(f, model, x, y)
    page = view.to_html()
    data = json.loads(re.search(r'<script type="application/json" class="avalon-data">(.*?)</script>',
                                page, re.S).group(1).replace("<\\/", "</"))
    box = view.pane.element_of("layer1")
    assert data["labels"][box] == "layer1"  # a click on the box shows this panel
    assert "layer1.0.conv1.weight" in data["panels"]["layer1"]  # its parameters, with links
