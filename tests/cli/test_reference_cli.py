"""`neurodyn schema FAMILY [--markdown]`: the parameter reference on the command line."""

from __future__ import annotations

import pytest

from tests import reference_family


@pytest.fixture(scope="module")
def cli_env() -> dict[str, str]:
    return {"NEURODYN_FAMILIES": f"{reference_family.NAME}={reference_family.TARGET}"}


def test_schema_prints_one_aligned_row_per_path(cli):
    proc = cli("schema", "ref_test")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["path", "type", "unit", "default", "constraint", "description"]
    assert (
        "params.cells.<name>.tau                  time                      s     20 ms     > 0"
        "                              time constant"
    ) in lines
    assert "params.wave.duty [shape: square]         float                           0.5       > 0; < 1" in lines
    assert (
        "record.every                             time                      s     1 ms      > 0"
        "                              sampling interval"
    ) in lines
    assert len(lines) == 2 + 35


def test_schema_markdown_is_the_checked_in_page(cli, repo):
    proc = cli("schema", "lif_network", "--markdown")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (repo / "docs" / "reference" / "lif_network.md").read_text(encoding="utf-8")


def test_unknown_family_is_one_line_listing_the_families(cli):
    proc = cli("schema", "lif_netwrk")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        "neurodyn: error: family = 'lif_netwrk': unknown family (did you mean 'lif_network'?); allowed: "
        "lif_network, ultralif_network, cortical_field, sync_learners, eqprop, ltc_cfc, curl_descent, ref_test\n"
    )
