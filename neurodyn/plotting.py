"""What every family's figures share: one slide-ready style, the plot options, and writing figures to files.

A family builds its figures in ``figures(ds)`` (pyplot figures, each labelled with the suffix of its file
name through :meth:`matplotlib.figure.Figure.set_label`) and writes them in ``plot(ds, out_dir, stem)``
with :func:`save_figures`, so ``neurodyn plot`` and :func:`neurodyn.plot` draw with the same code.

The house style (:data:`STYLE`, applied by :func:`slide_figures`) makes every figure legible on a slide:
16:9 figures of :data:`SLIDE_SIZE` inches written at :data:`DPI`, fonts of at least 12 pt, constrained
layout (titles and labels are never cut off) and the Okabe-Ito colour-blind-safe palette. The options of
``neurodyn plot --format --window`` (and of :func:`neurodyn.plot`) travel to the family code through
:func:`plot_options`: :func:`save_figures` writes the chosen format and :func:`time_window` gives the time
span that every time axis shows.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neurodyn.errors import ScenarioError
from neurodyn.quantities import QuantityError, parse_quantity

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: figure size (inches) of every figure: 16:9, the shape of a slide
SLIDE_SIZE = (10.0, 5.625)
#: resolution (dots per inch) of written raster figures: 1500 x 844 px
DPI = 150
#: the file formats a figure can be written in
FORMATS = ("png", "svg", "pdf")
#: Okabe & Ito (2008) colours, distinguishable with every common colour-vision deficiency
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
#: the rcParams of every neurodyn figure
STYLE = {
    "figure.figsize": SLIDE_SIZE,
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    "figure.constrained_layout.use": True,
    "font.size": 13,
    "axes.titlesize": 14,
    "axes.labelsize": 13,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 12,
    "legend.title_fontsize": 12,
    "figure.titlesize": 15,
    "axes.prop_cycle": f"cycler('color', {list(PALETTE)})",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.6,
    "legend.framealpha": 0.85,
    "image.cmap": "viridis",
}


def headless() -> None:
    """Draw without a display (Agg) unless pyplot is already in use.

    A fresh process (the CLI, a sweep worker) gets Agg, so writing files never needs a window system;
    in a notebook pyplot is already set up with the inline backend, which must stay (switching backends
    would close every open figure).
    """
    if "matplotlib.pyplot" not in sys.modules:
        import matplotlib

        matplotlib.use("Agg")


def pyplot() -> Any:
    """``matplotlib.pyplot``, imported when a figure is first drawn (a run that draws none never loads it)."""
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def slide_style() -> Iterator[None]:
    """Matplotlib settings of :data:`STYLE` while the block runs (figures made inside keep them)."""
    import matplotlib as mpl

    with mpl.rc_context(STYLE):
        yield


def slide_figures(build: Callable[..., list[Figure]]) -> Callable[..., list[Figure]]:
    """Decorate a family's ``figures(ds)``: build them in :func:`slide_style` at :data:`SLIDE_SIZE`.

    A figure that asks for another size (a grid of snapshots) keeps it; every figure is drawn once here
    so constrained layout has placed its titles and labels before it is shown or saved.
    """

    @functools.wraps(build)
    def wrapper(*args, **kwargs) -> list[Figure]:
        with slide_style():
            figures = build(*args, **kwargs)
            for fig in figures:
                fig.set_dpi(STYLE["figure.dpi"])
                fig.canvas.draw()
        return figures

    return wrapper


# ---------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class PlotOptions:
    """What the user asked of the figures: the file ``format`` and the time ``window`` (s) or None."""

    format: str = "png"
    window: tuple[float, float] | None = None


_OPTIONS: ContextVar[PlotOptions] = ContextVar("neurodyn_plot_options", default=PlotOptions())  # noqa: B039 (frozen)

_WINDOW_ALLOWED = "START:STOP, two times with units and START < STOP, e.g. 0.5s:1s or 200ms:400ms"


def parse_format(value: object, field: str = "--format") -> str:
    """``value`` as one of :data:`FORMATS` (case-insensitive); anything else is a :class:`ScenarioError`."""
    fmt = value.lower() if isinstance(value, str) else value
    if fmt not in FORMATS:
        raise ScenarioError(field, value, f"one of {', '.join(FORMATS)}")
    return fmt


def parse_window(value: object, field: str = "--window") -> tuple[float, float] | None:
    """A time window ``(start, stop)`` in seconds from ``"START:STOP"`` or a pair, or None for None.

    Each end is a time with its unit (``"0.5s"``, ``"200 ms"``; a plain number only if it is 0, as in every
    time neurodyn reads); either end may be left empty (``":1s"``, ``"3s:"``) for the start or end of the run.

    Raises
    ------
    ScenarioError
        If the text is not two times, or START is not before STOP.
    """
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.split(":")
    elif isinstance(value, list | tuple):
        parts = list(value)
    else:
        parts = []
    if len(parts) != 2:
        raise ScenarioError(field, value, _WINDOW_ALLOWED)
    ends = []
    for part, open_end in zip(parts, (float("-inf"), float("inf"))):
        if part is None or (isinstance(part, str) and not part.strip()):
            ends.append(open_end)
            continue
        try:
            ends.append(parse_quantity(part, "time"))
        except QuantityError:
            raise ScenarioError(field, value, _WINDOW_ALLOWED) from None
    if not ends[0] < ends[1]:
        raise ScenarioError(field, value, _WINDOW_ALLOWED)
    return ends[0], ends[1]


@contextlib.contextmanager
def plot_options(format: object = "png", window: object = None) -> Iterator[PlotOptions]:
    """Use ``format`` and ``window`` (checked by :func:`parse_format`, :func:`parse_window`) in the block."""
    options = PlotOptions(parse_format(format), parse_window(window))
    token = _OPTIONS.set(options)
    try:
        yield options
    finally:
        _OPTIONS.reset(token)


def time_window(t_start: float, t_stop: float, default: float | None = None) -> tuple[float, float]:
    """The span ``(start, stop)`` (s) a time axis of a run covering ``[t_start, t_stop]`` shows.

    The user's window (:func:`plot_options`) if one was given, its open ends filled by the run's;
    otherwise the last ``default`` seconds of the run when given (long runs are texture at full length),
    else the whole run.
    """
    window = _OPTIONS.get().window
    if window is not None:
        lo, hi = window
        return (t_start if lo == float("-inf") else lo), (t_stop if hi == float("inf") else hi)
    if default is not None and t_stop - t_start > default:
        return t_stop - default, t_stop
    return t_start, t_stop


def is_windowed(t_start: float, t_stop: float, window: tuple[float, float]) -> bool:
    """Whether ``window`` shows less than the run ``[t_start, t_stop]`` (then titles say so)."""
    return window[0] > t_start or window[1] < t_stop


def time_axis(ax: Axes, window: tuple[float, float], units: str = "s") -> None:
    """Label ``ax``'s x axis as time and show ``window``; ``units`` ``"ms"`` scales the window to ms."""
    scale = 1e3 if units == "ms" else 1.0
    ax.set_xlim(window[0] * scale, window[1] * scale)
    ax.set_xlabel(axis_label("time", units))


# ---------------------------------------------------------------------------------------------- helpers


def legend(ax: Axes, where: str = "best", **kwargs) -> None:
    """A legend of ``ax`` with each label once (the first artist of a label stands for all of them).

    ``where`` is ``"best"`` (matplotlib picks the emptiest corner), ``"right"`` (right of the axes, off the
    data) or ``"below"`` (under the axes' x label, for panels side by side). Labels starting with ``_``
    (matplotlib's "no legend") are left out.
    """
    import matplotlib as mpl

    handles, labels = ax.get_legend_handles_labels()
    seen: dict[str, object] = {}
    for handle, label in zip(handles, labels):
        if label and not label.startswith("_") and label not in seen:
            seen[label] = handle
    if not seen:
        return
    if where == "right":
        kwargs = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "borderaxespad": 0.0, **kwargs}
    elif where == "below":
        # clear of the tick labels and the x label: their heights in points, over the legend's font size
        size = mpl.font_manager.FontProperties(size=kwargs.get("fontsize", mpl.rcParams["legend.fontsize"]))
        clearance = 2.4 * mpl.rcParams["xtick.labelsize"] + mpl.rcParams["axes.labelsize"] + 14
        kwargs = {
            "loc": "upper center",
            "bbox_to_anchor": (0.5, 0.0),
            "borderaxespad": clearance / size.get_size_in_points(),
            **kwargs,
        }
    else:
        kwargs = {"loc": "best", **kwargs}
    ax.legend(list(seen.values()), list(seen), **kwargs)


def save_figures(figures: list[Figure], out_dir: Path, stem: str, dpi: float = DPI) -> list[Path]:
    """Write each figure as ``<out_dir>/<stem>_<label>.<format>`` at ``dpi`` and close it.

    The format is the one of :func:`plot_options` (PNG unless asked otherwise).

    Returns
    -------
    list of pathlib.Path
        The written files, in the order of ``figures``.
    """
    import matplotlib.pyplot as plt

    fmt = _OPTIONS.get().format
    paths = []
    for fig in figures:
        path = Path(out_dir) / f"{stem}_{fig.get_label()}.{fmt}"
        # svg/pdf: no creation date or tool version, so the same run writes the same bytes
        metadata = {"Date": None} if fmt in ("svg", "pdf") else None
        fig.savefig(path, dpi=dpi, format=fmt, metadata=metadata)
        plt.close(fig)
        paths.append(path)
    return paths


#: ``units`` of a dimensionless quantity: ``"1"`` (the CF convention) or empty; never shown as a unit
DIMENSIONLESS = ("", "1")


def axis_label(name: str, units: str) -> str:
    """``name (units)``; a dimensionless quantity (units ``"1"`` or ``""``) is labelled by its name alone.

    The one way neurodyn writes a label from a variable's ``units`` (figures, ``neurodyn info``): a stored
    ``units: "1"`` (the CF convention for a dimensionless number) never shows as ``(1)`` or ``[1]``.
    """
    return f"{name} ({units})" if units not in DIMENSIONLESS else name
