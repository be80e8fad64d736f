"""CheckView on a function with three unsupported constructs, and on a clean one."""
import re

import numpy as np

from avalon.widgets import CheckView
from avalon.widgets.checkview import FAILURE

from workbench_models import marked_lines, three_problems, two_layer


def test_three_constructs_at_their_lines_with_why_and_fix():
    W, x = np.ones((3, 4)), np.ones((5, 3))
    view = CheckView(three_problems, W, x)
    assert len(view.problems) == 3
    lines = marked_lines(three_problems, "# PROBLEM")
    assert [p.location.lineno for p in view.problems] == lines
    report = view.report.main
    assert report.count('class="avalon-problem"') == 3
    hot = re.findall(r'<span class="avalon-hot"><span class="avalon-lineno">\s*(\d+)</span>', report)
    assert [int(h) for h in hot] == lines
    for p in view.problems:
        assert p.why in report.replace("&#x27;", "'") or p.why[:40] in report
        assert "fix:" in report
    assert "bool()" in report and "iteration" in report and "assignment" in report


def test_the_partial_tape_marks_the_nodes_nearest_the_failures():
    W, x = np.ones((3, 4)), np.ones((5, 3))
    view = CheckView(three_problems, W, x)
    assert view.tape is not None and all(n is not None for n in view.nodes)
    svg = view.svg
    for node in view.nodes:
        assert f"#{view.pane.element_of(node)} > path" in svg
    assert FAILURE in svg
    assert view.canvas.focus == view.pane.element_of(view.nodes[0])  # the graph opens at the first failure
    # the first problem (bool of `h.sum() > 0`) is nearest the comparison recorded on that line
    assert view.nodes[0].prim.name == "greater"
    view.report.event = {"action": "select", "target": view.nodes[1].label, "stamp": 1}
    assert view.selected is view.nodes[1] and view.nodes[1].label in view.canvas.side
    page = view.to_html()
    assert page.count('class="avalon-problem"') == 3 and "<svg" in page


def test_a_clean_function_has_no_problems():
    rng = np.random.default_rng(0)
    view = CheckView(two_layer, rng.standard_normal((3, 4)), rng.standard_normal((4, 2)),
                     rng.standard_normal((5, 3)))
    assert list(view.problems) == []
    assert "traces cleanly" in view.report.main
