"""What a finished ``ultralif_network`` run shows: its figures (matplotlib, Agg backend) and the summary
lines printed after ``neurodyn run``. Both read the stored result alone, so they work on any file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.plotting import axis_label, headless, legend, save_figures, slide_figures

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


@slide_figures
def figures(ds: xr.Dataset) -> list[Figure]:
    """The figures of the experiment stored in the run."""
    if ds.attrs.get("experiment") == "bounds":
        return figures_bounds(ds)
    return figures_training(ds)


def plot_run(ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
    """Write the figures of :func:`figures` as ``<stem>_<label>.<format>``."""
    headless()
    return save_figures(figures(ds), out_dir, stem)


def _chance(ds: xr.Dataset) -> float | None:
    """Accuracy of guessing: 1 / number of classes (the last of ``layer_sizes``), or None if unknown."""
    if "layer_sizes" not in ds or ds["layer_sizes"].size == 0:
        return None
    n = int(np.asarray(ds["layer_sizes"].values).reshape(-1)[-1])
    return 1.0 / n if n > 0 else None


def figures_training(ds: xr.Dataset) -> list[Figure]:
    """Training curves, accuracy by neuron model, and (several lambdas) accuracy against spike rate."""
    import matplotlib.pyplot as plt

    figs: list[Figure] = []
    epoch = ds["epoch"].values
    lam0 = ds["sparsity"].values[0]
    chance = _chance(ds)
    panels = (("train_loss", "training loss"), ("test_accuracy", "test accuracy"), ("spike_rate", "hidden spike rate"))
    fig, axes = plt.subplots(1, 3)
    for m in ds["model"].values:
        for ax, (var, _) in zip(axes, panels):
            y = ds[var].sel(model=m, sparsity=lam0)
            mu, sd = y.mean("seed").values, y.std("seed").values
            (line,) = ax.plot(epoch, mu, "o-" if epoch.size <= 20 else "-", label=str(m))
            ax.fill_between(epoch, mu - sd, mu + sd, alpha=0.2, color=line.get_color())
    for ax, (var, title) in zip(axes, panels):
        if epoch.size <= 10:
            ax.set_xticks(epoch)
        else:
            ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
        ax.set_ylabel(axis_label(title, ds[var].attrs.get("units", "")))
        ax.set_title(title)
    if chance is not None:
        axes[1].axhline(chance, color="0.4", ls=":", lw=1.2, label=f"chance {chance:.2g}")
        axes[1].set_ylim(0, 1)
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4))
    fig.suptitle(f"{ds.attrs.get('dataset')}, $T={ds.attrs.get('T')}$, $\\lambda={lam0:g}$ (mean ± std over seeds)")
    fig.set_label("curves")
    figs.append(fig)

    fig, ax = plt.subplots()
    acc = ds["final_test_accuracy"]
    width = 0.8 / ds.sizes["sparsity"]
    x = np.arange(ds.sizes["model"])
    for j, lam in enumerate(ds["sparsity"].values):
        a = acc.sel(sparsity=lam)
        sd = a.std("seed", ddof=1).values if ds.sizes["seed"] > 1 else np.zeros(len(x))
        ax.bar(x + j * width, a.mean("seed").values, width, yerr=sd, capsize=3, label=f"$\\lambda={lam:g}$")
    ax.set_xticks(x + 0.4 - width / 2, [str(m) for m in ds["model"].values], rotation=20, ha="right")
    # from 0 (bar lengths are honest) to 1, with guessing marked: a bar is read against chance, not the axis
    ax.set_ylim(0, 1.0)
    if chance is not None:
        ax.axhline(chance, color="0.2", ls="--", lw=1.4, label=f"chance ({chance:.2g})")
    ax.set_ylabel("final test accuracy")
    ax.set_title(f"final test accuracy by neuron model ({ds.attrs.get('dataset')}, $T={ds.attrs.get('T')}$)")
    legend(ax, where="right")
    fig.set_label("accuracy")
    figs.append(fig)

    if ds.sizes["sparsity"] > 1:
        fig, ax = plt.subplots()
        for m in ds["model"].values:
            r = ds["spike_rate"].sel(model=m).isel(epoch=-1).mean("seed")
            a = acc.sel(model=m).mean("seed")
            ax.plot(r.values, a.values, "o-", label=str(m))
        if chance is not None:
            ax.axhline(chance, color="0.2", ls="--", lw=1.2, label=f"chance ({chance:.2g})")
        ax.set_xlabel(axis_label("mean hidden spike rate", ds["spike_rate"].attrs.get("units", "")))
        ax.set_ylabel("final test accuracy")
        ax.set_title(r"sparsity penalty $\lambda$: accuracy vs activity")
        legend(ax, where="right")
        fig.set_label("sparsity")
        figs.append(fig)
    return figs


def figures_bounds(ds: xr.Dataset) -> list[Figure]:
    """Measured error against the bound as functions of eps (log axes), and example trajectories."""
    import matplotlib.pyplot as plt

    figs: list[Figure] = []
    eps = ds["eps"].values
    fig, axes = plt.subplots(1, 3)
    ax = axes[0]
    for pre, name in (("v", "UltraLIF"), ("d", "UltraDLIF")):
        (line,) = ax.loglog(eps, ds[f"{pre}_error_max"], "o-", label=f"{name} max error")
        if f"{pre}_error_max_bound" in ds:
            ax.loglog(eps, ds[f"{pre}_error_max_bound"], "--", color=line.get_color(), label=f"{name} bound")
    ax.loglog(eps, ds["lse_excess_max"], "s-", label="LSE $-$ max")
    if "lse_excess_max_bound" in ds:
        ax.loglog(eps, ds["lse_excess_max_bound"], ":", label=r"$\varepsilon \log n$")
    ax.set_title("error vs max-plus limit")
    ax.set_ylabel("max error")
    legend(ax, where="below", fontsize=11)
    ax = axes[1]
    for var, lab in (
        ("v_ratio_all_max", "UltraLIF, all steps"),
        ("v_ratio_margin_max", "UltraLIF, margin holds"),
        ("v_noreset_ratio_max", "UltraLIF, no reset"),
        ("d_ratio_all_max", "UltraDLIF, all steps"),
        ("d_noreset_ratio_max", "UltraDLIF, no reset"),
    ):
        ax.loglog(eps, ds[var].values, "o-", label=lab)  # NaN where no step satisfies the margin
    ax.axhline(1.0, color="k", lw=1, label="bound")
    ax.set_title("error / bound")
    ax.set_ylabel(r"max error / $(t\,\varepsilon \log m)$")
    legend(ax, where="below", fontsize=11)
    ax = axes[2]
    for var, lab in (
        ("v_margin_fail_fraction", "margin fails (UltraLIF)"),
        ("v_violation_fraction", "bound violated (UltraLIF)"),
        ("d_margin_fail_fraction", "margin fails (UltraDLIF)"),
        ("d_violation_fraction", "bound violated (UltraDLIF)"),
    ):
        ax.semilogx(eps, ds[var], "o-", label=lab)
    ax.set_title("premise fails")
    ax.set_ylabel("fraction of (neuron, step)")
    ax.set_ylim(-0.02, 1.02)
    legend(ax, where="below", fontsize=11)
    for ax in axes:
        ax.set_xlabel(r"temperature $\varepsilon$")
    fig.set_label("bounds")
    figs.append(fig)

    fig, ax = plt.subplots()
    step = ds["step"].values
    ax.plot(step, ds["v_example_hard"].isel(eps=0), "k-", lw=2.5, label="max-plus LIF")
    for i, e in enumerate(eps):
        ax.plot(step, ds["v_example_soft"].isel(eps=i), lw=1.2, label=f"UltraLIF $\\varepsilon={e:g}$")
    ax.set_xlabel("step $t$")
    ax.set_ylabel("pre-spike potential $P(t)$")
    ax.set_title("one neuron's potential: soft maxima approach the max-plus limit")
    legend(ax, where="right")
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
