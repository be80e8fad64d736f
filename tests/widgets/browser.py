"""Headless Chromium for the widget tests (Debian's package, driven by Playwright; never a downloaded
browser), and checks on what a rendered view shows."""
import os

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FORWARD_RING = "rgb(37, 99, 235)"  # the stepper's current node and a selection
LINK_COLOUR = "rgb(29, 78, 216)"


def missing_browser():
    """Why the browser cannot run here, or None."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not installed (apt-get install chromium; never a downloaded browser)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (the Python package) is not installed"
    return None


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


# What sticks out of a side panel: statistics tables and source listings wider than the panel, or
# table cells whose text does not fit them.
_OVERFLOW_JS = """(panel) => {
  const edge = panel.getBoundingClientRect().right - parseFloat(getComputedStyle(panel).paddingRight);
  const out = [];
  if (panel.scrollWidth > panel.clientWidth) out.push("the panel scrolls sideways");
  for (const el of panel.querySelectorAll("table.avalon-stats, pre.avalon-source")) {
    const right = el.getBoundingClientRect().right;
    if (right > edge + 0.5 || el.scrollWidth > el.clientWidth) out.push(el.className + " ends at " + right + " > " + edge);
  }
  for (const cell of panel.querySelectorAll("table.avalon-stats th, table.avalon-stats td"))
    if (cell.scrollWidth > cell.clientWidth) out.push("clipped cell " + cell.textContent);
  return out;
}"""


def overflowing(panel):
    """What sticks out of a side panel (a Playwright locator): [] when everything fits."""
    return panel.evaluate(_OVERFLOW_JS)


_RINGED_IN_VIEW_JS = """(graph, color) => {
  const view = graph.getBoundingClientRect();
  for (const g of graph.querySelectorAll("g.node")) {
    const shape = g.querySelector(":scope > path, :scope > polygon, :scope > ellipse");
    if (!shape || getComputedStyle(shape).stroke !== color) continue;
    const box = g.getBoundingClientRect();
    return box.top >= view.top && box.bottom <= view.bottom && box.left >= view.left && box.right <= view.right;
  }
  return null;
}"""


def ringed_in_view(graph, color=FORWARD_RING):
    """Whether the node ringed in `color` lies in the visible part of its scrolled graph (None when
    no node is ringed)."""
    return graph.evaluate(_RINGED_IN_VIEW_JS, color)
