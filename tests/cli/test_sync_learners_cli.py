"""sync_learners through the command line: bad input is one line and exit code 2; a small run end to end."""

from __future__ import annotations

import pytest
import yaml

BASE = {
    "name": "s",
    "family": "sync_learners",
    "params": {"n": 6, "d": 1, "k": [0.5], "sigma": 1.0, "topology": "ring", "trials": 4},
    "run": {"duration": "2.0 s", "dt": "0.01 s", "seed": 1},
}


def write(tmp_path, params=None, run=None, **top):
    doc = {**BASE, "params": {**BASE["params"], **(params or {})}, "run": {**BASE["run"], **(run or {})}, **top}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


# The four kinds of bad input the issue names, plus an unstable step, through the real command line.
@pytest.mark.parametrize(
    ("params", "run", "needles"),
    [
        ({"sigma": -1.0}, None, ["params.sigma", "noise amplitude >= 0"]),
        ({"topology": "rign"}, None, ["params.topology.0.generator", "did you mean 'ring'"]),
        (
            {"topology": {"generator": "watts_strogatz_graph", "args": {"k": "two", "p": 0.1}}},
            None,
            ["params.topology.0.args", "watts_strogatz_graph refused these arguments"],
        ),
        # double well: lambda_f < 0, so the bound needs lambda_2 > 0 and a disconnected graph is refused
        (
            {"loss": {"kind": "double_well"}, "topology": {"edges": [[0, 1], [1, 2], [3, 4], [4, 5]]}},
            None,
            ["params.topology.0", "disconnected", "2 components", "allow_disconnected"],
        ),
        ({"k": [0.5, 50.0], "topology": "complete"}, None, ["run.dt", "unstable"]),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, params, run, needles, cli, user_error):
    user_error(cli("validate", write(tmp_path, params, run)), *needles)


# More bad input, checked in-process (same code path as the CLI up to printing) to keep the suite fast.
@pytest.mark.parametrize(
    ("params", "needles"),
    [
        (
            {"topology": {"generator": "watts_strogats_graph", "args": {"k": 2, "p": 0.1}}},
            ["did you mean 'watts_strogatz_graph'"],
        ),
        (
            {"topology": {"generator": "connected_watts_strogatz_graph", "args": {"k": 2, "p": 0.1, "tries": "x"}}},
            ["params.topology.0.args.tries", "expects a number"],
        ),
        (
            {"topology": {"generator": "watts_strogatz_graph", "args": {"k": 2, "q": 0.1}}},
            ["params.topology.0.args.q", "has no argument 'q'"],
        ),
        ({"topology": {"generator": "grid", "args": {"rows": 4}}}, ["params.topology.0.args.rows", "dividing n = 6"]),
        ({"topology": ["ring", "ring"]}, ["params.topology.1.label", "unique"]),
        ({"integrator": "exact", "loss": {"kind": "logcosh"}}, ["params.integrator", "quadratic"]),
        ({"n": [6, 1]}, ["params.n", "integer >= 2"]),
        ({"k": -0.5}, ["params.k", ">= 0"]),
        ({"noise_correlation": 1.5}, ["params.noise_correlation", "[0, 1]"]),
        ({"loss": {"kind": "quadratic", "hessian": [1.0, 2.0]}}, ["params.loss.hessian", "d = 1"]),
        ({"loss": {"kind": "quadratic", "hessian": -1.0}}, ["params.loss.hessian", "positive definite"]),
        ({"loss": {"kind": "quartic"}}, ["params.loss"]),
        ({"burn_in": "5.0 s"}, ["params.burn_in", "shorter than run.duration"]),
    ],
)
def test_bad_input_in_process(params, needles):
    from neurodyn import registry
    from neurodyn.errors import ScenarioError
    from neurodyn.scenario import from_dict

    doc = {**BASE, "params": {**BASE["params"], **params}}
    with pytest.raises(ScenarioError) as exc:
        registry.get("sync_learners").check(from_dict(doc))
    msg = str(exc.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_run_compare_plot_info_and_disconnected_allowed(tmp_path, cli):
    """A disconnected graph with allow_disconnected runs; the double-well bound is stored as undefined."""
    path = write(
        tmp_path,
        {
            "loss": {"kind": "double_well"},
            "k": [0.5, 20.0],
            "allow_disconnected": True,
            "topology": [{"edges": [[0, 1], [1, 2], [3, 4], [4, 5]], "label": "two_paths"}, "complete"],
            "init_offset": 0.0,
        },
        {"dt": "0.002 s"},
    )
    out = tmp_path / "r.h5"
    proc = cli("run", path, "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr
    from neurodyn.storage import open_run

    ds = open_run(out)
    bound = ds["spread_bound"]
    assert bool(bound.sel(topology="two_paths").isnull().all())
    # complete graph, k = 20: lambda_f + k n = -4 + 120 > 0, so the bound is defined there only
    assert bool(bound.sel(topology="complete").isnull().values.tolist() == [[True, False]])
    assert int(ds["n_components"].sel(topology="two_paths").item()) == 2
    cmp = cli("compare", out)
    assert cmp.returncode == 0 and "spread (upper bound)" in cmp.stdout and "n/a" in cmp.stdout
    plot = cli("plot", out, "--out", tmp_path)
    assert plot.returncode == 0, plot.stderr
    assert (tmp_path / "r_spread_vs_k.png").stat().st_size > 5000
    assert (tmp_path / "r_trajectories.png").exists()


@pytest.mark.parametrize("name", ["sync_ou_topologies", "sync_scaling_n", "sync_logistic", "sync_double_well"])
def test_shipped_scenarios_validate(repo, name):
    """The shipped scenarios load, pass check() and describe the comparison the issue asks for."""
    from neurodyn import registry
    from neurodyn.scenario import load_scenario

    sc = load_scenario(repo / "scenarios" / f"{name}.yaml")
    registry.get("sync_learners").check(sc)
    p = sc.params
    if name == "sync_ou_topologies":
        assert len(p.topology) >= 3 and len(p.k) >= 4 and p.loss.kind == "quadratic"
    elif name == "sync_scaling_n":
        assert len(p.n) >= 4
    else:
        assert p.loss.kind == name.removeprefix("sync_")
