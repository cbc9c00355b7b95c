"""The Numba engine of lif_network against exact solutions and exact properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from neurodyn.errors import SimulationError
from neurodyn.families.lif_network import LIFNetwork, build, engine, kernels
from neurodyn.stepping import Status


def simulate_numba(sc):
    """Check and build ``sc``, then run it with the Numba engine."""
    return engine.simulate(LIFNetwork().prepare(sc))


def kicker(v_rest: str = "-70 mV") -> dict:
    """One neuron that starts far above threshold: it fires at step 0 and then stays refractory."""
    return {
        "size": 1,
        "tau_m": "20 ms",
        "v_rest": v_rest,
        "v_reset": "-70 mV",
        "v_threshold": "-50 mV",
        "t_ref": "10 s",
        "v_init": "1 V",
    }


def target(tau_m: str = "20 ms", **extra) -> dict:
    return {"size": 1, "tau_m": tau_m, "v_rest": "-65 mV", "v_reset": "-70 mV", "v_threshold": "0 mV", **extra}


@pytest.mark.parametrize("tau_s", ["5 ms", "20 ms"])  # 20 ms = tau_m: the equal-tau limit
def test_current_psp_is_exact(tau_s, lif_scenario):
    """A spike at step 0 adds w to x at t = dt; then v - v_rest = w tau_s/(tau_s - tau_m)(e^{-t/tau_s} -
    e^{-t/tau_m}) (or w (t/tau_m) e^{-t/tau_m} for tau_s = tau_m), sampled exactly at every step."""
    w = 2e-3
    sc = lif_scenario(
        {"src": kicker(), "dst": target()},
        synapses=[{"source": "src", "target": "dst", "connect": {"one_to_one": True}, "weight": "2 mV", "tau": tau_s}],
        record={"v": {"indices": [1]}},
        duration="60 ms",
    )
    ds = simulate_numba(sc)
    assert ds.sizes["spike"] == 1 and float(ds.spike_time[0]) == 0.0
    t = ds.time.values[1:] - 1e-4
    tm, ts = 0.02, float(tau_s.split()[0]) * 1e-3
    if ts == tm:
        psp = w * t / tm * np.exp(-t / tm)
    else:
        psp = w * ts / (ts - tm) * (np.exp(-t / ts) - np.exp(-t / tm))
    v = ds.v.values[:, 0]
    assert v[0] == -0.065
    np.testing.assert_allclose(v[1:] + 0.065, psp, rtol=0, atol=1e-15)


def test_delay_shifts_trace_by_whole_steps(lif_scenario):
    base = dict(pops={"src": kicker(), "dst": target()}, record={"v": {"indices": [1]}})
    syn = {"source": "src", "target": "dst", "connect": {"one_to_one": True}, "weight": "2 mV", "tau": "5 ms"}
    v0 = simulate_numba(lif_scenario(synapses=[syn], **base, duration="50 ms")).v.values[:, 0]
    v7 = simulate_numba(lif_scenario(synapses=[{**syn, "delay": "0.7 ms"}], **base, duration="50 ms")).v.values[:, 0]
    assert np.all(v7[:8] == -0.065)
    np.testing.assert_array_equal(v7[7:], v0[:-7])


def test_refractory_period_and_spike_steps(lif_scenario):
    """Constant drive: ISI = ref_steps + ceil(T_free/dt) - 1 steps exactly (Brian2's schedule: spike
    recorded at the start of the step whose update crosses threshold, v clamped for ref_steps steps)."""
    dt, tau, ref = 1e-4, 0.02, 23
    mu, vr, th = -0.045, -0.07, -0.05
    sc = lif_scenario(
        {
            "n": {
                "size": 1,
                "tau_m": "20 ms",
                "v_rest": "-70 mV",
                "v_reset": "-70 mV",
                "v_threshold": "-50 mV",
                "t_ref": "2.3 ms",
            }
        },
        inputs=[{"kind": "constant", "target": "n", "drive": "25 mV"}],
        duration="300 ms",
        record={"v": {"indices": [0]}},
    )
    ds = simulate_numba(sc)
    steps = np.rint(ds.spike_time.values / dt).astype(int)
    t_free = tau * math.log((mu - vr) / (mu - th))
    k = math.ceil(t_free / dt)
    assert steps[0] == k - 1  # from v_rest = v_reset with no refractoriness before the first spike
    assert np.all(np.diff(steps) == ref + k - 1)
    v = ds.v.values[:, 0]
    s = steps[1]
    assert np.all(v[s + 1 : s + ref + 1] == vr) and v[s + ref + 1] > vr


def test_conductance_trace_matches_ode(lif_scenario):
    """Exponential Euler (g frozen over a step) converges to the ODE solution at first order in dt:
    the error is ~0.1% of the PSP at dt = 0.01 ms and halves when dt halves."""
    tm, ts, gl, w, el = 0.02, 0.005, 10e-9, 20e-9, -0.065

    def rhs(t, y):
        g = w * math.exp(-t / ts)
        return [((el - y[0]) + g / gl * (0.0 - y[0])) / tm]

    errors = []
    for dt in (2e-5, 1e-5):
        sc = lif_scenario(
            {"src": kicker(), "dst": target(g_leak="10 nS")},
            synapses=[
                {
                    "source": "src",
                    "target": "dst",
                    "connect": {"one_to_one": True},
                    "kind": "conductance",
                    "weight": "20 nS",
                    "tau": "5 ms",
                    "reversal": "0 mV",
                }
            ],
            record={"v": {"indices": [1], "every": "0.1 ms"}},
            duration="40 ms",
            dt=f"{dt} s",
        )
        ds = simulate_numba(sc)
        t = ds.time.values[1:] - dt
        sol = solve_ivp(rhs, (0, t[-1]), [el], t_eval=t, rtol=1e-12, atol=1e-15, method="DOP853")
        errors.append(np.max(np.abs(ds.v.values[1:, 0] - sol.y[0])))
        peak = np.max(sol.y[0]) - el
    assert peak > 5e-3 and errors[1] < 2e-3 * peak
    assert 1.8 < errors[0] / errors[1] < 2.2


def test_white_noise_stationary_variance(lif_scenario):
    """Exact OU increment: with the threshold out of reach, var(v) -> sigma^2 / 2 and mean -> v_rest + mu."""
    sc = lif_scenario(
        {"n": {"size": 2000, "tau_m": "10 ms", "v_rest": "-70 mV", "v_reset": "-70 mV", "v_threshold": "1 V"}},
        inputs=[{"kind": "noise", "target": "n", "mu": "4 mV", "sigma": "6 mV"}],
        record={"v": {"indices": "all", "every": "20 ms"}},
        duration="200 ms",
        dt="0.5 ms",
    )
    v = simulate_numba(sc).v.values[5:]  # from 100 ms (10 tau_m) on: stationary
    n = v.size
    assert abs(v.mean() - (-0.066)) < 5 * 0.006 / math.sqrt(2) / math.sqrt(n)
    assert abs(v.var() / (0.006**2 / 2) - 1) < 5 * math.sqrt(2 / n)


@pytest.mark.parametrize("r,n_src,w", [(50.0, 20, 1e-3), (1000.0, 400, 5e-6)])  # table / Generator.poisson
def test_poisson_input_mean_and_variance(r, n_src, w, lif_scenario):
    """Shot noise (Campbell): mean x = r n w tau_s, so v mean = v_rest + r n w tau_s; the variance of v
    (shot noise filtered by two exponentials) is r n w^2 tau_s^2 / (2 (tau_s + tau_m))."""
    ts = 0.004
    sc = lif_scenario(
        {"n": {"size": 2000, "tau_m": "20 ms", "v_rest": "-70 mV", "v_reset": "-70 mV", "v_threshold": "1 V"}},
        inputs=[
            {"kind": "poisson", "target": "n", "rate": f"{r} Hz", "n_sources": n_src, "weight": f"{w} V", "tau": "4 ms"}
        ],
        record={"v": {"indices": "all", "every": "25 ms"}},
        duration="300 ms",
        dt="0.1 ms",
    )
    v = simulate_numba(sc).v.values[6:]
    expect = -0.070 + r * n_src * w * ts
    var = r * n_src * w**2 * ts**2 / (2 * (ts + 0.02))
    assert abs(v.mean() - expect) < 5 * math.sqrt(var / v.size)
    assert abs(v.var() / var - 1) < 0.1


def test_same_seed_identical_different_seed_differs(lif_scenario):
    pops = {
        "e": {
            "size": 200,
            "tau_m": "20 ms",
            "v_rest": "-70 mV",
            "v_reset": "-70 mV",
            "v_threshold": "-50 mV",
            "t_ref": "2 ms",
            "v_init": {"uniform": ["-70 mV", "-50 mV"]},
        }
    }
    syn = [{"source": "e", "target": "e", "connect": {"p": 0.1}, "weight": "0.5 mV", "tau": "5 ms", "delay": "1 ms"}]
    inp = [
        {"kind": "noise", "target": "e", "mu": "18 mV", "sigma": "4 mV"},
        {"kind": "poisson", "target": "e", "rate": "100 Hz", "n_sources": 5, "weight": "0.5 mV", "tau": "2 ms"},
    ]
    rec = {"v": {"indices": [0, 5]}}
    a = simulate_numba(lif_scenario(pops, synapses=syn, inputs=inp, seed=7, record=rec, duration="50 ms"))
    b = simulate_numba(lif_scenario(pops, synapses=syn, inputs=inp, seed=7, record=rec, duration="50 ms"))
    c = simulate_numba(lif_scenario(pops, synapses=syn, inputs=inp, seed=8, record=rec, duration="50 ms"))
    assert a.sizes["spike"] > 100
    for name in ("spike_time", "spike_index", "v"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    differs = a.sizes["spike"] != c.sizes["spike"] or not np.array_equal(a.spike_index.values, c.spike_index.values)
    assert differs


def test_a_build_runs_any_number_of_times_identically(lif_scenario):
    """A run starts its own state from the build (initial potentials, empty channels and delay rings, a fresh
    dynamics stream) and never writes the build: running one build twice gives the same spikes and traces
    as building it afresh."""
    pops = {
        "e": {
            "size": 100,
            "tau_m": "20 ms",
            "v_rest": "-70 mV",
            "v_reset": "-70 mV",
            "v_threshold": "-50 mV",
            "t_ref": "2 ms",
            "v_init": {"uniform": ["-70 mV", "-50 mV"]},
        }
    }
    syn = [{"source": "e", "target": "e", "connect": {"p": 0.1}, "weight": "0.5 mV", "tau": "5 ms", "delay": "1 ms"}]
    inp = [
        {"kind": "noise", "target": "e", "mu": "18 mV", "sigma": "4 mV"},
        {"kind": "poisson", "target": "e", "rate": "100 Hz", "n_sources": 5, "weight": "0.5 mV", "tau": "2 ms"},
    ]
    sc = lif_scenario(pops, synapses=syn, inputs=inp, seed=7, record={"v": {"indices": [0, 5]}}, duration="50 ms")
    built = LIFNetwork().prepare(sc)
    v0 = built.network.v0.copy()
    first, second, fresh = engine.simulate(built), engine.simulate(built), simulate_numba(sc)
    assert first.sizes["spike"] > 50
    for name in ("spike_time", "spike_index", "v"):
        np.testing.assert_array_equal(first[name].values, second[name].values)
        np.testing.assert_array_equal(first[name].values, fresh[name].values)
    np.testing.assert_array_equal(built.network.v0, v0)


def test_spike_buffer_drain_gives_same_result(monkeypatch, lif_scenario):
    pops = {
        "e": {
            "size": 300,
            "tau_m": "10 ms",
            "v_rest": "-40 mV",
            "v_reset": "-70 mV",
            "v_threshold": "-50 mV",
            "v_init": {"uniform": ["-70 mV", "-50 mV"]},
        }
    }
    ref = simulate_numba(lif_scenario(pops, duration="100 ms"))
    monkeypatch.setattr(engine, "MIN_SPIKE_BUFFER", 1)  # capacity 4 n: drained every few steps
    small = simulate_numba(lif_scenario(pops, duration="100 ms"))
    assert ref.sizes["spike"] > 2000
    np.testing.assert_array_equal(ref.spike_time.values, small.spike_time.values)
    np.testing.assert_array_equal(ref.spike_index.values, small.spike_index.values)


def test_nan_status_stops_run(lif_scenario):
    sc = lif_scenario(
        {"n": {"size": 3, "tau_m": "20 ms", "v_rest": "-70 mV", "v_reset": "-70 mV", "v_threshold": "-50 mV"}},
        duration="50 ms",
    )
    built = build.build(sc)
    built.network.v0[1] = np.nan
    state, rec = engine.new_state(built), engine.new_recording(built)
    status, step, n_spk, bad = kernels.advance(
        0, 10, state, built.neurons, built.synapses, built.inputs, rec, engine.new_parts(built, 1)
    )
    assert (status, step, n_spk, bad) == (Status.NAN, 0, 0, 1)


def test_simulation_error_for_nan(lif_scenario):
    sc = lif_scenario(
        {"n": {"size": 3, "tau_m": "20 ms", "v_rest": "-70 mV", "v_reset": "-70 mV", "v_threshold": "-50 mV"}},
        duration="50 ms",
    )
    built = LIFNetwork().prepare(sc)
    built.network.v0[2] = np.nan  # a run starts from the build's initial potentials
    with pytest.raises(SimulationError, match="neuron 2"):
        engine.simulate(built)


def test_probe_sampling_every(lif_scenario):
    sc = lif_scenario(
        {
            "n": {
                "size": 4,
                "tau_m": "20 ms",
                "v_rest": "-60 mV",
                "v_reset": "-70 mV",
                "v_threshold": "-50 mV",
                "v_init": "-70 mV",
            }
        },
        record={"v": {"indices": [3, 0], "every": "1 ms"}},
        duration="10 ms",
    )
    ds = simulate_numba(sc)
    np.testing.assert_allclose(ds.time.values, np.arange(10) * 1e-3)
    assert list(ds.neuron.values) == [3, 0]
    expect = -0.060 - 0.010 * np.exp(-ds.time.values / 0.02)
    np.testing.assert_allclose(ds.v.values[:, 0], expect, atol=1e-15)


def test_poisson_cdf_table_matches_scipy():
    from scipy.stats import poisson

    for lam in (1e-4, 0.3, 2.0, 29.0):
        table = build.poisson_cdf_table(lam)
        ref = poisson.cdf(np.arange(table.size), lam)
        np.testing.assert_allclose(table[:-1], ref[:-1], rtol=0, atol=1e-15)
        assert table[-1] == 1.0 and poisson.sf(table.size - 2, lam) < 1e-16
    assert build.poisson_cdf_table(31.0).size == 0  # large means use Generator.poisson


def test_new_parameters_and_structures_never_recompile(lif_scenario):
    """Every scenario shape (no synapses, delays, conductances, noise, Poisson, probes) runs through the
    same single compiled specialisation of the kernel."""
    lif = {"tau_m": "10 ms", "v_rest": "-60 mV", "v_reset": "-70 mV", "v_threshold": "-50 mV"}
    runs = [
        lif_scenario({"a": {"size": 3, **lif}}, duration="50 ms"),
        lif_scenario(
            {"a": {"size": 20, **lif, "t_ref": "1 ms"}, "b": {"size": 5, **lif}},
            synapses=[
                {
                    "source": "a",
                    "target": ["a", "b"],
                    "connect": {"p": 0.3},
                    "weight": "1 mV",
                    "tau": "3 ms",
                    "delay": "0.5 ms",
                }
            ],
            inputs=[{"kind": "noise", "target": "b", "sigma": "2 mV"}],
            record={"v": {"indices": [0]}},
            duration="50 ms",
        ),
        lif_scenario(
            {"a": {"size": 10, **lif}},
            synapses=[
                {
                    "source": "a",
                    "target": "a",
                    "connect": {"in_degree": 3},
                    "kind": "conductance",
                    "weight": "1 nS",
                    "tau": "5 ms",
                    "reversal": "0 mV",
                }
            ],
            inputs=[
                {"kind": "poisson", "target": "a", "rate": "1 kHz", "n_sources": 50, "weight": "1 mV", "tau": "1 ms"}
            ],
            duration="50 ms",
        ),
    ]
    for sc in runs:
        simulate_numba(sc)
    # plain LIF networks run the plain twin of the time loop: one compilation for all of them
    assert len(kernels.advance_plain.signatures) == 1
    assert len(kernels.advance.signatures) <= 1


def test_current_kernel_against_quadrature_and_limits():
    """K = (1/tau_m) int_0^dt e^{-(dt-s)/tau_m} e^{-s/tau_c} ds for ordinary, equal, nearly equal and
    extreme time constants (dt >> tau_m must not overflow)."""
    from scipy.integrate import quad

    dt = 1e-4
    for tm, tc in [(0.02, 0.005), (0.02, 0.02), (0.02, 0.0200001), (1e-3, 2e-3), (1e-4, 2e-4), (5e-5, 0.02)]:
        k = build.current_kernel(dt, np.array([tm]), tc)[0]
        ref, _ = quad(
            lambda s, tm=tm, tc=tc: math.exp(-(dt - s) / tm) * math.exp(-s / tc) / tm, 0, dt, epsabs=0, epsrel=1e-13
        )
        assert k == pytest.approx(ref, rel=1e-12)
    stiff = build.current_kernel(dt, np.array([1e-9]), 0.005)[0]  # v follows x instantly
    assert stiff == pytest.approx(0.005 / (0.005 - 1e-9) * math.exp(-dt / 0.005), rel=1e-12)
