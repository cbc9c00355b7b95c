"""Training experiment: EP and the backprop baseline on scikit-learn's bundled digits."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from neurodyn.errors import SimulationError
from neurodyn.families.eqprop import kernels as K
from neurodyn.families.eqprop.network import Layout, glorot_uniform, make_layout, per_unit_bias_rates
from neurodyn.schema import var_attrs

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.eqprop.params import Data, EqPropParams
    from neurodyn.progress import Progress
    from neurodyn.scenario import Scenario

N_FEATURES = 64
N_CLASSES = 10
#: examples in scikit-learn's bundled digits
N_DIGITS = 1797


def load_data(data: Data) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits scaled to [0, 1], split once (stratified, ``split_seed``), one column per example.

    Returns
    -------
    tuple
        ``X_train (64, n), D_train (10, n) one-hot, y_train (n,), X_test, D_test, y_test``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixel intensities are 0..16
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=data.test_fraction, random_state=data.split_seed, stratify=y)
    return (
        np.ascontiguousarray(Xtr.T),
        _one_hot(ytr),
        ytr.astype(np.int64),
        np.ascontiguousarray(Xte.T),
        _one_hot(yte),
        yte.astype(np.int64),
    )


def _one_hot(y: np.ndarray) -> np.ndarray:
    D = np.zeros((N_CLASSES, y.size))
    D[y, np.arange(y.size)] = 1.0
    return D


def train_ep_epoch(
    X: np.ndarray,
    D: np.ndarray,
    particles: np.ndarray,
    rng: np.random.Generator,
    layout: Layout,
    Wf: np.ndarray,
    bf: np.ndarray,
    p: EqPropParams,
    symmetric: bool,
) -> np.ndarray:
    """One EP epoch; draws the example order and the beta signs from ``rng``; returns per-batch stats."""
    t = p.training
    assert t is not None
    n = X.shape[1]
    perm = rng.permutation(n).astype(np.int64)
    n_batches = n // t.batch_size
    signs = rng.choice(np.array([-1.0, 1.0]), size=n_batches) if t.random_sign else np.ones(n_batches)
    stats = np.zeros((n_batches, 5))
    lr_w = np.asarray(t.lr, dtype=float)
    K.train_epoch(
        X,
        D,
        particles,
        t.persistent,
        perm,
        signs,
        t.batch_size,
        Wf,
        layout.woff,
        bf,
        layout.off,
        lr_w,
        per_unit_bias_rates(layout, t.lr),
        float(t.beta),
        symmetric,
        float(p.eps),
        t.n_free,
        t.n_nudged,
        float(t.tol),
        p.rho_code,
        p.cost_code,
        stats,
    )
    return stats


def bp_epoch(
    X: np.ndarray,
    D: np.ndarray,
    rng: np.random.Generator,
    layout: Layout,
    Wf: np.ndarray,
    bf: np.ndarray,
    p: EqPropParams,
) -> np.ndarray:
    """One backprop epoch in an order drawn from ``rng``; returns per-batch (errors, cost)."""
    t = p.training
    assert t is not None
    rates = t.bp_lr or t.lr
    perm = rng.permutation(X.shape[1]).astype(np.int64)
    stats = np.zeros((X.shape[1] // t.batch_size, 2))
    lr_w = np.asarray(rates, dtype=float)
    K.bp_train_epoch(
        X,
        D,
        perm,
        t.batch_size,
        Wf,
        layout.woff,
        bf,
        layout.off,
        lr_w,
        per_unit_bias_rates(layout, rates),
        p.rho_code,
        p.cost_code,
        stats,
    )
    return stats


def rule_names(p: EqPropParams) -> list[str]:
    """Values of the ``rule`` dimension: ``ep_<estimator>`` per estimator, then ``bp``.

    (Not called ``method``: that name would clash with the keyword of ``Dataset.sel``.)
    """
    t = p.training
    assert t is not None
    return [f"ep_{est}" for est in t.estimators] + (["bp"] if t.backprop else [])


def simulate_training(scenario: Scenario, progress: Progress) -> xr.Dataset:
    """Train EP (each estimator) and backprop for every seed; per-epoch curves and the trained weights.

    Every method starts from the same Glorot-uniform weights for a given seed; each has its own stream
    for the example order (and the beta signs), spawned from the seed.
    """
    p: EqPropParams = scenario.params
    t = p.training
    assert t is not None
    seeds = list(t.seeds) if t.seeds is not None else [int(scenario.run.seed)]
    epochs = int(scenario.run.epochs or t.epochs)
    methods = rule_names(p)
    layout = make_layout(p.layers)
    Xtr, Dtr, ytr, Xte, Dte, yte = load_data(p.data)
    n_train, n_test = Xtr.shape[1], Xte.shape[1]
    n_seen = (n_train // t.batch_size) * t.batch_size
    nM, nS, nE = len(methods), len(seeds), epochs
    curves = {name: np.full((nM, nS, nE), np.nan) for name in CURVES}
    W_out = [np.zeros((nM, nS, layout.layers[k], layout.layers[k + 1])) for k in range(len(p.layers) - 1)]
    b_out = [np.zeros((nM, nS, layout.layers[k])) for k in range(1, len(p.layers))]
    cls = np.zeros(n_test, dtype=np.int64)
    st = np.zeros(n_test, dtype=np.int64)
    # The matrices are small (minibatch 20): BLAS threads cost more than they gain, and a single thread
    # keeps the run reproducible bit for bit whatever the machine's core count.
    blas = threadpool_limits(limits=1, user_api="blas")
    with blas, progress.task(nM * nS * nE, "training", "epoch") as bar:
        for si, seed in enumerate(seeds):
            init_ss, *method_ss = np.random.SeedSequence(seed).spawn(1 + nM)
            W0, b0 = glorot_uniform(layout, np.random.default_rng(init_ss), p.init_gain)
            for mi, method in enumerate(methods):
                Wf, bf = W0.copy(), b0.copy()
                rng = np.random.default_rng(method_ss[mi])
                particles = np.zeros((layout.n_units, n_train))
                test_particles = np.zeros((layout.n_units, n_test))
                for e in range(nE):
                    t0 = time.perf_counter()
                    if method == "bp":
                        stats = bp_epoch(Xtr, Dtr, rng, layout, Wf, bf, p)
                        errors, cost = stats[:, 0], stats[:, 1]
                    else:
                        stats = train_ep_epoch(Xtr, Dtr, particles, rng, layout, Wf, bf, p, method == "ep_symmetric")
                        errors, cost = stats[:, 3], stats[:, 4]
                    curves["epoch_time"][mi, si, e] = time.perf_counter() - t0
                    if not (np.all(np.isfinite(Wf)) and np.all(np.isfinite(bf))):
                        raise SimulationError(
                            f"{method} weights became non-finite at epoch {e + 1} "
                            f"(seed {seed}); lower training.lr (or bp_lr) or beta"
                        )
                    curves["train_error"][mi, si, e] = errors.sum() / n_seen
                    curves["cost"][mi, si, e] = cost.mean()
                    if method == "bp":
                        K.predict_bp(Xte, Wf, layout.woff, bf, layout.off, p.rho_code, p.cost_code, cls)
                    else:
                        curves["free_steps"][mi, si, e] = stats[:, 0].mean()
                        curves["free_residual"][mi, si, e] = stats[:, 1].mean()
                        curves["energy"][mi, si, e] = stats[:, 2].mean()
                        if t.eval_start == "zero":
                            test_particles[:] = 0.0
                        K.predict_ep(
                            Xte,
                            test_particles,
                            Wf,
                            layout.woff,
                            bf,
                            layout.off,
                            float(p.eps),
                            t.eval_steps,
                            float(t.eval_tol),
                            p.rho_code,
                            p.cost_code,
                            512,
                            cls,
                            st,
                        )
                        curves["eval_steps"][mi, si, e] = st.mean()
                    curves["test_error"][mi, si, e] = np.mean(cls != yte)
                    bar.update(1)
                    bar.set(seed=seed, method=method, test_err=f"{curves['test_error'][mi, si, e]:.3f}")
                for k, W in enumerate(layout.weights(Wf)):
                    W_out[k][mi, si] = W
                for k, b in enumerate(layout.biases(bf)):
                    b_out[k][mi, si] = b

    dims3 = ("rule", "seed", "epoch")
    data_vars = {
        name: (dims3, curves[name], var_attrs(units, long_name)) for name, (units, long_name) in CURVES.items()
    }
    for k, W in enumerate(W_out):
        data_vars[f"W_{k}"] = (
            ("rule", "seed", f"unit_{k}", f"unit_{k + 1}"),
            W,
            var_attrs("1", f"trained weights between layers {k} and {k + 1}"),
        )
    for k, b in enumerate(b_out):
        data_vars[f"b_{k + 1}"] = (
            ("rule", "seed", f"unit_{k + 1}"),
            b,
            var_attrs("1", f"trained biases of layer {k + 1}"),
        )
    coords = {"rule": methods, "seed": np.asarray(seeds, dtype=np.int64), "epoch": np.arange(1, nE + 1)}
    ds = xr.Dataset(data_vars, coords=coords)
    ds["rule"].attrs = var_attrs("1", "learning rule: ep_one_sided, ep_symmetric (EP estimators), bp")
    ds["seed"].attrs = var_attrs("1", "seed of the run")
    ds["epoch"].attrs = var_attrs("1", "epoch")
    ds.attrs.update(experiment="train", layers=list(p.layers), n_train=int(n_train), n_test=int(n_test))
    return ds


#: per-epoch curves: name -> (units, long_name); EP-only ones are NaN for backprop
CURVES = {
    "train_error": ("1", "training error (free-phase / forward prediction during the epoch)"),
    "test_error": ("1", "test error at the end of the epoch"),
    "cost": ("1", "mean cost C at the free state (EP) or after the forward pass (backprop)"),
    "epoch_time": ("s", "wall time of the epoch's training (evaluation excluded)"),
    "energy": ("1", "mean energy E at the free fixed point (EP only)"),
    "free_steps": ("1", "mean free-phase relaxation steps per minibatch (EP only)"),
    "free_residual": ("1", "mean largest projected force |dF/ds| after the free phase (EP only)"),
    "eval_steps": ("1", "relaxation steps of the test-set free phase (EP only; start: training.eval_start)"),
}
