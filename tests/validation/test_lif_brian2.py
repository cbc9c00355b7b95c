"""Cross-backend validation of ``lif_network``: the Numba engine against Brian2 running the same scenario.

Deterministic single neurons must agree trace for trace (1e-9 V, identical spike steps); the CUBA and COBA
benchmark networks (Brette et al. 2007) must agree in mean rate (5%) and ISI CV (0.1); both backends must
write the same Dataset layout. Brian2 runs with the numpy target here: the Cython target needs minutes of
cold compilation, which CI cannot afford (the benchmark times both targets).
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from neurodyn.progress import QUIET
from neurodyn.scenario import REPO_ROOT, Scenario, from_dict, load_scenario

brian2 = pytest.importorskip("brian2")

from neurodyn.families.lif_network import LIFNetwork  # noqa: E402
from neurodyn.families.lif_network.brian2_backend import TARGET_ENV, brian2_seed  # noqa: E402

# Brian2 2.9 parses equations with pyparsing's deprecated camelCase API
pytestmark = [pytest.mark.brian2, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(autouse=True)
def _numpy_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TARGET_ENV, "numpy")


def _scenario(text: str) -> Scenario:
    return from_dict(yaml.safe_load(text))


def _both(scenario: Scenario):
    """The scenario simulated by the Numba engine and by Brian2 (only ``run.backend`` differs)."""
    family = LIFNetwork()
    ds_numba = family.simulate(family.prepare(scenario.with_values({"run.backend": "numba"})), QUIET)
    ds_brian2 = family.simulate(family.prepare(scenario.with_values({"run.backend": "brian2"})), QUIET)
    return ds_numba, ds_brian2


def _assert_same_trace(ds_numba, ds_brian2, min_spikes: int) -> None:
    """Identical spikes (steps and neurons) and membrane traces within 1e-9 V."""
    assert ds_numba.sizes["spike"] >= min_spikes, ds_numba.sizes
    np.testing.assert_array_equal(ds_numba.spike_index.values, ds_brian2.spike_index.values)
    np.testing.assert_allclose(ds_numba.spike_time.values, ds_brian2.spike_time.values, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ds_numba.time.values.shape, ds_brian2.time.values.shape)
    np.testing.assert_allclose(ds_numba.time.values, ds_brian2.time.values, rtol=0, atol=1e-12)
    assert np.isfinite(ds_brian2.v.values).all()
    err = np.abs(ds_numba.v.values - ds_brian2.v.values).max()
    assert err < 1e-9, f"max |v_numba - v_brian2| = {err:.3g} V"


# ----------------------------------------------------------------------------- deterministic traces


@pytest.mark.parametrize("t_ref", ["0 ms", "0.1 ms", "2 ms", "2.46 ms"])
def test_constant_drive_trace_matches_brian2(t_ref: str) -> None:
    """A periodically firing neuron (v_rest above threshold) with refractoriness, sampled every step.

    t_ref = dt is Brian2's corner case (it clamps no step at all); 2.46 ms exercises the rounding to steps.
    """
    sc = _scenario(f"""
name: drive_trace
family: lif_network
params:
  populations:
    a: {{size: 1, tau_m: 20 ms, v_rest: -45 mV, v_reset: -65 mV, v_threshold: -50 mV, t_ref: {t_ref},
        v_init: -58 mV}}
  inputs:
    - {{kind: constant, target: a, drive: 3 mV}}
run: {{duration: 300 ms, dt: 0.1 ms, seed: 4}}
record: {{v: {{indices: [0]}}}}
""")
    ds_numba, ds_brian2 = _both(sc)
    _assert_same_trace(ds_numba, ds_brian2, min_spikes=10)


def test_current_synapses_from_spike_sources_match_brian2() -> None:
    """Two periodic sources drive a silent target through an excitatory (1.5 ms delay) and an inhibitory
    (delay 0: delivered within the spiking step) current synapse with different time constants."""
    sc = _scenario("""
name: syn_trace
family: lif_network
params:
  populations:
    src_e: {size: 1, tau_m: 10 ms, v_rest: -40 mV, v_reset: -65 mV, v_threshold: -50 mV, t_ref: 2 ms,
            v_init: -65 mV}
    src_i: {size: 1, tau_m: 10 ms, v_rest: -45 mV, v_reset: -65 mV, v_threshold: -50 mV, t_ref: 1 ms,
            v_init: -52 mV}
    tgt: {size: 1, tau_m: 20 ms, v_rest: -65 mV, v_reset: -70 mV, v_threshold: -50 mV, t_ref: 3 ms,
          v_init: -60 mV}
  synapses:
    - {source: src_e, target: tgt, connect: {one_to_one: true}, kind: current, weight: 70 mV, tau: 5 ms,
       delay: 1.5 ms}
    - {source: src_i, target: tgt, connect: {one_to_one: true}, kind: current, weight: -15 mV, tau: 8 ms}
run: {duration: 300 ms, dt: 0.1 ms, seed: 5}
record: {v: {indices: [0, 1, 2]}}
""")
    ds_numba, ds_brian2 = _both(sc)
    _assert_same_trace(ds_numba, ds_brian2, min_spikes=30)
    # the target must actually fire, so its reset and refractory clamp are compared too
    assert (ds_brian2.spike_index.values == 2).sum() >= 5


def test_conductance_synapse_trace_matches_brian2() -> None:
    """A source drives a target through an excitatory conductance synapse and, from a second source, an
    inhibitory current synapse (exponential Euler in both, current channel frozen over the step)."""
    sc = _scenario("""
name: cond_trace
family: lif_network
params:
  populations:
    src: {size: 1, tau_m: 10 ms, v_rest: -40 mV, v_reset: -65 mV, v_threshold: -50 mV, t_ref: 2 ms,
          v_init: -60 mV}
    src_i: {size: 1, tau_m: 10 ms, v_rest: -45 mV, v_reset: -65 mV, v_threshold: -50 mV, t_ref: 1 ms,
            v_init: -52 mV}
    tgt: {size: 1, tau_m: 20 ms, v_rest: -60 mV, v_reset: -60 mV, v_threshold: -50 mV, t_ref: 5 ms,
          g_leak: 10 nS, v_init: -60 mV}
  synapses:
    - {source: src, target: tgt, connect: {one_to_one: true}, kind: conductance, weight: 12 nS, tau: 5 ms,
       reversal: 0 mV, delay: 0.8 ms}
    - {source: src_i, target: tgt, connect: {one_to_one: true}, kind: current, weight: -3 mV, tau: 8 ms}
run: {duration: 300 ms, dt: 0.1 ms, seed: 6}
record: {v: {every: 0.5 ms, indices: [0, 1, 2]}}
""")
    ds_numba, ds_brian2 = _both(sc)
    assert ds_brian2.attrs["brian2_method"]["tgt"] == "exponential_euler"
    _assert_same_trace(ds_numba, ds_brian2, min_spikes=30)
    assert (ds_brian2.spike_index.values == 2).sum() >= 3


def test_equal_tau_falls_back_to_exponential_euler() -> None:
    """tau_syn == tau_m makes Brian2's exact solution 0/0; the backend falls back to exponential Euler,
    which freezes x over each step: O(dt/tau) from the engine's exact limit, never NaN."""
    sc = _scenario("""
name: equal_tau
family: lif_network
params:
  populations:
    src: {size: 1, tau_m: 10 ms, v_rest: -40 mV, v_reset: -65 mV, v_threshold: -50 mV, t_ref: 2 ms,
          v_init: -65 mV}
    tgt: {size: 1, tau_m: 20 ms, v_rest: -65 mV, v_reset: -70 mV, v_threshold: -50 mV, v_init: -65 mV}
  synapses:
    - {source: src, target: tgt, connect: {one_to_one: true}, kind: current, weight: 3 mV, tau: 20 ms}
run: {duration: 200 ms, dt: 0.1 ms, seed: 8}
record: {v: {indices: [1]}}
""")
    ds_numba, ds_brian2 = _both(sc)
    assert ds_brian2.attrs["brian2_method"]["tgt"] == "exponential_euler"
    v_n, v_b = ds_numba.v.values[:, 0], ds_brian2.v.values[:, 0]
    assert np.isfinite(v_b).all()
    assert v_n.max() - v_n.min() > 5e-3  # the synaptic input moves v by millivolts
    # x frozen over a step of dt = tau/200: relative error of the synaptic drive ~ dt/(2 tau) = 0.25 %
    assert np.abs(v_n - v_b).max() < 0.005 * (v_n.max() - v_n.min())


# ----------------------------------------------------------------------------- network statistics


def _assert_same_early_spikes(ds_numba, ds_brian2, until: float = 0.05) -> None:
    """CUBA and COBA are deterministic given the network and v0: before rounding differences (1e-16 V)
    could grow chaotically, both backends must emit the very same spikes (so far they agree for the whole
    second; the statistics below are what the issue asks for)."""
    early_n = ds_numba.spike_time.values < until
    early_b = ds_brian2.spike_time.values < until
    assert early_n.sum() > 100
    np.testing.assert_array_equal(ds_numba.spike_index.values[early_n], ds_brian2.spike_index.values[early_b])
    np.testing.assert_allclose(
        ds_numba.spike_time.values[early_n], ds_brian2.spike_time.values[early_b], rtol=0, atol=1e-12
    )
    sample = ds_numba.time.values < until
    err = np.abs(ds_numba.v.values[sample] - ds_brian2.v.values[sample]).max()
    assert err < 1e-9, err


def _assert_same_statistics(ds_numba, ds_brian2) -> None:
    for pop in ds_numba.population.values:
        r_n = float(ds_numba.rate.sel(population=pop))
        r_b = float(ds_brian2.rate.sel(population=pop))
        cv_n = float(ds_numba.cv_isi.sel(population=pop))
        cv_b = float(ds_brian2.cv_isi.sel(population=pop))
        assert r_n > 1.0, (pop, r_n)  # a silent network would make the comparison empty
        assert abs(r_n - r_b) <= 0.05 * r_b, f"{pop}: rate numba {r_n:.3f} Hz, brian2 {r_b:.3f} Hz"
        assert abs(cv_n - cv_b) <= 0.1, f"{pop}: ISI CV numba {cv_n:.3f}, brian2 {cv_b:.3f}"


@pytest.fixture(scope="module")
def cuba_pair():
    """CUBA (scenarios/cuba.yaml, 4000 neurons, 1 s) in both backends, once for the module."""
    sc = load_scenario(REPO_ROOT / "scenarios" / "cuba.yaml")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(TARGET_ENV, "numpy")
        return sc, *_both(sc)


@pytest.mark.slow
def test_cuba_rates_and_cv_match_brian2(cuba_pair) -> None:
    _, ds_numba, ds_brian2 = cuba_pair
    _assert_same_statistics(ds_numba, ds_brian2)
    _assert_same_early_spikes(ds_numba, ds_brian2)


@pytest.mark.slow
def test_coba_rates_and_cv_match_brian2() -> None:
    sc = load_scenario(REPO_ROOT / "scenarios" / "coba.yaml")
    ds_numba, ds_brian2 = _both(sc)
    assert set(ds_brian2.attrs["brian2_method"].values()) == {"exponential_euler"}
    _assert_same_statistics(ds_numba, ds_brian2)
    _assert_same_early_spikes(ds_numba, ds_brian2)


@pytest.mark.slow
def test_poisson_and_noise_inputs_match_brian2() -> None:
    """Poisson spike input (Brian2 PoissonInput) and white noise (Brian2 xi): rates and CVs agree."""
    sc = _scenario((REPO_ROOT / "tests" / "data" / "lif_poisson_and_noise.yaml").read_text())
    _assert_same_statistics(*_both(sc))


@pytest.mark.slow
def test_sparse_network_with_delays_and_poisson_matches_brian2() -> None:
    """A reduced Brunel (2000) network (5000 neurons, fixed in-degree 400/100, 1.5 ms delays, 400 Poisson
    inputs per neuron, asynchronous irregular state): rates within 5%, ISI CV within 0.1."""
    sc = _scenario("""
name: brunel_small
family: lif_network
params:
  populations:
    exc: {size: 4000, tau_m: 20 ms, v_rest: 0 mV, v_reset: 10 mV, v_threshold: 20 mV, t_ref: 2 ms,
          v_init: {uniform: [0 mV, 20 mV]}}
    inh: {size: 1000, tau_m: 20 ms, v_rest: 0 mV, v_reset: 10 mV, v_threshold: 20 mV, t_ref: 2 ms,
          v_init: {uniform: [0 mV, 20 mV]}}
  synapses:
    - {source: exc, target: [exc, inh], connect: {in_degree: 400}, kind: current, weight: 10 mV,
       tau: 0.5 ms, delay: 1.5 ms}
    - {source: inh, target: [exc, inh], connect: {in_degree: 100}, kind: current, weight: -60 mV,
       tau: 0.5 ms, delay: 1.5 ms}
  inputs:
    - {kind: poisson, target: [exc, inh], rate: 40 Hz, n_sources: 400, weight: 10 mV, tau: 0.5 ms}
run: {duration: 0.4 s, dt: 0.1 ms, seed: 1}
record: {spikes: true, analysis_start: 0.1 s}
""")
    _assert_same_statistics(*_both(sc))


# ----------------------------------------------------------------------------- layout and plumbing


@pytest.mark.slow
def test_switching_backend_keeps_dataset_layout(cuba_pair) -> None:
    """The same scenario file with only run.backend switched: same variables, dims, coords and units."""
    sc, ds_numba, ds_brian2 = cuba_pair
    assert sc.run.backend == "numba"
    assert set(ds_numba.variables) == set(ds_brian2.variables)
    for name in ds_numba.variables:
        a, b = ds_numba[name], ds_brian2[name]
        assert a.dims == b.dims, name
        assert a.dtype.kind == b.dtype.kind, name
        assert a.attrs.get("units") == b.attrs.get("units"), name
        assert a.attrs.get("long_name") == b.attrs.get("long_name"), name
    for dim in ("population", "rate_time", "time", "neuron"):
        assert ds_numba.sizes[dim] == ds_brian2.sizes[dim], dim
    np.testing.assert_array_equal(ds_numba.neuron.values, ds_brian2.neuron.values)
    np.testing.assert_allclose(ds_numba.time.values, ds_brian2.time.values, atol=1e-12)
    assert ds_brian2.attrs["brian2_target"] == "numpy"


def test_brian2_runs_are_reproducible_and_seeded() -> None:
    """Same seed -> identical Brian2 spikes; another seed -> different ones (Poisson input)."""
    text = """
name: seeded
family: lif_network
params:
  populations:
    p: {size: 50, tau_m: 20 ms, v_rest: -65 mV, v_reset: -65 mV, v_threshold: -50 mV}
  inputs:
    - {kind: poisson, target: p, rate: 20 Hz, n_sources: 200, weight: 1 mV, tau: 5 ms}
run: {duration: 200 ms, dt: 0.1 ms, seed: SEED, backend: brian2}
"""
    family = LIFNetwork()
    runs = [family.simulate(family.prepare(_scenario(text.replace("SEED", str(s)))), QUIET) for s in (1, 1, 2)]
    assert runs[0].sizes["spike"] > 50
    np.testing.assert_array_equal(runs[0].spike_time.values, runs[1].spike_time.values)
    np.testing.assert_array_equal(runs[0].spike_index.values, runs[1].spike_index.values)
    assert runs[0].sizes["spike"] != runs[2].sizes["spike"] or not np.array_equal(
        runs[0].spike_time.values, runs[2].spike_time.values
    )
    assert brian2_seed(1) == brian2_seed(1) != brian2_seed(2)
    assert runs[0].attrs["brian2_seed"] == brian2_seed(1) and runs[2].attrs["brian2_seed"] == brian2_seed(2)


def test_unknown_brian2_target_is_a_user_error(tmp_path, cli, user_error) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("""
name: t
family: lif_network
params: {populations: {a: {size: 1, tau_m: 20 ms, v_rest: -45 mV, v_reset: -65 mV, v_threshold: -50 mV}}}
run: {duration: 10 ms, dt: 0.1 ms, backend: brian2}
""")
    proc = cli("run", path, "--output", tmp_path / "o.h5", env={TARGET_ENV: "fortran"})
    user_error(proc, TARGET_ENV, "cython")
    assert not (tmp_path / "o.h5").exists()


NOISY_PAIR = """
name: t
family: lif_network
params:
  populations: {a: {size: 3, tau_m: 20 ms, v_rest: -60 mV, v_reset: -65 mV, v_threshold: -50 mV, t_ref: 2 ms}}
  inputs: [{kind: noise, target: a, mu: 12 mV, sigma: 4 mV}]
run: {duration: 300 ms, dt: 0.1 ms, seed: 3, backend: brian2}
"""


def test_backend_names_the_brian2_target_over_the_environment(monkeypatch) -> None:
    # The environment asks for cython; the scenario's brian2:numpy wins, and gives exactly what plain
    # brian2 gives under NEURODYN_BRIAN2_TARGET=numpy (the same target, the same seed).
    scenario = _scenario(NOISY_PAIR)
    plain = LIFNetwork().simulate(LIFNetwork().prepare(scenario), QUIET)
    monkeypatch.setenv(TARGET_ENV, "cython")
    named = LIFNetwork().simulate(LIFNetwork().prepare(scenario.with_values({"run.backend": "brian2:numpy"})), QUIET)
    assert plain.attrs["brian2_target"] == named.attrs["brian2_target"] == "numpy"
    assert plain.sizes["spike"] > 20
    np.testing.assert_array_equal(plain.spike_index.values, named.spike_index.values)
    np.testing.assert_array_equal(plain.spike_time.values, named.spike_time.values)


def test_unknown_or_unavailable_brian2_target_is_a_user_error(tmp_path, monkeypatch, cli, user_error) -> None:
    from neurodyn.errors import ScenarioError
    from neurodyn.families.lif_network import brian2_backend

    path = tmp_path / "s.yaml"
    path.write_text(NOISY_PAIR.replace("backend: brian2", "backend: brian2:fortran"))
    proc = cli("validate", path)
    user_error(proc, "run.backend", "brian2:fortran", "brian2:numpy")
    # A machine without a working C compiler: asking for cython is refused before anything runs.
    monkeypatch.setattr(brian2_backend, "_cython_works", lambda: False)
    with pytest.raises(ScenarioError, match="run.backend = 'brian2:cython': Brian2's Cython target cannot"):
        brian2_backend.codegen_target("brian2:cython")
    assert brian2_backend.codegen_target("brian2") == "numpy"  # this module's fixture sets the variable


def test_cli_run_with_brian2_backend_writes_a_plain_result_file(tmp_path, cli) -> None:
    """``neurodyn run`` of a backend-brian2 file: exit 0, a file plain xarray opens, provenance attrs."""
    import xarray as xr

    import neurodyn

    path = tmp_path / "pair.yaml"
    path.write_text("""
name: pair
family: lif_network
params:
  populations:
    a: {size: 2, tau_m: 20 ms, v_rest: -45 mV, v_reset: -65 mV, v_threshold: -50 mV, t_ref: 2 ms}
    b: {size: 3, tau_m: 20 ms, v_rest: -45 mV, v_reset: -65 mV, v_threshold: -50 mV, t_ref: 2 ms}
run: {duration: 100.5 ms, dt: 0.1 ms, backend: brian2}
record: {v: {every: 1 ms, indices: [4, 0]}}
""")
    out = tmp_path / "pair.h5"
    proc = cli("run", path, "--output", out, "--quiet", env={TARGET_ENV: "numpy"})
    assert proc.returncode == 0, proc.stderr
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.attrs["backend"] == "brian2"
        assert ds.attrs["brian2_target"] == "numpy"
        assert ds["v"].dims == ("time", "neuron") and ds["v"].attrs["units"] == "V"
        assert ds.sizes["time"] == 101  # samples at 0, 1, ..., 100 ms: ceil(n_steps / every)
        assert np.isfinite(ds["v"].values).all()
        assert list(ds.neuron.values) == [4, 0]
        # identical populations share one Brian2 group; every neuron fires at the same exact period
        counts = np.bincount(ds.spike_index.values, minlength=5)
        assert (counts == counts[0]).all() and counts[0] >= 3
    ds = neurodyn.open_run(out)
    assert ds.attrs["brian2_method"] == {"a": "exact", "b": "exact"}


def test_recorded_synaptic_channels_match_brian2() -> None:
    """record.state samples the same v, current channel x and conductance g in both backends.

    The channels decay exactly in both (multiplied by exp(-dt/tau) each step, the jumps delivered at the
    same steps), so they are identical; v agrees to 1e-9 V as in the trace tests above.
    """
    sc = _scenario("""
name: channels
family: lif_network
params:
  populations:
    pre: {size: 2, tau_m: 20 ms, v_rest: -40 mV, v_reset: -70 mV, v_threshold: -50 mV, t_ref: 2 ms}
    post: {size: 2, tau_m: 20 ms, v_rest: -60 mV, v_reset: -70 mV, v_threshold: -50 mV, t_ref: 2 ms}
  synapses:
    - {source: pre, target: post, connect: {one_to_one: true}, kind: current, weight: 0.5 mV, tau: 5 ms}
    - {source: pre, target: post, connect: {one_to_one: true}, kind: conductance, weight: 1 nS, tau: 3 ms,
       reversal: 0 mV, delay: 1 ms}
run: {duration: 100 ms, dt: 0.1 ms, seed: 1}
record: {state: {v: {pre: [0], post: all}, x_pre: {post: all}, g_pre: {post: [1]}}, every: 0.2 ms}
""")
    ds_numba, ds_brian2 = _both(sc)
    assert ds_numba.sizes["spike"] >= 8
    np.testing.assert_array_equal(ds_numba.spike_index.values, ds_brian2.spike_index.values)
    np.testing.assert_array_equal(ds_numba.spike_population.values, ds_brian2.spike_population.values)
    for coord in ("time", "neuron", "neuron_population", "neuron_index"):
        np.testing.assert_array_equal(ds_numba[coord].values, ds_brian2[coord].values)
    for name in ("x_pre", "g_pre"):
        a, b = ds_numba[name].values, ds_brian2[name].values
        assert np.array_equal(np.isnan(a), np.isnan(b)) and np.nanmax(a) > 0, name
        np.testing.assert_array_equal(b, a, err_msg=name)
        assert ds_numba[name].attrs == ds_brian2[name].attrs
    assert np.nanmax(np.abs(ds_numba.v.values - ds_brian2.v.values)) < 1e-9
