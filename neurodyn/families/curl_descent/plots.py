"""Figures of a finished ``curl_descent`` run (from the stored result alone)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.plotting import PALETTE, headless, legend, pyplot, save_figures, slide_figures

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def plot_run(ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
    """Write the figures of :func:`figures` as ``<stem>_<label>.<format>``."""
    headless()
    return save_figures(figures(ds), out_dir, stem)


@slide_figures
def figures(ds: xr.Dataset) -> list[Figure]:
    """Dispatch on the experiment stored in the run."""
    exp = ds.attrs.get("experiment")
    if exp == "stability":
        return [plot_growth(ds, "growth"), plot_boundary(ds, "boundary")]
    if exp == "chain":
        return [plot_chain(ds, "chain")]
    if exp == "chaos":
        return [plot_chaos(ds, "chaos")]
    if exp == "saddle_escape":
        return [plot_saddle(ds, "saddle_escape")]
    return []


def plot_growth(ds: xr.Dataset, label: str) -> Figure:
    """Fitted growth rate of the kicked loss against -2 eta s^2 lambda_min(K); loss traces of the first seed."""
    plt = pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2)
    es2 = ds.attrs["eta"] * ds.attrs["input_variance"]
    for li, layer in enumerate(ds["layer"].values):
        col = PALETTE[li % len(PALETTE)]
        lam = ds["lambda_min"].sel(layer=layer).values.ravel()
        rate = ds["growth_rate"].sel(layer=layer).values.ravel()
        ax0.plot(-2 * es2 * lam, rate, "o", color=col, label=f"{layer} flips")
        for ai, alpha in enumerate(ds["alpha"].values):
            ax1.semilogy(
                ds["t"],
                ds["loss"].sel(layer=layer, alpha=alpha).isel(seed=0),
                color=col,
                alpha=0.3 + 0.7 * ai / max(1, ds.sizes["alpha"] - 1),
                label=f"{layer} flips",
            )
    lo, hi = ax0.get_xlim()
    ax0.plot([lo, hi], [lo, hi], "k--", lw=1, label="theory")
    ax0.axhline(0, color="0.6", lw=0.8)
    ax0.set_xlabel(r"$-2\eta s^2 \lambda_{\min}(K)$")
    ax0.set_ylabel(r"fitted $d \log L / dt$")
    ax0.set_title("kick growth rate")
    legend(ax0)
    ax1.set_xlabel("flow time (1/eta)")
    ax1.set_ylabel("loss")
    ax1.set_title("kicked loss (darker: more flips)")
    return _label(fig, label)


def plot_boundary(ds: xr.Dataset, label: str) -> Figure:
    """Finite-size critical flip fraction against the large-N boundary."""
    plt = pyplot()
    fig, ax = plt.subplots()
    c = ds["c"].values
    for li, layer in enumerate(ds["layer"].values):
        col = PALETTE[li % len(PALETTE)]
        sim = ds["critical_alpha"].sel(layer=layer)
        ax.errorbar(
            c,
            sim.mean("boundary_seed"),
            yerr=sim.std("boundary_seed"),
            fmt="o",
            color=col,
            label=f"{layer}: M = {ds['critical_alpha'].attrs['long_name'].split('M = ')[-1]}",
        )
        if "critical_alpha_large_n" in ds:
            ax.plot(
                c, ds["critical_alpha_large_n"].sel(layer=layer), "--", color=col, label=f"{layer}: large-N boundary"
            )
    ax.set_xscale("log")
    ax.set_xlabel("compression ratio c = M/N")
    ax.set_ylabel(r"critical fraction $\alpha^*$")
    ax.set_title(r"phase boundary: $\lambda_{\min}(K) = 0$")
    legend(ax, where="right")
    return _label(fig, label)


def plot_chain(ds: xr.Dataset, label: str) -> Figure:
    """Trajectories of the 1-1-1 chain in the (w1, w2) plane and the angle against the Adler equation."""
    plt = pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2)
    v = ds.attrs["v_star"]
    x = np.linspace(-3, 3, 400)
    with np.errstate(divide="ignore"):
        ax0.plot(x, np.where(np.abs(x) > 0.05, v / x, np.nan), "k:", lw=1, label="zero loss w1 w2 = v*")
    for i, r2 in enumerate(ds["r2"].values):
        col = PALETTE[i % len(PALETTE)]
        w = ds["w"].isel(r2=i)
        ax0.plot(w.sel(component="w1"), w.sel(component="w2"), color=col, label=f"r² = {r2:g}")
        ax1.plot(ds["t"], ds["angle"].isel(r2=i), color=col, label=f"r² = {r2:g}")
        if "angle_adler" in ds:
            ax1.plot(ds["t"], ds["angle_adler"].isel(r2=i), "k--", lw=1, label="Adler equation")
    ax0.set_xlim(-2.5, 2.5)
    ax0.set_ylim(-2.5, 2.5)
    ax0.set_aspect("equal")
    ax0.set_xlabel("w1")
    ax0.set_ylabel("w2")
    ax0.set_title("flow of the chain (d1 = -1)")
    ax1.set_xlabel("flow time (1/eta)")
    ax1.set_ylabel("angle a (rad)")
    ax1.set_title("phase")
    legend(ax1, where="right")
    return _label(fig, label)


def plot_chaos(ds: xr.Dataset, label: str) -> Figure:
    """Largest Lyapunov exponent and q against the flip fraction, per layer."""
    plt = pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2)
    a = ds["alpha"].values
    for li, layer in enumerate(ds["layer"].values):
        col = PALETTE[li % len(PALETTE)]
        lam = ds["lyapunov"].sel(layer=layer)
        q = ds["q"].sel(layer=layer)
        ax0.errorbar(a, lam.mean("seed"), yerr=lam.std("seed"), fmt="o-", color=col, label=f"{layer} flips")
        ax1.errorbar(a, q.mean("seed"), yerr=q.std("seed"), fmt="o-", color=col, label=f"{layer} flips")
    ax0.axhline(ds.attrs["lyapunov_threshold"], color="0.5", ls="--", lw=1, label="chaos threshold")
    ax0.set_xlabel(r"flip fraction $\alpha$")
    ax0.set_ylabel("largest Lyapunov exponent")
    ax0.set_title("Benettin exponent")
    legend(ax0)
    ax1.set_yscale("symlog", linthresh=1e-6)
    ax1.set_xlabel(r"flip fraction $\alpha$")
    ax1.set_ylabel("q")
    ax1.set_title("q order parameter")
    return _label(fig, label)


def plot_saddle(ds: xr.Dataset, label: str) -> Figure:
    """Training error against epochs (mean over seeds) with and without flipped readout units."""
    plt = pyplot()
    fig, ax = plt.subplots()
    styles = ("-", "--", ":", "-.")
    epoch = ds["epoch"].values
    for pi, P in enumerate(ds["samples"].values):
        col = PALETTE[pi % len(PALETTE)]
        for ki, k in enumerate(ds["flipped"].values):
            err = ds["train_error"].sel(samples=P, flipped=k).mean("seed")
            ax.loglog(
                epoch[1:], err[1:], styles[ki % 4], color=col, label=f"P = {P}, {'GD' if k == 0 else f'{k} flipped'}"
            )
    ax.axhline(10 ** ds.attrs["threshold"], color="0.5", lw=1, label="threshold")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training error")
    ax.set_title("escape from saddles: GD vs rule-flipped readout")
    legend(ax, where="right")
    return _label(fig, label)


def _label(fig: Figure, label: str) -> Figure:
    fig.set_label(label)
    return fig
