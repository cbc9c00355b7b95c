"""What every family's figures share: the pyplot module and writing labelled figures to files.

A family builds its figures in ``figures(ds)`` (pyplot figures, each labelled with the suffix of its file
name through :meth:`matplotlib.figure.Figure.set_label`) and writes them in ``plot(ds, out_dir, stem)``
with :func:`save_figures`, so ``neurodyn plot`` and :func:`neurodyn.plot` draw with the same code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def headless() -> None:
    """Draw without a display (Agg) unless pyplot is already in use.

    A fresh process (the CLI, a sweep worker) gets Agg, so writing files never needs a window system;
    in a notebook pyplot is already set up with the inline backend, which must stay (switching backends
    would close every open figure).
    """
    if "matplotlib.pyplot" not in sys.modules:
        import matplotlib

        matplotlib.use("Agg")


def save_figures(figures: list[Figure], out_dir: Path, stem: str, dpi: float) -> list[Path]:
    """Write each figure as PNG ``<out_dir>/<stem>_<label>.png`` at ``dpi`` and close it.

    Returns
    -------
    list of pathlib.Path
        The written files, in the order of ``figures``.
    """
    import matplotlib.pyplot as plt

    paths = []
    for fig in figures:
        path = Path(out_dir) / f"{stem}_{fig.get_label()}.png"
        fig.savefig(path, dpi=dpi)
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
