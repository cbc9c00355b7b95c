"""Graphs of the sync_learners family: spectra of known topologies, weights, errors for bad specs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurodyn.errors import ScenarioError
from neurodyn.families.sync_learners.graphs import build_graph
from neurodyn.families.sync_learners.params import Topology


def topo(**kw) -> Topology:
    return Topology(**kw)


@pytest.mark.parametrize("n", [5, 12])
def test_closed_form_spectra(n):
    """complete {0, n^(n-1)}; ring 2 - 2 cos(2 pi j / n); star {0, 1^(n-2), n}; path 2 - 2 cos(pi j / n)."""
    lam = build_graph(topo(generator="complete"), n, 0, "t").spectrum
    np.testing.assert_allclose(lam, [0] + [n] * (n - 1), atol=1e-10)
    lam = build_graph(topo(generator="ring"), n, 0, "t").spectrum
    np.testing.assert_allclose(lam, np.sort(2 - 2 * np.cos(2 * np.pi * np.arange(n) / n)), atol=1e-10)
    lam = build_graph(topo(generator="star"), n, 0, "t").spectrum
    np.testing.assert_allclose(lam, [0] + [1] * (n - 2) + [n], atol=1e-10)
    lam = build_graph(topo(generator="path"), n, 0, "t").spectrum
    np.testing.assert_allclose(lam, 2 - 2 * np.cos(np.pi * np.arange(n) / n), atol=1e-10)


def test_grid_and_generator_with_injected_n_and_seed():
    g = build_graph(topo(generator="grid"), 12, 0, "t")  # 3 x 4 grid: 17 edges
    assert g.n == 12 and g.n_edges == 3 * 3 + 2 * 4
    a = build_graph(topo(generator="watts_strogatz_graph", args={"k": 4, "p": 0.5}), 30, 7, "t")
    b = build_graph(topo(generator="watts_strogatz_graph", args={"k": 4, "p": 0.5}), 30, 7, "t")
    c = build_graph(topo(generator="watts_strogatz_graph", args={"k": 4, "p": 0.5}), 30, 8, "t")
    assert (a.adjacency != b.adjacency).nnz == 0  # same seed, same graph
    assert (a.adjacency != c.adjacency).nnz > 0
    assert a.n_edges == 60  # rewiring keeps the edge count n k / 2
    rr = build_graph(topo(generator="random_regular_graph", args={"d": 3}), 10, 1, "t")
    np.testing.assert_array_equal(rr.degree, 3.0)


def test_complete_graph_uses_mean_coupling_only_when_uniform():
    assert build_graph(topo(generator="complete", weight=0.5), 6, 0, "t").complete_weight == 0.5
    assert math.isnan(build_graph(topo(generator="complete", weights=(0.5, 2.0)), 6, 0, "t").complete_weight)
    assert math.isnan(build_graph(topo(generator="ring"), 6, 0, "t").complete_weight)
    # a 3-ring is complete
    assert not math.isnan(build_graph(topo(generator="ring"), 3, 0, "t").complete_weight)


def test_weighted_edge_list_laplacian():
    g = build_graph(topo(edges=[[0, 1, 2.0], [1, 2], [2, 3, 0.5]]), 4, 0, "t")
    lap = g.laplacian.toarray()
    expected = np.array([[2, -2, 0, 0], [-2, 3, -1, 0], [0, -1, 1.5, -0.5], [0, 0, -0.5, 0.5]])
    np.testing.assert_allclose(lap, expected)


def test_disconnected_eigenbasis_keeps_centroid_as_mode_zero():
    g = build_graph(topo(edges=[[0, 1], [2, 3], [3, 4]]), 6, 0, "t")  # three components
    assert g.components == 3
    lam, u = g.eigenbasis
    np.testing.assert_allclose(u[:, 0], 1 / np.sqrt(6))
    np.testing.assert_allclose(u.T @ u, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(u.T @ g.laplacian.toarray() @ u, np.diag(lam), atol=1e-12)
    assert np.sum(lam < 1e-12) == 3


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        (dict(generator="watts_strogatz_graph", args={"kk": 4, "p": 0.1}), "did you mean 'k'"),
        (
            dict(generator="connected_watts_strogatz_graph", args={"k": 4, "p": 0.1, "tries": "many"}),
            "expects a number",
        ),
        (dict(generator="watts_strogatz_graph", args={"k": "four", "p": 0.1}), "refused these arguments"),
        (dict(generator="cycle_graph", args={"n": 7}), "built 7 nodes"),
        (dict(generator="erdos_renyi_graph", args={}), "needs argument(s) p"),
        (dict(edges=[[0, 9]]), "node indices"),
    ],
)
def test_bad_specs_are_scenario_errors(spec, needle):
    with pytest.raises(ScenarioError, match=None) as exc:
        build_graph(topo(**spec), 6, 0, "params.topology.0")
    assert needle in str(exc.value), str(exc.value)
    assert "\n" not in str(exc.value)


def test_unknown_generator_suggests_networkx_name():
    with pytest.raises(ValueError, match="did you mean 'watts_strogatz_graph'"):
        Topology(generator="watts_strogats_graph")
    with pytest.raises(ValueError, match="did you mean 'ring'"):
        Topology(generator="rign")
