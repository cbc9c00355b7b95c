"""The command line refuses a plain number in a dimensioned field with one line that suggests the unit."""

from __future__ import annotations

import pytest

#: what ``--set params.synapses.0.weight=8`` prints (a NEST user's "8 mV", which would be 8 V)
WEIGHT_8 = "neurodyn: error: params.synapses.0.weight = 8: a voltage needs a unit, e.g. '8 mV' for a current synapse"


@pytest.mark.parametrize("command", ["validate", "run"])
def test_set_with_a_plain_number_is_one_line(command, cli, user_error, tmp_path):
    where = ["-o", tmp_path / "x.h5"] if command == "run" else []
    proc = cli(command, "scenarios/cuba.yaml", "--set", "params.synapses.0.weight=8", *where)
    user_error(proc, WEIGHT_8)
    assert proc.stderr.strip() == WEIGHT_8
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("value", ["8mV", "8 mV", "'8 mV'"])
def test_set_with_a_unit_is_accepted(value, cli):
    proc = cli("validate", "scenarios/cuba.yaml", "--set", f"params.synapses.0.weight={value}")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "valid lif_network scenario 'cuba'" in proc.stdout


def test_file_and_sweep_list_with_plain_numbers_are_refused(cli, user_error, repo, tmp_path):
    text = (repo / "scenarios" / "quickstart.yaml").read_text()
    plain = tmp_path / "plain.yaml"
    plain.write_text(text.replace("tau_m: 20 ms", "tau_m: 0.02", 1))
    user_error(
        cli("validate", plain),
        "neurodyn: error: params.populations.regular.tau_m = 0.02: a time needs a unit, e.g. '0.02 ms'",
    )
    swept = tmp_path / "swept.yaml"
    swept.write_text(text + "sweep: {grid: {params.inputs.1.mu: [12, 18]}}\n")
    for command in ("validate", "sweep"):
        user_error(
            cli(command, swept, *(["-o", tmp_path / "out"] if command == "sweep" else [])),
            "neurodyn: error: params.inputs.1.mu = 12: a voltage needs a unit, e.g. '12 mV' "
            "(sweep point params.inputs.1.mu=12)",
        )
    assert not (tmp_path / "out").exists()
