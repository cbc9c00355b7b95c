"""What a ``cortical_field`` run shows: figures (snapshots as a grid and a GIF, dispersion, spectra, energy,
convergence) and the summary lines printed after a run."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from neurodyn.plotting import (
    axis_label,
    headless,
    legend,
    save_figures,
    slide_figures,
    time_axis,
    time_window,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

#: frames in the animated GIF (evenly spaced over the recorded snapshots)
GIF_FRAMES = 20


def _fig(nrows: int = 1, ncols: int = 1, **kw):
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(nrows, ncols, **kw)


def _label(ax, xlabel: str, ylabel: str, title: str, **kwargs) -> None:
    """Axis labels, title and a deduplicated legend (``kwargs`` go to :func:`neurodyn.plotting.legend`)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    legend(ax, **kwargs)


def _save(plt, fig, label: str) -> Figure:
    """Label the figure with its file suffix (the slide style lays it out)."""
    fig.set_label(label)
    return fig


def _u_label(ds: xr.Dataset) -> str:
    """The field's name and unit, as stored (``long_name``, ``units``), for its colour bars."""
    attrs = ds["u"].attrs
    return axis_label(str(attrs.get("long_name", "field u")), str(attrs.get("units", "")))


def _snapshots(ds: xr.Dataset) -> xr.DataArray:
    u = ds["u"]
    return u.isel(field=0) if "field" in u.dims else u


def _vmax(u: xr.DataArray, idx: np.ndarray) -> float:
    """Symmetric colour limit from the frames after the first (an initial bump would wash out the rest)."""
    later = idx[1:] if len(idx) > 1 else idx
    return float(np.nanmax(np.abs(u.isel(time=later).values))) or 1.0


def plot_snapshot_grid(ds: xr.Dataset, label: str) -> Figure:
    """Eight snapshots evenly spaced in time (two rows of four: a slide's shape) on one symmetric colour scale."""
    u = _snapshots(ds)
    idx = np.unique(np.linspace(0, u.sizes["time"] - 1, 8).astype(int))
    vmax = _vmax(u, idx)
    ncols = min(4, len(idx))
    plt, fig, axes = _fig(-(-len(idx) // ncols), ncols, sharex=True, sharey=True, squeeze=False)
    x_mm, y_mm = ds["x"].values * 1e3, ds["y"].values * 1e3
    for ax, k in zip(axes.flat, idx):
        im = ax.imshow(
            u.isel(time=k).values,
            cmap="RdBu_r",
            vmin=-vmax,
            vmax=vmax,
            origin="lower",
            extent=(x_mm[0], x_mm[-1], y_mm[0], y_mm[-1]),
            interpolation="nearest",
        )
        ax.set_title(f"$t$ = {float(u['time'][k]) * 1e3:.1f} ms")
        ax.set_aspect("equal")
    for ax in axes[-1] if len(idx) % ncols == 0 else axes.flat[len(idx) - ncols : len(idx)]:
        ax.set_xlabel(axis_label("$x$", "mm"))
        ax.xaxis.set_tick_params(labelbottom=True)
    for ax in axes[:, 0]:
        ax.set_ylabel(axis_label("$y$", "mm"))
    for ax in axes.flat[len(idx) :]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.8, label=_u_label(ds))
    return _save(plt, fig, label)


def write_gif(ds: xr.Dataset, path: Path) -> Path | None:
    """Animated GIF of the snapshots (needs pillow; returns None without it)."""
    if importlib.util.find_spec("PIL") is None:
        return None
    from matplotlib.animation import FuncAnimation, PillowWriter

    u = _snapshots(ds)
    idx = np.unique(np.linspace(0, u.sizes["time"] - 1, min(GIF_FRAMES, u.sizes["time"])).astype(int))
    vmax = _vmax(u, idx)
    plt, fig, ax = _fig(figsize=(3.6, 3.2))
    im = ax.imshow(u.isel(time=idx[0]).values, cmap="RdBu_r", vmin=-vmax, vmax=vmax, origin="lower")
    title = ax.set_title("")
    fig.colorbar(im, ax=ax, label=_u_label(ds))

    def frame(k: int):
        im.set_data(u.isel(time=idx[k]).values)
        title.set_text(f"t = {float(u['time'][idx[k]]) * 1e3:.1f} ms")
        return im, title

    anim = FuncAnimation(fig, frame, frames=len(idx), blit=False, cache_frame_data=False)
    anim.save(path, writer=PillowWriter(fps=8), dpi=60)
    plt.close(fig)
    return path


def plot_dispersion(ds: xr.Dataset, label: str) -> Figure:
    """Measured peak frequency against the lattice formula, per mode (and per site model / branch)."""
    plt, fig, ax = _fig()
    k = np.hypot(ds["k_x"].values, ds["k_y"].values)
    order = np.argsort(k)
    meas = ds["dispersion_omega"]
    theo = ds.get("dispersion_omega_theory")
    extra = [d for d in meas.dims if d != "mode"]
    groups = [{}] if not extra else [{extra[0]: i} for i in range(meas.sizes[extra[0]])]
    markers = "osd^v<>"
    for g, sel in enumerate(groups):
        m = meas.isel(sel)
        if extra:
            coord = meas[extra[0]].values[g] if extra[0] in meas.coords else g
            lab = f"{extra[0]} {coord}"
        else:
            lab = "measured (spectral peak)"
        ax.plot(k[order], m.values[order], markers[g % len(markers)], mfc="none", ms=8, label=lab)
        if theo is not None:
            ax.plot(k[order], theo.isel(sel).values[order], "x", color="k", ms=7, label="theory: lattice formula")
    bin_ = float(ds["frequency_bin"])
    _label(
        ax, axis_label("wave number $|k|$", "rad/m"), axis_label(r"frequency $\omega$", "rad/s"), "dispersion relation"
    )
    if ax.get_legend() is not None:  # the resolution the peaks are read at, where the markers are explained
        ax.get_legend().set_title(rf"$\omega$ resolution {bin_:.3g} rad/s")
    return _save(plt, fig, label)


def plot_local_spectrum(ds: xr.Dataset, label: str) -> Figure:
    """Local field spectrum vs the exact Lorentzian sum and the equipartition 1/f law (log-log)."""
    plt, fig, ax = _fig()
    w = ds["omega_local"].values
    ax.loglog(w, ds["local_psd"].values, ".", ms=3, label="simulated (probe-averaged Welch)")
    if "local_psd_lattice_sum" in ds:
        ax.loglog(w, ds["local_psd_lattice_sum"].values, "-", label="exact lattice sum of Lorentzians")
    if "local_psd_equipartition" in ds:
        ax.loglog(w, ds["local_psd_equipartition"].values, "--", label="equipartition 1/f")
    band = ds["spectrum_slope"].attrs.get("band")
    if band is not None:
        for b in band:
            ax.axvline(b, color="0.6", lw=0.8)
    _label(
        ax,
        axis_label(r"frequency $\omega$", "rad/s"),
        r"power spectral density $S(\omega)$",
        f"local spectrum: fitted slope {float(ds['spectrum_slope']):.3f} (grey lines: fit band)",
    )
    return _save(plt, fig, label)


def plot_mode_spectra(ds: xr.Dataset, label: str) -> Figure:
    """Each mode's Welch spectrum against its exact Lorentzian."""
    plt, fig, ax = _fig()
    w = ds["omega"].values
    for m in range(ds.sizes["vmode"]):
        (line,) = ax.loglog(w, ds["mode_psd"].isel(vmode=m).values, ".", ms=2)
        if "mode_psd_lorentzian" in ds:
            ax.loglog(
                w,
                ds["mode_psd_lorentzian"].isel(vmode=m).values,
                "-",
                color=line.get_color(),
                lw=1,
                label=f"({int(ds['vmode_nx'][m])}, {int(ds['vmode_ny'][m])})",
            )
    _label(
        ax,
        axis_label(r"frequency $\omega$", "rad/s"),
        r"mode spectrum $S_k(\omega)$",
        "mode spectra (dots) vs exact Lorentzians (lines)",
        where="right",
        ncol=2 if ds.sizes["vmode"] > 8 else 1,
    )
    if ax.get_legend() is not None:
        ax.get_legend().set_title("mode $(n_x, n_y)$")
    return _save(plt, fig, label)


def plot_energy(ds: xr.Dataset, label: str) -> Figure:
    """Energy parts over time and the relative error of the total."""
    plt, fig, axes = _fig(2, 1, sharex=True)
    t = ds["energy_time"].values
    names = {"energy": "total $H$", "energy_kinetic": "kinetic", "energy_mass": "mass", "energy_gradient": "gradient"}
    for name, text in names.items():
        axes[0].plot(t, ds[name].values, label=text, lw=1.4)
    legend(axes[0], where="right")
    axes[0].set_ylabel(axis_label("energy", str(ds["energy"].attrs.get("units", ""))))
    if "energy_rel_error" in ds:
        axes[1].plot(t, ds["energy_rel_error"].values, lw=1.0, label="relative error")
        if "energy_error_max_bound" in ds:
            b = float(ds["energy_error_max_bound"])
            axes[1].axhline(b, color="#D55E00", ls="--", lw=1.2, label="theory bound")
            axes[1].axhline(-b, color="#D55E00", ls="--", lw=1.2)
        legend(axes[1], where="right")
    axes[1].set_ylabel("$(H - H_0) / H_0$")
    window = time_window(float(t[0]), float(t[-1])) if t.size else (0.0, 1.0)
    for ax in axes:
        time_axis(ax, window)
    axes[0].set_xlabel("")
    axes[0].set_title("energy: its parts and the error of the total")
    return _save(plt, fig, label)


def plot_convergence(ds: xr.Dataset, label: str) -> Figure:
    """Error against the exact continuum solution vs h on log-log axes, with an h^2 guide."""
    plt, fig, ax = _fig()
    h = ds["resolution"].values
    e = ds["continuum_error"].values
    ax.loglog(h * 1e3, e, "o-", label="lattice vs continuum")
    ax.loglog(h * 1e3, e[-1] * (h / h[-1]) ** 2, "--", label="$h^2$ (second order)")
    _label(ax, axis_label("lattice spacing $h$", "mm"), "relative RMS error", "convergence to the continuum")
    return _save(plt, fig, label)


def plot_run(ds: xr.Dataset, out_dir: Path, stem: str) -> list[Path]:
    """Write the figures of :func:`figures` as ``<stem>_<label>.png``, and the snapshots as a GIF."""
    headless()
    out = save_figures(figures(ds), out_dir, stem)
    if "u" in ds:
        gif = write_gif(ds, out_dir / f"{stem}_snapshots.gif")
        if gif is not None:
            out.insert(1, gif)
    return out


@slide_figures
def figures(ds: xr.Dataset) -> list[Figure]:
    """Every figure the run's contents allow, each labelled with its file suffix."""
    out: list[Figure] = []
    if "u" in ds:
        out.append(plot_snapshot_grid(ds, "snapshots"))
    if "dispersion_omega" in ds:
        out.append(plot_dispersion(ds, "dispersion"))
    if "local_psd" in ds:
        out.append(plot_local_spectrum(ds, "spectrum"))
    if "mode_psd" in ds:
        out.append(plot_mode_spectra(ds, "mode_spectra"))
    if "energy" in ds:
        out.append(plot_energy(ds, "energy"))
    if "continuum_error" in ds:
        out.append(plot_convergence(ds, "convergence"))
    return out


def summary(ds: xr.Dataset) -> str:
    """A few lines after ``neurodyn run``: variants, schemes, throughput and the headline measurements."""
    lines = [
        f"variants: {', '.join(map(str, ds.attrs.get('variants', [])))}; schemes: "
        f"{', '.join(ds.attrs.get('schemes', []))}; "
        + ", ".join(f"{r:.3g}" for r in ds.attrs.get("site_updates_per_s", []))
        + " site-updates/s (after the first chunk)"
    ]
    # each headline number with what it measures and, when the run has one, what theory allows
    for name, other in (("energy_error_max", "energy_error_max_bound"), ("spectrum_slope", "spectrum_slope_theory")):
        if name in ds:
            what = ds[name].attrs.get("long_name", name)
            ref = (
                f" ({'bound' if other.endswith('_bound') else 'theory'} {float(ds[other]):.4g})" if other in ds else ""
            )
            lines.append(f"{what}: {float(ds[name]):.4g}{ref}")
    if "pulse_speed" in ds:
        lines.append(
            "pulse_speed (x, y, diagonal): " + ", ".join(f"{v:.4g}" for v in ds["pulse_speed"].values) + " m/s"
        )
    if "convergence_order" in ds:
        lines.append("convergence_order: " + ", ".join(f"{v:.3f}" for v in ds["convergence_order"].values))
    return "\n".join(lines)
