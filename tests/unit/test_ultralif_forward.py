"""Forward dynamics: LSE and sigmoid lemmas, the eps -> 0 limit, UltraDLIF ring symmetry, data."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodyn.families.ultralif_network.build import NetSpec
from neurodyn.families.ultralif_network.data import bin_events, event_orders, generate_events
from neurodyn.families.ultralif_network.engine import loss_and_grad, sigmoid_ratio_max, trajectory
from neurodyn.families.ultralif_network.kernels import lse2, lse3, lse_vec, sigmoid

finite = st.floats(-50.0, 50.0, allow_nan=False)
temps = st.floats(1e-3, 20.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=1, max_size=8), temps)
def test_lse_sandwich(x: list[float], eps: float) -> None:
    """Lemma 3.2: max(x) <= LSE_eps(x) <= max(x) + eps log n (rounding allowance 1e-12 relative)."""
    v = lse_vec(np.asarray(x), eps)
    m = max(x)
    tol = 1e-12 * max(1.0, abs(m))
    assert m - tol <= v <= m + eps * math.log(len(x)) + tol


@settings(max_examples=200, deadline=None)
@given(finite, finite, finite, temps)
def test_lse2_lse3_match_vector_form_and_softmax(a: float, b: float, c: float, eps: float) -> None:
    v2, pa, pb = lse2(a, b, eps)
    v3, qa, qb, qc = lse3(a, b, c, eps)
    assert math.isclose(v2, lse_vec(np.array([a, b]), eps), rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(v3, lse_vec(np.array([a, b, c]), eps), rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(pa + pb, 1.0, rel_tol=1e-12) and math.isclose(qa + qb + qc, 1.0, rel_tol=1e-12)
    assert 0.0 <= pa <= 1.0 and 0.0 <= qc <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.floats(-30.0, 30.0).filter(lambda x: x != 0.0), temps)
def test_sigmoid_heaviside_lemma(x: float, eps: float) -> None:
    """Lemma 5.1: |sigmoid(x/eps) - H(x)| = sigmoid(-|x|/eps) <= exp(-|x|/eps), for the kernel's sigmoid.

    The difference is evaluated as the logistic tail; forming ``1 - sigmoid`` in floating point is
    checked separately to agree within one rounding of 1.
    """
    tail = sigmoid(-abs(x) / eps)
    assert tail <= math.exp(-abs(x) / eps) * (1 + 1e-12)
    assert abs(abs(sigmoid(x / eps) - (1.0 if x > 0 else 0.0)) - tail) <= 2.3e-16


def test_sigmoid_ratio_never_exceeds_one() -> None:
    x = np.random.default_rng(0).uniform(-3, 3, 5000)
    for eps in (2.0, 0.1, 0.01):
        r = sigmoid_ratio_max(x, eps)
        assert 0.5 <= r <= 1.0 + 1e-12  # exact value sigmoid(|x|/eps) in [1/2, 1), up to rounding


def test_stable_lse_does_not_overflow() -> None:
    v, pa, pb = lse2(800.0, 799.0, 0.01)
    assert math.isfinite(v) and math.isclose(v, 800.0, abs_tol=1e-40) and pb < 1e-40


def test_ultra_trajectories_approach_maxplus_lif() -> None:
    """Without reset |P_eps(t) - p(t)| <= t eps log 2 exactly (the pure recursions), and the distance of the
    reset dynamics shrinks as eps -> 0 on a trajectory set far from threshold."""
    rng = np.random.default_rng(1)
    I = rng.uniform(-1, 1, (40, 100))
    p_h, _, _ = trajectory(I, 0.1, 0.9, 0.5, 0.0, False, False, False)
    budget = np.arange(1, 41)[:, None] * math.log(2)
    errs = []
    for eps in (1.0, 0.3, 0.1, 0.03, 0.01):
        p_s, _, _ = trajectory(I, eps, 0.9, 0.5, 0.0, False, False, True)
        e = np.abs(p_s - p_h)
        assert np.all(p_s >= p_h - 1e-12)  # LSE >= max, and the recursion is monotone
        assert np.all(e <= eps * budget + 1e-12)
        errs.append(e.max())
    assert all(a > b for a, b in zip(errs, errs[1:]))
    # with reset, on inputs that keep every neuron below threshold the soft spike is tiny and the
    # distance goes to zero with eps
    I_low = rng.uniform(-1, 0.0, (40, 100))
    p_h, s_h, _ = trajectory(I_low, 0.1, 0.9, 0.5, 0.0, False, True, False)
    assert s_h.max() == 0.0
    d = [np.abs(trajectory(I_low, eps, 0.9, 0.5, 0.0, False, True, True)[0] - p_h).max() for eps in (0.1, 0.03, 0.01)]
    assert d[0] > d[1] > d[2] and d[2] < 0.05


def test_ultradlif_no_reset_obeys_t_eps_log3() -> None:
    rng = np.random.default_rng(2)
    I = rng.uniform(-1, 1, (30, 50))
    p_h, _, _ = trajectory(I, 0.1, 0.9, 0.5, 0.0, True, False, False)
    for eps in (0.5, 0.05):
        p_s, _, _ = trajectory(I, eps, 0.9, 0.5, 0.0, True, False, True)
        assert np.all(np.abs(p_s - p_h) <= np.arange(1, 31)[:, None] * eps * math.log(3) + 1e-12)


def test_ultradlif_ring_periodic_symmetry() -> None:
    """Rotating or reflecting the ring's input rotates or reflects the response (periodic boundary);
    a non-ring permutation does not commute with the dynamics (the coupling is real)."""
    rng = np.random.default_rng(3)
    n = 12
    I = rng.uniform(-1, 1, (25, n))
    for soft in (True, False):
        P, S, _ = trajectory(I, 0.2, 0.9, 0.5, 0.0, True, True, soft)
        for k in (1, 5):
            Pk, _, _ = trajectory(np.roll(I, k, axis=1), 0.2, 0.9, 0.5, 0.0, True, True, soft)
            np.testing.assert_allclose(Pk, np.roll(P, k, axis=1), rtol=0, atol=1e-12)
        Pr, _, _ = trajectory(I[:, ::-1].copy(), 0.2, 0.9, 0.5, 0.0, True, True, soft)
        np.testing.assert_allclose(Pr, P[:, ::-1], rtol=0, atol=1e-12)
    swap = np.arange(n)
    swap[[0, 5]] = [5, 0]
    Ps, _, _ = trajectory(I[:, swap].copy(), 0.2, 0.9, 0.5, 0.0, True, True, True)
    assert np.abs(Ps - P[:, swap]).max() > 1e-3


def test_ultradlif_network_invariant_to_ring_rotation() -> None:
    """Rotating the hidden ring (rows of W1, b1; columns of W_out) leaves the ultradlif network's loss
    unchanged, while an arbitrary permutation changes it; for ultralif any permutation leaves it unchanged."""
    rng = np.random.default_rng(4)
    X = rng.random((5, 6, 4))
    y = rng.integers(0, 3, 5)

    def permuted(spec: NetSpec, p: np.ndarray, perm: np.ndarray) -> np.ndarray:
        q = p.copy()
        n, n_in = spec.sizes[1], spec.sizes[0]
        W = p[: n * n_in].reshape(n, n_in)
        q[: n * n_in] = W[perm].ravel()
        b0 = spec.offs[0, 1]
        q[b0 : b0 + n] = p[b0 : b0 + n][perm]
        wo, n_out = spec.offs[1, 0], spec.sizes[2]
        q[wo : wo + n_out * n] = p[wo : wo + n_out * n].reshape(n_out, n)[:, perm].ravel()
        return q

    rot = np.roll(np.arange(7), 2)
    shuffle = np.array([3, 0, 6, 1, 5, 2, 4])
    for kind, shuffle_invariant in (("ultradlif", False), ("ultralif", True)):
        spec = NetSpec([4, 7, 3], kind)
        p = spec.init(rng, 0.5, 0.9)
        base = loss_and_grad(spec, p, X, y, need_grad=False)[0]
        assert math.isclose(loss_and_grad(spec, permuted(spec, p, rot), X, y, need_grad=False)[0], base, rel_tol=1e-12)
        shuffled = loss_and_grad(spec, permuted(spec, p, shuffle), X, y, need_grad=False)[0]
        assert math.isclose(shuffled, base, rel_tol=1e-12) == shuffle_invariant


def test_event_task_counts_carry_no_class_information() -> None:
    """Binned into one step, every class has the same per-channel statistics; binned into 8 steps a linear
    classifier separates the classes: the task needs T > 1."""
    from sklearn.linear_model import LogisticRegression

    orders = event_orders(4, 6, seed=0)
    assert len({tuple(o) for o in orders}) == 6
    rng = np.random.default_rng(5)
    streams, y = generate_events(1500, 4, 6, orders, 2.0, 0.5, 0.2, 0.5, rng)
    accs = {}
    for T in (1, 8):
        X = bin_events(streams, T, 24).reshape(len(y), -1)
        clf = LogisticRegression(max_iter=2000).fit(X[:1000], y[:1000])
        accs[T] = clf.score(X[1000:], y[1000:])
    assert accs[1] < 1 / 6 + 0.07  # chance level (500 test samples: sd about 0.017)
    assert accs[8] > 0.9


def test_fastmath_within_few_ulp_of_libm() -> None:
    """The vectorisable exp (1 ulp), log1p on [0, 1] and [0, 2] and sigmoid (4 ulp) against NumPy's libm,
    over the ranges used (exp down to the subnormals, log1p with tiny arguments, sigmoid of either sign)."""
    from numba import njit

    from neurodyn.families.ultralif_network.fastmath import fexp, flog1p01, flog1p02, fsigmoid

    @njit(error_model="numpy")
    def apply(code: int, x: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        for i in range(x.size):
            if code == 0:
                out[i] = fexp(x[i])
            elif code == 1:
                out[i] = flog1p01(x[i])
            elif code == 2:
                out[i] = fsigmoid(x[i])
            else:
                out[i] = flog1p02(x[i])
        return out

    from scipy.special import expit

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-750.0, 700.0, 20000), rng.uniform(-2.0, 2.0, 20000), [0.0, -745.2]])
    e = np.concatenate([rng.uniform(0.0, 1.0, 20000), 10.0 ** rng.uniform(-300, 0, 5000), [0.0, 1.0]])
    z = rng.normal(0.0, 30.0, 20000)
    e2 = np.concatenate([rng.uniform(0.0, 2.0, 20000), e])
    for code, arg, ref in ((0, x, np.exp(x)), (1, e, np.log1p(e)), (2, z, expit(z)), (3, e2, np.log1p(e2))):
        ulp = np.spacing(np.maximum(np.abs(ref), 5e-324))
        tol = 1.0 if code == 0 else 4.0
        assert np.max(np.abs(apply(code, arg) - ref) / ulp) <= tol


def test_sparse_and_blas_synaptic_products_agree() -> None:
    """Binary input below the sparsity threshold takes the zero-skipping path, dense input BLAS: both are
    the same products ``inp @ W.T`` and ``DI.T @ inp`` up to rounding."""
    from neurodyn.families.ultralif_network.kernels import SPARSE_FRACTION, _input_current, _weight_grad

    rng = np.random.default_rng(4)
    W = rng.normal(size=(7, 13))
    DI = rng.normal(size=(50, 7))
    for density in (0.1, 0.9):
        assert (density < SPARSE_FRACTION) == (density == 0.1)
        inp = (rng.random((50, 13)) < density).astype(float) * rng.normal(size=(50, 13))
        np.testing.assert_allclose(_input_current(inp, W), inp @ W.T, rtol=0, atol=1e-12)
        np.testing.assert_allclose(_weight_grad(DI, inp), DI.T @ inp, rtol=0, atol=1e-12)
