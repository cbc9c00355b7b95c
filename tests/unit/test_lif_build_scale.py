"""Large networks: the synapses are drawn in place (4 bytes each, never copied), the same network as before,
and the memory estimate ``validate`` prints covers what the build holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from neurodyn.families.lif_network import build as N
from neurodyn.families.lif_network import kernels
from neurodyn.families.lif_network.params import Connect

POP = {"tau_m": "20 ms", "v_rest": "-70 mV", "v_reset": "-70 mV", "v_threshold": "-50 mV"}


def test_draw_upto_is_generator_integers_draw_for_draw():
    ts = np.random.default_rng(0).integers(0, 2**31, 4000)
    ts[::7], ts[::11], ts[::13], ts[::17], ts[::19] = 0, 1, 2**32 - 2, 2**32 - 1, 2**40
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    got = [kernels.draw_upto(a, int(t)) for t in ts]
    assert got == [int(b.integers(0, t + 1)) for t in ts]
    assert a.bit_generator.state == b.bit_generator.state


def _reference_in_degree(rng, n_pre, n_post, k, skip_diag):
    """Floyd's k-subset per target with ``Generator.integers``, then a stable counting sort by source."""
    sources = []
    for j in range(n_post):
        diag = skip_diag and j < n_pre
        m = n_pre - 1 if diag else n_pre
        taken: list[int] = []
        for c in range(k):
            t = m - k + c
            r = int(rng.integers(0, t + 1))
            r = t if r in taken else r
            taken.append(r)
        sources.append([r + 1 if diag and r >= j else r for r in taken])
    rows: list[list[int]] = [[] for _ in range(n_pre)]
    for j, srcs in enumerate(sources):
        for i in srcs:
            rows[i].append(j)
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    return indptr, np.array([j for r in rows for j in r], dtype=np.int32)


@pytest.mark.parametrize(("n_pre", "n_post", "k", "same"), [(60, 60, 9, True), (40, 70, 40, False), (30, 20, 29, True)])
def test_in_degree_is_floyd_then_counting_sort_and_leaves_the_stream_where_one_pass_would(n_pre, n_post, k, same):
    ref_rng, rng = np.random.default_rng(3), np.random.default_rng(3)
    indptr, indices = _reference_in_degree(ref_rng, n_pre, n_post, k, same)
    got_indptr, got = N.connect(Connect(in_degree=k), n_pre, n_post, same, rng)
    assert got.dtype == np.int32 and got_indptr.dtype == np.int64
    assert np.array_equal(got_indptr, indptr) and np.array_equal(got, indices)
    assert rng.bit_generator.state == ref_rng.bit_generator.state


def test_p_rule_beyond_its_planned_room_draws_the_same_synapses(monkeypatch):
    rule = Connect(p=0.2)
    rng = np.random.default_rng(11)
    want_indptr, want = N.connect(rule, 300, 200, True, rng)
    monkeypatch.setattr(N, "planned_synapses", lambda *a: 3)  # room for 3 of ~12,000: grown and redrawn
    again = np.random.default_rng(11)
    got_indptr, got = N.connect(rule, 300, 200, True, again)
    assert want.size > 10_000
    assert np.array_equal(got_indptr, want_indptr) and np.array_equal(got, want)
    assert again.bit_generator.state == rng.bit_generator.state


def test_every_rule_lands_in_one_array_without_spare_room(lif_scenario):
    ring = {"graph": "watts_strogatz_graph", "args": {"k": 4, "p": 0.2}}
    sc = lif_scenario(
        {"a": {"size": 50, **POP}, "b": {"size": 50, **POP}},
        synapses=[
            {"source": "a", "target": ["a", "b"], "connect": {"p": 0.2}, "weight": "1 mV", "tau": "5 ms"},
            {"source": "b", "target": "a", "connect": {"in_degree": 7}, "weight": "1 mV", "tau": "5 ms"},
            {"source": "b", "target": "b", "connect": ring, "weight": "1 mV", "tau": "5 ms"},
            {"source": "a", "target": "b", "connect": {"one_to_one": True}, "weight": "1 mV", "tau": "5 ms"},
        ],
        duration="1 ms",
    )
    net = N.build_network(sc.params, sc.run)
    assert net.indices.flags.owndata and net.indices.size == net.n_synapses
    rng = N.streams(sc.run.seed)[0]  # the projections one by one, from the same stream, agree
    for p, rule in zip(net.projections, [{"p": 0.2}, {"p": 0.2}, {"in_degree": 7}, ring, {"one_to_one": True}]):
        indptr, indices = N.connect(Connect(**rule), p.n_pre, p.n_post, p.source == p.target, rng)
        assert p.indices.base is net.indices
        assert np.array_equal(p.indptr, indptr) and np.array_equal(p.indices, indices)


def test_building_holds_each_synapse_once(repo):
    """Peak RSS growth while building 2e7 in-degree synapses stays near their 4 bytes each (8+ when the
    sources were held post-major beside the CSR, or the projections' arrays beside their concatenation)."""
    code = textwrap.dedent("""
        import json, resource
        from neurodyn.families.lif_network.build import build_network
        from neurodyn.scenario import from_dict
        def scenario(n, k):
            pop = {"tau_m": "20 ms", "v_rest": "0 mV", "v_reset": "0 mV", "v_threshold": "20 mV"}
            syn = [{"source": "a", "target": ["a", "b"], "connect": {"in_degree": k}, "weight": "1 mV", "tau": "1 ms"}]
            doc = {"name": "m", "family": "lif_network", "run": {"duration": "1 ms", "dt": "0.1 ms"},
                   "params": {"populations": {"a": {"size": n, **pop}, "b": {"size": n, **pop}}, "synapses": syn}}
            return from_dict(doc)
        build_network(scenario(100, 10).params, scenario(100, 10).run)  # kernels loaded, numba set up
        sc = scenario(10_000, 1000)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        net = build_network(sc.params, sc.run)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(json.dumps({"synapses": net.n_synapses, "growth": after - before}))
    """)
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["synapses"] == 2 * 10_000 * 1000
    assert out["growth"] / out["synapses"] < 5.0


def test_estimate_counts_the_synapses_once(lif_scenario):
    sc = lif_scenario(
        {"a": {"size": 20_000, **POP}, "b": {"size": 5_000, **POP}},
        synapses=[
            {"source": "a", "target": ["a", "b"], "connect": {"in_degree": 400}, "weight": "1 mV", "tau": "5 ms"},
            {"source": "b", "target": ["a", "b"], "connect": {"in_degree": 100}, "weight": "-1 mV", "tau": "5 ms"},
        ],
        duration="10 ms",
    )
    parts = N.estimate_parts(sc.params, sc.run, sc.record)
    n_syn = 500 * 25_000
    rows = 16 * (2 * 20_001 + 2 * 5_001)
    assert parts["synapses"] == 4 * n_syn + rows
    assert parts["transient"] == 9 * 20_000 + 8 * 400  # fill pointers and marks of the largest source


def test_validate_prints_the_memory_estimate_before_the_recording(cli):
    proc = cli("validate", "scenarios/brunel.yaml")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1].startswith("  memory: about ") and "1.56e+07 synapses x 4 B" in lines[1]
    assert "MemAvailable" in lines[1] or "cgroup limit" in lines[1]
    assert lines[2].startswith("  recording: about ")


def test_a_refusal_names_the_limit_in_force(cli, user_error):
    sizes = ("--set", "params.populations.exc.size=8000000", "--set", "params.populations.inh.size=2000000")
    proc = cli("validate", "scenarios/brunel.yaml", *sizes)
    user_error(proc, "network too large", "1.25e+10 synapses", "GiB available")
    assert "(MemAvailable; " in proc.stderr or "(cgroup limit " in proc.stderr
