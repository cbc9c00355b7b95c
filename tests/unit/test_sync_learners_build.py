"""sync_learners builds once: prepare checks and builds the loss and every graph in one pass, and simulate and
theory reuse what it built (no second graph, spectrum or loss)."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn import registry
from neurodyn.families.sync_learners import build as build_module
from neurodyn.families.sync_learners import graphs as graphs_module
from neurodyn.families.sync_learners.build import SyncBuilt
from neurodyn.families.sync_learners.params import SyncParams
from neurodyn.progress import QUIET
from neurodyn.scenario import from_dict


def _scenario(integrator: str):
    return from_dict(
        {
            "name": "t",
            "family": "sync_learners",
            "params": {
                "n": [4, 6],
                "d": 2,
                "k": [0.0, 1.0],
                "topology": ["ring", {"generator": "random_regular", "args": {"d": 2}}],
                "trials": 3,
                "integrator": integrator,
                "init_spread": 0.5,
            },
            "run": {"duration": "0.2 s", "dt": "10 ms", "seed": 2},
        }
    )


@pytest.fixture
def counted(monkeypatch) -> dict[str, int]:
    """Count graph constructions, Laplacian decompositions and loss setups from here on."""
    calls = {"build_graph": 0, "make_loss": 0, "spectrum": 0, "eigenbasis": 0}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(build_module, "build_graph", counting("build_graph", build_module.build_graph))
    monkeypatch.setattr(build_module, "make_loss", counting("make_loss", build_module.make_loss))
    for name in ("spectrum", "eigenbasis"):
        prop = graphs_module.Graph.__dict__[name]
        # a fresh cached_property around the counted function: it still computes once per graph
        wrapped = type(prop)(counting(name, prop.func))
        wrapped.__set_name__(graphs_module.Graph, name)
        monkeypatch.setattr(graphs_module.Graph, name, wrapped)
    return calls


@pytest.mark.parametrize("integrator", ["euler_maruyama", "exact"])
def test_prepare_simulate_theory_build_each_graph_and_the_loss_once(integrator, counted):
    family = registry.get("sync_learners")
    scenario = _scenario(integrator)
    built = family.prepare(scenario)
    assert isinstance(built, SyncBuilt) and isinstance(built.params, SyncParams)
    assert sorted(built.graphs) == [(0, 4), (0, 6), (1, 4), (1, 6)]
    ds = family.simulate(built, QUIET)
    theory = family.theory(built, ds)
    # 2 topologies x 2 n: four graphs, each decomposed once whatever the number of k; one loss
    assert counted["build_graph"] == 4
    assert counted["make_loss"] == 1
    assert counted["spectrum"] == 4
    assert counted["eigenbasis"] == (4 if integrator == "exact" else 0)
    # the stored spectrum is the built graphs' own
    for (ti, n), g in built.graphs.items():
        np.testing.assert_array_equal(
            ds["laplacian_eigenvalues"].values[ti, list(built.params.n).index(n), :n], g.spectrum
        )
    assert "spread_bound" in theory


def test_check_alone_builds_what_its_refusals_read(counted):
    """``validate`` (check) builds the graphs and the loss once; the run's build is a separate call."""
    family = registry.get("sync_learners")
    scenario = _scenario("euler_maruyama")
    family.check(scenario)
    # the Euler-Maruyama stability check reads lambda_max of every graph (k > 0)
    assert counted == {"build_graph": 4, "make_loss": 1, "spectrum": 4, "eigenbasis": 0}
    family.build(scenario)
    assert counted["build_graph"] == 8 and counted["make_loss"] == 2
