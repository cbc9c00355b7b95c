"""What a finished ``ultralif_network`` run shows: its figures (matplotlib, Agg backend) and the summary
lines printed after ``neurodyn run``. Both read the stored result alone, so they work on any file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.plotting import headless, save_figures

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def figures(ds: xr.Dataset) -> list[Figure]:
    """The figures of the experiment stored in the run."""
    if ds.attrs.get("experiment") == "bounds":
        return figures_bounds(ds)
    return figures_training(ds)


def plot_run(ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
    """Write the figures of :func:`figures` as ``<stem>_<label>.png``."""
    headless()
    return save_figures(figures(ds), out_dir, stem, dpi=110)


def figures_training(ds: xr.Dataset) -> list[Figure]:
    """Training curves, accuracy by neuron model, and (several lambdas) accuracy against spike rate."""
    import matplotlib.pyplot as plt

    figs: list[Figure] = []
    epoch = ds["epoch"].values
    lam0 = ds["sparsity"].values[0]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for m in ds["model"].values:
        for ax, var in zip(axes, ("train_loss", "test_accuracy", "spike_rate")):
            y = ds[var].sel(model=m, sparsity=lam0)
            mu, sd = y.mean("seed").values, y.std("seed").values
            ax.plot(epoch, mu, label=str(m))
            ax.fill_between(epoch, mu - sd, mu + sd, alpha=0.2)
    for ax, var in zip(axes, ("train_loss", "test_accuracy", "spike_rate")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ds[var].attrs.get("long_name", var), fontsize=8)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"{ds.attrs.get('dataset')} T={ds.attrs.get('T')} lambda={lam0:g} (mean ± std over seeds)")
    fig.tight_layout()
    fig.set_label("curves")
    figs.append(fig)

    fig, ax = plt.subplots(figsize=(max(5, 1.1 * ds.sizes["model"] * ds.sizes["sparsity"]), 4))
    acc = ds["final_test_accuracy"]
    width = 0.8 / ds.sizes["sparsity"]
    x = np.arange(ds.sizes["model"])
    for j, lam in enumerate(ds["sparsity"].values):
        a = acc.sel(sparsity=lam)
        sd = a.std("seed", ddof=1).values if ds.sizes["seed"] > 1 else np.zeros(len(x))
        ax.bar(x + j * width, a.mean("seed").values, width, yerr=sd, capsize=3, label=f"lambda={lam:g}")
    ax.set_xticks(x + 0.4 - width / 2, [str(m) for m in ds["model"].values], rotation=30, ha="right", fontsize=8)
    lo = float(np.nanmin(acc.values))
    ax.set_ylim(max(0.0, lo - 0.1), 1.0)
    ax.set_ylabel("final test accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.set_label("accuracy")
    figs.append(fig)

    if ds.sizes["sparsity"] > 1:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for m in ds["model"].values:
            r = ds["spike_rate"].sel(model=m).isel(epoch=-1).mean("seed")
            a = acc.sel(model=m).mean("seed")
            ax.plot(r.values, a.values, "o-", label=str(m))
        ax.set_xlabel("mean hidden spike rate")
        ax.set_ylabel("final test accuracy")
        ax.set_title("sparsity penalty lambda: accuracy vs activity")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.set_label("sparsity")
        figs.append(fig)
    return figs


def figures_bounds(ds: xr.Dataset) -> list[Figure]:
    """Measured error against the bound as functions of eps (log axes), and example trajectories."""
    import matplotlib.pyplot as plt

    figs: list[Figure] = []
    eps = ds["eps"].values
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    for pre, name in (("v", "UltraLIF vs max-plus LIF"), ("d", "UltraDLIF vs max-plus diffusion")):
        (line,) = ax.loglog(eps, ds[f"{pre}_error_max"], "o-", label=f"{name}: max error")
        if f"{pre}_error_max_bound" in ds:
            ax.loglog(eps, ds[f"{pre}_error_max_bound"], "--", color=line.get_color(), label="bound steps eps log m")
    ax.loglog(eps, ds["lse_excess_max"], "s-", label="LSE - max (max)")
    if "lse_excess_max_bound" in ds:
        ax.loglog(eps, ds["lse_excess_max_bound"], ":", label="eps log n")
    ax.set_xlabel("eps")
    ax.set_ylabel("error")
    ax.legend(fontsize=7)
    ax = axes[1]
    for var, lab in (
        ("v_ratio_all_max", "UltraLIF, all steps"),
        ("v_ratio_margin_max", "UltraLIF, margin holds"),
        ("v_noreset_ratio_max", "UltraLIF, no reset"),
        ("d_ratio_all_max", "UltraDLIF, all steps"),
        ("d_noreset_ratio_max", "UltraDLIF, no reset"),
    ):
        ax.loglog(eps, ds[var].values, "o-", label=lab)  # NaN where no step satisfies the margin
    ax.axhline(1.0, color="k", lw=1)
    ax.set_xlabel("eps")
    ax.set_ylabel("max error / (t eps log m)")
    ax.legend(fontsize=7)
    ax = axes[2]
    for var, lab in (
        ("v_margin_fail_fraction", "margin fails (UltraLIF)"),
        ("v_violation_fraction", "bound violated (UltraLIF)"),
        ("d_margin_fail_fraction", "margin fails (UltraDLIF)"),
        ("d_violation_fraction", "bound violated (UltraDLIF)"),
    ):
        ax.semilogx(eps, ds[var], "o-", label=lab)
    ax.set_xlabel("eps")
    ax.set_ylabel("fraction of (neuron, step)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.set_label("bounds")
    figs.append(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    step = ds["step"].values
    ax.plot(step, ds["v_example_hard"].isel(eps=0), "k-", lw=2, label="max-plus LIF")
    for i, e in enumerate(eps):
        ax.plot(step, ds["v_example_soft"].isel(eps=i), lw=1, label=f"UltraLIF eps={e:g}")
    ax.set_xlabel("step t")
    ax.set_ylabel("pre-spike potential P(t)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.set_label("trajectories")
    figs.append(fig)
    return figs


def summary(ds: xr.Dataset) -> str:
    """The bounds experiment's ratios per eps, or each model's final test accuracy and spike rate."""
    if ds.attrs.get("experiment") == "bounds":
        lines = [
            "max error / (t eps log m), all and margin-holding steps; fractions of (neuron, step)",
            "eps       UltraLIF all  margin  margin-fails  violated   UltraDLIF all  margin",
        ]
        for i, e in enumerate(ds["eps"].values):
            keys = (
                "v_ratio_all_max",
                "v_ratio_margin_max",
                "v_margin_fail_fraction",
                "v_violation_fraction",
                "d_ratio_all_max",
                "d_ratio_margin_max",
            )
            v = {k: float(ds[k][i]) for k in keys}
            lines.append(
                f"{e:<8.3g} {v['v_ratio_all_max']:13.3f} {v['v_ratio_margin_max']:7.3f} "
                f"{v['v_margin_fail_fraction']:13.3f} {v['v_violation_fraction']:9.3f} "
                f"{v['d_ratio_all_max']:14.3f} {v['d_ratio_margin_max']:7.3f}"
            )
        return "\n".join(lines)
    acc = ds["final_test_accuracy"]
    lines = [
        f"final test accuracy ({ds.attrs.get('dataset')}, T={ds.attrs.get('T')}, "
        f"{ds.sizes['seed']} seed(s), mean ± std):"
    ]
    for lam in ds["sparsity"].values:
        for m in ds["model"].values:
            a = acc.sel(model=m, sparsity=lam).values
            rate = float(ds["spike_rate"].sel(model=m, sparsity=lam).isel(epoch=-1).mean())
            sd = f" ± {a.std(ddof=1):.4f}" if a.size > 1 else ""
            lines.append(f"  {m:22s} lambda={lam:<5g} {a.mean():.4f}{sd}   spike rate {rate:.3f}")
    return "\n".join(lines)
