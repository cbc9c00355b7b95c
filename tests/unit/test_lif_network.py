"""Connectivity and construction of lif_network (build.py): exact properties of every connection rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurodyn.errors import ResourceError, ScenarioError
from neurodyn.families.lif_network import build as N
from neurodyn.families.lif_network.params import Connect


def rows(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(indptr.size - 1), np.diff(indptr))


POP = {"tau_m": "20 ms", "v_rest": "-70 mV", "v_reset": "-70 mV", "v_threshold": "-50 mV"}


def test_fixed_in_degree_exact_distinct_no_autapses():
    rng = np.random.default_rng(3)
    indptr, indices = N.connect(Connect(in_degree=40), 300, 300, True, rng)
    pre = rows(indptr, indices)
    assert indices.dtype == np.int32 and indptr.dtype == np.int64
    assert np.all(np.bincount(indices, minlength=300) == 40)  # every target exactly k sources
    assert not np.any(pre == indices)  # no autapses
    assert len(set(zip(pre.tolist(), indices.tolist()))) == indices.size  # distinct
    # CSR rows sorted by target (counting sort is stable)
    for i in range(0, 300, 37):
        row = indices[indptr[i] : indptr[i + 1]]
        assert np.all(np.diff(row) > 0)


def test_fixed_in_degree_is_uniform():
    """Floyd sampling picks every source equally often: out-degrees ~ Binomial(n_post, k / n_pre)."""
    rng = np.random.default_rng(5)
    n_pre, n_post, k = 200, 4000, 20
    indptr, _ = N.connect(Connect(in_degree=k), n_pre, n_post, False, rng)
    out = np.diff(indptr)
    p = k / n_pre
    expect, sd = n_post * p, math.sqrt(n_post * p * (1 - p))
    assert abs(out.mean() - expect) < 1e-9
    # chi-square-like check: sample sd of out-degrees close to the binomial sd
    assert abs(out.std() / sd - 1) < 0.15
    assert out.min() > expect - 6 * sd and out.max() < expect + 6 * sd


def test_in_degree_all_sources_without_autapses():
    indptr, indices = N.connect(Connect(in_degree=9), 10, 10, True, np.random.default_rng(0))
    pre = rows(indptr, indices)
    full = {(i, j) for i in range(10) for j in range(10) if i != j}
    assert set(zip(pre.tolist(), indices.tolist())) == full


def test_probability_rule_fraction_and_autapses():
    rng = np.random.default_rng(11)
    n, p = 1500, 0.05
    indptr, indices = N.connect(Connect(p=p), n, n, True, rng)
    pre = rows(indptr, indices)
    m = n * (n - 1)
    assert abs(indices.size - p * m) < 5 * math.sqrt(m * p * (1 - p))
    assert not np.any(pre == indices)
    with_auto = N.connect(Connect(p=1.0, autapses=True), 7, 7, True, rng)
    assert with_auto[1].size == 49
    assert N.connect(Connect(p=1.0), 7, 7, True, rng)[1].size == 42
    assert N.connect(Connect(p=0.0), 7, 9, False, rng)[1].size == 0


def test_probability_rule_targets_uniform():
    """Geometric skipping gives every target the same in-degree distribution."""
    indptr, indices = N.connect(Connect(p=0.1), 4000, 50, False, np.random.default_rng(2))
    ind = np.bincount(indices, minlength=50)
    assert abs(ind.mean() - 400) < 5 * math.sqrt(400 * 0.9 / 50)
    assert np.all(np.abs(ind - 400) < 6 * math.sqrt(4000 * 0.1 * 0.9))


def test_one_to_one_and_graph():
    indptr, indices = N.connect(Connect(one_to_one=True), 5, 5, True, np.random.default_rng(0))
    assert np.array_equal(rows(indptr, indices), indices)
    indptr, indices = N.connect(
        Connect(graph="watts_strogatz_graph", args={"k": 4, "p": 0.0}), 20, 20, True, np.random.default_rng(0)
    )
    pre = rows(indptr, indices)
    edges = set(zip(pre.tolist(), indices.tolist()))
    assert len(edges) == 80  # ring lattice: 40 undirected edges, both directions
    assert all((j, i) in edges for i, j in edges)
    assert (0, 1) in edges and (0, 2) in edges and (0, 19) in edges and (0, 3) not in edges
    # population size goes to the parameter named n: random_regular_graph(d, n)
    indptr, indices = N.connect(
        Connect(graph="random_regular_graph", args={"d": 3}), 30, 30, True, np.random.default_rng(0)
    )
    assert np.all(np.diff(indptr) == 3) and np.all(np.bincount(indices, minlength=30) == 3)
    with pytest.raises(ScenarioError, match="equal population sizes"):
        N.connect(Connect(one_to_one=True), 5, 6, False, np.random.default_rng(0))
    with pytest.raises(ScenarioError, match="at most 9"):
        N.connect(Connect(in_degree=10), 10, 10, True, np.random.default_rng(0))


def test_build_network_deterministic_and_channels(lif_scenario):
    sc = lif_scenario(
        {
            "a": {"size": 50, **POP, "v_init": {"uniform": ["-70 mV", "-50 mV"]}},
            "b": {"size": 30, **POP, "t_ref": "2 ms"},
        },
        synapses=[
            {
                "source": "a",
                "target": ["a", "b"],
                "connect": {"p": 0.2},
                "weight": "1 mV",
                "tau": "5 ms",
                "delay": "1.5 ms",
            },
            {"source": "b", "target": "a", "connect": {"in_degree": 5}, "weight": "-2 mV", "tau": "5 ms"},
        ],
        inputs=[
            {"kind": "constant", "target": "a", "drive": "3 mV"},
            {"kind": "constant", "target": "b", "current": "0.1 nA"},
            {"kind": "noise", "target": "a", "sigma": "3 mV"},
            {"kind": "noise", "target": "a", "sigma": "4 mV", "mu": "1 mV"},
            {
                "kind": "poisson",
                "target": "b",
                "rate": "5 Hz",
                "n_sources": 10,
                "weight": "1 nS",
                "tau": "2 ms",
                "synapse": "conductance",
                "reversal": "0 mV",
            },
        ],
        duration="10 ms",
    )
    n1, n2 = N.build_network(sc.params, sc.run), N.build_network(sc.params, sc.run)
    for p1, p2 in zip(n1.projections, n2.projections):
        assert np.array_equal(p1.indices, p2.indices) and np.array_equal(p1.indptr, p2.indptr)
    assert np.array_equal(n1.v0, n2.v0)
    assert n1.v0[:50].min() >= -0.070 and n1.v0[:50].max() <= -0.050 and np.all(n1.v0[50:] == -0.070)
    # same (kind, tau) -> one channel shared by both synapse groups; Poisson conductance -> second
    assert sorted(ch.kind for ch in n1.channels) == [N.KIND_CURRENT, N.KIND_CONDUCTANCE]
    assert n1.projections[0].channel == n1.projections[2].channel != n1.poisson[0].channel
    assert [p.delay_steps for p in n1.projections] == [15, 15, 0]
    assert np.all(n1.ref_steps[50:] == 20) and np.all(n1.ref_steps[:50] == 0)
    assert np.allclose(n1.drive[:50], 3e-3) and np.allclose(n1.drive[50:], 0.1e-9 / 10e-9)
    assert np.allclose(n1.noise_sigma[:50], 5e-3) and np.allclose(n1.noise_mu[:50], 1e-3)
    assert n1.poisson[0].start == 50 and n1.poisson[0].stop == 80
    i, j = n1.projections[2].pairs()
    assert np.all(np.bincount(j, minlength=50) == 5) and i.max() < 30
    reseeded = lif_scenario(
        sc.raw["params"]["populations"], synapses=sc.raw["params"]["synapses"], seed=2, duration="10 ms"
    )
    other = N.build_network(reseeded.params, reseeded.run)
    assert not np.array_equal(other.projections[0].indices, n1.projections[0].indices)


def test_memory_estimate_and_refusal(lif_scenario):
    big = lif_scenario(
        {"a": {"size": 3_000_000, **POP}},
        synapses=[{"source": "a", "target": "a", "connect": {"p": 0.5}, "weight": "1 mV", "tau": "5 ms"}],
        duration="10 ms",
    )
    assert N.estimate_bytes(big.params, big.run, big.record) > 4 * 0.5 * 3e6**2
    with pytest.raises(ResourceError, match="synapses"):
        N.check(big)
    small = lif_scenario(
        {"a": {"size": 1000, **POP}},
        synapses=[{"source": "a", "target": "a", "connect": {"in_degree": 100}, "weight": "1 mV", "tau": "5 ms"}],
        duration="10 ms",
    )
    N.check(small)
    est = N.estimate_bytes(small.params, small.run, small.record)
    assert 4 * 1e5 < est < 4 * 1e5 + 50e6


def test_bytes_per_synapse(lif_scenario):
    sc = lif_scenario(
        {"a": {"size": 20000, **POP}},
        synapses=[{"source": "a", "target": "a", "connect": {"in_degree": 200}, "weight": "1 mV", "tau": "5 ms"}],
        duration="10 ms",
    )
    net = N.build_network(sc.params, sc.run)
    p = net.projections[0]
    per_syn = (p.indices.nbytes + p.indptr.nbytes) / p.n_synapses
    assert p.n_synapses == 20000 * 200 and per_syn <= 4.05


def test_network_is_built_once_per_run_and_read_by_simulation_and_theory(monkeypatch, lif_scenario):
    """``neurodyn.simulate`` builds the network once (in ``prepare``): the engine runs that build and the
    theory measures a graph rule's in-degrees on it, without a second construction."""
    import neurodyn
    from neurodyn.families.lif_network import theory

    built_networks = []
    real = N.build_network

    def counted(params, run):
        built_networks.append(real(params, run))
        return built_networks[-1]

    monkeypatch.setattr(N, "build_network", counted)
    ring = {"graph": "watts_strogatz_graph", "args": {"k": 6, "p": 0.3}}
    sc = lif_scenario(
        {"a": {"size": 100, **POP, "v_init": {"uniform": ["-70 mV", "-50 mV"]}}},
        synapses=[{"source": "a", "target": "a", "connect": ring, "weight": "1 mV", "tau": "2 ms"}],
        inputs=[{"kind": "noise", "target": "a", "mu": "16 mV", "sigma": "5 mV"}],
        duration="20 ms",
    )
    ds = neurodyn.simulate(sc)
    assert len(built_networks) == 1
    assert ds.attrs["n_synapses"] == built_networks[0].n_synapses == 600  # k = 6 neighbours, rewired
    assert theory.measured_in_degrees(built_networks[0]) == {(0, 0): 6.0}
    assert list(ds["rate_theory_regime"].values) == ["brunel"]


def test_projections_share_one_index_array(lif_scenario):
    """The build stores every synapse once: each projection's indices are a view of Network.indices, which
    the kernel's Synapses table holds itself (no copy)."""
    sc = lif_scenario(
        {"a": {"size": 40, **POP}, "b": {"size": 30, **POP}},
        synapses=[
            {"source": "a", "target": ["a", "b"], "connect": {"p": 0.3}, "weight": "1 mV", "tau": "5 ms"},
            {"source": "b", "target": "a", "connect": {"in_degree": 4}, "weight": "-1 mV", "tau": "5 ms"},
        ],
        duration="10 ms",
    )
    built = N.build(sc)
    net = built.network
    assert built.synapses.indices is net.indices
    assert net.indices.size == net.n_synapses
    offset = 0
    for k, p in enumerate(net.projections):
        assert p.indices.base is net.indices and built.synapses.pr_indices_off[k] == offset
        assert np.shares_memory(p.indices, net.indices[offset : offset + p.n_synapses])
        offset += p.n_synapses


def test_cli_refuses_network_too_large(tmp_path, cli, user_error):
    path = tmp_path / "huge.yaml"
    path.write_text("""name: huge
family: lif_network
params:
  populations:
    a: {size: 5000000, tau_m: 20 ms, v_rest: -70 mV, v_reset: -70 mV, v_threshold: -50 mV}
  synapses:
    - {source: a, target: a, connect: {p: 0.5}, weight: 1 mV, tau: 5 ms}
run: {duration: 1 s, dt: 0.1 ms}
""")
    proc = cli("run", path, "--output", tmp_path / "huge.h5", timeout=120)
    user_error(proc, "synapses", "GiB")
    assert not (tmp_path / "huge.h5").exists()
