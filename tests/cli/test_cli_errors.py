"""Bad input through the real command line: exit code 2, one line naming the field, no traceback."""

from __future__ import annotations

import shutil

import pytest

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
def test_run_refuses_bad_scenario(override, needles, tmp_path, cli, user_error):
    if override.endswith("1000000"):
        # a dense network of 1e6 x 1e6 * 0.02 synapses: refused up front with the estimate
        extra = ["--set", "params.synapses.0.connect.p=1.0"]
    else:
        extra = []
    proc = cli("run", CUBA, "--set", override, *extra, "--output", tmp_path / "r.h5")
    user_error(proc, *needles)
    assert not (tmp_path / "r.h5").exists()


def test_malformed_yaml(tmp_path, cli, user_error):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: broken\nfamily: lif_network\nparams: {populations: {exc: {size: 3\n")
    user_error(cli("run", bad), "malformed YAML", "line")


def test_missing_file(tmp_path, cli, user_error):
    user_error(cli("run", tmp_path / "nope.yaml"), "file not found")


def test_existing_output_needs_force(tmp_path, cli, user_error):
    out = tmp_path / "r.h5"
    out.write_bytes(b"precious")
    proc = cli("run", CUBA, "--output", out)
    user_error(proc, "already exists", "--force")
    assert out.read_bytes() == b"precious"


def test_validate_and_list(tmp_path, cli):
    proc = cli("validate", CUBA)
    assert proc.returncode == 0 and "valid lif_network scenario 'cuba'" in proc.stdout
    proc = cli("list")
    assert proc.returncode == 0 and "lif_network" in proc.stdout


def test_info_and_compare_on_non_run(tmp_path, cli, user_error):
    junk = tmp_path / "junk.h5"
    shutil.copy(CUBA, junk)
    user_error(cli("info", junk), "not a readable neurodyn result")
    user_error(cli("compare", tmp_path / "none.h5"), "no result file")
