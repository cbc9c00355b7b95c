"""eqprop through the command line: bad input is one line and exit 2; run, compare and plot work."""

from __future__ import annotations

import pytest

SCEN = "scenarios/eqprop_digits_1h.yaml"


@pytest.mark.parametrize(
    "override, needles",
    [
        ("params.training.beta=0", ("params.training.beta = 0", "non-zero")),
        ("params.layers=[60, 500, 10]", ("params.layers", "64 inputs and 10 classes")),
        ("params.eps=0", ("params.eps = 0", "step size")),
        ("params.eps=-0.5", ("params.eps = -0.5", "step size")),
        ("params.training.lr=[0.1]", ("params.training.lr", "one rate per weight matrix")),
        ("params.theorem={betas: [0.1, 0.01]}", ("params.theorem", "experiment: gradient_theorem")),
    ],
)
def test_bad_training_input_is_one_line_exit_2(tmp_path, override, needles, cli, user_error):
    proc = cli("run", SCEN, "--set", override, "-o", tmp_path / "x.h5", "--quiet")
    user_error(proc, *needles)
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize(
    "override, needles",
    [
        ("params.training.beta=0.0", ("params.training.beta", "non-zero")),
        ("params.layers=[64, 500, 8]", ("params.layers", "end with 10")),
        ("params.layers=[64, 10]", ("params.layers", "at least one hidden layer")),
        ("params.training.lr=[0.1, -1]", ("params.training.lr", "positive")),
        ("params.training.estimators=[both]", ("params.training.estimators",)),
        ("params.training.estimators=[]", ("params.training.estimators", "one or both")),
        ("params.training.btea=1", ("params.training.btea", "did you mean 'beta'")),
        ("params.training.seeds=[1, 1]", ("params.training.seeds", "distinct")),
        ("params.rho=relu", ("params.rho",)),
        ("params.data.test_fraction=1.5", ("params.data.test_fraction", "(0, 1)")),
        ("params.training.batch_size=5000", ("params.training.batch_size", "1437 training examples")),
        ("params.training.eval_tol=-1", ("params.training.eval_tol", "non-negative (>= 0)")),
        ("params.init_gain=0", ("params.init_gain", "must be positive")),
    ],
)
def test_more_bad_input_in_process(override, needles, repo):
    """The same one-line ScenarioError, checked without a subprocess to keep the suite fast."""
    from neurodyn import registry
    from neurodyn.errors import ScenarioError
    from neurodyn.scenario import load_scenario

    with pytest.raises(ScenarioError) as info:
        sc = load_scenario(repo / SCEN, [override])
        registry.get("eqprop").check(sc)
    msg = str(info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)


@pytest.mark.parametrize(
    "scenario, override, needles",
    [
        ("eqprop_bptt_match", "params.rho=hard_sigmoid", ("params.rho", "tanh")),
        ("eqprop_bptt_match", "params.cost=softmax_ce", ("params.cost", "mse")),
        ("eqprop_gradient_theorem", "params.theorem.betas=[0.1]", ("params.theorem.betas", "two beta")),
        ("eqprop_gradient_theorem", "params.theorem.betas=[0.1, 0]", ("params.theorem.betas", "positive")),
        ("eqprop_gradient_theorem", "params.theorem.fd_step=0", ("params.theorem.fd_step", "must be positive")),
        ("eqprop_bptt_match", "params.bptt.tol=-1e-13", ("params.bptt.tol", "must be positive")),
        ("eqprop_bptt_match", "params.bptt.betas=[0.1]", ("params.bptt.betas", "two beta")),
    ],
)
def test_gradient_experiment_bad_input(scenario, override, needles, repo):
    from neurodyn.cli import main

    code, err = _main_capture(main, ["validate", f"scenarios/{scenario}.yaml", "--set", override], repo)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    for needle in needles:
        assert needle in err, (needle, err)


def _main_capture(main, argv, cwd):
    import contextlib
    import io
    import os

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in argv])
    finally:
        os.chdir(cwd)
    return code, err.getvalue() + out.getvalue()


def test_run_compare_plot_gradient_theorem(tmp_path, cli, repo):
    from neurodyn.cli import main

    out = tmp_path / "th.h5"
    proc = cli("run", "scenarios/eqprop_gradient_theorem.yaml", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "fitted slope" in proc.stdout
    code, text = _main_capture(main, ["compare", out], repo)
    assert code == 0, text
    lines = [ln for ln in text.splitlines() if ln.startswith("slope_")]
    assert len(lines) == 2 and all(ln.rstrip().endswith("agree") for ln in lines)
    code, text = _main_capture(main, ["plot", out, "--out", tmp_path], repo)
    assert code == 0, text
    png = tmp_path / "th_gradient_error.png"
    assert png.stat().st_size > 10_000


def test_gradient_theorem_on_a_huge_network_is_refused_before_running(repo):
    from neurodyn.cli import main

    code, text = _main_capture(
        main, ["validate", "scenarios/eqprop_gradient_theorem.yaml", "--set", "params.layers=[300, 300, 10]"], repo
    )
    assert code == 2 and len(text.strip().splitlines()) == 1
    assert "finite differences" in text and "93310 parameters" in text
