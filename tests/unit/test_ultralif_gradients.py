"""Exact BPTT gradients of every neuron kind against central finite differences (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.families.ultralif_network.build import NetSpec
from neurodyn.families.ultralif_network.engine import loss_and_grad
from neurodyn.families.ultralif_network.params import KIND_CODES

CASES = [
    (kind, sur)
    for kind in KIND_CODES
    for sur in (("sigmoid", "atan") if kind in ("lif", "maxplus_lif") else ("sigmoid",))
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny batches: Numba's thread synchronisation would cost more than it saves (and more still on a
    loaded CI machine)."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


def _spec(kind: str, sur: str, smooth: bool = True) -> NetSpec:
    # two hidden layers so gradients also cross a hidden-to-hidden synapse
    return NetSpec([4, 5, 3, 3], kind, surrogate=sur, surrogate_k=10.0 if sur == "sigmoid" else 2.0, smooth=smooth)


def _fd(spec: NetSpec, p: np.ndarray, X: np.ndarray, y: np.ndarray, lam: float, h: float = 1e-6) -> np.ndarray:
    out = np.empty_like(p)
    for k in range(p.size):
        e = np.zeros_like(p)
        e[k] = h
        out[k] = (
            loss_and_grad(spec, p + e, X, y, lam, need_grad=False)[0]
            - loss_and_grad(spec, p - e, X, y, lam, need_grad=False)[0]
        ) / (2 * h)
    return out


def _groups(spec: NetSpec) -> dict[str, np.ndarray]:
    """Indices of each parameter kind: weights, biases, log_eps, tau_param."""
    idx: dict[str, list[int]] = {"W": [], "b": [], "log_eps": [], "tau": []}
    for l in range(spec.n_hidden_layers + 1):
        w0, b0 = spec.offs[l, 0], spec.offs[l, 1]
        n, n_in = spec.sizes[l + 1], spec.sizes[l]
        idx["W"] += range(w0, w0 + n * n_in)
        idx["b"] += range(b0, b0 + n)
        if l < spec.n_hidden_layers:
            idx["log_eps"].append(spec.offs[l, 2])
            idx["tau"].append(spec.offs[l, 3])
    return {k: np.asarray(v) for k, v in idx.items()}


@pytest.mark.parametrize("T", [1, 5])
@pytest.mark.parametrize("kind,sur", CASES)
def test_gradient_matches_finite_differences(kind: str, sur: str, T: int) -> None:
    """Relative error < 1e-5 for weights, biases, eps and tau (the smooth twin for surrogate kinds)."""
    rng = np.random.default_rng(KIND_CODES[kind] * 10 + T)
    spec = _spec(kind, sur)
    p = spec.init(rng, 0.7, 0.9)
    p[spec.offs[0, 2]], p[spec.offs[1, 2]] = np.log(0.6), np.log(1.3)
    p[spec.offs[0, 3]] = 1.5  # tau0 = 0.82 in layer 1, 0.9 in layer 2
    X = rng.random((3, T, 4))
    y = rng.integers(0, 3, 3)
    _, g, _ = loss_and_grad(spec, p, X, y, lam=0.1)
    fd = _fd(spec, p, X, y, 0.1)
    for name, idx in _groups(spec).items():
        if name == "log_eps" and kind in ("lif", "maxplus_lif"):
            # eps does not enter these kinds: both gradients must be exactly zero
            assert np.all(g[idx] == 0.0) and np.allclose(fd[idx], 0.0, atol=1e-12)
            continue
        if kind in ("lif",) and name == "tau" and T == 1:
            # with V(0) = 0 the leak multiplies zero in a single step
            assert np.all(g[idx] == 0.0) and np.allclose(fd[idx], 0.0, atol=1e-12)
            continue
        scale = np.abs(fd[idx]).max()
        assert scale > 1e-9, (name, "finite-difference gradient vanished; the check would be void")
        rel = np.abs(g[idx] - fd[idx]).max() / scale
        assert rel < 1e-5, (kind, sur, T, name, rel)


def test_clamped_eps_gets_no_gradient() -> None:
    """eps = clip(exp(log_eps), eps_lo, eps_hi): outside the range the loss does not depend on log_eps."""
    rng = np.random.default_rng(3)
    spec = _spec("ultralif", "sigmoid")
    p = spec.init(rng, 1.0, 0.9)
    p[spec.offs[0, 2]] = np.log(0.05)  # below eps_lo = 0.1
    X = rng.random((2, 4, 4))
    y = np.array([0, 2])
    _, g, _ = loss_and_grad(spec, p, X, y)
    assert g[spec.offs[0, 2]] == 0.0
    assert g[spec.offs[1, 2]] != 0.0


def test_hard_lif_uses_surrogate_of_hard_trajectory() -> None:
    """With the hard forward pass the loss is piecewise constant in the weights, yet the surrogate gradient
    is non-zero, and it differs between the sigmoid and ATan surrogates."""
    rng = np.random.default_rng(4)
    X = (rng.random((4, 6, 4)) < 0.5).astype(float)
    y = np.array([0, 1, 2, 0])
    grads = {}
    for sur in ("sigmoid", "atan"):
        spec = _spec("lif", sur, smooth=False)
        p = spec.init(np.random.default_rng(5), 1.0, 0.9)
        l0, g, ws = loss_and_grad(spec, p, X, y)
        assert set(np.unique(ws.S[:4])) <= {0.0, 1.0}
        e = np.zeros_like(p)
        e[0] = 1e-7
        assert loss_and_grad(spec, p + e, X, y, need_grad=False)[0] == l0
        grads[sur] = g
        assert np.abs(g[: spec.offs[0, 1]]).max() > 0
    assert not np.allclose(grads["sigmoid"], grads["atan"])


def test_gradient_independent_of_batch_split() -> None:
    """The batch gradient is the mean of per-sample gradients: two half batches average to the full one."""
    rng = np.random.default_rng(6)
    spec = _spec("ultradlif", "sigmoid")
    p = spec.init(rng, 1.0, 0.9)
    X = rng.random((6, 3, 4))
    y = rng.integers(0, 3, 6)
    _, g, _ = loss_and_grad(spec, p, X, y, lam=0.01)
    _, g1, _ = loss_and_grad(spec, p, X[:3], y[:3], lam=0.01)
    _, g2, _ = loss_and_grad(spec, p, X[3:], y[3:], lam=0.01)
    np.testing.assert_allclose(g, 0.5 * (g1 + g2), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "kind,smooth", [("ultralif", False), ("ultradlif", False), ("ultradplif", False), ("lif", True), ("lif", False)]
)
def test_numba_matches_numpy_reference(kind: str, smooth: bool) -> None:
    """The Numba kernels and the independent NumPy implementation agree on loss and gradient."""
    from neurodyn.families.ultralif_network.reference import loss_and_grad_numpy

    rng = np.random.default_rng(7)
    spec = NetSpec([6, 9, 5, 4], kind, smooth=smooth)
    p = spec.init(rng, 0.8, 0.85)
    X = (rng.random((7, 6, 6)) < 0.4).astype(float)
    y = rng.integers(0, 4, 7)
    loss, g, _ = loss_and_grad(spec, p, X, y, lam=0.05)
    loss_np, g_np = loss_and_grad_numpy(spec, p, X, y, lam=0.05)
    assert loss == pytest.approx(loss_np, rel=1e-12)
    np.testing.assert_allclose(g, g_np, rtol=1e-9, atol=1e-12)


def test_result_independent_of_thread_count() -> None:
    """Samples run in parallel but write only their own rows: 1 and 2 threads give identical bits."""
    import numba

    rng = np.random.default_rng(8)
    spec = _spec("ultralif", "sigmoid")
    p = spec.init(rng, 1.0, 0.9)
    X = rng.random((9, 4, 4))
    y = rng.integers(0, 3, 9)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        l1, g1, _ = loss_and_grad(spec, p, X, y, lam=0.1)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        l2, g2, _ = loss_and_grad(spec, p, X, y, lam=0.1)
    finally:
        numba.set_num_threads(before)
    assert l1 == l2
    np.testing.assert_array_equal(g1, g2)
