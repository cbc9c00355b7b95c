"""`neurodyn compare`: readable numbers with units, a summary line, --fail-on-disagree, the family's page."""

from __future__ import annotations

import re

import pytest
import yaml

from tests import verdict_family


@pytest.fixture(scope="module")
def cli_env() -> dict[str, str]:
    return verdict_family.ENV


def _result(tmp_path, cli, name: str, **params):
    scenario = tmp_path / f"{name}.yaml"
    scenario.write_text(yaml.safe_dump({"name": name, "family": "verdict_test", "params": params}))
    out = tmp_path / f"{name}.h5"
    proc = cli("run", scenario, "--output", out)
    assert proc.returncode == 0, proc.stderr
    return proc, out


def test_table_summary_and_exit_codes(tmp_path, cli):
    run, out = _result(tmp_path, cli, "mixed", simulated=[0.0123, 0.05], predicted=[0.0124, 0.01], units="V")
    assert f"theory: 1 agree, 1 differ, 0 holds, 0 violated, 0 n/a (2 rows); the table: neurodyn compare {out}" in (
        run.stdout.splitlines()
    )
    table = [
        "quantity  where   simulated  ± 95% CI  predicted  ratio   verdict",
        "--------  ------  ---------  --------  ---------  ------  -------",
        "x         item=0  12.3 mV    -         12.4 mV    0.9919  agree",
        "x         item=1  50 mV      -         10 mV      5.0000  differ",
        "summary: 1 agree, 1 differ, 0 holds, 0 violated, 0 n/a (2 rows)",
    ]
    proc = cli("compare", out)
    assert (proc.returncode, proc.stdout.splitlines(), proc.stderr) == (0, table, "")
    proc = cli("compare", out, "--fail-on-disagree")
    assert (proc.returncode, proc.stdout.splitlines()) == (1, table)
    assert proc.stderr == "neurodyn: compare: 1 of 2 rows differ or are violated (--fail-on-disagree)\n"


def test_markdown_has_the_summary_below_the_table(tmp_path, cli):
    _, out = _result(tmp_path, cli, "md", simulated=[0.5], predicted=[0.5])
    proc = cli("compare", out, "--markdown", "--fail-on-disagree")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.splitlines() == [
        "| quantity | where | simulated | ± 95% CI | predicted | ratio | verdict |",
        "|---|---|---|---|---|---|---|",
        "| x | item=0 | 0.5 | - | 0.5 | 1.0000 | agree |",
        "",
        "summary: 1 agree, 0 differ, 0 holds, 0 violated, 0 n/a (1 row)",
    ]


def test_huge_ratios_are_in_exponent_form(tmp_path, cli):
    _, out = _result(
        tmp_path, cli, "huge", simulated=[225701116116752990208.0, 0.5], predicted=[1.0, 1.0], kind="upper_bound"
    )
    proc = cli("compare", out, "--fail-on-disagree")
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[2:] == [
        "x (upper bound)  item=0  2.257e+20  -         1          2.257e+20  violated",
        "x (upper bound)  item=1  0.5        -         1          0.5000     holds",
        "summary: 0 agree, 0 differ, 1 holds, 1 violated, 0 n/a (2 rows)",
    ]


def test_disagreement_points_to_the_family_page(tmp_path, cli, repo):
    """UltraLIF's trajectory bound with reset fails for small eps (docs/ultralif.md explains why)."""
    scenario = tmp_path / "ulb.yaml"
    doc = {
        "name": "ulb",
        "family": "ultralif_network",
        "params": {
            "experiment": "bounds",
            "bounds": {"eps": [1.0, 0.02], "steps": 30, "n_neurons": 100, "n_samples": 2000},
        },
        "run": {"seed": 1},
    }
    scenario.write_text(yaml.safe_dump(doc))
    out = tmp_path / "ulb.h5"
    assert cli("run", scenario, "--output", out, "--quiet").returncode == 0
    proc = cli("compare", out, "--fail-on-disagree")
    assert proc.returncode == 1, proc.stderr
    *_, summary, pointer = proc.stdout.splitlines()
    counts = dict((v, int(n)) for n, v in re.findall(r"(\d+) (agree|differ|holds|violated|n/a)", summary))
    n = counts["differ"] + counts["violated"]
    assert n > 0
    assert pointer == (
        f"{n} rows differ or are violated; "
        "see docs/ultralif.md for where ultralif_network's theory is known not to hold"
    )
    assert (repo / "docs" / "ultralif.md").is_file()
    assert (
        proc.stderr
        == f"neurodyn: compare: {n} of {sum(counts.values())} rows differ or are violated (--fail-on-disagree)\n"
    )
