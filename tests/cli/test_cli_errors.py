"""Bad input through the real command line: exit code 2, one line naming the field, no traceback."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import assert_user_error, run_cli

CUBA = "tests/data/cuba_issue.yaml"


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("run.dt=0", ["run.dt", "positive"]),
        ("run.dt=-0.1 ms", ["run.dt", "positive"]),
        ("family=lif_netwrk", ["family", "unknown family", "lif_network"]),
        ("params.populations.exc.tau_mm=20 ms", ["params.populations.exc.tau_mm", "unknown key", "tau_m"]),
        ("params.synapses.0.connect.p=1.2", ["params.synapses.0.connect.p", "1.2", "[0, 1]"]),
        ("params.synapses.1.source=interneurons", ["params.synapses.1.source", "interneurons", "exc, inh"]),
        ("params.populations.inh.t_ref=5 mV", ["params.populations.inh.t_ref", "5 mV", "expected a time"]),
        ("params.populations.exc.size=1000000", ["network too large", "GiB", "available"]),
    ],
)
def test_run_refuses_bad_scenario(override, needles, tmp_path):
    if override.endswith("1000000"):
        # a dense network of 1e6 x 1e6 * 0.02 synapses: refused up front with the estimate
        extra = ["--set", "params.synapses.0.connect.p=1.0"]
    else:
        extra = []
    proc = run_cli("run", CUBA, "--set", override, *extra, "--output", tmp_path / "r.h5")
    assert_user_error(proc, *needles)
    assert not (tmp_path / "r.h5").exists()


def test_malformed_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: broken\nfamily: lif_network\nparams: {populations: {exc: {size: 3\n")
    assert_user_error(run_cli("run", bad), "malformed YAML", "line")


def test_missing_file(tmp_path):
    assert_user_error(run_cli("run", tmp_path / "nope.yaml"), "file not found")


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "r.h5"
    out.write_bytes(b"precious")
    proc = run_cli("run", CUBA, "--output", out)
    assert_user_error(proc, "already exists", "--force")
    assert out.read_bytes() == b"precious"


def test_validate_and_list(tmp_path):
    proc = run_cli("validate", CUBA)
    assert proc.returncode == 0 and "valid lif_network scenario 'cuba'" in proc.stdout
    proc = run_cli("list")
    assert proc.returncode == 0 and "lif_network" in proc.stdout


def test_info_and_compare_on_non_run(tmp_path):
    junk = tmp_path / "junk.h5"
    shutil.copy(CUBA, junk)
    assert_user_error(run_cli("info", junk), "not a readable neurodyn result")
    assert_user_error(run_cli("compare", tmp_path / "none.h5"), "no result file")
