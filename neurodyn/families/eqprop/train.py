"""Training experiment: EP and the backprop baseline on scikit-learn's bundled digits."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from threadpoolctl import threadpool_limits

from neurodyn.errors import SimulationError
from neurodyn.families.base import var_attrs
from neurodyn.families.eqprop import kernels as K
from neurodyn.families.eqprop.network import Layout, glorot_uniform, make_layout, per_unit_bias_rates

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.eqprop.params import Data, EqPropParams
    from neurodyn.progress import Progress
    from neurodyn.scenario import Scenario

N_FEATURES = 64
N_CLASSES = 10


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
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=data.test_fraction, random_state=data.split_seed, stratify=y
    )
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
    lr_b: np.ndarray,
) -> np.ndarray:
    """One EP epoch; draws the example order and the beta signs from ``rng``; returns per-batch stats."""
    t = p.training
    assert t is not None
    n = X.shape[1]
    perm = rng.permutation(n).astype(np.int64)
    n_batches = n // t.batch_size
    signs = rng.choice(np.array([-1.0, 1.0]), size=n_batches) if t.random_sign else np.ones(n_batches)
    stats = np.zeros((n_batches, 5))
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
        np.asarray(t.lr, dtype=float),
        lr_b,
        float(t.beta),
        t.estimator == "symmetric",
        float(p.eps),
        t.n_free,
        t.n_nudged,
        float(t.tol),
        p.rho_code,
        p.cost_code,
        stats,
    )
    return stats


def simulate_training(scenario: Scenario, progress: Progress) -> xr.Dataset:
    """Train EP (and backprop) for every seed; per-epoch curves and the trained weights."""
    p: EqPropParams = scenario.params
    t = p.training
    assert t is not None
    seeds = list(t.seeds) if t.seeds is not None else [int(scenario.run.seed)]
    epochs = int(scenario.run.epochs or t.epochs)
    methods = ["ep", "bp"] if t.backprop else ["ep"]
    layout = make_layout(p.layers)
    Xtr, Dtr, ytr, Xte, Dte, yte = load_data(p.data)
    n_train = Xtr.shape[1]
    lr_b = per_unit_bias_rates(layout, t.lr)
    bp_lr = t.bp_lr or t.lr
    bp_lr_b = per_unit_bias_rates(layout, bp_lr)
    nS, nE, nM = len(seeds), epochs, len(methods)
    shape = (nM, nS, nE)
    train_err = np.full(shape, np.nan)
    test_err = np.full(shape, np.nan)
    cost = np.full(shape, np.nan)
    ep_time = np.full(shape, np.nan)
    energy = np.full((nS, nE), np.nan)
    free_steps = np.full((nS, nE), np.nan)
    free_res = np.full((nS, nE), np.nan)
    eval_steps = np.full((nS, nE), np.nan)
    W_out = [np.zeros((nM, nS, layout.layers[k], layout.layers[k + 1])) for k in range(len(p.layers) - 1)]
    b_out = [np.zeros((nM, nS, layout.layers[k])) for k in range(1, len(p.layers))]
    n_batches = n_train // t.batch_size
    # The matrices are small (minibatch 20): BLAS threads cost more than they gain, and a single thread
    # keeps the run reproducible bit for bit whatever the machine's core count.
    with (
        threadpool_limits(limits=1, user_api="blas"),
        progress.task(nM * nS * nE, "training", unit="epoch") as bar,
    ):
        for si, seed in enumerate(seeds):
            init_ss, ep_ss, bp_ss = np.random.SeedSequence(seed).spawn(3)
            W0, b0 = glorot_uniform(layout, np.random.default_rng(init_ss), p.init_gain)
            # EP
            Wf, bf = W0.copy(), b0.copy()
            rng = np.random.default_rng(ep_ss)
            particles = np.zeros((layout.n_units, n_train))
            cls = np.zeros(Xte.shape[1], dtype=np.int64)
            st = np.zeros(Xte.shape[1], dtype=np.int64)
            for e in range(nE):
                t0 = time.perf_counter()
                stats = train_ep_epoch(Xtr, Dtr, particles, rng, layout, Wf, bf, p, lr_b)
                ep_time[0, si, e] = time.perf_counter() - t0
                if not (np.all(np.isfinite(Wf)) and np.all(np.isfinite(bf))):
                    raise SimulationError(
                        f"EP weights became non-finite at epoch {e + 1} (seed {seed}); "
                        "lower training.lr or beta"
                    )
                n_seen = n_batches * t.batch_size
                free_steps[si, e] = stats[:, 0].mean()
                free_res[si, e] = stats[:, 1].mean()
                energy[si, e] = stats[:, 2].mean()
                train_err[0, si, e] = stats[:, 3].sum() / n_seen
                cost[0, si, e] = stats[:, 4].mean()
                K.predict_ep(
                    Xte,
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
                test_err[0, si, e] = np.mean(cls != yte)
                eval_steps[si, e] = st.mean()
                bar.update(1)
                bar.set(seed=seed, ep_test_err=f"{test_err[0, si, e]:.3f}")
            for k, W in enumerate(layout.weights(Wf)):
                W_out[k][0, si] = W
            for k, b in enumerate(layout.biases(bf)):
                b_out[k][0, si] = b
            if not t.backprop:
                continue
            # backprop baseline, same initial weights, its own minibatch order
            Wf, bf = W0.copy(), b0.copy()
            rng = np.random.default_rng(bp_ss)
            for e in range(nE):
                t0 = time.perf_counter()
                perm = rng.permutation(n_train).astype(np.int64)
                stats = np.zeros((n_batches, 2))
                K.bp_train_epoch(
                    Xtr,
                    Dtr,
                    perm,
                    t.batch_size,
                    Wf,
                    layout.woff,
                    bf,
                    layout.off,
                    np.asarray(bp_lr, dtype=float),
                    bp_lr_b,
                    p.rho_code,
                    p.cost_code,
                    stats,
                )
                ep_time[1, si, e] = time.perf_counter() - t0
                train_err[1, si, e] = stats[:, 0].sum() / (n_batches * t.batch_size)
                cost[1, si, e] = stats[:, 1].mean()
                K.predict_bp(Xte, Wf, layout.woff, bf, layout.off, p.rho_code, p.cost_code, cls)
                test_err[1, si, e] = np.mean(cls != yte)
                bar.update(1)
            for k, W in enumerate(layout.weights(Wf)):
                W_out[k][1, si] = W
            for k, b in enumerate(layout.biases(bf)):
                b_out[k][1, si] = b

    dims3 = ("method", "seed", "epoch")
    data_vars = {
        "train_error": (
            dims3,
            train_err,
            var_attrs("1", "training error (free-phase prediction during the epoch)"),
        ),
        "test_error": (dims3, test_err, var_attrs("1", "test error at the end of the epoch")),
        "cost": (dims3, cost, var_attrs("1", "mean cost C at the free state (EP) / forward pass (backprop)")),
        "epoch_time": (dims3, ep_time, var_attrs("s", "wall time of the epoch's training (no evaluation)")),
        "energy": (("seed", "epoch"), energy, var_attrs("1", "mean energy E at the free fixed point")),
        "free_steps": (
            ("seed", "epoch"),
            free_steps,
            var_attrs("1", "mean number of free-phase relaxation steps per minibatch"),
        ),
        "free_residual": (
            ("seed", "epoch"),
            free_res,
            var_attrs("1", "mean largest projected force |dF/ds| at the end of the free phase"),
        ),
        "eval_steps": (
            ("seed", "epoch"),
            eval_steps,
            var_attrs("1", "relaxation steps of the test-set free phase from the zero state"),
        ),
    }
    for k, W in enumerate(W_out):
        data_vars[f"W_{k}"] = (
            ("method", "seed", f"unit_{k}", f"unit_{k + 1}"),
            W,
            var_attrs("1", f"trained weights between layers {k} and {k + 1}"),
        )
    for k, b in enumerate(b_out):
        data_vars[f"b_{k + 1}"] = (
            ("method", "seed", f"unit_{k + 1}"),
            b,
            var_attrs("1", f"trained biases of layer {k + 1}"),
        )
    ds = xr.Dataset(
        data_vars,
        coords={"method": methods, "seed": np.asarray(seeds, dtype=np.int64), "epoch": np.arange(1, nE + 1)},
    )
    ds["method"].attrs = var_attrs("1", "learning rule: ep = equilibrium propagation, bp = backprop")
    ds["seed"].attrs = var_attrs("1", "seed of the run")
    ds["epoch"].attrs = var_attrs("1", "epoch")
    ds.attrs.update(experiment="train", layers=list(p.layers), n_train=int(n_train), n_test=int(Xte.shape[1]))
    return ds
