"""Styles and scripts shared by the live widgets and their static HTML, and the static document.

A static fragment is `<div class="avalon-static">` holding inline SVG, a JSON data block and a small
script: clicking a node shows its pre-rendered panel, the stepper's buttons walk pre-rendered steps,
table headers sort. Nothing is fetched from the network. Both draw graphs through `ZOOM_JS`: fitted
to the view at open, wheel zoom about the cursor, drag to pan, + / − / fit buttons and a minimap.
"""
import json
import uuid

CSS = """
.avalon-body { display: flex; gap: 8px; align-items: flex-start; font-family: Helvetica, Arial, sans-serif; }
.avalon-graph { flex: 1 1 auto; min-width: 0; overflow: auto; border: 1px solid #e5e7eb;
  border-radius: 4px; background: #fff; position: relative; }
.avalon-graph.avalon-zoomable { overflow: hidden; }
.avalon-zoomable > svg { display: block; width: 100%; max-width: none; cursor: grab; touch-action: none;
  user-select: none; -webkit-user-select: none; }
.avalon-zoomable.avalon-dragging > svg { cursor: grabbing; }
.avalon-graph g.node, .avalon-graph g.cluster { cursor: pointer; }
.avalon-zoom-ui { position: absolute; top: 4px; right: 4px; display: flex; gap: 3px; z-index: 2; }
.avalon-view .avalon-zoom-ui button, .avalon-static .avalon-zoom-ui button { font: 13px Helvetica, Arial, sans-serif;
  min-width: 26px; height: 24px; padding: 0 6px; margin: 0; border: 1px solid #9ca3af; border-radius: 3px;
  background: #fff; color: #111827; cursor: pointer; }
.avalon-minimap { position: absolute; right: 4px; bottom: 4px; z-index: 2; border: 1px solid #9ca3af;
  background: rgba(255, 255, 255, 0.94); cursor: crosshair; overflow: hidden; }
.avalon-minimap svg { display: block; pointer-events: none; }
.avalon-lens { position: absolute; box-sizing: border-box; border: 2px solid #2563eb;
  background: rgba(37, 99, 235, 0.1); pointer-events: none; }
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
"""

# Fit, zoom, pan and the minimap of a graph box (`.avalon-graph` holding Graphviz's SVG), shared by
# the live widget and the static copy. The view is the SVG's viewBox: a window of `cw/k × ch/k`
# points at (x0, y0), k CSS pixels per point. A new layout opens fitted; a restyle of the same layout
# (a selection, a step) keeps the user's zoom.
ZOOM_JS = """
function zoomable(box) {
  const PX = 4 / 3;  // CSS pixels per point at 1:1 (Graphviz measures in points)
  const ui = document.createElement("div");
  ui.className = "avalon-zoom-ui";
  ui.innerHTML = '<button data-zoom="in" title="zoom in (or the mouse wheel)">+</button>' +
    '<button data-zoom="out" title="zoom out">\u2212</button>' +
    '<button data-zoom="fit" title="show the whole graph">fit</button>';
  const mini = document.createElement("div");
  mini.className = "avalon-minimap";
  const lens = document.createElement("div");
  lens.className = "avalon-lens";
  let svg = null, W = 1, H = 1, k = 1, x0 = 0, y0 = 0, fitted = true, layoutKey = "", miniScale = 1;
  const width = () => box.clientWidth;
  const height = () => (svg ? svg.clientHeight : 0);
  const TOP = 30;  // room above the fitted graph for the buttons
  const LEGIBLE = 0.75;  // pixels per point at which a module box's label is 9 px tall
  let fresh = false, opened = false;  // refitted since the last reveal; fitted once (the opening)
  const fitK = () => Math.min(width() / W, (height() - TOP) / H, PX);
  function apply() {
    if (!svg || !width()) return;
    svg.setAttribute("viewBox", x0 + " " + y0 + " " + width() / k + " " + height() / k);
    const whole = x0 <= 0.5 && y0 <= 0.5 && x0 + width() / k >= W - 0.5 && y0 + height() / k >= H - 0.5;
    mini.style.display = whole ? "none" : "";
    // small enough to leave the buttons above it free
    miniScale = Math.min(180 / W, 150 / H, width() * 0.3 / W, Math.max(height() - 40, 20) * 0.6 / H);
    const copy = mini.firstChild;
    if (copy) { copy.setAttribute("width", W * miniScale); copy.setAttribute("height", H * miniScale); }
    lens.style.left = x0 * miniScale + "px";
    lens.style.top = y0 * miniScale + "px";
    lens.style.width = width() / k * miniScale + "px";
    lens.style.height = height() / k * miniScale + "px";
    box.dataset.scale = (k / PX).toFixed(4);
  }
  function fit() {
    if (!svg || !width()) return;
    // the view grows with the graph up to most of the window, never a fixed keyhole
    const room = Math.max(240, Math.min(window.innerHeight * 0.85, window.innerHeight - 180));
    const tall = Math.min(H * PX * Math.min(1, width() / (W * PX)) + TOP, room);
    svg.style.height = Math.max(tall, 60) + "px";
    k = fitK();
    x0 = (W - width() / k) / 2;
    y0 = (H - (height() - TOP) / k) / 2 - TOP / k;
    fitted = true;
    apply();
  }
  function zoomAt(factor, mx, my) {
    const lo = Math.min(fitK(), PX) / 2, hi = PX * 6;
    const k2 = Math.max(lo, Math.min(hi, k * factor));
    x0 += mx / k - mx / k2;
    y0 += my / k - my / k2;
    k = k2;
    fitted = false;
    apply();
  }
  function centre(gx, gy) {
    x0 = gx - width() / k / 2;
    y0 = gy - height() / k / 2;
    fitted = false;
    apply();
  }
  function reveal(id) {
    // false when there is nothing to show or the box is not laid out (a hidden tab, not yet attached)
    const target = id && svg ? svg.querySelector("#" + CSS.escape(id)) : null;
    if (!target || !width()) { fresh = false; return false; }
    const r = target.getBoundingClientRect(), v = svg.getBoundingClientRect();
    const gx = x0 + (r.left + r.width / 2 - v.left) / k, gy = y0 + (r.top + r.height / 2 - v.top) / k;
    const need = Math.min(width() / (r.width / k + 16), height() / (r.height / k + 16));
    const refitted = fresh;
    fresh = false;
    if (refitted && k < LEGIBLE) {
      // a new layout too large to read whole: show the focus (an opened module, a step) legibly
      k = Math.max(fitK(), Math.min(LEGIBLE, need));
      centre(gx, gy);
      return true;
    }
    if (r.top >= v.top && r.bottom <= v.bottom && r.left >= v.left && r.right <= v.right) return true;
    if (need < k) k = Math.max(need, fitK());
    centre(gx, gy);
    return true;
  }
  function update() {
    svg = box.querySelector(":scope > svg");
    box.classList.toggle("avalon-zoomable", !!svg);
    if (!svg) { ui.remove(); mini.remove(); return; }
    // the layout's own viewBox, kept aside: the view rewrites the attribute
    if (!svg.dataset.layout) svg.dataset.layout = svg.getAttribute("viewBox") || "0 0 1 1";
    const vb = svg.dataset.layout.trim().split(/[^-+.0-9e]+/).map(Number);
    W = vb[2] || 1;
    H = vb[3] || 1;
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    svg.setAttribute("preserveAspectRatio", "xMinYMin meet");
    const key = W + "x" + H + ":" + svg.querySelectorAll("g.node").length;
    const copy = svg.cloneNode(true);
    // a picture only: no ids or classes that scripts, styles or tests would take for the graph's
    copy.querySelectorAll("[id], [class]").forEach((e) => { e.removeAttribute("id"); e.removeAttribute("class"); });
    copy.querySelectorAll("style").forEach((e) => e.remove());
    copy.removeAttribute("style");
    copy.setAttribute("viewBox", "0 0 " + W + " " + H);
    mini.replaceChildren(copy, lens);
    box.append(ui, mini);
    if (key !== layoutKey || fitted) {
      layoutKey = key;
      fit();
      fresh = opened;  // the opening shows the whole graph, focus or not
      opened = opened || width() > 0;
    } else {
      svg.style.height = box.dataset.height;
      apply();
    }
    box.dataset.height = svg.style.height;
  }
  box.addEventListener("wheel", (e) => {
    if (!svg || mini.contains(e.target)) return;
    e.preventDefault();
    const v = svg.getBoundingClientRect();
    zoomAt(Math.exp(-e.deltaY * 0.002), e.clientX - v.left, e.clientY - v.top);
  }, { passive: false });
  ui.addEventListener("click", (e) => {
    const b = e.target.closest("button");
    e.stopPropagation();
    if (!b) return;
    if (b.dataset.zoom === "fit") fit();
    else zoomAt(b.dataset.zoom === "in" ? 1.25 : 0.8, width() / 2, height() / 2);
  });
  ui.addEventListener("dblclick", (e) => e.stopPropagation());
  // a drag pans; it must not count as a click on the node where it started
  let drag = null, dragged = false;
  box.addEventListener("pointerdown", (e) => {
    if (!svg || e.button !== 0 || !svg.contains(e.target)) return;
    drag = { x: e.clientX, y: e.clientY, x0, y0, id: e.pointerId, moving: false };
  });
  box.addEventListener("pointermove", (e) => {
    if (!drag || e.pointerId !== drag.id) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!drag.moving && Math.abs(dx) + Math.abs(dy) < 4) return;
    if (!drag.moving) { drag.moving = true; box.classList.add("avalon-dragging"); box.setPointerCapture(e.pointerId); }
    x0 = drag.x0 - dx / k;
    y0 = drag.y0 - dy / k;
    fitted = false;
    apply();
  });
  const end = () => {
    if (drag && drag.moving) { dragged = true; setTimeout(() => { dragged = false; }, 0); }
    drag = null;
    box.classList.remove("avalon-dragging");
  };
  box.addEventListener("pointerup", end);
  box.addEventListener("pointercancel", end);
  box.addEventListener("click", (e) => { if (dragged) { e.stopPropagation(); e.preventDefault(); } }, true);
  // the minimap: press or drag on it to move the view there
  const jump = (e) => {
    const r = mini.getBoundingClientRect();
    centre((e.clientX - r.left) / miniScale, (e.clientY - r.top) / miniScale);
  };
  mini.addEventListener("pointerdown", (e) => {
    e.stopPropagation();
    mini.setPointerCapture(e.pointerId);
    jump(e);
    const move = (m) => jump(m);
    mini.addEventListener("pointermove", move);
    mini.addEventListener("pointerup", () => mini.removeEventListener("pointermove", move), { once: true });
  });
  mini.addEventListener("click", (e) => e.stopPropagation());
  mini.addEventListener("dblclick", (e) => e.stopPropagation());
  let seenWidth = 0;
  new ResizeObserver(() => {
    if (!svg || width() === seenWidth) return;
    seenWidth = width();
    if (fitted) fit(); else apply();
  }).observe(box);
  return { update, reveal, fit, zoomAt, state: () => ({ k, x0, y0, W, H, fitted }) };
}
"""

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
