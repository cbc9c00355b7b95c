"""Figures of a ``sync_learners`` run (matplotlib, Agg): spread vs k, error vs n, trajectories, transients."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.plotting import PALETTE, headless, save_figures, slide_figures, time_window

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

Z95 = 1.959963984540054


def _mean_ci(da: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    m = da.mean("trial")
    ci = Z95 * da.std("trial", ddof=1) / np.sqrt(da.sizes["trial"]) if da.sizes["trial"] > 1 else 0 * m
    return m, ci


def plot_run(ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
    """Write the figures of :func:`figures` as ``<stem>_<label>.<format>`` and return their paths."""
    headless()
    return save_figures(figures(ds), out_dir, stem)


#: the quantity every spread figure shows, as the papers write it
SPREAD = r"$\sum_i \|x_i - \bar{x}\|^2$"


def _key(ax, entries: list[tuple[str, dict]], title: str | None = None) -> None:
    """A legend of proxy artists to the right of ``ax``: colours name one thing, line styles another."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], **style) for _, style in entries]
    ax.legend(
        handles,
        [label for label, _ in entries],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
        title=title,
    )


@slide_figures
def figures(ds: xr.Dataset) -> list[Figure]:
    """The figures that make sense for this run's dimensions, each labelled with its file suffix."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    figs: list[Figure] = []
    topologies = [str(t) for t in ds["topology"].values]
    colors = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(topologies)}
    by_topology = [(t, {"color": colors[t], "lw": 2.5}) for t in topologies]

    if ds.sizes["k"] > 1:
        ns = ds["n"].values[:3]  # at most three panels side by side stay legible on a slide
        fig, axes = plt.subplots(1, len(ns), squeeze=False, sharey=True)
        for ax, n in zip(axes[0], ns):
            for t in topologies:
                sel = {"topology": t, "n": n}
                m, ci = _mean_ci(ds["spread"].sel(sel))
                k = ds["k"].values
                ax.errorbar(k, m, yerr=ci, fmt="o", color=colors[t], ms=5, capsize=2)
                kk, exact, bound = _curves(ds, t, n)
                if exact is not None:
                    ax.plot(kk, exact, "-", color=colors[t])
                if bound is not None:
                    ax.plot(kk, bound, "--", color=colors[t], alpha=0.8)
            ax.set_xscale("symlog", linthresh=max(1e-3, float(np.min(k[k > 0])) if np.any(k > 0) else 1.0))
            ax.set_yscale("log")
            ax.set_xlabel(r"coupling $k$ (1/s)")
            ax.set_title(f"$n$ = {int(n)}")
        axes[0, 0].set_ylabel(f"steady-state spread {SPREAD}")
        kinds = [
            ("simulated (95% CI)", {"color": "k", "marker": "o", "ls": ""}),
            ("exact (OU)", {"color": "k", "ls": "-"}),
            (r"$\lambda_2$ bound", {"color": "k", "ls": "--"}),
        ]
        _key(axes[0, -1], by_topology + kinds)
        fig.suptitle("Spread of the learners around their centroid against coupling")
        fig.set_label("spread_vs_k")
        figs.append(fig)

    if ds.sizes["n"] > 1:
        logistic = "test_error_centroid" in ds
        fig, axes = plt.subplots(1, 2, sharey=True)
        n = ds["n"].values
        markers = "os^vD<>"
        for t in topologies:
            for ki, k in enumerate(ds["k"].values):
                sel = {"topology": t, "k": k}
                names = (
                    ("test_error_centroid", "test_error_learner") if logistic else ("centroid_error", "learner_error")
                )
                for ax, name in zip(axes, names):
                    m, ci = _mean_ci(ds[name].sel(sel))
                    ax.errorbar(n, m, yerr=ci, fmt=markers[ki % len(markers)] + "-", ms=5, capsize=2, color=colors[t])
                    if f"{name}_theory" in ds:
                        ax.plot(n, ds[f"{name}_theory"].sel(sel), ":", color=colors[t])
        extra = []
        for ax, name in zip(axes, ("centroid", "single learners")):
            ax.set_xscale("log")
            ax.set_xticks(n, [f"{int(v)}" for v in n])  # the simulated sizes, not log-axis minor labels
            ax.xaxis.set_minor_formatter(NullFormatter())
            if not logistic:  # squared errors span decades; test errors a few per cent
                ax.set_yscale("log")
            ax.set_xlabel(r"number of learners $n$")
            ax.set_title(name)
            if logistic and "test_error_centroid_bound" in ds:
                ax.axhline(float(ds["test_error_centroid_bound"].max()), color="k", lw=1, ls="--")
                extra = [("Bayes error", {"color": "k", "ls": "--"})]
            if logistic and "test_error_optimum" in ds:
                ax.axhline(float(ds["test_error_optimum"]), color="gray", lw=1, ls="-.")
                extra = [*extra[:1], (r"minimiser $w^*$", {"color": "gray", "ls": "-."})]
        axes[0].set_ylabel("test error" if logistic else "squared error")
        by_k = [
            (f"$k$ = {k:g}", {"color": "k", "marker": markers[ki % len(markers)], "ls": "-"})
            for ki, k in enumerate(ds["k"].values)
        ]
        theory = [] if logistic else [("exact OU", {"color": "k", "ls": ":"})]
        _key(axes[1], by_topology + by_k + theory + extra)
        fig.set_label("error_vs_n")
        figs.append(fig)

    # sample trajectories: first topology and n, smallest and largest k
    if ds.sizes["learner"] > 0:
        ks = sorted({float(ds["k"].values[0]), float(ds["k"].values[-1])})
        rows = len(topologies[:2])
        fig, axes = plt.subplots(rows, len(ks), squeeze=False, sharex=True, sharey=True)
        time = ds["time"].values
        window = time_window(float(time[0]), float(time[-1]))
        for r, t in enumerate(topologies[:2]):
            for c, k in enumerate(ks):
                ax = axes[r, c]
                traj = ds["trajectory"].sel(topology=t, k=k).isel(n=-1, coordinate=0)
                for a in range(traj.sizes["learner"]):
                    ax.plot(time, traj.isel(learner=a), lw=0.9)
                ax.set_title(f"{t}, $k$ = {k:g}")
                ax.set_xlim(*window)
            axes[r, 0].set_ylabel("$x_i^{(0)}$")
        for ax in axes[-1]:
            ax.set_xlabel("time (s)")
        fig.suptitle(f"First coordinate of each learner ($n$ = {int(ds['n'].values[-1])})")
        fig.set_label("trajectories")
        figs.append(fig)

    if "switch_rate" in ds and ds.sizes["k"] > 1:
        fig, ax = plt.subplots()
        k = ds["k"].values
        for t in topologies:
            sel = {"topology": t}
            m, ci = _mean_ci(ds["switch_rate"].sel(sel).isel(n=-1))
            ax.errorbar(k, m, yerr=ci, fmt="o-", color=colors[t], ms=5, capsize=2)
            m, ci = _mean_ci(ds["centroid_switch_rate"].sel(sel).isel(n=-1))
            ax.errorbar(k, m, yerr=ci, fmt="s--", color=colors[t], ms=4, capsize=2)
        kinds = [
            ("learners", {"color": "k", "marker": "o", "ls": "-"}),
            ("centroid", {"color": "k", "marker": "s", "ls": "--"}),
        ]
        if "switch_rate_theory" in ds:
            ax.plot(k, ds["switch_rate_theory"].isel(topology=0, n=-1), "k*", ms=12)
            kinds.append(("exact, $k$ = 0", {"color": "k", "marker": "*", "ls": "", "ms": 12}))
        ax.set_xscale("symlog", linthresh=float(np.min(k[k > 0])) if np.any(k > 0) else 1.0)
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_xlabel(r"coupling $k$ (1/s)")
        ax.set_ylabel("well-to-well switches per coordinate (1/s)")
        ax.set_title(f"Double well, $n$ = {int(ds['n'].values[-1])}")
        _key(ax, by_topology + kinds)
        fig.set_label("switch_rate")
        figs.append(fig)

    # spread transients (mean over trials), first n, every k, one panel per topology (at most 6, 3 a row)
    shown = topologies[:6]
    cols = min(len(shown), 3)
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    time = ds["time"].values
    window = time_window(float(time[0]), float(time[-1]))
    k_colors = [PALETTE[i % len(PALETTE)] for i in range(ds.sizes["k"])]
    for ax, t in zip(axes.flat, shown):
        for ki, k in enumerate(ds["k"].values):
            ax.plot(time, ds["spread_t"].sel(topology=t, k=k).isel(n=0), color=k_colors[ki])
            if "spread_bound" in ds:
                ax.axhline(float(ds["spread_bound"].sel(topology=t, k=k).isel(n=0)), color=k_colors[ki], ls="--", lw=1)
        ax.set_yscale("log")
        ax.set_xlim(*window)
        ax.set_title(t)
    for ax in axes.flat[len(shown) :]:
        ax.set_visible(False)
    for c in range(cols):  # the lowest shown panel of each column carries the time axis
        ax = axes[max(r for r in range(rows) if r * cols + c < len(shown)), c]
        ax.tick_params(labelbottom=True)
        ax.set_xlabel("time (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel(SPREAD)
    by_k = [(f"$k$ = {k:g}", {"color": k_colors[ki], "lw": 2.5}) for ki, k in enumerate(ds["k"].values)]
    bound = [("bound", {"color": "k", "ls": "--", "lw": 1})] if "spread_bound" in ds else []
    _key(axes[0, cols - 1], by_k + bound)
    fig.suptitle(f"Mean spread over time ($n$ = {int(ds['n'].values[0])})")
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
