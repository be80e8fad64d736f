"""Value statistics and small histograms: what the side panels show about one array."""
import html
import math

import numpy as np


def to_numpy(value):
    """A host numpy array of `value` (cupy arrays are copied back), or None when there is none."""
    if value is None:
        return None
    get = getattr(value, "get", None)
    if callable(get) and not isinstance(value, np.ndarray):
        value = get()
    return np.asarray(value)


def stats(value):
    """{count, nan, inf, min, max, mean, std, norm} of an array (statistics over its finite
    entries); None when the value was not kept or is not numeric."""
    a = to_numpy(value)
    if a is None or a.dtype.kind not in "biufc":
        return None
    if a.dtype.kind == "c":
        a = np.abs(a)
    finite, nan, inf = _finite(a)
    out = {"count": int(a.size), "nan": nan, "inf": inf, "shape": tuple(a.shape), "dtype": str(a.dtype)}
    if finite.size:
        # sums in float64 without a float64 copy of a large float32 value (panels show thousands);
        # the norm from the same mean and variance: Σx² = n·(var + mean²)
        mean, var = float(finite.mean(dtype=np.float64)), float(finite.var(dtype=np.float64))
        out.update(min=float(finite.min()), max=float(finite.max()), mean=mean, std=math.sqrt(var),
                   norm=math.sqrt(finite.size * (var + mean * mean)))
    else:
        out.update(min=None, max=None, mean=None, std=None, norm=None)
    out["finite"] = out["nan"] == 0 and out["inf"] == 0
    if not out["finite"]:
        out["norm"] = math.inf if out["nan"] == 0 else math.nan
    return out


def _finite(a):
    """(the finite entries of `a`, flat; its NaN count; its ±inf count), copying only when some are not."""
    flat = a.ravel() if a.dtype.kind in "fc" else a.astype(np.float64).ravel()
    mask = np.isfinite(flat)
    if mask.all():
        return flat, 0, 0
    nan = int(np.isnan(flat).sum())
    return flat[mask], nan, int(flat.size - mask.sum() - nan)


def fmt(x):
    """A number in 4 significant digits and at most 11 characters: `0.007499`, `22.63`, `2.81e-4`,
    `-1.5e12` (a compact exponent: no `+`, no leading zeros); integers below 10⁹ in full."""
    if x is None:
        return "–"
    if isinstance(x, (int, np.integer)) and abs(x) < 10**9:
        return str(int(x))
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    x = float(f"{x:.3e}")  # rounded first, so 9999.7 is 1e4, not 1e+04 from the fixed branch
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.4g}"
    mantissa, exponent = f"{x:.3e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def histogram_svg(value, bins=24, width=220, height=56):
    """A small SVG bar histogram of the finite entries of `value` ('' when there is nothing)."""
    a = to_numpy(value)
    if a is None or a.dtype.kind not in "biuf" or a.size == 0:
        return ""
    flat = _finite(a)[0]
    if flat.size == 0:
        return ""
    lo, hi = float(flat.min()), float(flat.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts, _ = np.histogram(flat, bins=bins, range=(lo, hi))
    top = counts.max()
    bar_w = width / bins
    plot_h = height - 12
    bars = []
    for i, c in enumerate(counts):
        h = plot_h * c / top if top else 0
        bars.append(f'<rect x="{i * bar_w:.1f}" y="{plot_h - h:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                    f'height="{h:.1f}"><title>{int(c)}</title></rect>')
    return (f'<svg class="avalon-hist" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'xmlns="http://www.w3.org/2000/svg"><g fill="#6366f1">{"".join(bars)}</g>'
            f'<text x="0" y="{height - 1}" font-size="9">{html.escape(fmt(lo))}</text>'
            f'<text x="{width}" y="{height - 1}" font-size="9" text-anchor="end">{html.escape(fmt(hi))}</text>'
            "</svg>")


STATS_ROWS = (("min", "max", "mean", "std"), ("norm", "NaN", "Inf", "count"))


def stats_table(s):
    """An HTML table of `stats(value)`: two bands of four columns (label over value), so it fits a
    side panel."""
    if s is None:
        return '<p class="avalon-muted">no value kept</p>'
    values = {"min": s["min"], "max": s["max"], "mean": s["mean"], "std": s["std"], "norm": s["norm"],
              "NaN": s["nan"], "Inf": s["inf"], "count": s["count"]}
    bands = []
    for keys in STATS_ROWS:
        head = "".join(f"<th>{k}</th>" for k in keys)
        cells = "".join(
            f'<td class="{"avalon-bad" if k in ("NaN", "Inf") and values[k] else ""}">{html.escape(fmt(values[k]))}</td>'
            for k in keys)
        bands.append(f"<tr>{head}</tr><tr>{cells}</tr>")
    return f'<table class="avalon-stats">{"".join(bands)}</table>'
