"""Workbench: four views on one model, one selection."""
import re

from avalon.widgets import Workbench

from workbench_models import mse


def test_selecting_in_one_view_moves_the_others(net):
    model, x, y = net
    wb = Workbench(mse, model, x, y, repeat=1)
    assert [wb.get_title(i) for i in range(4)] == ["tape", "backward", "profile", "check"]
    node = next(n for n in wb.tape.calls if n.prim.name == "tanh")
    wb.select(node.label)
    assert wb.tape_view.selected is node
    assert wb.stepper.current is node
    assert wb.profiler.selected.label == node.label
    wb.stepper.step()
    assert wb.tape_view.selected is wb.stepper.current
    # a click in the profiler table reaches the graph view too, for a node the graph view has
    on_tape = {n.label for n in wb.tape.nodes}
    label = next(row["label"] for row in wb.profiler.rows if row["label"] in on_tape)
    wb.profiler.table.event = {"action": "select", "target": label, "stamp": 1}
    assert wb.tape_view.selected.label == label
    # nodes only the compiled tape has (the layout pass's re-laid-out products) leave it where it was
    made = [row["label"] for row in wb.profiler.rows if row["label"] not in on_tape]
    assert made
    for stamp, other in enumerate(made, start=2):
        wb.profiler.table.event = {"action": "select", "target": other, "stamp": stamp}
        assert wb.profiler.selected.label == other
        assert wb.tape_view.selected.label == label


def test_workbench_static_html_holds_all_views(net):
    model, x, y = net
    page = Workbench(mse, model, x, y, repeat=1).to_html()
    for kind in ("tapeview", "stepper", "profiler", "checkview"):
        assert f'class="avalon-static avalon-{kind}"' in page
    assert "<script src" not in page
    # the notebook's static copy (what an exported notebook shows) names each view as its tab does
    bench = Workbench(mse, model, x, y, repeat=1)
    bundle = bench._repr_mimebundle_()
    static = (bundle[0] if isinstance(bundle, tuple) else bundle)["text/html"]
    assert re.findall(r'<h3 class="avalon-view-title">(\w+)</h3>', static) == ["tape", "backward", "profile", "check"]


def test_the_profile_is_measured_when_its_tab_is_first_opened(net, monkeypatch):
    model, x, y = net
    timed = []
    real = Workbench.__init__.__globals__["Profiler"]

    def counting(*args, **kwargs):
        timed.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("avalon.widgets.workbench.Profiler", counting)
    wb = Workbench(mse, model, x, y, repeat=1)
    assert timed == [] and "first opened" in wb.children[2].value
    node = next(n for n in wb.tape.calls if n.prim.name == "tanh")
    wb.select(node.label)
    wb.selected_index = 2
    assert timed == [1] and wb.children[2] is wb.profiler
    assert wb.profiler.selected.label == node.label          # the selection made before it existed
    assert wb.tape_view.profile is wb.profiler.profile       # the graph's time overlay uses the same runs
    wb.selected_index = 0
    wb.selected_index = 2
    assert timed == [1]
