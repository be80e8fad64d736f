"""The workbench at model scale in a real browser: a ResNet-18 and a 12-layer GPT-style model's
training steps open whole and legible (fitted, top-level module labels at least 9 CSS px tall), zoom
with the wheel and the + / − / fit buttons, pan by dragging, and show a minimap that moves the view;
in JupyterLab (live widgets; a double click opens a module in place) and in the static `.to_html()`
page; and every view of a ResNet-18 Workbench opens whole in both. Screenshots are saved under
artifacts/browser/."""
from pathlib import Path

import pytest

import scale_models
from browser import (check_fit_zoom_pan_minimap, geometry, jupyter_lab, launch, missing_browser, missing_lab,
                     run_notebook, wait_for)

HERE = Path(__file__).parent
ARTIFACTS = HERE.parent.parent / "artifacts" / "browser"

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# (css class, the scale_models function making the step and its arguments, the model class, a module
# to open by double click)
MODELS = [("scale-resnet", "resnet18_step", {}, "ResNet18", "layer3"),
          ("scale-gpt", "gpt_step", {"layers": 12, "d": 128, "heads": 4, "seq": 64}, "GPT", "blocks")]
WIDTH = 900  # about a notebook output's width


def _notebook(path):
    import nbformat

    cells = [nbformat.v4.new_code_cell("from scale_models import GPT, ResNet18, gpt_step, resnet18_step\n"
                                       "from avalon.widgets import TapeView, Workbench")]
    for css, make, kwargs, _, _ in MODELS:
        cells.append(nbformat.v4.new_code_cell(f'view = TapeView(*{make}(**{kwargs!r}))\n'
                                               f'view.add_class("{css}")\nview'))
    cells.append(nbformat.v4.new_code_cell('Workbench(*resnet18_step(), repeat=1)'))
    kernel = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": kernel}), path)


def test_model_scale_views_in_the_static_page(tmp_path):
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    from avalon.widgets import TapeView

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": WIDTH + 16, "height": 900})
            for css, make, kwargs, model, _ in MODELS:
                path = tmp_path / f"{css}.html"
                path.write_text(TapeView(*getattr(scale_models, make)(**kwargs)).to_html(), encoding="utf-8")
                page.goto(path.as_uri())
                graph = page.locator(".avalon-static .avalon-graph")
                page.screenshot(path=str(ARTIFACTS / f"{css}-static-open.png"))
                names = getattr(scale_models, model).TOP
                check_fit_zoom_pan_minimap(page, graph, names, page.locator(".avalon-panel"))
        finally:
            browser.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = missing_lab()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("scale")
    _notebook(folder / "scale.ipynb")
    with jupyter_lab([folder / "scale.ipynb", HERE / "scale_models.py"]) as url:
        yield url


def test_model_scale_views_in_jupyterlab(lab):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            # the file browser open on the left, as a user has it: the outputs are about 900 px wide
            page = browser.new_page(viewport={"width": 1320, "height": 1000})
            run_notebook(page, lab, "scale.ipynb")
            for css, _, _, model, opened in MODELS:
                view = page.locator(f".{css}").first
                graph = view.locator(".avalon-graph").first
                expect(graph.locator(":scope > svg g.node.box").first).to_be_visible(timeout=90_000)
                graph.evaluate("(g) => g.scrollIntoView({ block: 'start' })")
                width = geometry(graph)["width"]
                assert WIDTH - 150 <= width <= WIDTH + 150, width
                graph.screenshot(path=str(ARTIFACTS / f"{css}-lab-open.png"))
                names = getattr(scale_models, model).TOP
                check_fit_zoom_pan_minimap(page, graph, names, view.locator(".avalon-panel"))

                # a double click opens a module in place; the new layout keeps it in view
                view.locator(".avalon-graph > svg g.node.box", has_text=opened).first.dblclick()
                cluster = graph.locator(":scope > svg g.cluster", has_text=opened).first
                expect(cluster).to_be_visible(timeout=30_000)
                inside = wait_for(lambda: cluster.evaluate(
                    """(c) => { const r = c.getBoundingClientRect();
                                const v = c.ownerSVGElement.getBoundingClientRect();
                                return r.left >= v.left - 1 && r.right <= v.right + 1 &&
                                       r.top >= v.top - 1 && r.bottom <= v.bottom + 1; }"""), bool)
                assert inside
                view.screenshot(path=str(ARTIFACTS / f"{css}-lab-opened-{opened}.png"))

            # a Workbench's other views open whole too, each when its tab is first shown
            bench = page.locator(".avalon-workbench").first
            for tab, kind in (("backward", "stepper"), ("profile", "profiler"), ("check", "checkview")):
                bench.locator(".lm-TabBar-tab", has_text=tab).first.click()
                graph = bench.locator(f".avalon-{kind} .avalon-graph:has(> svg)").first
                expect(graph.locator(":scope > svg g.node.box").first).to_be_visible(timeout=90_000)
                names = scale_models.ResNet18.TOP
                at_open = wait_for(lambda: geometry(graph, names), lambda g: g["whole"])
                assert at_open["whole"] and set(at_open["labels"]) == set(names), (kind, at_open)
                assert all(label["height"] >= 9 for label in at_open["labels"].values()), (kind, at_open)
                bench.screenshot(path=str(ARTIFACTS / f"scale-resnet-lab-workbench-{kind}.png"))
        finally:
            browser.close()


def test_every_view_of_a_workbench_opens_whole_in_the_static_page(tmp_path):
    """TapeView, BackwardStepper, Profiler and CheckView of a ResNet-18 step: each graph opens
    fitted, the whole model in view, its top-level modules labelled at least 9 px tall (the stepper
    and the profiler beside their side panels)."""
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    from avalon.widgets import Workbench

    path = tmp_path / "workbench.html"
    path.write_text(Workbench(*scale_models.resnet18_step(), repeat=1).to_html(), encoding="utf-8")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page(viewport={"width": WIDTH + 16, "height": 900})
            page.goto(path.as_uri())
            for kind in ("tapeview", "stepper", "profiler", "checkview"):
                graph = page.locator(f".avalon-static.avalon-{kind} .avalon-graph")
                graph.evaluate("(g) => g.scrollIntoView({ block: 'start' })")
                at_open = geometry(graph, scale_models.ResNet18.TOP)
                assert at_open["whole"], (kind, at_open)
                assert set(at_open["labels"]) == set(scale_models.ResNet18.TOP), (kind, at_open["labels"])
                for name, label in at_open["labels"].items():
                    assert label["inside"] and label["height"] >= 9, (kind, name, label)
                graph.screenshot(path=str(ARTIFACTS / f"scale-resnet-workbench-{kind}.png"))
        finally:
            browser.close()
