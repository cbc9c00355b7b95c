"""The figures of a finished ``ltc_cfc`` run (matplotlib, slide style); they read the stored result alone."""

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
    if exp == "bounds":
        return [plot_bounds(ds, "bounds")]
    if exp == "closed_form":
        return [plot_closed_form(ds, "closed_form")]
    if exp == "speed":
        return [plot_speed(ds, "speed")]
    if exp == "xor":
        return [plot_xor(ds, "xor")]
    return []


def plot_bounds(ds: xr.Dataset, label: str) -> Figure:
    """Neuron 0's trajectory against its box under each solver, and the tightest margins against the sub-step."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2)
    ax = axes[0]
    head = "sigmoid" if "sigmoid" in ds["head"].values else str(ds["head"].values[0])
    sel = ds.sel(head=head)
    t = ds["sample_time"].values
    L0 = int(ds["unfolds"].values[0])
    ax.axhspan(float(sel["trace_lo"]), float(sel["trace_hi"]), color="0.9", label="Theorem 2 box")
    ax.plot(t, sel["trace_adaptive"].values, "-", color=PALETTE[0], label="adaptive DOP853")
    ax.plot(t, sel["trace_fused"].values, "--", color=PALETTE[2], label=f"fused, L = {L0}")
    ax.plot(t, sel["trace_euler"].values, ":", color=PALETTE[1], label=f"explicit Euler, L = {L0}")
    span = float(sel["trace_hi"] - sel["trace_lo"])
    ax.set_ylim(float(sel["trace_lo"]) - 0.6 * span, float(sel["trace_hi"]) + 0.6 * span)
    ax.set_xlabel("time")
    ax.set_ylabel("$x_0$")
    ax.set_title(f"{head} head: one neuron")
    legend(ax, where="below", ncol=2, fontsize=11)
    ax = axes[1]
    step = ds["max_substep"].values
    checks = ds["checks"]
    for h, head_h in enumerate(ds["head"].values):
        for scheme, marker in (("fused", "o"), ("euler", "s")):
            share = (ds["state_violations"] / checks).sel(head=head_h, scheme=scheme).values
            style = "-" if head_h == "sigmoid" else ":"
            color = PALETTE[2 * h + (scheme == "euler")]
            ax.plot(step, 100 * share, marker=marker, ls=style, color=color, label=f"{head_h}, {scheme}")
    ax.set_xscale("log")
    ax.set_xticks(step, [f"{s:.3g}" for s in step])
    ax.minorticks_off()
    ax.set_xlabel("largest sub-step $\\Delta t$ (longest interval / L)")
    ax.set_ylabel("states outside the box (%)")
    ax.set_title("Theorem 2 box: fixed-step solvers")
    legend(ax, where="below", ncol=2, fontsize=11)
    fig.set_label(label)
    return fig


def plot_closed_form(ds: xr.Dataset, label: str) -> Figure:
    """Error of the closed form against Lemma 1's bound, symmetrised and stated ODE, for every input."""
    plt = pyplot()
    fig, ax = plt.subplots()
    t = ds["time"].values
    bound = ds["lemma_bound"].values
    ax.semilogy(t[1:], bound[1:], "k-", lw=2, label=r"bound $|x_0 - A| e^{-w_\tau t}$")
    for i, k in enumerate(ds["input"].values):
        color = PALETTE[i % len(PALETTE)]
        ax.semilogy(t[1:], ds["error_symmetrised"].sel(input=k).values[1:], "-", color=color, label=f"{k}, symmetrised")
        ax.semilogy(t[1:], ds["error_stated"].sel(input=k).values[1:], "--", color=color, label=f"{k}, stated drive")
    if "constant_error_exact" in ds:
        ax.semilogy(
            t[1:], np.abs(ds["constant_error_exact"].values[1:]), ":", color="0.4", lw=3, label="constant, exact"
        )
    ax.set_xlabel("time")
    ax.set_ylabel(r"$|x(t) - \tilde x(t)|$")
    ax.set_title("CfC closed form vs ODE (Lemma 1)")
    legend(ax, where="right", fontsize=11)
    fig.set_label(label)
    return fig


def plot_speed(ds: xr.Dataset, label: str) -> Figure:
    """Error against wall time per sequence for each solver, and CfC's time."""
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.loglog(ds["fused_time"].values, ds["fused_error"].values, "o-", color=PALETTE[2], label="fused LTC (L)")
    for L, x, y in zip(ds["unfolds"].values, ds["fused_time"].values, ds["fused_error"].values):
        ax.annotate(f"L={int(L)}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=10)
    ax.loglog(
        float(ds["fused_time_at_target"]),
        float(ds["fused_error_at_target"]),
        "*",
        ms=14,
        color=PALETTE[2],
        label=f"fused LTC at L = {int(ds['unfolds_needed'])} (error law)",
    )
    ax.loglog(ds["rk45_time"].values, ds["rk45_error"].values, "s-", color=PALETTE[1], label="adaptive RK45 LTC (rtol)")
    if "scipy_rk45_time_at_target" in ds:
        ax.loglog(
            float(ds["scipy_rk45_time_at_target"]),
            float(ds["scipy_rk45_error_at_target"]),
            "D",
            ms=9,
            color=PALETTE[4],
            label="scipy RK45 LTC (Python step loop)",
        )
    ax.axhline(float(ds.attrs["target_error"]), color="k", ls=":", lw=1, label="target error")
    ax.axvline(float(ds["cfc_time"]), color=PALETTE[0], lw=2, label="CfC (error not a knob)")
    ax.set_xlabel("wall time per sequence (s)")
    ax.set_ylabel(r"max $|x - x_\mathrm{ref}|$")
    ax.set_title("time at equal accuracy")
    legend(ax, where="right")
    fig.set_label(label)
    return fig


def plot_xor(ds: xr.Dataset, label: str) -> Figure:
    """Test accuracy per epoch of every model and encoding."""
    plt = pyplot()
    fig, ax = plt.subplots()
    ep = ds["epoch"].values
    for i, m in enumerate(ds["model"].values):
        for enc, style in zip(ds["encoding"].values, ("-", "--")):
            acc = 100 * ds["test_accuracy"].sel(model=m, encoding=enc).mean("seed").values
            ax.plot(ep, acc, style, color=PALETTE[i % len(PALETTE)], label=f"{m}, {enc}")
    ax.axhline(50, color="0.5", lw=1, ls=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("bit-stream XOR")
    legend(ax, where="right")
    fig.set_label(label)
    return fig
