"""The ``sync_learners`` result: the engine's arrays as an :class:`xarray.Dataset`, and its summary lines.

Dimensions ``topology``, ``n``, ``k``, ``trial`` (and ``time``, ``mode``, ``batch``, ``learner``,
``coordinate``); every variable and coordinate carries ``units`` and ``long_name``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.families.sync_learners import kernels
from neurodyn.families.sync_learners.losses import DOUBLE_WELL, LOGISTIC
from neurodyn.schema import var_attrs

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.sync_learners.build import SyncBuilt


@dataclass
class Recorded:
    """What the engine recorded for every (topology, n, k) combination (``nt, nn, nk`` leading axes)."""

    #: (n_rec,) times of the trace samples (s)
    times: np.ndarray
    #: (nt, nn, nk, trials, N_COLS + 2) time averages per trial; the last two columns: switch rates
    acc: np.ndarray
    #: (nt, nn, nk, n_rec, N_COLS) traces, mean over trials
    trace: np.ndarray
    #: (nt, nn, nk, n_rec, learners, coordinates) sample trajectories of trial 0
    traj: np.ndarray
    #: (nt, nn, nk, batches) fitted decay rates of the spread's transient
    rate: np.ndarray
    #: (nt, nn, max n) Laplacian eigenvalues, NaN beyond n
    eig: np.ndarray
    #: (nt, nn) connected components
    ncomp: np.ndarray


def make_dataset(built: SyncBuilt, rec: Recorded) -> xr.Dataset:
    """The result of a run: the recorded arrays with their dimensions, units and long names."""
    p, loss, st, labels = built.params, built.loss, built.steps, built.labels
    acc, trace, traj, eig = rec.acc, rec.trace, rec.traj, rec.eig
    ntraj, ndim = traj.shape[-2:]
    nb = rec.rate.shape[-1]
    coords = {
        "topology": labels,
        "n": np.asarray(p.n, dtype=np.int64),
        "k": np.asarray(p.k, dtype=float),
        "trial": np.arange(p.trials),
        "time": rec.times,
        "mode": np.arange(max(p.n)),
        "learner": np.arange(ntraj),
        "coordinate": np.arange(ndim),
        "batch": np.arange(nb),
    }
    cube = ("topology", "n", "k")
    err_name = (
        "squared distance to the nearest minimum"
        if loss.kind_id == DOUBLE_WELL
        else "squared distance to the minimiser"
    )
    data = {
        "spread": (
            cube + ("trial",),
            acc[..., kernels.SPREAD],
            var_attrs("1", "steady-state spread sum_i ||x_i - xbar||^2, time average per trial"),
        ),
        "centroid_error": (
            cube + ("trial",),
            acc[..., kernels.CENTROID_ERR],
            var_attrs("1", f"centroid {err_name}, time average per trial"),
        ),
        "learner_error": (
            cube + ("trial",),
            acc[..., kernels.LEARNER_ERR],
            var_attrs("1", f"mean learner {err_name}, time average per trial"),
        ),
        "spread_t": (
            cube + ("time",),
            trace[..., kernels.SPREAD],
            var_attrs("1", "spread sum_i ||x_i - xbar||^2, mean over trials"),
        ),
        "centroid_error_t": (
            cube + ("time",),
            trace[..., kernels.CENTROID_ERR],
            var_attrs("1", f"centroid {err_name}, mean over trials"),
        ),
        "learner_error_t": (
            cube + ("time",),
            trace[..., kernels.LEARNER_ERR],
            var_attrs("1", f"mean learner {err_name}, mean over trials"),
        ),
        "trajectory": (
            cube + ("time", "learner", "coordinate"),
            traj,
            var_attrs("1", "sample learner trajectories (trial 0)"),
        ),
        "laplacian_eigenvalues": (
            ("topology", "n", "mode"),
            eig,
            var_attrs("1", "graph Laplacian eigenvalues, ascending (NaN beyond n)"),
        ),
        "lambda_2": (("topology", "n"), eig[..., 1], var_attrs("1", "algebraic connectivity lambda_2")),
        "lambda_max": (
            ("topology", "n"),
            np.array([[eig[t, i, n - 1] for i, n in enumerate(p.n)] for t in range(len(labels))]),
            var_attrs("1", "largest Laplacian eigenvalue"),
        ),
        "n_components": (("topology", "n"), rec.ncomp, var_attrs("1", "connected components of the graph")),
    }
    if p.init_spread > 0:
        data["transient_rate"] = (
            cube + ("batch",),
            rec.rate,
            var_attrs("s-1", "decay rate of the mean spread's excess (log-linear fit, 90%..10% of the initial excess)"),
        )
    if loss.kind_id == DOUBLE_WELL:
        data["agreement"] = (
            cube + ("trial",),
            acc[..., kernels.AGREEMENT],
            var_attrs("1", "fraction of learner coordinates in the centroid's well, time average"),
        )
        data["switch_rate"] = (
            cube + ("trial",),
            acc[..., kernels.N_COLS],
            var_attrs("s-1", "well-to-well transitions per learner coordinate (arrival at the opposite minimum)"),
        )
        data["centroid_switch_rate"] = (
            cube + ("trial",),
            acc[..., kernels.N_COLS + 1],
            var_attrs("s-1", "well-to-well transitions of the centroid per coordinate"),
        )
    if loss.kind_id == LOGISTIC:
        data["test_error_learner"] = (
            cube + ("trial",),
            acc[..., kernels.TEST_ERR_LEARNER],
            var_attrs("1", "test error of single learners (mean over learners), time average"),
        )
        data["test_error_centroid"] = (
            cube + ("trial",),
            acc[..., kernels.TEST_ERR_CENTROID],
            var_attrs("1", "test error of the centroid's decision function, time average"),
        )
        data["test_error_learner_t"] = (
            cube + ("time",),
            trace[..., kernels.TEST_ERR_LEARNER],
            var_attrs("1", "test error of single learners, mean over trials"),
        )
        data["test_error_centroid_t"] = (
            cube + ("time",),
            trace[..., kernels.TEST_ERR_CENTROID],
            var_attrs("1", "test error of the centroid, mean over trials"),
        )
        data["test_error_optimum"] = (
            (),
            loss.optimum_test_error,
            var_attrs("1", "test error of the training-loss minimiser w*"),
        )
    ds = xr.Dataset({k: xr.Variable(*v) for k, v in data.items()}, coords=coords)
    ds["time"].attrs = var_attrs("s", "time")
    ds["k"].attrs = var_attrs("s-1", "coupling strength")
    ds["n"].attrs = var_attrs("1", "number of learners")
    ds["topology"].attrs = var_attrs("1", "coupling graph")
    for name in ("trial", "mode", "learner", "coordinate", "batch"):
        ds[name].attrs = var_attrs("1", name)
    ds.attrs.update(
        {
            "loss": loss.kind,
            "lambda_f": float(loss.lam_f),
            "lipschitz": float(loss.lip),
            "sigma": float(p.sigma),
            "noise_correlation": float(p.noise_correlation),
            "d": int(p.d),
            "dt": float(built.run.dt),
            "hessian_eigenvalues": (np.linalg.eigvalsh(loss.hess).tolist() if loss.is_quadratic else []),
            "integrator": p.integrator,
            "burn_in_s": st.stat_start * built.run.dt,
            "stat_samples": int((st.n_steps - st.stat_start) // st.stat_every),
        }
    )
    return ds


def summary(ds: xr.Dataset) -> str:
    """A few lines per (topology, n, k): the spread with its standard error, the theory beside it."""
    lines = []
    for topo in ds["topology"].values:
        for n in ds["n"].values:
            for k in ds["k"].values:
                sel = {"topology": topo, "n": n, "k": k}
                sp = ds["spread"].sel(sel)
                nt = sp.sizes["trial"]
                se = float(sp.std("trial", ddof=1) / np.sqrt(nt)) if nt > 1 else float("nan")
                line = f"  {topo} n={int(n)} k={float(k):g}: spread {float(sp.mean()):.4g} ± {se:.2g}"
                if "spread_theory" in ds:
                    line += f" (exact {float(ds['spread_theory'].sel(sel)):.4g})"
                if "spread_bound" in ds:
                    line += f", bound {float(ds['spread_bound'].sel(sel)):.4g}"
                if "test_error_centroid" in ds:
                    line += (
                        f"; test error learner {float(ds['test_error_learner'].sel(sel).mean()):.4f}"
                        f", centroid {float(ds['test_error_centroid'].sel(sel).mean()):.4f}"
                    )
                lines.append(line)
    if len(lines) > 30:
        lines = lines[:30] + [f"  ... ({len(lines) - 30} more; see neurodyn compare)"]
    return "\n".join(lines)
