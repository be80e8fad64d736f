"""What the side panels print about an array: number formatting and the statistics table."""
import math
import re

import numpy as np

from avalon.tape import Location
from avalon.widgets.panel import source_html
from avalon.widgets.stats import fmt, stats, stats_table


def test_numbers_have_four_significant_digits_and_a_compact_exponent():
    rng = np.random.default_rng(0)
    values = rng.standard_normal(400) * 10.0 ** rng.integers(-30, 30, 400)
    values = np.concatenate([values, [9999.5, -9999.4, 0.00099996, 1e-3, 1e4, 1.0, -2.14e-9, 5e-324, 1.7e308]])
    for x in values:
        text = fmt(float(x))
        assert len(text) <= 11, text
        assert "e+" not in text and not re.search(r"e-?0", text), text
        mantissa = text.split("e")[0].lstrip("-").replace(".", "").lstrip("0")
        assert len(mantissa) <= 4, text  # 4 significant digits at most
        if abs(x) > 1e-300:  # subnormals keep fewer digits
            assert math.isclose(float(text), x, rel_tol=5e-4), (x, text)
    assert [fmt(x) for x in (2.81e-4, -0.007499, 22.63, 9999.5, 12345.0, 0.0)] == \
        ["2.81e-4", "-0.007499", "22.63", "1e4", "1.234e4", "0"]
    assert fmt(512) == "512" and fmt(np.int64(123456789)) == "123456789"  # counts in full
    assert fmt(None) == "–" and fmt(math.nan) == "nan" and fmt(-math.inf) == "-inf"


def test_statistics_table_is_two_bands_of_four_columns():
    s = stats(np.array([[1.0, np.nan], [3.0, -2.81e-4]]))
    table = stats_table(s)
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    assert len(rows) == 4
    heads = [re.findall(r"<th>(.*?)</th>", r) for r in rows[::2]]
    assert heads == [["min", "max", "mean", "std"], ["norm", "NaN", "Inf", "count"]]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows[1::2]]
    assert cells[0][:2] == [fmt(-2.81e-4), "3"] and cells[1][1:] == ["1", "0", "4"]
    assert '<td class="avalon-bad">1</td>' in table  # the NaN count stands out


def test_long_source_lines_may_wrap_after_brackets_and_commas(tmp_path):
    path = tmp_path / "model.py"
    path.write_text("def f(x):\n    return g(h(x), k(x))\n")
    html = source_html(Location(str(path), 2, "f", "return g(h(x), k(x))"))
    assert "g(<wbr>h(<wbr>x),<wbr> k(<wbr>x))" in html
    assert re.sub(r"<[^>]+>", "", html).endswith("   2     return g(h(x), k(x))")
