"""The lif_network kernel gives bitwise the same run for any number of threads and parts.

Neurons are split into contiguous parts, one per thread; each part updates its own neurons and writes
every input its neurons receive, in the order of the spiking neurons' indices; every random number is a
hash of the run's key and a counter (step, stream, neuron, draw). So the threaded kernel with 1, 2 or 3
threads, and the serial kernel with any number of parts, must agree bit for bit.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from neurodyn.families.lif_network import LIFNetwork, engine, kernels
from neurodyn.progress import QUIET
from neurodyn.scenario import REPO_ROOT as REPO
from neurodyn.scenario import from_dict

#: every path of the kernel: delays (ring buffers), in-degree and p rows (split points), a graph (rows in
#: edge order: filtered), table and PTRS Poisson counts, noise on current and conductance neurons, the
#: generic conductance update (a current and a conductance channel with noise), AdEx neurons with alpha
#: conductance input, biexponential current synapses with noise, an STDP projection (weights recorded) and
#: probes of v, w and x
MIXED = """\
name: mixed
family: lif_network
params:
  populations:
    exc: {size: 400, tau_m: 20 ms, v_rest: 0 mV, v_reset: 10 mV, v_threshold: 20 mV, t_ref: 2 ms,
          v_init: {uniform: [0 mV, 20 mV]}}
    inh: {size: 100, tau_m: 20 ms, v_rest: 0 mV, v_reset: 10 mV, v_threshold: 20 mV, t_ref: 2 ms,
          v_init: {uniform: [0 mV, 20 mV]}}
    ring: {size: 60, tau_m: 10 ms, v_rest: -60 mV, v_reset: -65 mV, v_threshold: -50 mV, t_ref: 1 ms,
           v_init: {uniform: [-65 mV, -50 mV]}}
    cond: {size: 70, tau_m: 20 ms, g_leak: 10 nS, v_rest: -60 mV, v_reset: -60 mV, v_threshold: -50 mV,
           t_ref: 5 ms, v_init: {normal: [-55 mV, 5 mV]}}
    adex: {size: 50, tau_m: 20 ms, g_leak: 10 nS, v_rest: -70 mV, v_reset: -58 mV, v_threshold: 0 mV,
           t_ref: 1 ms, v_init: {uniform: [-70 mV, -55 mV]},
           adaptation: {a: 2 nS, b: 60 pA, tau_w: 100 ms, delta_T: 2 mV, v_T: -50 mV}}
    shaped: {size: 40, tau_m: 10 ms, v_rest: 0 mV, v_reset: 10 mV, v_threshold: 20 mV, t_ref: 2 ms,
             v_init: {uniform: [0 mV, 20 mV]}}
  synapses:
    - {source: exc, target: [exc, inh], connect: {in_degree: 40}, kind: current, weight: 2 mV,
       tau: 0.5 ms, delay: 1.5 ms}
    - {source: inh, target: [exc, inh], connect: {in_degree: 10}, kind: current, weight: -8 mV,
       tau: 0.5 ms, delay: 0.8 ms}
    - {source: ring, target: ring, connect: {graph: watts_strogatz_graph, args: {k: 6, p: 0.3}},
       kind: current, weight: 2 mV, tau: 3 ms}
    - {source: exc, target: cond, connect: {p: 0.1}, kind: conductance, weight: 3 nS, tau: 5 ms,
       reversal: 0 mV, plasticity: {rule: additive, tau_plus: 20 ms, tau_minus: 20 ms, A_plus: 0.1 nS,
       A_minus: 0.12 nS, w_min: 0 nS, w_max: 6 nS, delay_pre: 0.7 ms, delay_post: 1.2 ms}}
    - {source: inh, target: [cond, ring], connect: {p: 0.2}, kind: current, weight: -1 mV, tau: 10 ms}
    - {source: inh, target: adex, connect: {p: 0.2}, kind: conductance, weight: 2 nS, tau: 5 ms,
       reversal: 0 mV, shape: alpha, delay: 1 ms}
    - {source: adex, target: [exc, shaped], connect: {p: 0.3}, kind: current, weight: 1.5 mV, tau: 4 ms,
       shape: biexponential, tau_rise: 1 ms}
  inputs:
    - {kind: poisson, target: [exc, inh], rate: 40 Hz, n_sources: 500, weight: 2.2 mV, tau: 0.5 ms}
    - {kind: poisson, target: ring, rate: 1 kHz, n_sources: 400, weight: 0.02 mV, tau: 3 ms}
    - {kind: noise, target: [ring, cond], sigma: 4 mV, mu: 6 mV}
    - {kind: noise, target: shaped, sigma: 3 mV, mu: 15 mV}
    - {kind: constant, target: adex, current: 300 pA}
run: {duration: 150 ms, dt: 0.1 ms, seed: 3}
record:
  spikes: true
  weights: {every: 10 ms}
  state: {v: {exc: [0], inh: [50], ring: [0, 1], cond: [0, 69]}, g_exc: {cond: [0, 5]}, x_ring_input: {ring: [3]},
          w: {adex: [0, 7]}}
"""


def _scenarios() -> dict[str, dict]:
    cuba = yaml.safe_load((REPO / "scenarios" / "cuba.yaml").read_text())
    coba = yaml.safe_load((REPO / "scenarios" / "coba.yaml").read_text())
    cuba["run"]["duration"] = coba["run"]["duration"] = "150 ms"  # coba analyses from 100 ms
    return {"cuba": cuba, "coba": coba, "mixed": yaml.safe_load(MIXED)}


def _fingerprint(ds) -> dict[str, str]:
    """A hash of the bytes of every variable of a run's Dataset (exact identity, compact to compare)."""
    import hashlib

    out = {}
    for name in ds.variables:
        values = ds[name].values
        data = values.astype(str).tobytes() if values.dtype == object else np.ascontiguousarray(values).tobytes()
        out[name] = hashlib.sha256(data).hexdigest()
    out["n_spikes"] = str(ds.sizes["spike"])
    return out


def test_mixed_scenario_is_valid_and_active() -> None:
    """The scenario of the thread tests fires in every population and uses every kernel path."""
    family = LIFNetwork()
    sc = from_dict(yaml.safe_load(MIXED))
    built = family.prepare(sc)
    assert len(built.network.projections) == 11  # one per (source, target) pair
    # tabulated counts for [exc, inh] (one drive per population), PTRS for ring (mean 40 per step)
    cdf_sizes = np.diff(built.inputs.po_cdf_off)
    assert (cdf_sizes > 0).tolist() == [True, True, False]
    assert built.inputs.po_lam[2] == pytest.approx(40.0)
    ds = family.simulate(built, QUIET)
    counts = np.bincount(ds.spike_population.values, minlength=6)
    assert (counts > 20).all(), counts
    assert {"v", "w", "g_exc", "x_ring_input", "final_weight", "weight_hist"} <= set(ds.data_vars)


@pytest.mark.parametrize("name", ["cuba", "coba", "mixed"])
@pytest.mark.parametrize("n_parts,filtered", [(2, False), (3, False), (7, False), (3, True)])
def test_serial_kernel_any_number_of_parts_is_bitwise_one_part(name: str, n_parts: int, filtered: bool) -> None:
    """The serial kernel run over 2, 3 or 7 parts gives the very bytes of one part (spikes, v, x, rings);
    also when every row is scanned whole and filtered by target (the path of rows not in ascending order)."""
    built = LIFNetwork().prepare(from_dict(_scenarios()[name]))
    n_steps = built.scenario.run.n_steps
    out = []
    for k in (1, n_parts):
        state, rec = engine.new_state(built), engine.new_recording(built)
        parts = engine.new_parts(built, k)
        if k > 1:
            assert parts.sorted_rows.all()
        if filtered:
            parts = parts._replace(sorted_rows=np.zeros_like(parts.sorted_rows))
        state = engine.plastic_state(built, state, k)  # per-part copies of the presynaptic traces
        status, m, n_spk, _ = kernels.advance(
            0, n_steps, state, built.neurons, built.synapses, built.inputs, rec, parts
        )
        assert (status, m) == (0, n_steps)
        out.append((rec.spk_step[:n_spk].tobytes(), rec.spk_idx[:n_spk].tobytes(), rec.probe_buf.tobytes()))
        out.append((state.v.tobytes(), state.x.tobytes(), state.ring.tobytes()))
    assert n_spk > 100
    assert out[0] == out[2] and out[1] == out[3]


def test_parts_balance_neurons_and_incoming_synapses() -> None:
    """Boundaries split ``neurons + incoming synapses`` evenly; every row's split points are exact."""
    built = LIFNetwork().prepare(from_dict(_scenarios()["mixed"]))
    parts = engine.new_parts(built, 3)
    net, syn = built.network, built.synapses
    work = np.ones(net.n)
    for p in net.projections:
        work[p.post_start : p.post_start + p.n_post] += np.bincount(p.indices, minlength=p.n_post)
    shares = [work[a:b].sum() for a, b in zip(parts.bounds[:-1], parts.bounds[1:])]
    assert parts.bounds[0] == 0 and parts.bounds[-1] == net.n
    assert max(shares) - min(shares) <= 2 * work.max()
    for k, p in enumerate(net.projections):
        if not parts.sorted_rows[k]:
            continue
        ip0, ix0 = int(syn.pr_indptr_off[k]), int(syn.pr_indices_off[k])
        for r in range(p.n_pre):
            row = syn.indices[ix0 + syn.indptr[ip0 + r] : ix0 + syn.indptr[ip0 + r + 1]]
            for q in range(3):
                a, b = parts.row_split[ip0 + r, q], parts.row_split[ip0 + r, q + 1]
                lo, hi = parts.bounds[q] - p.post_start, parts.bounds[q + 1] - p.post_start
                targets = syn.indices[ix0 + a : ix0 + b]
                assert ((targets >= lo) & (targets < hi)).all()
                assert b - a == ((row >= lo) & (row < hi)).sum()


_CHILD = """
import json, os, sys
import numba
from neurodyn.families.lif_network import LIFNetwork
from neurodyn.progress import QUIET
from neurodyn.scenario import from_dict
sys.path.insert(0, {tests!r})
from unit.test_lif_threads import _fingerprint, _scenarios
out = {{}}
family = LIFNetwork()
for name, d in _scenarios().items():
    for threads in (1, 2, 3):
        d["run"]["threads"] = threads
        out[f"{{name}} {{threads}}"] = _fingerprint(family.simulate(family.prepare(from_dict(d)), QUIET))
# barriers that sleep at once (every wait through the futex) and that never sleep
for name, d in _scenarios().items():
    for threads, spin in ((3, "0"), (2, "-1")):
        os.environ["NEURODYN_SPIN_US"] = spin
        d["run"]["threads"] = threads
        out[f"{{name}} {{threads}} spin {{spin}}"] = _fingerprint(family.simulate(family.prepare(from_dict(d)), QUIET))
del os.environ["NEURODYN_SPIN_US"]
out["max_threads"] = numba.config.NUMBA_NUM_THREADS
print(json.dumps(out))
"""


def test_threads_1_2_3_are_bitwise_identical() -> None:
    """cuba, coba and the Poisson/noise network through the threaded kernels with 1, 2 and 3 threads (a fresh
    interpreter started with 3 Numba threads; the thread team, with barriers that adapt, always sleep and
    never sleep): the very same bytes of every variable of the result. The fallback kernel with one
    parallel region per phase (for TBB) is the serial kernel's code compiled with ``parallel=True``; the
    serial kernel is checked over 2, 3 and 7 parts above, and its choice below."""
    env = {**os.environ, "NUMBA_NUM_THREADS": "3", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD.format(tests=str(REPO / "tests"))],
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out.pop("max_threads") == 3
    for name in ("cuba", "coba", "mixed"):
        one = out[f"{name} 1"]
        assert int(one["n_spikes"]) > 100
        for threads in ("2", "3", "3 spin 0", "2 spin -1"):
            assert out[f"{name} {threads}"] == one, (name, threads)


@pytest.mark.parametrize("lam", [10.0, 31.0, 400.0])
def test_counter_based_poisson_and_normal_draws(lam: float) -> None:
    """Ziggurat normals and PTRS Poisson counts from the counter-based stream: mean and variance within
    5 standard errors over 200,000 draws, and a normal CDF at +-1, +-2, 3 sigma within 5 standard errors."""
    n = 200_000
    normals, counts = _draws(n, lam)
    assert abs(normals.mean()) < 5 / math.sqrt(n)
    assert abs(normals.var() - 1) < 5 * math.sqrt(2 / n)
    for z in (-2.0, -1.0, 1.0, 2.0, 3.0):
        p = 0.5 * math.erfc(-z / math.sqrt(2))
        assert abs((normals < z).mean() - p) < 5 * math.sqrt(p * (1 - p) / n), z
    assert abs(counts.mean() - lam) < 5 * math.sqrt(lam / n)
    assert abs(counts.var() / lam - 1) < 5 * math.sqrt(2 / n)


def _draws(n: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    import numba

    @numba.njit
    def draw(key, n, lam):
        z = np.empty(n)
        c = np.empty(n, dtype=np.int64)
        for i in range(n):
            z[i] = kernels._normal(key, kernels._counter(i, 0, 2, 1, 0))
            c[i] = kernels._poisson_ptrs(key, kernels._counter(i, 1, 2, 1, 0), lam)
        return z, c

    return draw(np.uint64(12345), n, lam)


def test_the_thread_team_runs_only_where_every_part_gets_its_own_thread():
    # the team's barriers wait for all parts: a pool that may run two parts on one thread must get the
    # per-phase kernel instead, or the run would wait forever
    from neurodyn.families.lif_network.engine import team_safe

    assert team_safe("omp", 2, {}) and team_safe("workqueue", 3, {})
    assert not team_safe("tbb", 2, {})
    assert not team_safe("omp", 2, {"OMP_DYNAMIC": "TRUE"})
    assert not team_safe("omp", 3, {"OMP_THREAD_LIMIT": "2"})
    assert team_safe("omp", 2, {"OMP_THREAD_LIMIT": "2", "OMP_DYNAMIC": "false"})


def test_barrier_spin_window_follows_the_environment() -> None:
    from neurodyn.errors import UserError
    from neurodyn.families.lif_network.engine import SPIN_US, spin_ns

    assert spin_ns({}) == int(SPIN_US * 1000)
    assert spin_ns({"OMP_WAIT_POLICY": "PASSIVE"}) == int(SPIN_US * 1000)
    assert spin_ns({"OMP_WAIT_POLICY": "active"}) == -1
    assert spin_ns({"NEURODYN_SPIN_US": "50", "OMP_WAIT_POLICY": "ACTIVE"}) == 50_000
    assert spin_ns({"NEURODYN_SPIN_US": "-1"}) == -1
    with pytest.raises(UserError, match="NEURODYN_SPIN_US='fast'"):
        spin_ns({"NEURODYN_SPIN_US": "fast"})
