"""How comparisons are shown: numbers with units, the verdict summary, the pointer to the family's page."""

from __future__ import annotations

import math

import pytest

from neurodyn import registry
from neurodyn.compare import _ratio, family_page, format_table, pointer, summary, to_dataframe
from neurodyn.quantities import format_quantity, parse_quantity
from neurodyn.rows import Row
from neurodyn.scenario import REPO_ROOT


@pytest.mark.parametrize(
    ("value", "units", "digits", "text"),
    [
        (0.0123, "V", 4, "12.3 mV"),
        (-0.065, "V", 4, "-65 mV"),
        (1e-8, "S", 4, "10 nS"),
        (29.237, "Hz", 5, "29.237 Hz"),
        (999.96, "Hz", 4, "1 kHz"),  # rounds up into the next prefix, never "1000 Hz"
        (0.99996, "V", 4, "1 V"),
        (1.144638412000063, "s", 3, "1.14 s"),
        (1500.0, "s", 4, "1500 s"),  # no kiloseconds
        (2.2570111611675299e20, "", 4, "2.257e+20"),
        (2.2570111611675299e20, "1", 4, "2.257e+20"),
        (1e-20, "V", 4, "1e-20 V"),  # beyond the prefixes
        (0.0, "V", 4, "0 V"),
        (3.2, "rad/s", 4, "3.2 rad/s"),
        (math.nan, "Hz", 4, "nan Hz"),
    ],
)
def test_format_quantity(value, units, digits, text):
    assert format_quantity(value, units, digits) == text


@pytest.mark.parametrize("value", [0.0123, 2.5e-7, 47e3, 1e-13, 123.456e-6])
def test_formatted_quantities_read_back(value):
    text = format_quantity(value, "V", 6)
    assert parse_quantity(text, "voltage") == pytest.approx(value, rel=1e-6)


def test_ratio_has_four_decimals_near_one_and_an_exponent_far_from_it():
    assert [_ratio(r) for r in (1.00771, 0.5, 225701116116752990208.0, 1e-5, 0.0, math.nan)] == [
        "1.0077",
        "0.5000",
        "2.257e+20",
        "1.000e-05",
        "0.0000",
        "-",
    ]


ROWS = [
    Row("rate", 29.237, 29.249, where="population=regular", units="Hz"),
    Row("v_mean", 0.05, 0.01, units="V"),
    Row("ratio_max", 2.257e20, 1.0, kind="upper_bound"),
    Row("gap", 0.5, 1.0, kind="lower_bound"),
    Row("undefined", math.nan, 1.0),
]


def test_table_and_summary_lines():
    assert format_table(ROWS).splitlines() == [
        "quantity                 where               simulated  ± 95% CI  predicted  ratio      verdict",
        "-----------------------  ------------------  ---------  --------  ---------  ---------  --------",
        "rate                     population=regular  29.237 Hz  -         29.249 Hz  0.9996     agree",
        "v_mean                   -                   50 mV      -         10 mV      5.0000     differ",
        "ratio_max (upper bound)  -                   2.257e+20  -         1          2.257e+20  violated",
        "gap (lower bound)        -                   0.5        -         1          0.5000     violated",
        "undefined                -                   nan        -         1          -          n/a",
    ]
    assert summary(ROWS) == "summary: 1 agree, 1 differ, 0 holds, 2 violated, 1 n/a (5 rows)"
    assert summary(ROWS[:1]) == "summary: 1 agree, 0 differ, 0 holds, 0 violated, 0 n/a (1 row)"


def test_dataframe_keeps_its_columns_and_carries_units():
    table = to_dataframe(ROWS)
    assert list(table.columns) == [
        "quantity",
        "where",
        "simulated",
        "ci",
        "predicted",
        "ratio",
        "kind",
        "rel_tol",
        "verdict",
        "source",
    ]
    assert table.attrs["units"] == {"rate": "Hz", "v_mean": "V"}


@pytest.mark.parametrize("family", registry.builtin_names())
def test_every_builtin_family_has_a_page_to_point_to(family):
    page = family_page(family)
    assert page is not None and page.is_file() and page.parent == REPO_ROOT / "docs"
    assert page.read_text(encoding="utf-8").startswith(f"# `{family}`")


def test_pointer_names_the_page_when_something_disagrees(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    assert pointer("ultralif_network", ROWS) == (
        "3 rows differ or are violated; see docs/ultralif.md for where ultralif_network's theory is known not to hold"
    )
    assert pointer("lif_network", ROWS[1:2]) == (
        "1 row differs or is violated; see docs/lif_network.md for where lif_network's theory is known not to hold"
    )
    assert pointer("lif_network", ROWS[:1]) is None  # everything agrees
    assert pointer("no_such_family", ROWS) is None  # no page to point to
