"""``ltc_cfc``: exact properties of the solvers, Theorems 1-2, Lemma 1, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodyn.cli import main
from neurodyn.families.ltc_cfc.build import draw_problem, ncp_wiring
from neurodyn.families.ltc_cfc.kernels import ROUNDING
from neurodyn.families.ltc_cfc.params import ClosedForm, Inputs, InputShape, Network
from neurodyn.families.ltc_cfc.solvers import adaptive, closed_form_x, input_of, ode_solution, unfolded
from neurodyn.families.ltc_cfc.theory import solver_precision


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    period=st.floats(1e-3, 1e3),
    amplitude=st.floats(0.0, 50.0),
    L=st.integers(1, 4),
    form=st.sampled_from(["eq1", "conductance"]),
    wiring=st.sampled_from(["full", "ncp"]),
)
def test_fused_step_stays_in_the_box_at_any_step(seed, period, amplitude, L, form, wiring):
    """The fused state is a convex combination of x, vl and the reversals: Theorem 2 holds at every dt."""
    pr = draw_problem(
        Network(neurons=5, inputs=2, form=form, wiring=wiring),
        Inputs(samples=20, period=period, jitter=0.9, amplitude=amplitude),
        "sigmoid",
        seed,
        0,
    )
    _, stats = unfolded(pr, L, "fused")
    assert stats[0] == 0 and stats[1] >= -ROUNDING  # no state violation (to rounding)
    assert stats[2] == 0 and stats[3] >= -ROUNDING  # Theorem 1: 1/tau_sys in [1/tau, 1/tau + W]


def test_euler_inside_its_convex_step_keeps_the_box_and_leaves_it_beyond():
    pr = draw_problem(Network(neurons=8, inputs=2), Inputs(samples=30, period=1.0, amplitude=3.0), "sigmoid", 2, 0)
    convex = 1.0 / pr.bounds.rate_hi.max()
    L_in = int(np.ceil(pr.elapsed.max() / convex))
    assert unfolded(pr, L_in, "euler")[1][0] == 0
    pr_big = draw_problem(Network(neurons=8, inputs=2), Inputs(samples=30, period=8.0, amplitude=3.0), "sigmoid", 2, 0)
    assert unfolded(pr_big, 1, "euler", blowup=1e6)[1][0] > 0


def test_adaptive_solution_keeps_the_box_and_the_tanh_head_does_not():
    pr = draw_problem(Network(neurons=6, inputs=2), Inputs(samples=10, amplitude=5.0), "sigmoid", 4, 0)
    xs, stats, _ = adaptive(pr, 1e-10, 1e-12)
    assert stats[0] == 0 and stats[2] == 0 and np.all(np.isfinite(xs))
    # the paper's example head f = tanh(...) takes negative values: 1/tau + f < 1/tau breaks Theorem 1
    pt = draw_problem(Network(neurons=6, inputs=2, tanh_gain=2.0), Inputs(samples=10, amplitude=5.0), "tanh", 4, 0)
    assert adaptive(pt, 1e-10, 1e-12, blowup=1e6)[1][2] > 0


CF = ClosedForm()


@pytest.mark.parametrize("level", [-1.0, 0.0, 0.5, 2.0])
def test_constant_input_error_has_its_closed_form(level):
    """x - x~ = (x0 - A) exp(-(w_tau + f(I)) t) (1 - f(-I)) for a constant input, to solver precision."""
    shape = InputShape(kind="constant", level=level)
    t = np.linspace(0, 10, 201)
    err = ode_solution(CF, shape, t, symmetrised=True) - closed_form_x(CF, input_of(shape), t)
    sig = lambda u: 1 / (1 + np.exp(-u))  # noqa: E731
    exact = (
        (CF.x0 - CF.A)
        * np.exp(-(CF.w_tau + sig(CF.gain * level + CF.bias)) * t)
        * (1 - sig(-CF.gain * level + CF.bias))
    )
    assert np.max(np.abs(err - exact)) < 1e-10


@pytest.mark.parametrize("kind", ["constant", "sine", "step"])
def test_lemma_1_holds_for_the_symmetrised_drive_and_fails_for_the_stated_one(kind):
    shape = InputShape(kind=kind)
    t = np.linspace(0, 10, 401)
    bound = abs(CF.x0 - CF.A) * np.exp(-CF.w_tau * t)
    x_cf = closed_form_x(CF, input_of(shape), t)
    assert np.all(np.abs(ode_solution(CF, shape, t, True) - x_cf) <= bound)
    assert np.max(np.abs(ode_solution(CF, shape, t, False) - x_cf) / bound) > 10


def test_solver_precision_reads_the_stored_tolerances():
    import xarray as xr

    ds = xr.Dataset(attrs={"atol": 1e-14, "rtol": 1e-12, "x0": -1.0, "A": 1.5})
    assert solver_precision(ds) == pytest.approx(100 * (1e-14 + 1.5e-12))


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("params.bounds.network.weight=[-0.5, 1]", ("params.bounds.network.weight", "f >= 0")),
        ("params.bounds.network.form=conductance", ("params.bounds.heads", "form: eq1")),
        ("params.bounds.network={neurons: 2, wiring: ncp}", ("params.bounds.network.neurons", "motor + 2")),
        ("params.bounds.network.sparsity=1", ("params.bounds.network.sparsity", "[0, 1)")),
        ("params.bounds.heads=[]", ("params.bounds.heads", "non-empty")),
        ("params.bounds.inputs.jitter=1", ("params.bounds.inputs.jitter", "[0, 1)")),
        ("params.bounds.unfolds=[2, 2]", ("params.bounds.unfolds", "repeated")),
        ("params.closed_form.w_tau=0", ("params.closed_form.w_tau",)),
        ("params.bounds.network.tau=[0, 1]", ("params.bounds.network.tau", "lo > 0")),
    ],
)
def test_bad_parameters_are_refused_in_one_line(repo, capsys, override, needles):
    code = main(["validate", str(repo / "scenarios" / "ltc_bounds.yaml"), "--set", override])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.mark.parametrize("stem", ["cfc_xor", "cfc_speed", "ltc_bounds"])
def test_tiny_runs_store_their_rows_and_figures(repo, stem, make_scenario):
    """Every experiment runs at a tiny size into a result whose compare rows and figures read it alone."""
    import warnings

    from neurodyn import compare, plot
    from neurodyn.runner import simulate
    from tests.hostile.tiny import tiny_scenario

    doc = tiny_scenario(repo / "scenarios" / f"{stem}.yaml")
    ds = simulate(make_scenario("ltc_cfc", doc["params"], doc.get("run")))
    table = compare(ds)
    assert len(table) > 0 and set(table["verdict"]) <= {"agree", "differ", "holds", "violated", "n/a"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figs = plot(ds)
    assert [f.get_label() for f in figs] == [ds.attrs["experiment"]]


def test_ncp_wiring_has_the_four_layers_of_autoncp():
    """Sensory -> inter -> command (recurrent) -> motor, every neuron reached, AutoNCP's layer sizes."""
    N, M, motor = 20, 3, 2
    rec, sen = ncp_wiring(N, M, motor, 0.5, np.random.default_rng(0))
    command = int(0.4 * (N - motor))
    mot, cmd, itr = np.arange(motor), np.arange(motor, motor + command), np.arange(motor + command, N)
    assert set(np.unique(rec)) <= {-1.0, 0.0, 1.0} and set(np.unique(sen)) <= {-1.0, 0.0, 1.0}
    assert not sen[:, np.r_[mot, cmd]].any() and sen[:, itr].any(axis=0).all()  # inputs reach inter only
    assert not rec[np.ix_(itr, np.r_[mot, itr])].any()  # inter -> command only
    assert rec[np.ix_(itr, cmd)].any(axis=0).all()  # every command neuron has an inter input
    assert not rec[np.ix_(cmd, itr)].any() and not rec[mot].any()  # no feedback, motor neurons project nowhere
    assert rec[np.ix_(cmd, mot)].any(axis=1).all()  # every command neuron reaches a motor neuron
    assert (rec[np.ix_(cmd, mot)] != 0).sum(axis=0).min() >= max(int(command * 0.5), 1)
