"""Fit, zoom, pan and the minimap of a graph box (`.avalon-graph` holding Graphviz's SVG), one script
shared by the live widget and the static page: a graph opens fitted to its view, whose height follows
the graph up to most of the window; the mouse wheel zooms about the cursor, a drag pans (and is not
a click), + / − / fit buttons sit in the corner, and a minimap shows and moves the view whenever the
graph is larger than it."""

ZOOM_CSS = """
.avalon-graph.avalon-zoomable { overflow: hidden; }
.avalon-zoomable > svg { display: block; width: 100%; max-width: none; cursor: grab; touch-action: none;
  user-select: none; -webkit-user-select: none; }
.avalon-zoomable.avalon-dragging > svg { cursor: grabbing; }
.avalon-zoom-ui { position: absolute; top: 4px; right: 4px; display: flex; gap: 3px; z-index: 2; }
.avalon-view .avalon-zoom-ui button, .avalon-static .avalon-zoom-ui button { font: 13px Helvetica, Arial, sans-serif;
  min-width: 26px; height: 24px; padding: 0 6px; margin: 0; border: 1px solid #9ca3af; border-radius: 3px;
  background: #fff; color: #111827; cursor: pointer; }
.avalon-minimap { position: absolute; right: 4px; bottom: 4px; z-index: 2; border: 1px solid #9ca3af;
  background: rgba(255, 255, 255, 0.94); cursor: crosshair; overflow: hidden; }
.avalon-minimap svg { display: block; pointer-events: none; }
.avalon-lens { position: absolute; box-sizing: border-box; border: 2px solid #2563eb;
  background: rgba(37, 99, 235, 0.1); pointer-events: none; }
"""

# The view is the SVG's viewBox: a window of `cw/k × ch/k` points at (x0, y0), k CSS pixels per
# point. A new layout opens fitted; a restyle of the same layout (a selection, a step) keeps the
# user's zoom. `zoomable(box)` returns {update, reveal}: call update() after
# putting a new SVG in the box, reveal(id) to bring an element into view.
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
    const relayout = key !== layoutKey;
    if (relayout || fitted) {
      layoutKey = key;
      fit();
      fresh = opened && relayout;  // the opening shows the whole graph, focus or not
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
  return { update, reveal };
}
"""
