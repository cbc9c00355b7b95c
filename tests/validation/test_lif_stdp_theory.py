"""STDP against theory: the additive drift of Kempter, Gerstner & van Hemmen (1999) and the stationary mean and
spread of multiplicative STDP, between independent (Bernoulli) spike trains; the closed forms themselves."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from neurodyn.families.lif_network.plasticity import stationary_spread


def test_stationary_spread_closed_form() -> None:
    """w* = w_min + span A+ tau+ / (A- tau-); the variance of the scenario's parameters by hand (D / 2 gamma)."""
    rule = SimpleNamespace(w_min=0.0, w_max=1.0, tau_plus=0.02, tau_minus=0.02, A_plus=0.01, A_minus=0.02)
    w, s = stationary_spread(rule, 50.0, 50.0)
    assert w == pytest.approx(0.5, rel=1e-15)
    # a = b = 0.01, r tau = 1: D = 2 * 1e-4 * (50 * 1.5 + 2500 * 50 * 4e-4) - 2e-4 * 2500 * 4e-4 * 100 = 0.005
    assert s == pytest.approx(math.sqrt(0.005 / 2.0), rel=1e-12)


def test_stdp_scenarios_agree_with_theory(cli, tmp_path) -> None:
    """neurodyn run then compare: every row of stdp_drift (rates, drift) and stdp_multiplicative (rates,
    stationary mean and spread) agrees with its stored tolerance."""
    for name, rows in (("stdp_drift", 3), ("stdp_multiplicative", 4)):
        out = tmp_path / f"{name}.h5"
        assert cli("run", f"scenarios/{name}.yaml", "-o", str(out)).returncode == 0
        proc = cli("compare", str(out))
        assert proc.returncode == 0, proc.stderr
        assert f"summary: {rows} agree, 0 differ, 0 holds, 0 violated, 0 n/a ({rows} rows)" in proc.stdout


def test_song_scenario_bimodal_additive_unimodal_multiplicative(repo) -> None:
    """scenarios/stdp_song.yaml (100 s): the additive weights gather at both bounds (each outer tenth of
    [0, w_max] holds more synapses than the middle tenth), the multiplicative ones in one peak (every weight in
    the middle half, none in the outer tenths)."""
    from neurodyn.families.lif_network import LIFNetwork
    from neurodyn.progress import QUIET
    from neurodyn.scenario import load_scenario

    family = LIFNetwork()
    ds = family.simulate(family.prepare(load_scenario(repo / "scenarios/stdp_song.yaml")), QUIET)
    w_max = 0.1e-9
    add = ds.final_weight.values[ds.synapse_projection.values == 0] / w_max
    mult = ds.final_weight.values[ds.synapse_projection.values == 1] / w_max
    middle = ((add >= 0.45) & (add < 0.55)).sum()
    assert (add < 0.1).sum() > middle and (add >= 0.9).sum() > middle
    assert ((mult >= 0.25) & (mult < 0.75)).all()
    assert ds.weight_hist.values[-1, 1, :5].sum() == 0 and ds.weight_hist.values[-1, 1, -5:].sum() == 0
