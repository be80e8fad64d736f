"""Styles and scripts shared by the live widgets and their static HTML, and the static document.

A static fragment is `<div class="avalon-static">` holding inline SVG, a JSON data block and a small
script: clicking a node shows its pre-rendered panel, the stepper's buttons walk pre-rendered steps,
table headers sort. Nothing is fetched from the network. Both draw graphs through `ZOOM_JS`: fitted
to the view at open, wheel zoom about the cursor, drag to pan, + / − / fit buttons and a minimap.
"""
import json
import uuid

from .zoom import ZOOM_CSS, ZOOM_JS

CSS = """
.avalon-body { display: flex; gap: 8px; align-items: flex-start; font-family: Helvetica, Arial, sans-serif; }
.avalon-graph { flex: 1 1 auto; min-width: 0; overflow: auto; border: 1px solid #e5e7eb;
  border-radius: 4px; background: #fff; position: relative; }
.avalon-graph:not(.avalon-zoomable) { max-height: 640px; }  /* a report or a table, not a graph */
.avalon-graph g.node, .avalon-graph g.cluster { cursor: pointer; }
.avalon-panel { flex: 0 0 360px; max-height: 640px; overflow: auto; font-size: 12px; border: 1px solid #e5e7eb;
  border-radius: 4px; padding: 6px 8px; background: #fafafa; }
.avalon-panel:empty { display: none; }
.avalon-panel h3 { font-size: 14px; margin: 2px 0 6px; }
.avalon-panel h4 { font-size: 12px; margin: 8px 0 2px; color: #374151; }
.avalon-panel ul { margin: 2px 0; padding-left: 18px; }
/* Tables are styled under the views' own roots: JupyterLab and nbconvert style every table in an
   output (right-aligned, striped, padded) with selectors as specific as a class and two elements. */
:is(.avalon-static, .avalon-view) table.avalon-facts { margin: 0; border-collapse: collapse; table-layout: auto; }
:is(.avalon-static, .avalon-view) table.avalon-facts tr { background: none; }
:is(.avalon-static, .avalon-view) table.avalon-facts :is(th, td) { text-align: left; padding: 1px 10px 1px 0;
  vertical-align: top; white-space: normal; overflow-wrap: anywhere; border: none; }
:is(.avalon-static, .avalon-view) table.avalon-facts th { color: #6b7280; font-weight: normal; }
:is(.avalon-static, .avalon-view) table.avalon-stats { border-collapse: collapse; font-size: 11px; width: 100%;
  max-width: 420px; table-layout: fixed; margin: 0; }
:is(.avalon-static, .avalon-view) table.avalon-stats tr { background: none; }
:is(.avalon-static, .avalon-view) table.avalon-stats :is(th, td) { border: 1px solid #e5e7eb; padding: 1px 4px;
  text-align: right; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-variant-numeric: tabular-nums;
  line-height: 1.4; }
:is(.avalon-static, .avalon-view) table.avalon-stats th { color: #6b7280; font-weight: normal; background: #f3f4f6; }
.avalon-bad { color: #b91c1c; font-weight: bold; }
.avalon-badge { font-size: 10px; border-radius: 8px; padding: 1px 6px; background: #e5e7eb; font-weight: normal; }
.avalon-badge.avalon-backward { background: #fde68a; }
.avalon-badge.avalon-forward { background: #e0e7ff; }
.avalon-badge.avalon-bad { background: #fee2e2; }
.avalon-muted { color: #6b7280; }
.avalon-view pre.avalon-source, .avalon-static pre.avalon-source { font-size: 11px; line-height: 1.35; background: #f3f4f6;
  padding: 4px; margin: 2px 0; white-space: pre-wrap; word-break: normal; overflow-wrap: anywhere; }
.avalon-source > span { display: inline-block; width: 100%; box-sizing: border-box; padding-left: 5ch; text-indent: -5ch; }
.avalon-source .avalon-hot { background: #fde68a; }
.avalon-lineno { color: #9ca3af; }
.avalon-where { font-size: 11px; color: #4b5563; }
:is(.avalon-static, .avalon-view) a.avalon-link { color: #1d4ed8; text-decoration: none; cursor: pointer; }
.avalon-button { border: 1px solid #93c5fd; border-radius: 3px; padding: 0 4px; }
.avalon-legend { font-size: 11px; margin: 4px 0; }
.avalon-ramp span { display: inline-block; width: 12px; height: 10px; }
.avalon-status { font-size: 12px; color: #374151; margin: 2px 0; }
.avalon-error { border: 1px solid #fca5a5; background: #fef2f2; padding: 8px; border-radius: 4px; font-size: 13px; }
.avalon-flag { border-left: 3px solid #f59e0b; padding: 2px 6px; margin: 4px 0; background: #fffbeb; }
.avalon-flag.avalon-nonfinite { border-color: #dc2626; background: #fef2f2; }
:is(.avalon-static, .avalon-view) table.avalon-table { border-collapse: collapse; font-size: 12px; width: 100%; margin: 0;
  table-layout: auto; }
:is(.avalon-static, .avalon-view) table.avalon-table tr { background: none; }
:is(.avalon-static, .avalon-view) table.avalon-table :is(th, td) { border: none; border-bottom: 1px solid #e5e7eb;
  padding: 2px 6px; text-align: left; vertical-align: top; white-space: nowrap; line-height: 1.4; }
:is(.avalon-static, .avalon-view) table.avalon-table th { cursor: pointer; background: #f3f4f6; position: sticky; top: 0;
  font-weight: bold; }
:is(.avalon-static, .avalon-view) table.avalon-table .num { text-align: right; font-variant-numeric: tabular-nums; }
:is(.avalon-static, .avalon-view) table.avalon-table tr.avalon-selected td { background: #dbeafe; }
.avalon-problem { border: 1px solid #fcd34d; border-radius: 4px; padding: 6px 8px; margin: 6px 0; background: #fffbeb; }
.avalon-problem h4 { margin: 0 0 4px; font-size: 13px; }
.avalon-charts { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 8px; }
.avalon-charts svg { max-width: 48%; height: auto; }
.avalon-static .avalon-controls button { margin-right: 4px; }
""" + ZOOM_CSS

# The live widget (anywidget): draws `main` and `side`, keeps the element `focus` in view, and
# reports clicks as `event`.
ESM = ZOOM_JS + """
function render({ model, el }) {
  el.classList.add("avalon-canvas");
  const body = document.createElement("div");
  body.className = "avalon-body";
  const main = document.createElement("div");
  main.className = "avalon-graph";
  const side = document.createElement("div");
  side.className = "avalon-panel";
  body.append(main, side);
  el.append(body);
  const zoom = zoomable(main);
  const focus = () => zoom.reveal(model.get("focus"));
  // the first drawing happens before the element is on the page, and a Workbench tab is not laid
  // out until it is opened: fit and show the focus once the graph gets its size
  let laidOut = false;
  new ResizeObserver(() => {
    if (laidOut || !main.clientWidth) return;
    laidOut = true;
    zoom.update();
    focus();
  }).observe(main);
  const draw = () => {
    main.innerHTML = model.get("main");
    main.style.display = model.get("main") ? "" : "none";
    zoom.update();
    focus();
  };
  const drawSide = () => { side.innerHTML = model.get("side"); };
  draw();
  drawSide();
  model.on("change:main", draw);
  model.on("change:side", drawSide);
  model.on("change:focus", focus);
  const send = (action, target) => {
    model.set("event", { action, target, stamp: Date.now() + Math.random() });
    model.save_changes();
  };
  el.addEventListener("click", (e) => {
    const a = e.target.closest("[data-av-action]");
    if (a) { e.preventDefault(); send(a.dataset.avAction, a.dataset.avTarget); return; }
    const g = e.target.closest("g.node, g.cluster");
    if (g && g.id) send("select", g.id);
  });
  el.addEventListener("dblclick", (e) => {
    const g = e.target.closest("g.node, g.cluster");
    if (g && g.id) send("toggle", g.id);
  });
}
export default { render };
"""

# The static page's behaviour, reading the fragment's JSON data block.
STATIC_JS = """
(function (root) {""" + ZOOM_JS + """
  const data = JSON.parse(root.querySelector("script.avalon-data").textContent);
  const panel = root.querySelector(".avalon-panel");
  const graph = root.querySelector(".avalon-graph");
  const dynamic = root.querySelector("style.avalon-dynamic");
  const zoom = graph ? zoomable(graph) : null;
  const reveal = (id) => { if (zoom) zoom.reveal(id); };
  if (zoom) zoom.update();
  const ring = (eid) => eid ? "#" + eid + " > path, #" + eid + " > polygon, #" + eid +
    " > ellipse {stroke: #2563eb; stroke-width: 3px}" : "";
  function select(label) {
    if (!data.panels || !(label in data.panels)) return;
    panel.innerHTML = data.panels[label];
    dynamic.textContent = ring(data.ids[label]);
    reveal(data.ids[label]);
  }
  let pos = data.position || 0;
  function show(k) {
    if (!data.steps || !data.steps.length) return;
    pos = Math.max(0, Math.min(data.steps.length - 1, k));
    dynamic.textContent = data.steps[pos].css;
    panel.innerHTML = data.steps[pos].panel;
    reveal(data.steps[pos].focus);
    const where = root.querySelector(".avalon-pos");
    if (where) where.textContent = "step " + (pos + 1) + " / " + data.steps.length;
  }
  reveal(data.focus);
  function sortBy(th) {
    const table = th.closest("table");
    const col = Array.from(th.parentNode.children).indexOf(th);
    const desc = th.dataset.dir !== "desc";
    th.dataset.dir = desc ? "desc" : "asc";
    const rows = Array.from(table.tBodies[0].rows);
    const key = (r) => { const c = r.cells[col]; const v = c.dataset.value;
      return v === undefined ? c.textContent : (v === "" ? -Infinity : parseFloat(v)); };
    rows.sort((a, b) => { const x = key(a), y = key(b); const o = x < y ? -1 : x > y ? 1 : 0; return desc ? -o : o; });
    rows.forEach((r) => table.tBodies[0].appendChild(r));
  }
  root.addEventListener("click", (e) => {
    const step = e.target.closest("[data-av-step]");
    if (step) {
      const s = step.dataset.avStep;
      show(s === "next" ? pos + 1 : s === "prev" ? pos - 1 : s === "first" ? 0 : s === "last" ?
        data.steps.length - 1 : parseInt(s, 10));
      return;
    }
    const th = e.target.closest("th[data-sort]");
    if (th) { sortBy(th); return; }
    const a = e.target.closest("[data-av-action]");
    if (a) { e.preventDefault(); if (a.dataset.avAction === "select") select(a.dataset.avTarget); return; }
    const g = e.target.closest("g.node");
    if (g && data.labels && g.id in data.labels) select(data.labels[g.id]);
  });
})(document.currentScript.parentElement);
"""


def new_uid():
    """A short unique prefix for element ids, so several views on one page never collide."""
    return "av" + uuid.uuid4().hex[:8]


def fragment(kind, body, data=None, css=""):
    """A self-contained `<div>`: styles, `body`, and (with `data`) the JSON + script that make the
    static copy respond to clicks. `css` is the initial highlight (the selection, the step shown)."""
    parts = [f'<div class="avalon-static avalon-{kind}">', f"<style>{CSS}</style>",
             f'<style class="avalon-dynamic">{css}</style>', body]
    if data is not None:
        text = json.dumps(data).replace("</", "<\\/")
        parts.append(f'<script type="application/json" class="avalon-data">{text}</script>')
        parts.append(f"<script>{STATIC_JS}</script>")
    parts.append("</div>")
    return "".join(parts)


def document(title, fragment_html):
    """One HTML document around a fragment (what every widget's `to_html()` returns)."""
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{title}</title></head><body>{fragment_html}</body></html>\n")


def body(main, side=""):
    """The graph-and-panel layout used by live and static views alike."""
    return (f'<div class="avalon-body"><div class="avalon-graph">{main}</div>'
            f'<div class="avalon-panel">{side}</div></div>')
