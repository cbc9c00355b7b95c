"""Figures of a ``lif_network`` run: spike raster, population rates (with theory), membrane traces.

A long run is texture at full length, so the overview shows a window (the last :data:`DEFAULT_WINDOW`
seconds unless ``neurodyn plot --window`` asks otherwise), stated in the title, with the start of the
analysis window (``record.analysis_start``) marked when it falls inside.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
import yaml

from neurodyn.plotting import (
    PALETTE,
    axis_label,
    headless,
    is_windowed,
    legend,
    save_figures,
    slide_figures,
    time_axis,
    time_window,
)
from neurodyn.quantities import QuantityError, format_quantity, parse_quantity

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: rows of the raster at most; every population is thinned by the same step, so their ratio is kept
RASTER_ROWS = 200
#: time span (s) shown by default: the end of the run, where it is stationary
DEFAULT_WINDOW = 0.5
#: bins of the plotted population rate across the window (its bins are a multiple of the stored ones)
RATE_BINS = 100


def plot_run(ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
    """Write ``<stem>_overview.<format>`` (raster, population rate, traces) into ``out_dir``.

    Returns
    -------
    list of pathlib.Path
        The written files.
    """
    headless()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return save_figures(figures(ds), out_dir, stem)


def _scenario(ds: xr.Dataset) -> dict:
    """The stored scenario document (empty if the file has none or it does not parse)."""
    try:
        doc = yaml.safe_load(str(ds.attrs.get("scenario", "")))
    except yaml.YAMLError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _analysis_start(ds: xr.Dataset) -> float | None:
    """Start (s) of the analysis window, read from the ``window`` attribute ``"[0.2 s, 4 s]"`` of ``rate``."""
    m = re.match(r"\s*\[([^,]+),", str(ds["rate"].attrs.get("window", ""))) if "rate" in ds else None
    try:
        return parse_quantity(m.group(1).strip(), "time") if m else None
    except QuantityError:
        return None


def _thresholds(ds: xr.Dataset, pops: list[str]) -> dict[str, float]:
    """``v_threshold`` (V) of each population, from the stored scenario (missing ones left out)."""
    spec = (_scenario(ds).get("params") or {}).get("populations") or {}
    out = {}
    for name in pops:
        try:
            out[name] = parse_quantity((spec.get(name) or {}).get("v_threshold"), "voltage")
        except QuantityError:
            pass
    return out


def _duration(t: float) -> str:
    """``t`` seconds as ``"500 ms"`` or ``"4 s"``."""
    return format_quantity(t * 1e3, "ms", 3) if t < 1 else format_quantity(t, "s", 3)


@slide_figures
def figures(ds: xr.Dataset) -> list[Figure]:
    """The overview figure (raster, population rate, traces), labelled ``overview``."""
    import matplotlib.pyplot as plt

    has_v = "v" in ds and ds.sizes.get("neuron", 0) > 0
    n_rows = 3 if has_v else 2
    fig, axes = plt.subplots(n_rows, 1, sharex=True, height_ratios=[2.2, 1, 1][:n_rows])
    pops = [str(p) for p in ds["population"].values]
    colors = {name: PALETTE[k % len(PALETTE)] for k, name in enumerate(pops)}
    t_end = float(ds.attrs.get("duration", ds["rate_time"].values[-1] if ds.sizes["rate_time"] else 1.0))
    window = time_window(0.0, t_end, default=DEFAULT_WINDOW)
    shown = (
        f"{_duration(window[0])} to {_duration(window[1])} of {_duration(t_end)}"
        if is_windowed(0.0, t_end, window)
        else f"all {_duration(t_end)}"
    )

    note = _raster(axes[0], ds, pops, colors, window)
    name = str(ds.attrs.get("scenario_name", "")) or "lif_network"
    axes[0].set_title(f"{name}: {shown}" + (f"\n{note}" if note else ""), loc="left")
    _rates(axes[1], ds, pops, colors, window)
    if has_v:
        _traces(axes[2], ds, pops, colors, window)
    start = _analysis_start(ds)
    if start is not None and window[0] < start < window[1]:
        for ax in axes:
            ax.axvline(start, color="0.3", ls=":", lw=1.2, label="analysis start")
        legend(axes[0], where="right")
    for ax in axes:
        time_axis(ax, window)
    for ax in axes[:-1]:
        ax.set_xlabel("")
    fig.set_label("overview")
    return [fig, *_weight_figures(ds)]


def _weight_figures(ds: xr.Dataset) -> list[Figure]:
    """``record.weights``: per plastic group the weight histogram over time (colour: fraction of synapses) and
    the mean with one standard deviation, labelled ``weights`` (none without sampled weights)."""
    import matplotlib.pyplot as plt

    if "weight_hist" not in ds or ds.sizes.get("weight_time", 0) == 0:
        return []
    names = [str(p) for p in ds["plastic_projection"].values]
    unit = str(ds["weight_mean"].attrs.get("units", ""))
    fig, axes = plt.subplots(2, len(names), squeeze=False, sharex=True, height_ratios=[2, 1])
    t = ds["weight_time"].values
    for g, name in enumerate(names):
        hist = ds["weight_hist"].values[:, g, :].astype(float)
        total = hist.sum(axis=1, keepdims=True)
        frac = np.divide(hist, total, out=np.zeros_like(hist), where=total > 0)
        centres = ds["weight_bin_centre"].values[g]
        half = (centres[1] - centres[0]) / 2 if centres.size > 1 else 0.5
        dt = (t[1] - t[0]) / 2 if t.size > 1 else 0.5
        ax = axes[0, g]
        # the first sample (every synapse at its initial weight) would saturate the colour scale
        later = frac[1:] if frac.shape[0] > 1 else frac
        ax.imshow(
            frac.T,
            vmin=0.0,
            vmax=max(float(later.max()), 1e-12),
            origin="lower",
            aspect="auto",
            cmap="viridis",
            extent=(t[0] - dt, t[-1] + dt, centres[0] - half, centres[-1] + half),
        )
        ax.set_title(name, loc="left")
        ax.set_ylabel(axis_label("weight", unit))
        mean, std = ds["weight_mean"].values[:, g], ds["weight_std"].values[:, g]
        ax2 = axes[1, g]
        ax2.plot(t, mean, color=PALETTE[0], label="mean")
        ax2.fill_between(t, mean - std, mean + std, color=PALETTE[0], alpha=0.3, label="± 1 std")
        ax2.set_xlabel(axis_label("time", "s"))
        ax2.set_ylabel(axis_label("weight", unit))
        legend(ax2)
    fig.set_label("weights")
    return [fig]


def _raster(ax: Axes, ds: xr.Dataset, pops: list[str], colors: dict, window: tuple[float, float]) -> str:
    """Spikes of every ``step``-th neuron of each population in ``window``; returns the subsample note."""
    if "spike_time" not in ds:
        ax.text(0.5, 0.5, "spikes not recorded", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
        return ""
    starts = ds["population_start"].values.astype(np.int64)
    sizes = ds["population_size"].values.astype(np.int64)
    t = ds["spike_time"].values
    idx = ds["spike_index"].values.astype(np.int64)
    in_window = (t >= window[0]) & (t <= window[1])
    t, idx = t[in_window], idx[in_window]
    # one step for all populations keeps their true proportion (a 4:1 E/I network shows 4:1)
    step = max(1, int(np.ceil(sizes.sum() / RASTER_ROWS)))
    row0, ticks = 0, []
    for name, start, size in zip(pops, starts, sizes):
        rows = int(np.ceil(size / step))
        sel = (idx >= start) & (idx < start + size) & ((idx - start) % step == 0)
        # top population first: rows count down from the top of the panel
        y = row0 + (idx[sel] - start) // step
        ax.scatter(t[sel], y, s=2.0 if rows > 50 else 6.0, marker="|", color=colors[name], linewidths=0.8)
        ticks.append(row0 + (rows - 1) / 2)
        row0 += rows
        ax.axhline(row0 - 0.5, color="0.8", lw=0.6)
    ax.set_ylim(row0 - 0.5, -0.5)
    ax.set_yticks(ticks, pops)
    for tick, name in zip(ax.get_yticklabels(), pops):
        tick.set_color(colors[name])
    ax.set_ylabel("population")
    if step == 1:
        return "all neurons"
    nth = "th" if step % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(step % 10, "th")
    shown = ", ".join(f"{n} {int(np.ceil(s / step))}/{s}" for n, s in zip(pops, sizes))
    return f"every {step}{nth} neuron ({shown})"


def _rates(ax: Axes, ds: xr.Dataset, pops: list[str], colors: dict, window: tuple[float, float]) -> None:
    """Population rates in bins of a window-relative width, with the theory as dashed lines."""
    rt = ds["rate_time"].values
    bin_width = float(ds["population_rate"].attrs.get("bin_width", rt[1] - rt[0] if rt.size > 1 else 1.0))
    # merge stored bins to a 1-2-5 width near window/RATE_BINS: smooth enough to read, fast enough to see
    target = (window[1] - window[0]) / RATE_BINS
    nice = [m * 10.0**e for e in range(-4, 2) for m in (1, 2, 5)]
    width = max(bin_width, min((w for w in nice if w >= target), default=target))
    merge = max(1, int(round(width / bin_width)))
    sel = (rt >= window[0] - bin_width) & (rt <= window[1] + bin_width)
    n = (int(sel.sum()) // merge) * merge
    top, theory = 0.0, False
    for name in pops:
        raw = ds["population_rate"].sel(population=name).values[sel][:n]
        times = rt[sel][:n]
        if n:
            binned = raw.reshape(-1, merge).mean(axis=1)
            centers = times.reshape(-1, merge).mean(axis=1)
            ax.step(centers, binned, where="mid", color=colors[name], lw=1.4, label=name)
            top = max(top, float(binned.max()))
        if "rate_theory" in ds:
            pred = float(ds["rate_theory"].sel(population=name))
            if np.isfinite(pred):
                ax.axhline(pred, color=colors[name], ls="--", lw=1.2)
                top = max(top, pred)
                theory = True
    if theory:  # one entry for the theory lines: each has its population's colour
        ax.plot([], [], color="0.3", ls="--", lw=1.2, label="theory")
    ax.set_ylim(0, 1.15 * top if top > 0 else 1.0)
    ax.set_ylabel(axis_label("rate", "Hz"))
    ax.text(
        0.01, 0.97, f"{format_quantity(merge * bin_width * 1e3, 'ms', 3)} bins", transform=ax.transAxes,
        va="top", fontsize=11, color="0.3",
    )  # fmt: skip
    legend(ax, where="right")


def _traces(ax: Axes, ds: xr.Dataset, pops: list[str], colors: dict, window: tuple[float, float]) -> None:
    """Recorded membrane potentials in ``window``, named by population, with each threshold dotted."""
    starts = ds["population_start"].values.astype(np.int64)
    sizes = ds["population_size"].values.astype(np.int64)
    t = ds["time"].values
    sel = (t >= window[0]) & (t <= window[1])
    thresholds = _thresholds(ds, pops)
    for q, neuron in enumerate(ds["neuron"].values):
        k = int(np.searchsorted(starts + sizes, int(neuron), side="right"))
        name = pops[min(k, len(pops) - 1)]
        ax.plot(t[sel], ds["v"].isel(neuron=q).values[sel] * 1e3, lw=1.0, color=colors[name], label=name)
    for value in sorted(set(thresholds.values())):
        ax.axhline(value * 1e3, color="0.2", ls="--", lw=1.0, label=r"threshold $V_\mathrm{th}$")
    ax.set_ylabel(axis_label("$V$", "mV"))
    legend(ax, where="right")
