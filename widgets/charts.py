"""Horizontal bar charts as plain SVG text: the Profiler's time by primitive and by module.

Written by hand rather than drawn by matplotlib: importing matplotlib and laying out two figures took
longer (about 2 s) than profiling a small model; these are a few dozen SVG elements.
"""
import html

_LABEL_W, _BAR_W, _VALUE_W = 190, 200, 70
_ROW_H, _TOP, _BOTTOM = 18, 26, 22
_LABEL_CHARS = 28


def time_unit(seconds):
    """(scale, unit) that shows the largest of `seconds` readably: ms from a millisecond, else µs."""
    return (1e3, "ms") if max(seconds, default=0) >= 1e-3 else (1e6, "µs")


def bar_chart_svg(groups, title, limit=15):
    """A horizontal bar chart of the first `limit` of [{name, median_s}] (largest first), as SVG text.

    >>> bar_chart_svg([{"name": "matmul", "median_s": 2e-3}], "time by primitive")[:4]
    '<svg'
    """
    top = groups[:limit]
    scale, unit = time_unit([g["median_s"] for g in top])
    largest = max((g["median_s"] for g in top), default=0) or 1.0
    width = _LABEL_W + _BAR_W + _VALUE_W
    height = _TOP + _ROW_H * len(top) + _BOTTOM
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f'<text x="{width / 2}" y="15" text-anchor="middle" font-size="12">{html.escape(title)}</text>']
    for i, g in enumerate(top):
        y = _TOP + i * _ROW_H
        name = g["name"] if len(g["name"]) <= _LABEL_CHARS else "…" + g["name"][-(_LABEL_CHARS - 1):]
        bar = max(1.0, _BAR_W * g["median_s"] / largest)
        value = g["median_s"] * scale
        parts.append(f'<g><title>{html.escape(g["name"])}: {value:.4g} {unit}</title>'
                     f'<text x="{_LABEL_W - 6}" y="{y + 13}" text-anchor="end">{html.escape(name)}</text>'
                     f'<rect x="{_LABEL_W}" y="{y + 3}" width="{bar:.1f}" height="{_ROW_H - 6}" fill="#6366f1"/>'
                     f'<text x="{_LABEL_W + bar + 4:.1f}" y="{y + 13}">{value:.3g}</text></g>')
    parts.append(f'<text x="{_LABEL_W + _BAR_W / 2}" y="{height - 6}" text-anchor="middle">'
                 f'median time ({unit})</text></svg>')
    return "".join(parts)
