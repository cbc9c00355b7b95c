"""Figures of a ``sync_learners`` run (matplotlib, Agg): spread vs k, error vs n, trajectories, transients."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.plotting import headless, save_figures

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

Z95 = 1.959963984540054


def _mean_ci(da: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    m = da.mean("trial")
    ci = Z95 * da.std("trial", ddof=1) / np.sqrt(da.sizes["trial"]) if da.sizes["trial"] > 1 else 0 * m
    return m, ci


def plot_run(ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
    """Write the figures of :func:`figures` as ``<stem>_<label>.png`` and return their paths."""
    headless()
    return save_figures(figures(ds), out_dir, stem, dpi=110)


def figures(ds: xr.Dataset) -> list[Figure]:
    """The figures that make sense for this run's dimensions, each labelled with its file suffix."""
    import matplotlib.pyplot as plt

    figs: list[Figure] = []
    topologies = [str(t) for t in ds["topology"].values]
    colors = {t: f"C{i % 10}" for i, t in enumerate(topologies)}

    if ds.sizes["k"] > 1:
        ns = ds["n"].values
        fig, axes = plt.subplots(1, len(ns), figsize=(5.5 * len(ns), 4.2), squeeze=False)
        for ax, n in zip(axes[0], ns):
            for t in topologies:
                sel = {"topology": t, "n": n}
                m, ci = _mean_ci(ds["spread"].sel(sel))
                k = ds["k"].values
                ax.errorbar(k, m, yerr=ci, fmt="o", color=colors[t], ms=4, capsize=2, label=f"{t} simulated")
                kk, exact, bound = _curves(ds, t, n)
                if exact is not None:
                    ax.plot(kk, exact, "-", color=colors[t], lw=1.2, label=f"{t} exact")
                if bound is not None:
                    ax.plot(kk, bound, "--", color=colors[t], lw=1, alpha=0.8, label=f"{t} lambda_2 bound")
            ax.set_xscale("symlog", linthresh=max(1e-3, float(np.min(k[k > 0])) if np.any(k > 0) else 1.0))
            ax.set_yscale("log")
            ax.set_xlabel("coupling k (1/s)")
            ax.set_ylabel("steady-state spread  sum_i ||x_i - xbar||^2")
            ax.set_title(f"n = {int(n)}")
        axes[0, -1].legend(fontsize=7, ncol=1 if len(topologies) < 4 else 2)
        fig.tight_layout()
        fig.set_label("spread_vs_k")
        figs.append(fig)

    if ds.sizes["n"] > 1:
        logistic = "test_error_centroid" in ds
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        n = ds["n"].values
        for t in topologies:
            for ki, k in enumerate(ds["k"].values):
                sel = {"topology": t, "k": k}
                style = dict(color=colors[t], alpha=0.45 + 0.55 * (ki + 1) / ds.sizes["k"])
                names = (
                    ("test_error_centroid", "test_error_learner") if logistic else ("centroid_error", "learner_error")
                )
                for ax, name in zip(axes, names):
                    m, ci = _mean_ci(ds[name].sel(sel))
                    ax.errorbar(n, m, yerr=ci, fmt="o-", ms=3, capsize=2, label=f"{t}, k={k:g}", **style)
                    if f"{name}_theory" in ds:
                        ax.plot(n, ds[f"{name}_theory"].sel(sel), ":", color=colors[t], lw=1)
        for ax, name in zip(axes, ("centroid", "single learner")):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("number of learners n")
            ax.set_ylabel(f"{name} {'test error' if logistic else 'squared error'}")
            if logistic and "test_error_centroid_bound" in ds:
                ax.axhline(
                    float(ds["test_error_centroid_bound"].max()), color="k", lw=0.8, ls="--", label="Bayes error"
                )
            if logistic and "test_error_optimum" in ds:
                ax.axhline(float(ds["test_error_optimum"]), color="gray", lw=0.8, ls="-.", label="minimiser w*")
        axes[0].set_title("centroid" + ("" if logistic else " (dotted: exact OU)"))
        axes[1].set_title("single learners")
        axes[1].legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.set_label("error_vs_n")
        figs.append(fig)

    # sample trajectories: first topology and n, smallest and largest k
    if ds.sizes["learner"] > 0:
        ks = sorted({float(ds["k"].values[0]), float(ds["k"].values[-1])})
        rows = len(topologies[:3])
        fig, axes = plt.subplots(rows, len(ks), figsize=(5 * len(ks), 2.6 * rows), squeeze=False, sharex=True)
        time = ds["time"].values
        for r, t in enumerate(topologies[:3]):
            for c, k in enumerate(ks):
                ax = axes[r, c]
                traj = ds["trajectory"].sel(topology=t, k=k).isel(n=-1, coordinate=0)
                for a in range(traj.sizes["learner"]):
                    ax.plot(time, traj.isel(learner=a), lw=0.7)
                ax.set_title(f"{t}, n={int(ds['n'].values[-1])}, k={k:g}", fontsize=9)
                ax.set_ylabel("x_i[0]")
        for ax in axes[-1]:
            ax.set_xlabel("time (s)")
        fig.tight_layout()
        fig.set_label("trajectories")
        figs.append(fig)

    if "switch_rate" in ds and ds.sizes["k"] > 1:
        fig, ax = plt.subplots(figsize=(5.5, 4.2))
        k = ds["k"].values
        for t in topologies:
            sel = {"topology": t}
            m, ci = _mean_ci(ds["switch_rate"].sel(sel).isel(n=-1))
            ax.errorbar(k, m, yerr=ci, fmt="o-", color=colors[t], ms=4, capsize=2, label=f"{t} learners")
            m, ci = _mean_ci(ds["centroid_switch_rate"].sel(sel).isel(n=-1))
            ax.errorbar(k, m, yerr=ci, fmt="s--", color=colors[t], ms=3, capsize=2, label=f"{t} centroid")
        if "switch_rate_theory" in ds:
            ax.plot(k, ds["switch_rate_theory"].isel(topology=0, n=-1), "k*", ms=10, label="exact, k = 0")
        ax.set_xscale("symlog", linthresh=float(np.min(k[k > 0])) if np.any(k > 0) else 1.0)
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_xlabel("coupling k (1/s)")
        ax.set_ylabel("well-to-well switches per coordinate (1/s)")
        ax.set_title(f"double well, n = {int(ds['n'].values[-1])}")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.set_label("switch_rate")
        figs.append(fig)

    # spread transients (mean over trials), first n, every k, per topology
    cols = min(len(topologies), 5)
    fig, axes = plt.subplots(1, cols, figsize=(4 * cols, 3.6), squeeze=False)
    for ax, t in zip(axes[0], topologies[:5]):
        for ki, k in enumerate(ds["k"].values):
            ax.plot(ds["time"], ds["spread_t"].sel(topology=t, k=k).isel(n=0), lw=0.8, color=f"C{ki}", label=f"k={k:g}")
            if "spread_bound" in ds:
                ax.axhline(float(ds["spread_bound"].sel(topology=t, k=k).isel(n=0)), color=f"C{ki}", ls="--", lw=0.6)
        ax.set_yscale("log")
        ax.set_xlabel("time (s)")
        ax.set_title(f"{t}: mean spread (dashed: bound)", fontsize=9)
    axes[0, 0].set_ylabel("sum_i ||x_i - xbar||^2")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    fig.set_label("spread_t")
    figs.append(fig)
    return figs


def _curves(ds: xr.Dataset, topology: str, n) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Exact (quadratic) and bound curves on a dense k grid from the stored spectrum and run constants."""
    from neurodyn.families.sync_learners.theory import em_inflation, ou_spread, spread_bound

    k = ds["k"].values
    kmax = float(k.max()) if k.max() > 0 else 1.0
    kmin = float(k[k > 0].min()) if np.any(k > 0) else kmax / 100
    kk = np.concatenate([[0.0] if k.min() == 0 else [], np.geomspace(min(kmin, kmax / 100) / 2, kmax, 120)])
    kk = kk[kk >= k.min()]
    a = ds.attrs
    if "sigma" not in a:  # older files: fall back to the stored values at the simulated k
        exact = ds["spread_theory"].sel(topology=topology, n=n).values if "spread_theory" in ds else None
        bound = ds["spread_bound"].sel(topology=topology, n=n).values if "spread_bound" in ds else None
        return k, exact, bound
    lam = ds["laplacian_eigenvalues"].sel(topology=topology, n=n).values[: int(n)]
    em = a.get("integrator") == "euler_maruyama"
    dt = float(a["dt"]) if em else None
    sigma, rho, d = float(a["sigma"]), float(a["noise_correlation"]), int(a["d"])
    bound = np.array([spread_bound(int(n), d, sigma, float(a["lambda_f"]), lam[1], x, rho) for x in kk])
    if em and np.isfinite(float(a["lipschitz"])):
        bound *= np.array([em_inflation(float(a["lipschitz"]) + x * lam[-1], dt) for x in kk])
    h = np.asarray(a.get("hessian_eigenvalues") or [], dtype=float)
    exact = np.array([ou_spread(lam, h, x, sigma, rho, dt=dt) for x in kk]) if h.size else None
    return kk, exact, bound
