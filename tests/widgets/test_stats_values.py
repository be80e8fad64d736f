"""stats() gives float64 statistics of the finite entries whatever the dtype, without copying a
value that is all finite; the histogram is drawn from the finite entries."""
import math

import numpy as np
import pytest

from avalon.widgets.stats import histogram_svg, stats


def reference(a):
    flat = np.asarray(a).astype(np.complex128 if np.iscomplexobj(a) else np.float64).ravel()
    flat = np.abs(flat) if np.iscomplexobj(a) else flat
    finite = flat[np.isfinite(flat)]
    return {"nan": int(np.isnan(flat).sum()), "inf": int(np.isinf(flat).sum()), "min": finite.min(),
            "max": finite.max(), "mean": finite.mean(), "std": finite.std(), "norm": np.linalg.norm(finite)}


rng = np.random.default_rng(0)
VALUES = {
    "float32": rng.standard_normal((64, 50, 7), dtype=np.float32) * 1e3 + 5,
    "float16": (rng.standard_normal(999) * 30).astype(np.float16),
    "float64 with NaN and Inf": np.array([[1.0, np.nan], [3.0, -np.inf], [np.inf, -2.81e-4]]),
    "int": np.arange(-7, 12),
    "bool": np.array([True, False, True, True]),
    "complex": rng.standard_normal(40) + 1j * rng.standard_normal(40),
    "scalar": np.float32(-2.5),
}


@pytest.mark.parametrize("name", VALUES)
def test_statistics_match_float64_ones(name):
    a = VALUES[name]
    got, want = stats(a), reference(a)
    assert got["count"] == np.size(a) and got["nan"] == want["nan"] and got["inf"] == want["inf"]
    for key in ("min", "max", "mean", "std"):
        assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
    if got["finite"]:
        assert got["norm"] == pytest.approx(want["norm"], rel=1e-9)
    else:
        assert math.isnan(got["norm"]) if want["nan"] else got["norm"] == math.inf


def test_no_finite_entries_and_no_value():
    s = stats(np.array([np.nan, np.inf, -np.inf]))
    assert (s["nan"], s["inf"], s["min"], s["mean"]) == (1, 2, None, None) and math.isnan(s["norm"])
    assert stats(None) is None and stats(np.array(["a"])) is None
    assert histogram_svg(np.array([np.nan])) == ""


def test_the_histogram_counts_the_finite_entries():
    a = np.concatenate([rng.standard_normal(500).astype(np.float32), [np.nan, np.inf]])
    svg = histogram_svg(a)
    counts = [int(c) for c in __import__("re").findall(r"<title>(\d+)</title>", svg)]
    assert sum(counts) == 500 and counts == list(np.histogram(a[:500].astype(np.float64), bins=24)[0])
