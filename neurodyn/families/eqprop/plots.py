"""What a finished ``eqprop`` run shows: its figures (matplotlib, Agg backend) and the summary lines
printed after ``neurodyn run``. Both read the stored result alone, so they work on any file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.plotting import PALETTE, headless, legend, pyplot, save_figures, slide_figures

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def _save(plt, fig, label: str) -> Figure:
    """Label the figure with its file suffix (the slide style lays it out)."""
    fig.set_label(label)
    return fig


def plot_run(ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
    """Write the figures of :func:`figures` as ``<stem>_<label>.<format>``."""
    headless()
    return save_figures(figures(ds), out_dir, stem)


@slide_figures
def figures(ds: xr.Dataset) -> list[Figure]:
    """Dispatch on the experiment stored in the run."""
    exp = ds.attrs.get("experiment")
    if exp == "gradient_theorem":
        return [plot_theorem(ds, "gradient_error")]
    if exp == "bptt_match":
        return [plot_bptt(ds, "ep_vs_bptt")]
    if exp == "train":
        return [plot_training(ds, "training")]
    return []


def plot_theorem(ds: xr.Dataset, label: str) -> Figure:
    """Log-log relative gradient error against beta with slope-1 and slope-2 guides."""
    plt = pyplot()
    fig, ax = plt.subplots()
    beta = ds["beta"].values
    for est, marker in zip(ds["estimator"].values, ("o", "s")):
        err = ds["grad_rel_error"].sel(estimator=est).values
        slope = float(ds["error_slope"].sel(estimator=est))
        ax.loglog(beta, err, marker=marker, label=f"{est} (fitted slope {slope:.2f})")
        k = 1 if est == "one_sided" else 2
        i = int(np.argmax(beta))
        ax.loglog(beta, err[i] * (beta / beta[i]) ** k, "k--" if k == 1 else "k:", lw=1, label=f"slope {k} guide")
    ax.set_xlabel(r"nudging strength $\beta$")
    ax.set_ylabel(r"$\|g_\mathrm{EP} - g_\mathrm{FD}\| \,/\, \|g_\mathrm{FD}\|$")
    ax.set_title("EP gradient vs finite differences")
    legend(ax, where="right")
    return _save(plt, fig, label)


def plot_bptt(ds: xr.Dataset, label: str, n_curves: int = 6) -> Figure:
    """EP updates (dashed) over BPTT gradients (solid) step by step, and the relative RMSE against beta."""
    plt = pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2)
    beta = ds["beta"].values
    b = float(beta[np.argmin(np.abs(np.log(beta / 0.01)))])
    ref = ds["bptt_update"]
    steps = ds["step"].values
    # two synapses of every weight matrix (largest cumulative |update|), each curve scaled to its peak
    # so that the deeper layers' slower, smaller updates are visible too
    groups = ds["param_group"].values if "param_group" in ds else np.full(ref.sizes["param"], "W")
    weight_groups = [g for g in dict.fromkeys(groups) if str(g).startswith("W")]
    pick = []
    for g in weight_groups:
        idx = np.flatnonzero(groups == g)
        order = np.argsort(-np.abs(ref.values[:, idx]).sum(axis=0))
        pick += [(g, i) for i in idx[order[:2]]]
    for j, (g, prm) in enumerate(pick[:n_curves]):
        color = PALETTE[j % len(PALETTE)]
        scale = np.abs(ref.values[:, prm]).max() or 1.0
        ax0.plot(steps, ref.values[:, prm] / scale, color=color, lw=1.5, label=f"{g}[{prm}]")
        ax0.plot(steps, ds["ep_update"].sel(beta=b).values[:, prm] / scale, "--", color=color, lw=1.5)
    ax0.plot([], [], "k-", lw=1.5, label=r"$-$BPTT gradient")
    ax0.plot([], [], "k--", lw=1.5, label=f"EP update, $\\beta={b:g}$")
    legend(ax0, fontsize=10, ncol=2)
    ax0.set_xlabel("step $t$ (EP: into the nudged phase;\nBPTT: back from $T$)")
    ax0.set_ylabel(r"update / peak $|$BPTT$|$")
    ax0.set_title("EP vs BPTT, step by step")
    ax1.loglog(beta, ds["rel_rmse"].values, "o-", label=f"parameters (slope {float(ds['rmse_slope']):.2f})")
    ax1.loglog(beta, ds["rel_rmse_state"].values, "s-", label=f"neurons (slope {float(ds['rmse_state_slope']):.2f})")
    ax1.set_xlabel(r"nudging strength $\beta$")
    ax1.set_ylabel("relative RMSE, EP vs BPTT")
    ax1.set_title(r"agreement vs $\beta$")
    legend(ax1)
    return _save(plt, fig, label)


def plot_training(ds: xr.Dataset, label: str) -> Figure:
    """Train/test error (mean +- std over seeds) of EP and backprop, energy and relaxation steps."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3)
    ep = ds["epoch"].values
    for m, color in zip(ds["rule"].values, PALETTE):
        for var, style in (("test_error", "-"), ("train_error", ":")):
            v = ds[var].sel(rule=m)
            mean, std = v.mean("seed").values, v.std("seed").values
            axes[0].plot(ep, 100 * mean, style, color=color, label=f"{m} {var.split('_')[0]}")
            axes[0].fill_between(ep, 100 * (mean - std), 100 * (mean + std), color=color, alpha=0.2)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("error (%)")
    legend(axes[0], where="below", fontsize=11)
    axes[0].set_title("EP vs backprop")
    for m, color in zip(ds["rule"].values, PALETTE):
        if m == "bp":
            continue
        axes[1].plot(ep, ds["energy"].sel(rule=m).mean("seed").values, color=color, label=m)
        axes[2].plot(
            ep, ds["free_steps"].sel(rule=m).mean("seed").values, color=color, label=f"{m}: free phase (training)"
        )
        axes[2].plot(
            ep, ds["eval_steps"].sel(rule=m).mean("seed").values, "--", color=color, label=f"{m}: test-set relaxation"
        )
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("energy at the free fixed point")
    axes[1].set_title("energy")
    legend(axes[1], where="below", fontsize=11)
    # how far from a fixed point the free phase ended (informative when the step count is fixed)
    twin = axes[2].twinx()
    for m, color in zip(ds["rule"].values, PALETTE):
        if m != "bp":
            twin.semilogy(ep, ds["free_residual"].sel(rule=m).mean("seed").values, ":", color=color)
    twin.set_ylabel(r"free-phase residual $\max|\partial F/\partial s|$ (dotted)")
    twin.spines["right"].set_visible(True)
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("relaxation steps")
    axes[2].set_title("relaxation")
    legend(axes[2], where="below", fontsize=11)
    from matplotlib.ticker import FuncFormatter

    # plain numbers on the log error axis: "93" reads faster than "9.3 x 10^1" on a slide
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0].yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    mark = "o" if ep.size <= 20 else None  # a short run is a few points: show them
    for ax in axes:
        for line in ax.get_lines():
            line.set_marker(mark)
        if ep.size <= 10:
            ax.set_xticks(ep)
        else:
            ax.xaxis.get_major_locator().set_params(integer=True)
    return _save(plt, fig, label)


def summary(ds: xr.Dataset) -> str:
    """A few lines per experiment: gradient errors and slopes, EP-BPTT agreement, or final accuracies."""
    exp = ds.attrs.get("experiment")
    if exp == "gradient_theorem":
        return "\n".join(
            f"  {est}: rel. error {float(ds['grad_rel_error'].sel(estimator=est).max()):.2e} .. "
            f"{float(ds['grad_rel_error'].sel(estimator=est).min()):.2e}, fitted slope "
            f"{float(ds['error_slope'].sel(estimator=est)):.3f}"
            for est in ds["estimator"].values
        )
    if exp == "bptt_match":
        return "\n".join(
            f"  beta={b:g}: rel. RMSE {float(r):.2e} (neurons {float(rs):.2e}), signs agree {100 * float(s):.1f}%"
            for b, r, rs, s in zip(
                ds["beta"].values,
                ds["rel_rmse"].values,
                ds["rel_rmse_state"].values,
                ds["sign_share"].values,
            )
        )
    if exp == "train":
        lines = []
        final = ds["test_error"].isel(epoch=-1)
        for m in ds["rule"].values:
            v = 100 * (1 - final.sel(rule=m).values)
            sd = f" ± {v.std(ddof=1):.2f}" if v.size > 1 else ""
            lines.append(
                f"  {m}: final test accuracy {v.mean():.2f}{sd} % over {v.size} seed(s), "
                f"epoch time {float(ds['epoch_time'].sel(rule=m).median()):.3f} s"
            )
        last = ds.isel(epoch=-1)
        lines.append(
            f"  EP free phase (last epoch): {float(last['free_steps'].mean()):.1f} steps, "
            f"energy at the fixed point {float(last['energy'].mean()):.3f}"
        )
        return "\n".join(lines)
    return ""
