"""Adaptive LIF and AdEx neurons (``adaptation:``): theory, published firing patterns, Brian2 and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from neurodyn.families.lif_network import LIFNetwork, engine, theory
from neurodyn.progress import QUIET
from neurodyn.scenario import Scenario, from_dict, load_scenario


def _run(sc: Scenario):
    built = LIFNetwork().prepare(sc)
    ds = engine.simulate(built)
    return built, ds, theory.theory(built, ds)


def _isis(ds, k: int) -> np.ndarray:
    return np.diff(ds.spike_time.values[ds.spike_index.values == k])


def test_adaptation_fi_every_prediction_within_its_tolerance(repo) -> None:
    """scenarios/adaptation_fi.yaml: adapted rate, adapted ISI, first ISI and their ratio, for the adaptive LIF
    and AdEx neuron at five currents, each within the rel_tol stored with it; the first ISI within 2.5%."""
    built, ds, th = _run(load_scenario(repo / "scenarios/adaptation_fi.yaml"))
    assert list(th.rate_theory_regime.values) == ["adaptive"] * 10
    for sim, pred in (
        ("rate", "rate_theory"),
        ("isi_adapted", "isi_adapted_theory"),
        ("isi_first", "isi_first_theory"),
        ("isi_ratio", "isi_ratio_theory"),
    ):
        s, p = ds[sim].values, th[pred].values
        tol = th[pred].attrs["rel_tol"]
        assert np.all(np.isfinite(s)) and np.all(np.isfinite(p)), sim
        assert np.all(np.abs(s / p - 1.0) <= tol), (sim, s / p - 1.0, tol)
    assert np.all(np.abs(ds.isi_first.values / th.isi_first_theory.values - 1.0) < 0.025)
    # adaptation slows firing: the first interval is 3-7 times shorter than the adapted one
    assert np.all((ds.isi_ratio.values > 0.15) & (ds.isi_ratio.values < 0.34))


def test_adapted_theory_reduces_to_lif_without_adaptation_current() -> None:
    """a = b = 0: the adapted rate is the LIF f-I rate 1/(t_ref + tau_m ln((mu - v_r)/(mu - v_th))) (1e-12)."""
    pop = from_dict(
        yaml.safe_load(
            """
name: t
family: lif_network
params:
  populations:
    n: {size: 1, tau_m: 20 ms, v_rest: -70 mV, v_reset: -60 mV, v_threshold: -50 mV, t_ref: 2 ms,
        adaptation: {a: 0 nS, b: 0 pA, tau_w: 100 ms}}
run: {duration: 1 s, dt: 0.1 ms}
"""
        )
    ).params.populations["n"]
    res = theory.adapted_firing(pop, -0.045)
    assert res.rate == pytest.approx(theory.fi_rate(-0.045, 0.02, 0.002, -0.050, -0.060), rel=1e-12)
    assert res.isi_first == pytest.approx(res.isi_adapted, rel=1e-9)


def test_adex_patterns_reproduce_naud_2008(repo) -> None:
    """scenarios/adex_patterns.yaml (Naud et al. 2008, Table 1): tonic spiking settles to a constant ISI; the
    adapting neuron's ISIs grow monotonically to a plateau; the initial burst is 3 spikes, then regular
    firing; regular bursting alternates short (< 10 ms) and long (> 100 ms) intervals."""
    built, ds, _ = _run(load_scenario(repo / "scenarios/adex_patterns.yaml"))
    k = {nm: i for i, nm in enumerate(built.network.names)}
    tonic = _isis(ds, k["tonic"])
    assert tonic.size > 40 and np.ptp(tonic[-20:]) < 1e-4 and tonic[0] / tonic[-1] > 0.9
    adapting = _isis(ds, k["adapting"])
    assert np.all(np.diff(adapting) > 0) and adapting[-1] / adapting[0] > 6
    burst = _isis(ds, k["initial_burst"])
    assert np.all(burst[:2] < 10e-3) and np.all(burst[2:] > 50e-3)
    assert np.ptp(burst[-4:]) < 1e-3
    bursting = _isis(ds, k["bursting"])[2:]
    assert np.all(bursting[0::2] > 100e-3) and np.all(bursting[1::2] < 10e-3)
    # the adaptation current jumps by b at each spike: sampled w rises by about b across a spike of `adapting`
    w = ds.w.sel(neuron=k["adapting"]).values
    assert np.all(np.isfinite(w)) and w.max() > 0.06e-9 * 3


def test_refusals_before_the_run(cli, tmp_path, user_error) -> None:
    """Unstable or ill-posed adaptation, and w asked of a population without it, are one-line user errors."""
    base = {
        "name": "t",
        "family": "lif_network",
        "params": {
            "populations": {
                "n": {
                    "size": 1,
                    "tau_m": "20 ms",
                    "v_rest": "-70 mV",
                    "v_reset": "-58 mV",
                    "v_threshold": "0 mV",
                    "g_leak": "10 nS",
                    "adaptation": {"a": "2 nS", "b": "60 pA", "tau_w": "100 ms", "delta_T": "2 mV", "v_T": "-50 mV"},
                },
                "plain": {
                    "size": 1,
                    "tau_m": "20 ms",
                    "v_rest": "-70 mV",
                    "v_reset": "-58 mV",
                    "v_threshold": "-50 mV",
                },
            }
        },
        "run": {"duration": "10 ms", "dt": "0.1 ms"},
    }
    cases = [
        ({"a": "-10 nS"}, ["adaptation.a", "unstable"]),
        ({"tau_w": "-1 ms"}, ["tau_w", "positive"]),
        ({"delta_T": "-1 mV"}, ["delta_T", ">= 0"]),
        ({"v_T": None}, ["v_T", "delta_T > 0 needs"]),
        ({"v_T": "10 mV"}, ["adaptation.v_T", "below v_threshold"]),
        ({"delta_T": "0.1 mV"}, ["adaptation.delta_T", "blow up"]),
    ]
    for change, needles in cases:
        doc = yaml.safe_load(yaml.safe_dump(base))
        ad = doc["params"]["populations"]["n"]["adaptation"]
        for key, value in change.items():
            if value is None:
                ad.pop(key)
            else:
                ad[key] = value
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump(doc))
        user_error(cli("validate", str(path)), *needles)
    doc = yaml.safe_load(yaml.safe_dump(base))
    doc["record"] = {"state": {"w": {"plain": [0]}}}
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(doc))
    user_error(cli("validate", str(path)), "record.state.w.plain", "exists in: n")
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(base))
    user_error(cli("export", str(path), str(tmp_path / "x.py"), "--to", "nest"), "populations.n.adaptation", "nest")


# ----------------------------------------------------------------------------- Brian2

brian2_marks = [pytest.mark.brian2, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def _both(sc: Scenario, monkeypatch):
    pytest.importorskip("brian2")
    from neurodyn.families.lif_network.brian2_backend import TARGET_ENV

    monkeypatch.setenv(TARGET_ENV, "numpy")
    family = LIFNetwork()
    a = family.simulate(family.prepare(sc.with_values({"run.backend": "numba"})), QUIET)
    b = family.simulate(family.prepare(sc.with_values({"run.backend": "brian2"})), QUIET)
    return a, b


ALIF = """
name: t
family: lif_network
params:
  populations:
    driver: {size: 3, tau_m: 10 ms, v_rest: -70 mV, v_reset: -70 mV, v_threshold: -50 mV, t_ref: 1 ms}
    n: {size: 3, tau_m: 20 ms, v_rest: -70 mV, v_reset: -58 mV, v_threshold: -50 mV, t_ref: 2 ms, g_leak: 10 nS,
        adaptation: {a: 2 nS, b: 60 pA, tau_w: 100 ms}}
  synapses:
    - {source: driver, target: n, connect: {one_to_one: true}, kind: current, weight: 4 mV, tau: 5 ms}
  inputs:
    - {kind: constant, target: driver, drive: [25 mV]}
    - {kind: constant, target: n, current: 320 pA}
run: {duration: 600 ms, dt: 0.1 ms, seed: 1}
record: {spikes: true, state: {v: {n: all}, w: {n: all}}}
"""


@pytest.mark.brian2
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_adaptive_lif_identical_to_brian2_exact(monkeypatch) -> None:
    """delta_T = 0, constant current, refractory period: both backends integrate (v, w) exactly, so the spike
    trains are identical and v, w agree to 1e-9 V and 1e-18 A."""
    text = ALIF.replace("[25 mV]", "25 mV").replace("current: 320 pA", "current: 500 pA")
    doc = yaml.safe_load(text)
    doc["params"]["synapses"] = []
    a, b = _both(from_dict(doc), monkeypatch)
    assert b.attrs["brian2_method"]["n"] == "exact"
    assert a.sizes["spike"] > 60
    np.testing.assert_array_equal(a.spike_index.values, b.spike_index.values)
    np.testing.assert_allclose(a.spike_time.values, b.spike_time.values, rtol=0, atol=1e-12)
    assert np.abs(a.v.values - b.v.values).max() < 1e-9
    assert np.abs(a.w.values - b.w.values).max() < 1e-18


@pytest.mark.parametrize("shape", ["exponential", "biexponential"])
def test_adaptive_synaptic_response_is_exact(shape: str) -> None:
    """One presynaptic spike into an adaptive LIF at rest: the sampled (v, w) equal the exact solution
    exp(M (t - dt)) z0 of the linear (u, w, x[, h]) system (scipy's expm) to 1e-12 V and 1e-21 A."""
    from scipy.linalg import expm

    from neurodyn.families.lif_network.build import peak_normalisation

    extra = ", shape: biexponential, tau_rise: 1 ms" if shape == "biexponential" else ""
    sc = from_dict(
        yaml.safe_load(
            f"""
name: t
family: lif_network
params:
  populations:
    pre: {{size: 1, tau_m: 20 ms, v_rest: -70 mV, v_reset: -70 mV, v_threshold: -50 mV, t_ref: 1 s, v_init: -49 mV}}
    n: {{size: 1, tau_m: 20 ms, v_rest: -70 mV, v_reset: -60 mV, v_threshold: -50 mV, g_leak: 10 nS,
        adaptation: {{a: 4 nS, b: 0 pA, tau_w: 50 ms}}}}
  synapses:
    - {{source: pre, target: n, connect: {{one_to_one: true}}, weight: 5 mV, tau: 5 ms{extra}}}
run: {{duration: 60 ms, dt: 0.1 ms}}
record: {{state: {{v: {{n: all}}, w: {{n: all}}}}}}
"""
        )
    )
    built, ds, _ = _run(sc)
    dt, tau_m, g_l, a, tau_w, tau = 1e-4, 0.02, 10e-9, 4e-9, 0.05, 0.005
    rows = [[-1 / tau_m, -1 / (g_l * tau_m), 1 / tau_m], [a / tau_w, -1 / tau_w, 0.0], [0.0, 0.0, -1 / tau]]
    mat = np.array(rows)
    z0 = np.array([0.0, 0.0, 5e-3])
    if shape == "biexponential":
        mat = np.pad(mat, ((0, 1), (0, 1)))
        mat[2, 3], mat[3, 3] = 1.0, -1 / 1e-3
        z0 = np.array([0.0, 0.0, 0.0, 5e-3 * peak_normalisation(tau, 1e-3)])
    t = ds.time.values
    expect = np.array([expm(mat * (ti - dt)) @ z0 if ti >= dt else 0 * z0 for ti in t])
    v = ds.v.sel(neuron=1).values + 0.070
    w = ds.w.sel(neuron=1).values
    assert np.abs(v - expect[:, 0]).max() < 1e-12
    assert np.abs(w - expect[:, 1]).max() < 1e-21
    assert v.max() > 5e-4


@pytest.mark.brian2
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_adex_patterns_match_brian2(repo, monkeypatch) -> None:
    """AdEx (exponential Euler in both, the exponential term frozen over a step at dt = 0.01 ms): the same
    spike count per pattern and every spike within 0.05 ms (5 steps) of Brian2's."""
    sc = load_scenario(repo / "scenarios/adex_patterns.yaml").with_values({"run.duration": "0.3 s"})
    a, b = _both(sc, monkeypatch)
    for k in range(4):
        ta = a.spike_time.values[a.spike_index.values == k]
        tb = b.spike_time.values[b.spike_index.values == k]
        assert ta.size == tb.size and ta.size >= 5
        assert np.abs(ta - tb).max() <= 0.05e-3 + 1e-12


@pytest.mark.brian2
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_adex_with_conductance_synapse_close_to_brian2(monkeypatch) -> None:
    """AdEx receiving a conductance synapse (both backends freeze g over a step): the same spike count per
    neuron, the median spike within 0.05 ms and every spike within 2 ms of Brian2's at dt = 0.01 ms."""
    text = (
        ALIF.replace(
            "kind: current, weight: 4 mV, tau: 5 ms", "kind: conductance, weight: 20 nS, tau: 5 ms, reversal: 0 mV"
        )
        .replace(
            "adaptation: {a: 2 nS, b: 60 pA, tau_w: 100 ms}",
            "v_threshold: 0 mV, adaptation: {a: 2 nS, b: 60 pA, tau_w: 100 ms, delta_T: 2 mV, v_T: -50 mV}",
        )
        .replace("v_threshold: -50 mV, t_ref: 2 ms, g_leak", "t_ref: 2 ms, g_leak")
        .replace("[25 mV]", "25 mV")
        .replace("dt: 0.1 ms", "dt: 0.01 ms")
    )
    a, b = _both(from_dict(yaml.safe_load(text)), monkeypatch)
    assert a.sizes["spike"] == b.sizes["spike"] and a.sizes["spike"] > 60
    for k in range(6):
        ta = a.spike_time.values[a.spike_index.values == k]
        tb = b.spike_time.values[b.spike_index.values == k]
        assert ta.size == tb.size
        # Brian2 freezes w in the v update, the engine propagates (v, w) jointly: most spikes within 5
        # steps, a few (where the conductance input makes the trajectory sensitive) within 2 ms
        assert np.median(np.abs(ta - tb)) <= 0.05e-3 + 1e-12
        assert np.abs(ta - tb).max() <= 2e-3
