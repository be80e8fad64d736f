"""TapeView on real tapes: what is drawn, opening and closing modules, selection, overlays, exports."""
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import avalon
from avalon.tape import Const
from avalon.widgets import GraphvizNotFound, TapeView
from avalon.widgets import render
from avalon.widgets.stats import fmt

from workbench_models import mse, with_nan


def drawn_ids(svg):
    return re.findall(r'<g id="([^"]+)" class="node', svg)


def test_small_tape_draws_every_node_and_output(small):
    f, W1, W2, x = small
    tape = avalon.grad_tape(f, W1, W2, x)
    view = TapeView(tape)
    ids = drawn_ids(view.svg)
    assert len(ids) == len(tape.nodes) + len(tape.outputs)
    assert {f"{view.pane.uid}_n{n.id}" for n in tape.nodes} <= set(ids)
    # edges carry shapes: the first matmul's operands are 5×3 and 3×4
    assert ">5×3<" in view.svg and ">3×4<" in view.svg
    # forward and backward are coloured apart
    assert 'class="node call backward"' in view.svg and 'class="node call forward"' in view.svg


def test_forward_only_toggle_hides_the_backward_pass(small):
    f, W1, W2, x = small
    view = TapeView(f, W1, W2, x)
    consumers = view.tape.consumers()
    # the backward pass's seed (1.0) is recorded before it, but only the backward pass reads it
    seeds = [n for n in view.tape.nodes if isinstance(n, Const) and n.phase == "forward"
             and all(c.phase == "backward" for c in consumers[n])]
    assert seeds
    forward = [n for n in view.tape.nodes if n.phase == "forward" and n not in seeds]
    view.show_phase("forward")
    assert "backward" not in " ".join(re.findall(r'class="node[^"]*"', view.svg))
    outputs = sum(o.phase == "forward" for o in view.tape.outputs)
    assert len(drawn_ids(view.svg)) == len(forward) + outputs
    # nothing floats unconnected
    titles = re.findall(r'class="(node|edge)[^"]*">\s*<title>([^<]*)</title>', view.svg)
    linked = {end for kind, t in titles if kind == "edge" for end in t.split("&#45;&gt;")}
    assert {t for kind, t in titles if kind == "node"} <= linked
    view.phase_toggle.value = "both"
    assert len(drawn_ids(view.svg)) == len(view.tape.nodes) + len(view.tape.outputs)


def test_modules_collapse_into_boxes_and_expand_back(net):
    model, x, y = net
    view = TapeView(mse, model, x, y)
    full = len(drawn_ids(view.svg))
    view.collapse("encoder")
    svg = view.svg
    assert len(drawn_ids(svg)) < full
    # one box holds the encoder's forward and backward parts
    assert re.findall(r'class="node box ([a-z]+)"', svg) == ["module"]
    encoder = [n for n in view.tape.nodes if view.pane.graph.scope_of[n.id].startswith("encoder")]
    forward = sum(n.phase == "forward" for n in encoder)
    assert f"{forward} + {len(encoder) - forward} ∇ nodes" in svg
    view.expand("encoder")
    assert len(drawn_ids(view.svg)) == full
    with pytest.raises(KeyError, match="no module scope"):
        view.expand("decoder")


def test_big_tape_opens_collapsed_and_rolls_identical_blocks(net):
    from workbench_models import net_and_data

    model, x, y = net_and_data(depth=6)
    view = TapeView(mse, model, x, y, max_nodes=30)
    g = view.pane.graph
    # too big to show whole: it opens as its top-level modules, the code outside them grouped
    assert set(g.units()) == {("s", "encoder"), ("s", "head"), ("g", "mse()"),
                              ("n", view.tape.find("x").id), ("n", view.tape.find("y").id)}
    view.expand("encoder.layers")  # opens the encoder too: the six identical blocks are one box
    assert "encoder.layers[0-5]" in g.rolls
    assert "encoder.layers.0 … encoder.layers.5" in view.svg and "×6" in view.svg
    before = len(g.units())
    view.expand("encoder.layers[0-5]")  # unroll: six blocks, each a closed box
    assert len(g.units()) > before
    assert "×6" not in view.svg
    view.collapse("encoder.layers[0-5]")
    assert "×6" in view.svg


def test_select_fills_the_panel_and_reveals_hidden_nodes(net):
    model, x, y = net
    view = TapeView(mse, model, x, y, max_nodes=10)
    weight = view.tape.find("encoder.layers.1.fc.weight")
    assert view.pane.element_of(weight) != f"{view.pane.uid}_n{weight.id}"  # hidden in a box
    assert view.select("encoder.layers.1.fc.weight") is weight
    assert f'id="{view.pane.uid}_n{weight.id}"' in view.svg  # revealed
    side = view.canvas.side
    assert "encoder.layers.1.fc.weight" in side and "float32" in side
    assert "gradient" in side  # a parameter has a gradient on this tape
    # the gradient statistics are those of avalon.grad's gradient
    _, (grads, *_rest) = avalon.grad(mse, model, x, y)
    g = grads["encoder.layers.1.fc.weight"]
    assert f">{fmt(float(g.max()))}<" in side and f">{fmt(float(g.min()))}<" in side


def test_select_by_op_shows_primitive_source_producers_and_consumers(small):
    f, W1, W2, x = small
    view = TapeView(f, W1, W2, x)
    node = view.select("tanh")
    assert node.prim.name == "tanh"
    side = view.canvas.side
    assert "primitive" in side and "tanh" in side
    hot = re.search(r'<span class="avalon-hot">(.*?)</span>\n', side).group(1)
    assert "h = np.tanh(x @ W1)" in re.sub(r"<[^>]+>", "", hot)
    assert "producers" in side and "consumers" in side
    producer = node.inputs[0]
    assert f'data-av-target="{producer.label}"' in side
    # tanh's rule multiplies its output by itself: that call is listed once among the consumers, "×2"
    square = next(n for n in view.tape.calls if len(n.inputs) == 2 and n.inputs[0] is n.inputs[1] is node)
    consumers = view.canvas.side.split("<h4>consumers</h4>")[1]
    assert consumers.count(f'data-av-target="{square.label}"') == 1 and "(×2)" in consumers
    assert all(k in side for k in ("min", "max", "mean", "std", "NaN", "Inf"))
    assert "<svg class=\"avalon-hist\"" in side


def test_a_value_instead_of_a_function_says_to_pass_the_function(small):
    f, W1, W2, x = small
    with pytest.raises(TypeError, match=r"got a float.*Pass the function itself"):
        TapeView(f(W1, W2, x))


def test_next_match_without_a_search_says_what_to_do(small):
    f, W1, W2, x = small
    view = TapeView(f, W1, W2, x)
    assert view.next_match() is None and "type a search first" in view.status.value
    view.search_box.value = "matmul"
    first = view.selected
    assert view.next_match() is not first and view.selected.prim.name == "matmul"


def test_a_click_in_the_graph_selects_in_python(small):
    f, W1, W2, x = small
    view = TapeView(f, W1, W2, x)
    node = view.tape.calls[0]
    view.canvas.event = {"action": "select", "target": view.pane.element_of(node), "stamp": 1}
    assert view.selected is node
    assert view.selection.label == node.label
    # the selection is ringed in the picture
    assert f"#{view.pane.element_of(node)} > path" in view.svg


def test_double_click_on_a_box_opens_it(net):
    model, x, y = net
    view = TapeView(mse, model, x, y)
    view.collapse("head")
    box = view.pane.element_of("head")
    n_before = len(drawn_ids(view.svg))
    view.canvas.event = {"action": "toggle", "target": box, "stamp": 2}
    assert "head" in view.pane.graph.expanded
    assert len(drawn_ids(view.svg)) > n_before


def test_search_by_module_and_cycling(net):
    model, x, y = net
    view = TapeView(mse, model, x, y)
    found = view.find("head")
    in_head = [n for n in view.tape.nodes if n.scope == "head" or n.scope.startswith("head.")]
    assert in_head and found[:len(in_head)] == in_head
    first = view.selected
    view.next_match()
    assert view.selected is not first
    with pytest.raises(KeyError, match="nothing on this tape"):
        view.select("no-such-thing")


def test_overlays_colour_by_gradient_norm_nan_and_time(small):
    f, W1, W2, x = small
    view = TapeView(f, W1, W2, x)
    view.set_overlay("grad norm")
    assert "grad norm" in view.canvas.main and "fill:" in view.svg
    rules, _ = view.pane.overlay_rules()
    coloured = {view.pane.element_of(n) for n in view.pane.grad_of}
    assert set(rules) == coloured  # exactly the nodes that have a gradient
    view.set_overlay("time")
    assert view.profile is not None and "time" in view.canvas.main
    timed = [r["id"] for r in view.profile.rows]
    assert all(f"{view.pane.uid}_n{i}" in view.pane.overlay_rules()[0] for i in timed
               if i in view.pane.graph.by_id)
    view.set_overlay("none")
    assert "fill:" not in view.svg


def test_nan_overlay_marks_the_nonfinite_nodes():
    W = np.array([[1.0, -1.0], [1.0, 1.0]])
    x = np.array([[1.0, 2.0], [0.5, 0.25]])
    view = TapeView(with_nan, W, x)
    view.set_overlay("nan/inf")
    rules, legend = view.pane.overlay_rules()
    sqrt = next(n for n in view.tape.calls if n.prim.name == "sqrt")
    matmul = next(n for n in view.tape.calls if n.prim.name == "matmul" and n.phase == "forward")
    assert rules[view.pane.element_of(sqrt)] == "fill: #f87171"  # its value holds NaN
    assert rules[view.pane.element_of(matmul)] == "fill: #fdba74"  # its value is finite, its gradient not


def test_exports_svg_and_dot(tmp_path, small):
    f, W1, W2, x = small
    view = TapeView(f, W1, W2, x)
    view.export_svg(tmp_path / "t.svg")
    view.export_dot(tmp_path / "t.dot")
    root = ET.parse(tmp_path / "t.svg").getroot()
    assert root.tag.endswith("svg")
    assert (tmp_path / "t.dot").read_text().startswith("digraph tape {")
    assert render.layout((tmp_path / "t.dot").read_text()).count('class="node') == len(drawn_ids(view.svg))
    view.show_exports()
    assert 'download="tape.svg"' in view.exports.value and 'download="tape.dot"' in view.exports.value


def test_to_html_is_one_self_contained_document(small):
    f, W1, W2, x = small
    view = TapeView(f, W1, W2, x)
    view.select("tanh")
    page = view.to_html()
    assert page.startswith("<!DOCTYPE html>") and page.count("<html") == 1
    assert "<svg" in page and "avalon-data" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script src" not in page and "<link" not in page
    assert '"focus": "%s"' % view.pane.element_of(view.selected) in page  # scrolled to the selection
    bundle = view._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data and "<svg" in data["text/html"]


def test_missing_graphviz_gives_the_install_command(monkeypatch, small):
    f, W1, W2, x = small
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(render, "_layouts", type(render._layouts)())
    view = TapeView(f, W1, W2, x)
    assert "apt-get install graphviz" in view.canvas.main
    with pytest.raises(GraphvizNotFound, match="apt-get install graphviz"):
        view.svg


def test_a_bare_tape_displays_as_a_picture(small):
    f, W1, W2, x = small
    tape = avalon.trace(f, W1, W2, x)
    assert "<svg" in tape._repr_svg_()
    html = tape._repr_html_()
    assert "<svg" in html


def test_a_layout_that_takes_too_long_is_stopped_and_says_what_to_do(monkeypatch, small):
    f, W1, W2, x = small
    monkeypatch.setattr(render, "_layouts", type(render._layouts)())
    monkeypatch.setattr(render, "LAYOUT_TIMEOUT_S", 1e-4)  # no `dot` run ends this fast
    view = TapeView(f, W1, W2, x)
    assert "did not lay out this graph" in view.canvas.main and "close all" in view.canvas.main
    with pytest.raises(render.LayoutTooSlow, match=r"within 0.0001 s, so it was stopped"):
        view.svg
    monkeypatch.setattr(render, "LAYOUT_TIMEOUT_S", 30)
    view.collapse_all()
    assert view.canvas.main.startswith("<svg")
