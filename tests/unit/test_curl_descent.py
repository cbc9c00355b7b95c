"""``curl_descent``: the flow's invariants, GD at D = I, the Jacobian on the zero-loss manifold, the blow-up
guard, the 1-1-1 chain, and one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.errors import ScenarioError
from neurodyn.families.curl_descent import boundary, engine
from neurodyn.families.curl_descent import kernels as K
from neurodyn.families.curl_descent.build import build, check, flips, k_matrix, teacher
from neurodyn.scenario import from_dict


def consts(d1, d2, vstar, dt=0.01, projection=False, blowup=1e6, s2=0.5, eta=1.0) -> K.FlowConsts:
    return K.FlowConsts(d1, d2, vstar, s2, eta, dt, projection, blowup)


def run(W1, w2, c, n_steps, every=10):
    st = engine.new_state(W1, w2)
    rec = engine.new_rec(st, c, every, n_steps // every + 1)
    K.flow_run(st, c, engine.new_work(*W1.shape), rec, 0, n_steps)
    return st, rec


def random_problem(M=5, N=7, seed=0):
    rng = np.random.default_rng(seed)
    W1t, w2t = teacher(rng, M, N)
    W1 = rng.normal(0, 1 / np.sqrt(M), (N, M))
    w2 = rng.normal(0, 1 / np.sqrt(N), N)
    return W1, w2, W1t.T @ w2t


def test_flip_convention_first_round_alpha_n_entries():
    assert flips(10, 0.3).tolist() == [-1, -1, -1] + [1] * 7
    assert flips(4, 0.125).tolist() == [1, 1, 1, 1]  # round(0.5) = 0 (ties to even, as NumPy/Python)
    assert flips(3, 1.0).tolist() == [-1, -1, -1]


@pytest.mark.parametrize(("a1", "a2"), [(0.4, 0.0), (0.0, 0.3), (0.2, 0.15)])
def test_signed_norm_conserved_to_rk4_order_for_any_flips(a1, a2):
    """C drifts only by the scheme's error: O(dt^4) over a fixed time (halving dt divides it by ~16)."""
    W1, w2, vstar = random_problem()
    c = consts(flips(5, a1), flips(7, a2), vstar, dt=0.02)
    drifts = []
    for dt, n in ((0.02, 250), (0.01, 500)):
        st, rec = run(W1, w2, c._replace(dt=dt), n, every=n // 5)
        assert st.diverged[0] == -1
        drifts.append(np.abs(rec.signed_norm - rec.signed_norm[0]).max())
    assert drifts[1] < 1e-9
    assert 10 < drifts[0] / drifts[1] < 22
    # without the rule signs the same quantity is not conserved: the invariant is the D-weighted one
    plain = (rec.weights[:, :35] ** 2).sum(1) - (rec.weights[:, 35:] ** 2).sum(1)
    assert np.abs(plain - plain[0]).max() > 1e-3 or (a1, a2) == (0.0, 0.0)


def test_matrix_invariant_conserved_when_d2_is_identity():
    W1, w2, vstar = random_problem(seed=1)
    st, rec = run(W1, w2, consts(flips(5, 0.4), np.ones(7), vstar, dt=0.005), 1000, every=100)
    assert st.diverged[0] == -1
    assert np.nanmax(rec.matrix_drift) < 1e-10


def test_flow_at_identity_is_gradient_descent_on_the_population_loss():
    W1, w2, vstar = random_problem(seed=3)
    M, N = 5, 7
    c = consts(np.ones(M), np.ones(N), vstar, eta=0.7)
    dW1, dw2, e = np.empty((N, M)), np.empty(N), np.empty(M)
    L = K.flow_field(W1, w2, c, e, dW1, dw2)
    s2 = 0.5
    v = W1.T @ w2
    assert L == pytest.approx(0.5 * s2 * np.sum((v - vstar) ** 2), rel=1e-14)
    # -eta grad L, written independently: dL/dW1 = s^2 w2 (v - v*)^T, dL/dw2 = s^2 W1 (v - v*)
    np.testing.assert_allclose(dW1, -0.7 * s2 * np.outer(w2, v - vstar), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dw2, -0.7 * s2 * W1 @ (v - vstar), rtol=1e-13, atol=1e-15)
    # and by central finite differences of L
    h = 1e-6
    x0 = np.concatenate([W1.ravel(), w2])

    def loss(x):
        return 0.5 * s2 * np.sum((x[: N * M].reshape(N, M).T @ x[N * M :] - vstar) ** 2)

    g = np.array([(loss(x0 + h * u) - loss(x0 - h * u)) / (2 * h) for u in np.eye(x0.size)])
    np.testing.assert_allclose(np.concatenate([dW1.ravel(), dw2]), -0.7 * g, atol=1e-9)


def test_training_update_at_identity_is_a_gradient_step_on_the_batch_loss():
    rng = np.random.default_rng(1)
    M, N, B = 4, 6, 5
    W1, w2 = rng.normal(size=(N, M)) / 2, rng.normal(size=N) / 2
    X, y = rng.normal(size=(8, M)), rng.normal(size=8)
    idx = np.array([0, 2, 3, 5, 7])
    net = K.Net(W1.copy(), w2.copy(), np.ones(M), np.ones(N), np.zeros(2))
    c = K.TrainConsts(K.LINEAR, 0.3, B, False)
    K.batch_update(net, X, y, idx, c, np.empty(N), np.empty(N), np.empty((N, M)), np.empty(N))
    x0 = np.concatenate([W1.ravel(), w2])

    def loss(x):
        return 0.5 * np.mean((X[idx] @ x[: N * M].reshape(N, M).T @ x[N * M :] - y[idx]) ** 2)

    h = 1e-6
    g = np.array([(loss(x0 + h * u) - loss(x0 - h * u)) / (2 * h) for u in np.eye(x0.size)])
    np.testing.assert_allclose(np.concatenate([net.W1.ravel(), net.w2]), x0 - 0.3 * g, atol=1e-9)


def test_projection_keeps_the_initial_norms():
    W1, w2, vstar = random_problem(seed=4)
    st, rec = run(W1, w2, consts(flips(5, 0.4), flips(7, 0.4), vstar, projection=True), 500)
    assert np.linalg.norm(st.W1) == pytest.approx(np.linalg.norm(W1), rel=1e-14)
    assert np.linalg.norm(st.w2) == pytest.approx(np.linalg.norm(w2), rel=1e-14)


def test_jacobian_nonzero_eigenvalues_are_minus_eta_s2_eig_k_and_the_rest_vanish():
    M, N = 4, 6
    W1t, w2t = teacher(np.random.default_rng(5), M, N)
    d1, d2 = flips(M, 0.5), flips(N, 0.34)
    c = consts(d1, d2, W1t.T @ w2t, eta=1.3)
    ev = np.linalg.eigvals(engine.jacobian(W1t, w2t, c, 1e-6))
    order = np.argsort(-np.abs(ev))
    theory = np.sort(-1.3 * 0.5 * np.linalg.eigvalsh(k_matrix(W1t, w2t, d1, d2)))
    np.testing.assert_allclose(np.sort(ev[order[:M]].real), theory, atol=1e-8)
    assert np.abs(ev[order[M:]]).max() < 1e-8
    assert ev[order[M:]].size == N * M + N - M


def test_blowup_guard_stops_a_finite_time_divergence_with_flips_in_both_layers():
    """40 % flips in both layers (M = 10, N = 15) diverge in finite time; the guard stops the run there."""
    rng = np.random.default_rng(0)
    M, N = 10, 15
    W1t, w2t = teacher(rng, M, N)
    W1 = rng.uniform(-2 / np.sqrt(M), 2 / np.sqrt(M), (N, M))
    w2 = rng.uniform(-2 / np.sqrt(N), 2 / np.sqrt(N), N)
    c = consts(flips(M, 0.4), flips(N, 0.4), W1t.T @ w2t, dt=0.005, blowup=1e3)
    n = 40_000
    st, rec = run(W1, w2, c, n)
    stop = st.diverged[0]
    assert 0 < stop < n
    assert np.linalg.norm(st.W1) > 1e3 * np.linalg.norm(W1) or np.linalg.norm(st.w2) > 1e3 * np.linalg.norm(w2)
    # C stays conserved up to the stop (relative to the weights' scale then)
    C = rec.signed_norm[np.isfinite(rec.signed_norm)]
    assert np.abs(C - C[0]).max() < 1e-6 * max(1.0, np.abs(rec.weights[np.isfinite(rec.loss)]).max() ** 2)


def test_critical_fraction_matches_a_linear_scan():
    W1, w2 = teacher(np.random.default_rng(2), 12, 24)
    for layer, size in (("hidden", 12), ("readout", 24)):
        lam = [np.linalg.eigvalsh(k_matrix(W1, w2, *engine.signs(layer, k / size, 12, 24)))[0] for k in range(size + 1)]
        assert all(np.diff(lam) <= 1e-12)  # one more flip lowers K
        neg = [k for k in range(size + 1) if lam[k] < 0]
        assert engine.critical_fraction(layer, W1, w2) == (neg[0] / size if neg else 1.0)


def _doc(**params):
    return {"name": "t", "family": "curl_descent", "params": params, "run": {"seed": 1}}


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"experiment": "stability", "activation": "tanh"}, "params.activation"),
        ({"experiment": "chaos", "flow": {"dt": 2.0, "duration": 1.0}}, "params.flow.dt"),
        ({"experiment": "saddle_escape", "training": {"samples": [5], "batch": 10}}, "params.training.batch"),
        (
            {"experiment": "saddle_escape", "hidden": 3, "training": {"flipped_readout": [0, 4]}},
            "params.training.flipped_readout",
        ),
        ({"experiment": "stability", "stability": {"alpha": [0.2, 1.5]}}, "params.stability.alpha"),
    ],
)
def test_refusals_name_the_field(params, path):
    with pytest.raises(ScenarioError) as err:
        check(from_dict(_doc(**params)))
    assert err.value.path.startswith(path), err.value.path


def test_build_shares_teachers_across_the_sweep_and_is_seeded():
    s = from_dict(_doc(experiment="stability", inputs=3, hidden=4, seeds=2))
    a, b = build(s), build(s)
    assert len(a.teachers) == 2
    for (W1, w2), (V1, v2) in zip(a.teachers, b.teachers):
        assert np.array_equal(W1, V1) and np.array_equal(w2, v2)
        assert np.linalg.norm(W1) == pytest.approx(2.0) and np.linalg.norm(w2) == pytest.approx(1.0)


def test_chain_adler_period_and_centre(tmp_path):
    """The 1-1-1 chain with d1 = -1: r^2 conserved, the weights' period 2 pi / (eta s^2 sqrt(v*^2 - r^4/4)),
    the loss's period half of it, and a centre at the origin."""
    s = from_dict(
        _doc(
            experiment="chain",
            inputs=1,
            hidden=1,
            chain={"v_star": 1.0, "r2": [1.0, 4.0], "angle": 0.3},
            flow={"dt": 0.005, "duration": 60.0, "samples": 3000},
        )
    )
    from neurodyn.progress import QUIET

    built = build(s)
    ds = engine.simulate(built, QUIET)
    T = 2 * np.pi / (0.5 * np.sqrt(1 - 0.25))
    assert float(ds["period"].sel(r2_below=1.0)) == pytest.approx(T, rel=1e-4)
    assert T == pytest.approx(14.51, abs=0.005)
    # the loss depends on sin 2a: it repeats twice per weight period
    t, loss = ds["t"].values, ds["loss"].sel(r2=1.0).values
    early = t < t[-1] - T / 2
    shifted = np.interp(t[early] + T / 2, t, loss)
    assert np.abs(shifted - loss[early]).max() < 1e-4 * loss.max()
    # and not with a quarter period
    assert np.abs(np.interp(t[early] + T / 4, t, loss) - loss[early]).max() > 0.1 * loss.max()
    assert float(ds["r2_drift"].max()) < 1e-10
    assert float(ds["final_product"].sel(r2_above=4.0)) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(ds["origin_eig_imag"], [-0.5, 0.5], atol=1e-9)
    np.testing.assert_allclose(ds["origin_eig_real"], [0, 0], atol=1e-9)
    np.testing.assert_allclose(ds["origin_eig_gd"], [-0.5, 0.5], atol=1e-9)


def test_q_order_parameter_is_the_authors_ratio():
    w = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 5.0]])  # rows: time
    # Var_t per weight: 1, 0, 1 -> mean 2/3; time means 2, 2, 4 -> variance 8/9
    assert engine.q_order(w) == pytest.approx((2 / 3) / (8 / 9), rel=1e-15)
    assert engine.q_order(np.tile([1.0, 2.0, 4.0], (5, 1))) == 0.0


def test_benettin_exponent_of_a_converging_run_is_zero_and_positive_past_the_hidden_boundary():
    from neurodyn.progress import QUIET

    doc = _doc(
        experiment="chaos",
        inputs=10,
        hidden=20,
        seeds=1,
        flow={"dt": 0.05, "duration": 1000.0, "samples": 200, "projection": True},
        chaos={"layers": ["hidden"], "alpha": [0.0, 0.5], "renorm_every": 1.0},
    )
    ds = engine.simulate(build(from_dict(doc)), QUIET)
    lam = ds["lyapunov"].sel(layer="hidden").values[:, 0]
    assert abs(lam[0]) < 1e-6 and ds["q"].values[0, 0, 0] < 1e-12
    assert ds["lambda_min"].sel(layer="hidden", alpha=0.5).item() < 0
    assert lam[1] > 1e-3 and ds["q"].values[0, 1, 0] > 1.0


def test_flips_in_both_layers_use_the_same_fraction_and_keep_the_stability_criterion():
    d1, d2 = engine.signs("both", 0.25, 8, 12)
    assert d1.tolist() == [-1, -1] + [1] * 6 and d2.tolist() == [-1] * 3 + [1] * 9
    W1t, w2t = teacher(np.random.default_rng(8), 8, 12)
    c = consts(d1, d2, W1t.T @ w2t)
    ev = np.linalg.eigvals(engine.jacobian(W1t, w2t, c, 1e-6))
    n_unstable = int((ev.real > 1e-8).sum())
    assert n_unstable == int((np.linalg.eigvalsh(k_matrix(W1t, w2t, d1, d2)) < 0).sum())


def test_epochs_to_learn_is_the_first_epoch_below_the_threshold():
    from neurodyn.families.curl_descent.dataset import epochs_to_learn

    err = np.array([[0.3, 0.01, 2e-3, 9e-4, 1e-5], [0.3, 0.2, 0.1, 0.05, 0.02]])
    out = epochs_to_learn(err, -3.0)
    assert out[0] == 3 and np.isnan(out[1])


def test_saddle_escape_rules_share_data_start_and_order():
    """GD and the flipped run start from the same weights and see the same examples: with 0 flips twice the
    curves are identical, and the first epoch's errors differ only through the flipped unit."""
    from neurodyn.progress import QUIET

    doc = _doc(
        experiment="saddle_escape",
        inputs=8,
        hidden=3,
        activation="tanh",
        seeds=1,
        training={"samples": [20], "test_samples": 10, "epochs": 4, "flipped_readout": [0, 1]},
    )
    built = build(from_dict(doc))
    a = engine.train_run(built, (20, 0), 0, QUIET)
    b = engine.train_run(built, (20, 0), 0, QUIET)
    c = engine.train_run(built, (20, 0), 1, QUIET)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0][0] == c[0][0] and a[0][1] != c[0][1]
    ds = engine.simulate(built, QUIET)
    assert np.array_equal(ds["train_error"].sel(samples=20, flipped=0, seed=0).values, a[0])


# --- the large-N phase boundary (free probability, neurodyn/families/curl_descent/boundary.py) ---

#: the phase-boundary table of docs/curl_descent.md, printed to 3 decimals (reference data, not used by the package)
PRINTED_C = (0.01, 0.1, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 1.0, 2.0, 10.0)
PRINTED_ALPHA = {
    "hidden": (1.0, 1.0, 1.0, 0.559, 0.317, 0.177, 0.047, 0.005, 0.0, 0.0, 0.0, 0.0),
    "readout": (0.405, 0.245, 0.156, 0.139, 0.126, 0.115, 0.097, 0.084, 0.075, 0.055, 0.029, 0.006),
}


@pytest.mark.parametrize("layer", ["hidden", "readout"])
def test_large_n_critical_fraction_reproduces_the_printed_table(layer):
    got = [round(boundary.critical_alpha(layer, c), 3) for c in PRINTED_C]
    assert got == list(PRINTED_ALPHA[layer])


@pytest.mark.parametrize("layer", ["hidden", "readout"])
@pytest.mark.parametrize("c", [0.3, 0.5, 2.0])
def test_large_n_edge_crosses_zero_at_the_critical_fraction_and_falls_with_alpha(layer, c):
    a = boundary.critical_alpha(layer, c)
    if 0 < a < 1:
        assert abs(boundary.lower_edge(layer, c, a)) < 1e-10
    edges = [boundary.lower_edge(layer, c, x) for x in np.linspace(0.0, 1.0, 41)]
    assert all(np.diff(edges) <= 1e-12)  # one more flip lowers K in the Loewner order


@pytest.mark.parametrize("c", [0.05, 0.2, 0.5, 0.9, 1.0, 3.0])
def test_large_n_edge_closed_forms_at_alpha_0_and_1(c):
    mp = (1 / np.sqrt(c) - 1) ** 2 if c < 1 else 0.0  # lower Marchenko-Pastur edge of W1^T W1 (an atom at 0 if c > 1)
    assert boundary.lower_edge("hidden", c, 1.0) == pytest.approx(mp - 1.0, abs=1e-14)
    assert boundary.lower_edge("hidden", c, 0.0) == pytest.approx(mp + 1.0, abs=1e-14)
    assert boundary.lower_edge("readout", c, 1.0) == pytest.approx(1 - (1 / np.sqrt(c) + 1) ** 2, abs=1e-14)
    # the general (quartic) branch approaches the closed forms at alpha -> 1 continuously (not at alpha -> 0+,
    # where the few flipped neurons leave a small population of their own below the rest)
    if c < 1:
        assert boundary.lower_edge("hidden", c, 1 - 1e-9) == pytest.approx(mp - 1.0, abs=1e-6)
    assert boundary.lower_edge("readout", c, 1 - 1e-9) == pytest.approx(1 - (1 / np.sqrt(c) + 1) ** 2, abs=1e-6)


def test_hidden_boundary_ends_at_c_one_quarter_and_two_thirds():
    # alpha_h = 1: lambda_min = (1/sqrt(c) - 1)^2 - 1 >= 0 iff c <= 1/4, so every fraction is stable there
    assert boundary.lower_edge("hidden", 0.25, 1.0) == 0.0
    assert [boundary.critical_alpha("hidden", c) for c in (0.01, 0.2, 0.25)] == [1.0, 1.0, 1.0]
    assert 0.99 < boundary.critical_alpha("hidden", 0.2501) < 1.0
    # alpha_h -> 0+: the edge of the small flipped population crosses 0 at c = 2/3, not at the alpha = 0 edge
    assert boundary.lower_edge("hidden", 2 / 3 - 1e-3, 1e-9) > 0 > boundary.lower_edge("hidden", 2 / 3 + 1e-3, 1e-9)
    assert 0.0 < boundary.critical_alpha("hidden", 0.66) < 1e-3
    assert [boundary.critical_alpha("hidden", c) for c in (2 / 3, 0.7, 10.0)] == [0.0, 0.0, 0.0]


def test_hidden_exact_eigenvalue_minus_rho_beyond_one_over_c():
    # c > 1: the kernel of W1^T W1 (dimension M - N) meets the flipped inputs once alpha_h > 1/c
    c = 2.0
    assert boundary.lower_edge("hidden", c, 0.6) == -1.0
    assert boundary.lower_edge("hidden", c, 1 / c - 1e-3) > -1.0
    W1, w2 = teacher(np.random.default_rng(0), 40, 20)
    assert np.linalg.eigvalsh(k_matrix(W1, w2, *engine.signs("hidden", 0.6, 40, 20)))[0] == pytest.approx(-1, abs=1e-12)
    assert np.linalg.eigvalsh(k_matrix(W1, w2, *engine.signs("hidden", 0.4, 40, 20)))[0] > -1 + 1e-6


def test_readout_small_c_asymptote():
    # lambda_min ~ 1 + (1 - 2 alpha)/c - 2/sqrt(c) gives alpha_r* ~ 1/2 - sqrt(c) + c/2; the next term is O(c^1.5)
    for c in (1e-2, 1e-3, 1e-4, 1e-5):
        assert abs(boundary.critical_alpha("readout", c) - (0.5 - np.sqrt(c) + c / 2)) < c**1.5
    assert boundary.critical_alpha("readout", 1e-8) < 0.5


def _count_offset(layer, c, alpha, M):
    """Distance above the large-N edge at which the limiting density holds one of M eigenvalues."""
    from scipy.integrate import quad
    from scipy.optimize import brentq

    e = boundary.lower_edge(layer, c, alpha)
    return brentq(lambda d: M * quad(lambda z: boundary.density(layer, c, alpha, z), e, e + d)[0] - 1, 1e-6, 1.0)


@pytest.mark.parametrize(("layer", "c", "alpha"), [("hidden", 1.0, 0.1), ("hidden", 2.0, 0.3), ("readout", 2.0, 0.5)])
def test_large_n_edge_matches_the_smallest_eigenvalue_of_large_teachers(layer, c, alpha):
    # M = 1000 teachers of the family (uniform entries, rescaled; the edge is universal). At a square-root edge
    # the smallest of M eigenvalues sits, up to Tracy-Widom fluctuations of the same order, where the limiting
    # density holds one eigenvalue: that distance (0.01-0.04 here) sets the allowance, twice it for the mean
    # of 3 teachers
    from scipy.linalg import eigvalsh

    M = 1000
    N = int(round(M / c))
    lam = [
        eigvalsh(
            k_matrix(*teacher(np.random.default_rng(seed), M, N), *engine.signs(layer, alpha, M, N)),
            subset_by_index=[0, 0],  # the smallest eigenvalue only (MRRR): a few times faster than all M
            driver="evr",
        )[0]
        for seed in range(3)
    ]
    edge = boundary.lower_edge(layer, c, alpha)
    assert abs(np.mean(lam) - edge) < 2 * _count_offset(layer, c, alpha, M)


@pytest.mark.parametrize(("layer", "c", "alpha"), [("hidden", 0.5, 0.2), ("readout", 0.5, 0.3)])
def test_large_n_density_integrates_to_one(layer, c, alpha):
    from scipy.integrate import quad

    e = boundary.lower_edge(layer, c, alpha)
    top = 1 + (1 / np.sqrt(c) + 1) ** 2  # |K| <= 1 + |W1|^2 at large N
    total, _ = quad(lambda z: boundary.density(layer, c, alpha, z), e - 0.5, top + 0.5, points=[e], limit=500)
    assert total == pytest.approx(1.0, abs=1e-6)
    assert boundary.density(layer, c, alpha, e - 1e-3) < 1e-9 < boundary.density(layer, c, alpha, e + 1e-3)
