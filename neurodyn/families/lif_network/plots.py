"""Figures of a ``lif_network`` run: spike raster, population rates (with theory), sampled membrane traces."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.plotting import headless, save_figures

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

#: neurons per population shown in the raster (evenly spaced), so big networks stay readable
RASTER_NEURONS = 100
#: moving-average window of the plotted population rate (s)
SMOOTH = 0.05


def plot_run(ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
    """Write ``<stem>_overview.png`` (raster, population rate, traces) into ``out_dir``.

    Returns
    -------
    list of pathlib.Path
        The written files.
    """
    headless()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return save_figures(figures(ds), out_dir, stem, dpi=110)


def figures(ds: xr.Dataset) -> list[Figure]:
    """The overview figure (raster, population rate, traces), labelled ``overview``."""
    import matplotlib.pyplot as plt

    has_v = "v" in ds
    n_rows = 3 if has_v else 2
    fig, axes = plt.subplots(
        n_rows, 1, figsize=(9, 2.6 * n_rows + 0.6), sharex=True, gridspec_kw={"height_ratios": [2, 1, 1.2][:n_rows]}
    )
    pops = [str(p) for p in ds["population"].values]
    starts = ds["population_start"].values.astype(np.int64)
    sizes = ds["population_size"].values.astype(np.int64)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    ax = axes[0]
    if "spike_time" in ds:
        t = ds["spike_time"].values
        idx = ds["spike_index"].values.astype(np.int64)
        row0 = 0
        for k, (name, start, size) in enumerate(zip(pops, starts, sizes)):
            step = max(1, int(np.ceil(size / RASTER_NEURONS)))
            sel = (idx >= start) & (idx < start + size) & ((idx - start) % step == 0)
            rows = row0 + (idx[sel] - start) // step
            ax.plot(t[sel], rows, "|", ms=2.5, color=colors[k % len(colors)], label=name)
            row0 += int(np.ceil(size / step))
        ax.set_ylabel("neuron (subsampled)")
        ax.set_ylim(-1, max(row0, 1))
        ax.legend(loc="upper right", fontsize=8, markerscale=3)
    else:
        ax.text(0.5, 0.5, "spikes not recorded", ha="center", transform=ax.transAxes)
    title = str(ds.attrs.get("title", ds.attrs.get("scenario_name", "")))
    ax.set_title(textwrap.shorten(title, 140, placeholder=" ..."), fontsize=8)

    ax = axes[1]
    rt = ds["rate_time"].values
    bin_width = float(ds["population_rate"].attrs.get("bin_width", rt[1] - rt[0] if rt.size > 1 else 1.0))
    # at most the trace's length: np.convolve(mode="same") returns the longer of its two inputs
    width = max(1, min(int(round(SMOOTH / bin_width)), ds.sizes["rate_time"]))
    top = 0.0
    for k, name in enumerate(pops):
        c = colors[k % len(colors)]
        raw = ds["population_rate"].sel(population=name).values
        # raw bins (light) can be huge for small synchronous populations; the smoothed rate sets the scale
        smooth = np.convolve(raw, np.ones(width) / width, mode="same")
        ax.plot(rt, raw, lw=0.5, color=c, alpha=0.3)
        ax.plot(rt, smooth, lw=1.2, color=c, label=f"{name} ({SMOOTH * 1e3:g} ms mean)")
        top = max(top, float(np.max(smooth)) if smooth.size else 0.0)
        if "rate_theory" in ds:
            pred = float(ds["rate_theory"].sel(population=name))
            if np.isfinite(pred):
                ax.axhline(pred, color=c, ls="--", lw=1, label=f"{name} theory {pred:.3g} Hz")
                top = max(top, pred)
    ax.set_ylim(0, 1.6 * top if top > 0 else 1.0)
    ax.set_ylabel("population rate (Hz)")
    ax.legend(loc="upper right", fontsize=7, ncol=2)

    if has_v:
        ax = axes[2]
        for q, neuron in enumerate(ds["neuron"].values):
            ax.plot(ds["time"].values, ds["v"].isel(neuron=q).values * 1e3, lw=0.8, label=f"neuron {neuron}")
        ax.set_ylabel("v (mV)")
        ax.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.set_label("overview")
    return [fig]
