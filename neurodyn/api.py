"""The Python interface: run a scenario, compare it with theory and plot it from a script or a notebook.

Everything here is also reachable as ``neurodyn.<name>`` (``import neurodyn`` is enough), and importing
this module registers the ``neurodyn`` accessor on :class:`xarray.Dataset` (``ds.neurodyn.compare()``,
``ds.neurodyn.plot()``, ``ds.neurodyn.scenario``). It is imported on first use of any of the package's
functions, so every Dataset that neurodyn returns carries the accessor.

Examples
--------
>>> import neurodyn
>>> ds = neurodyn.run("scenarios/quickstart.yaml", set={"run.duration": "0.5 s"}, progress=False)
>>> table = neurodyn.compare(ds)          # a pandas DataFrame, one row per checked quantity
>>> figures = neurodyn.plot(ds)           # matplotlib Figures
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xarray as xr

from neurodyn.errors import ScenarioError, UserError
from neurodyn.progress import QUIET, Progress
from neurodyn.scenario import Scenario, load_scenario
from neurodyn.storage import open_run

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["compare", "open_run", "plot", "run", "scenario_of"]

Source = str | os.PathLike | Mapping[str, Any] | Scenario


def run(
    source: Source,
    *,
    set: Mapping[str, Any] | None = None,  # noqa: A002 - the CLI's --set, by the name users know
    output: str | os.PathLike | bool | None = None,
    force: bool = False,
    progress: bool | Progress | None = None,
) -> xr.Dataset:
    """Run one scenario and return its Dataset (simulation, theory and provenance).

    Parameters
    ----------
    source : path-like, mapping or Scenario
        A scenario file, a mapping of the same shape as the YAML (presets named by ``model:`` are found
        in ``models/`` of the working directory or of the installation), or a :class:`Scenario`.
    set : mapping, optional
        Dotted-path overrides applied after the preset, as the CLI's ``--set``:
        ``{"params.populations.exc.size": 1000, "run.seed": 2, "run.duration": "2 s"}``.
    output : path-like or True, optional
        Where to write the result file, exactly as ``neurodyn run --output`` writes it. ``True`` means
        the CLI's default (the scenario's ``output:`` or ``outputs/<name>.h5``). By default nothing is
        written and the whole result stays in memory.
    force : bool
        Replace an existing result file.
    progress : bool, optional
        ``None`` (default): a progress bar on stderr for long runs when stderr is a terminal, as the CLI
        shows; ``False``: quiet; ``True``: always.

    Returns
    -------
    xarray.Dataset
        The recorded variables, the ``*_theory``/``*_bound`` predictions and provenance attributes
        (``ds.attrs["scenario"]`` is the resolved scenario as YAML).

    Raises
    ------
    ScenarioError
        A bad scenario; the message is the one line the CLI prints. A scenario with a ``sweep:``
        section is refused too: run it with ``neurodyn sweep FILE`` and open the result with
        :func:`neurodyn.open_sweep`, or run single points, ``run(scenario.with_values({path: value}))``.
    UserError
        Other problems the user can fix (an existing output without ``force``, a run too big for memory).
    SimulationError
        The simulation became invalid (NaN, instability).

    Examples
    --------
    >>> import neurodyn
    >>> ds = neurodyn.run({
    ...     "name": "two_cells", "family": "lif_network",
    ...     "params": {"populations": {"a": {"size": 2, "tau_m": "20 ms", "v_rest": "-70 mV",
    ...                                      "v_reset": "-70 mV", "v_threshold": "-50 mV"}},
    ...                "inputs": [{"kind": "constant", "target": "a", "drive": "25 mV"}]},
    ...     "run": {"duration": "0.5 s", "dt": "0.1 ms"},
    ... }, progress=False)
    >>> round(float(ds["rate_theory"].sel(population="a")), 2)   # 1 / (tau_m ln(25 / 5)), in Hz
    31.07
    """
    from neurodyn.runner import run_scenario, simulate

    scenario = source if isinstance(source, Scenario) else _scenario(source, set)
    if scenario.sweep is not None:
        raise ScenarioError(
            "sweep",
            {k: v for k, v in (("grid", scenario.sweep.grid), ("zip", scenario.sweep.zip)) if v},
            "neurodyn.run runs a single scenario: run the sweep with 'neurodyn sweep FILE' and open it with "
            "neurodyn.open_sweep(DIR), or run one point, neurodyn.run(scenario.with_values({path: value}))",
        )
    if isinstance(source, Scenario) and set:
        scenario = source.with_values(set)
    bar = _progress(progress)
    if output is None or output is False:
        return simulate(scenario, bar)
    ds, _ = run_scenario(scenario, output=None if output is True else output, force=force, progress=bar)
    return ds


def compare(ds: xr.Dataset | str | os.PathLike) -> pd.DataFrame:
    """Theory against simulation as a table: the rows of ``neurodyn compare``.

    Parameters
    ----------
    ds : xarray.Dataset or path-like
        A run (from :func:`run` or :func:`open_run`) or its result file.

    Returns
    -------
    pandas.DataFrame
        One row per checked quantity with columns ``quantity``, ``where``, ``simulated``, ``ci`` (half
        width of the 95% confidence interval), ``predicted``, ``ratio``, ``kind`` (``estimate``,
        ``upper_bound``, ``lower_bound``), ``rel_tol``, ``verdict`` (``agree``/``differ`` for
        estimates, ``holds``/``violated`` for bounds, ``n/a``) and ``source`` (formula and reference).

    Examples
    --------
    >>> table = neurodyn.compare(ds)                          # doctest: +SKIP
    >>> table[["quantity", "where", "simulated", "predicted", "verdict"]]  # doctest: +SKIP
    >>> (table["verdict"] == "agree").all()                   # doctest: +SKIP
    """
    from neurodyn.compare import all_rows, to_dataframe

    return to_dataframe(all_rows(_dataset(ds)))


def plot(
    ds: xr.Dataset | str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    format: str = "png",
    window: str | tuple[object, object] | None = None,
) -> list[Figure]:
    """The family's figures of a run, as matplotlib Figures.

    Parameters
    ----------
    ds : xarray.Dataset or path-like
        A run (from :func:`run` or :func:`open_run`) or its result file.
    out_dir : path-like, optional
        Also write the figure files there, exactly as ``neurodyn plot --out OUT_DIR`` writes them (named
        after the result file, or after the scenario for a run kept in memory).
    format : {"png", "svg", "pdf"}
        File format of the figures written to ``out_dir`` (``neurodyn plot --format``).
    window : str or (start, stop), optional
        Time span of the time-axis figures, as ``neurodyn plot --window``: ``"0.5s:1s"``, ``"200ms:400ms"``
        or a pair of times with units (``("0.5 s", "1 s")``). Default: the family's choice
        (the last 0.5 s of a long ``lif_network`` run, else the whole run).

    Returns
    -------
    list of matplotlib.figure.Figure
        Pyplot figures, left open: a notebook shows them at the end of the cell (Jupyter's inline
        backend); in a script show them with ``plt.show()`` or free them with ``plt.close(fig)``.

    Examples
    --------
    >>> figs = neurodyn.plot(ds)                     # doctest: +SKIP
    >>> figs[0].savefig("overview.svg")              # doctest: +SKIP
    >>> figs = neurodyn.plot(ds, "figs", format="pdf", window="200ms:400ms")  # doctest: +SKIP
    """
    from neurodyn import registry
    from neurodyn.plotting import plot_options

    ds = _dataset(ds)
    family = ds.attrs.get("family")
    if not family:
        raise UserError("this Dataset has no 'family' attribute; not a neurodyn run")
    fam = registry.get(family)
    with plot_options(format, window):
        figures = fam.figures(ds)
        if out_dir is not None:
            out = Path(out_dir)
            out.mkdir(parents=True, exist_ok=True)
            # the files come from the same code as ``neurodyn plot``, so they are the CLI's byte for byte
            fam.plot(ds, out, _stem(ds))
    return figures


def scenario_of(ds: xr.Dataset) -> Scenario:
    """The :class:`Scenario` a run was made from, rebuilt from its stored ``scenario`` attribute.

    Parameters
    ----------
    ds : xarray.Dataset
        A run from :func:`run` or :func:`open_run`.

    Examples
    --------
    >>> s = neurodyn.scenario_of(ds)                        # doctest: +SKIP
    >>> again = neurodyn.run(s.with_values({"run.seed": 2}))  # doctest: +SKIP
    """
    from neurodyn.scenario import from_stored

    text = ds.attrs.get("scenario")
    if not isinstance(text, str):
        raise UserError("this Dataset has no 'scenario' attribute; not a neurodyn run")
    # the stored text of a file written by any version: its preset merged, its numbers SI (see from_stored)
    return from_stored(text)


# --------------------------------------------------------------------------- helpers


def _scenario(source: Source, values: Mapping[str, Any] | None) -> Scenario:
    if isinstance(source, Mapping):
        return Scenario.from_dict(source, values)
    if isinstance(source, str | os.PathLike):
        return load_scenario(source, values or None)
    raise ScenarioError(
        "source", source, "a scenario file path, a mapping of the same shape as the YAML, or a neurodyn.Scenario"
    )


def _progress(progress: bool | Progress | None) -> Progress:
    if isinstance(progress, Progress):
        return progress
    if progress is False:
        return QUIET
    return Progress(enabled=True if progress else None)


def _dataset(ds: xr.Dataset | str | os.PathLike) -> xr.Dataset:
    if isinstance(ds, xr.Dataset):
        return ds
    if isinstance(ds, str | os.PathLike):
        return open_run(ds)
    raise UserError(f"expected an xarray.Dataset or a result file path, got {type(ds).__name__}")


def _stem(ds: xr.Dataset) -> str:
    """The CLI names figures after the result file; a run kept in memory is named after its scenario."""
    source = ds.encoding.get("source")
    return Path(source).stem if source else str(ds.attrs.get("scenario_name", "run"))


# --------------------------------------------------------------------------- the xarray accessor


@xr.register_dataset_accessor("neurodyn")
class NeurodynAccessor:
    """``ds.neurodyn``: the neurodyn view of a run's Dataset.

    Examples
    --------
    >>> ds = neurodyn.open_run("outputs/quickstart.h5")   # doctest: +SKIP
    >>> ds.neurodyn.compare()                              # doctest: +SKIP
    >>> ds.neurodyn.plot()                                 # doctest: +SKIP
    >>> ds.neurodyn.scenario.run.seed                      # doctest: +SKIP
    """

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    @property
    def family(self) -> str | None:
        """The model family that made this run."""
        return self._ds.attrs.get("family")

    @property
    def scenario(self) -> Scenario:
        """The :class:`Scenario` the run was made from (see :func:`scenario_of`)."""
        return scenario_of(self._ds)

    def compare(self) -> pd.DataFrame:
        """Theory against simulation as a DataFrame (see :func:`compare`)."""
        return compare(self._ds)

    def plot(
        self,
        out_dir: str | os.PathLike | None = None,
        format: str = "png",
        window: str | tuple[object, object] | None = None,
    ) -> list[Figure]:
        """The family's figures (see :func:`plot`)."""
        return plot(self._ds, out_dir, format=format, window=window)
