"""The combined Dataset of a sweep: the finished point files stacked along one dimension per swept path.

Variables whose dimensions differ between points (a ``spike`` dimension, say) cannot share one array:
they are dropped from the combined Dataset and stay in the point files (listed in its
``dropped_variables`` attribute). ``*_theory`` and ``*_bound`` variables keep only the sweep dimensions
they vary along, so ``neurodyn compare`` averages the simulation over the others (typically ``seed``).
Every file is read and written through :mod:`neurodyn.storage`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from neurodyn.storage import ChunkedWriter, fast_scan, open_run, read_plain, read_raw_values
from neurodyn.sweep.plan import SweepPlan, load_plan

#: per-point attributes that do not describe the sweep as a whole
_POINT_ATTRS = ("scenario", "seed", "created", "wall_time_s", "title")


class _MemoryTarget:
    """Collects the combined Dataset in memory (``open_sweep`` on an unfinished sweep)."""

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}
        self.arrays: dict[str, tuple[tuple[str, ...], np.ndarray, dict, bool]] = {}
        self.attrs: dict[str, Any] = {}

    def dimension(self, name: str, size: int) -> None:
        self.sizes[name] = size

    def variable(self, name: str, dims: tuple[str, ...], dtype: Any, attrs: dict, fill: Any, coord: bool) -> None:
        dtype = np.dtype(dtype)
        shape = tuple(self.sizes[d] for d in dims)
        arr = np.full(shape, fill if fill is not None else 0, dtype=object if dtype.kind in "OUS" else dtype)
        self.arrays[name] = (dims, arr, attrs, coord)

    def write(self, name: str, data: Any, index: tuple = ()) -> None:
        self.arrays[name][1][index if index else ...] = data

    def set_attrs(self, attrs: dict) -> None:
        self.attrs.update(attrs)

    def dataset(self) -> xr.Dataset:
        data = {n: xr.Variable(d, a, at) for n, (d, a, at, c) in self.arrays.items() if not c and n not in d}
        coords = {n: xr.Variable(d, a, at) for n, (d, a, at, c) in self.arrays.items() if c or n in d}
        return xr.Dataset(data, coords=coords, attrs=self.attrs)


class _FileTarget:
    """Writes the combined Dataset through :class:`~neurodyn.storage.ChunkedWriter` (atomic)."""

    def __init__(self, path: Path):
        self.writer = ChunkedWriter(path, force=True)

    def dimension(self, name: str, size: int) -> None:
        self.writer.dimension(name, size)

    def variable(self, name: str, dims: tuple[str, ...], dtype: Any, attrs: dict, fill: Any, coord: bool) -> None:
        self.writer.variable(name, dims, dtype, attrs, fill=fill, coord=coord)

    def write(self, name: str, data: Any, index: tuple = ()) -> None:
        self.writer.write(name, data, index)

    def set_attrs(self, attrs: dict) -> None:
        self.writer.set_attrs(attrs)


def is_prediction(name: str) -> bool:
    return name.endswith("_theory") or name.endswith("_bound")


def combine(plan: SweepPlan, target: Path | None = None) -> xr.Dataset | Path:
    """Combine the finished point files into one Dataset with a dimension per swept path.

    Missing (failed or unfinished) points are NaN (integer variables then become float64) and have
    ``point_status == 0``. Each point file is read twice: its layout (:func:`~neurodyn.storage.fast_scan`,
    quick) and its data (:func:`~neurodyn.storage.read_plain`, else xarray); one point's variables are in
    memory at a time, except predictions and non-index coordinates, which are small.

    Parameters
    ----------
    plan : SweepPlan
        The sweep.
    target : path, optional
        Write the combined file there atomically and return its path; by default return the Dataset.
    """
    finished = {p.id: plan.point_path(p) for p in plan.points if plan.point_path(p).exists()}
    sweep_dims = tuple(_final_dims(plan, finished))
    shape = plan.shape

    # Pass 1: the layout of every variable, which dimensions are ragged across points, and the small
    # per-point values (predictions, non-index coordinates) whose variation decides their dimensions.
    layout: dict[str, tuple[tuple[str, ...], np.dtype, dict, bool]] = {}
    sizes: dict[str, int] = {}
    index_values: dict[str, np.ndarray] = {}
    ragged: set[str] = set()
    first_attrs: dict[str, Any] | None = None
    seen_vars: list[set[str]] = []
    small: dict[str, dict[tuple[int, ...], np.ndarray]] = {}
    #: raw HDF5 values of the first point's index and non-index coordinates, for equality checks
    ref_raw: dict[str, np.ndarray] | None = None
    first_decoded: dict[str, np.ndarray] = {}
    for p in plan.points:
        if p.id not in finished:
            continue
        if ref_raw is not None:
            fast = fast_scan(finished[p.id], layout, ref_raw)
            if fast is not None:
                # The same variables as the first point, read as HDF5 metadata (much faster than xarray).
                shapes, raw = fast
                seen_vars.append(set(shapes))
                for name, (shp, dtype) in shapes.items():
                    dims, old_dtype, attrs, coord = layout[name]
                    for dim, n in zip(dims, shp):
                        if sizes.setdefault(dim, n) != n:
                            ragged.add(dim)
                    if dtype.kind in "iuf" and old_dtype.kind in "iuf":
                        layout[name] = (dims, np.promote_types(old_dtype, dtype), attrs, coord)
                for name, values in raw.items():
                    if name in index_values and not _same(ref_raw[name], values):
                        ragged.add(name)
                    elif name in small:
                        small[name][p.index] = values
                continue
        with open_point(finished[p.id]) as ds:
            if first_attrs is None:
                first_attrs = dict(ds.attrs)
            seen_vars.append(set(map(str, ds.variables)))
            for dim, n in ds.sizes.items():
                if sizes.setdefault(str(dim), int(n)) != n:
                    ragged.add(str(dim))
                elif dim in ds.indexes:
                    values = ds[dim].values
                    prev = index_values.setdefault(str(dim), values)
                    if prev is not values and not _same(prev, values):
                        ragged.add(str(dim))
            for name, var in ds.variables.items():
                name = str(name)
                is_coord = name in ds.coords
                if name in layout:
                    old_dims, old_dtype, attrs, coord = layout[name]
                    if old_dims != var.dims:
                        ragged.update(map(str, var.dims))
                    if var.dtype.kind not in "OUS" and old_dtype.kind not in "OUS":
                        layout[name] = (old_dims, np.promote_types(old_dtype, var.dtype), attrs, coord)
                else:
                    layout[name] = (tuple(map(str, var.dims)), var.dtype, dict(var.attrs), is_coord)
                if (is_prediction(name) and var.dtype.kind in "iuf") or (is_coord and name not in var.dims):
                    small.setdefault(name, {})[p.index] = var.values
        if ref_raw is None:
            ref_raw = read_raw_values(finished[p.id], [*index_values, *small])
            if ref_raw is not None:
                # Equality checks of coordinates compare raw values with raw values.
                for name in small:
                    if not is_prediction(name):
                        first_decoded[name] = small[name][p.index]
                        small[name][p.index] = ref_raw[name]
    missing_somewhere = {n for n in layout if any(n not in s for s in seen_vars)}
    dropped = sorted(n for n, (d, *_rest) in layout.items() if set(d) & ragged)
    kept = [n for n in layout if n not in dropped]
    incomplete = len(finished) < len(plan.points) or bool(missing_somewhere)

    # Index coordinates, and coordinates equal in every point, are shared; predictions keep the sweep
    # dimensions they vary along; everything else gets all sweep dimensions in front.
    shared: dict[str, np.ndarray] = {}
    predictions: dict[str, tuple[np.ndarray, tuple[int, ...]]] = {}
    for name in kept:
        vdims, dtype, _attrs, coord = layout[name]
        if coord and name in vdims:
            shared[name] = index_values.get(name, np.zeros(0))
        elif coord and name in small and not missing_somewhere & {name}:
            values = list(small[name].values())
            if all(_same(values[0], v) for v in values[1:]):
                shared[name] = first_decoded.get(name, values[0])
        elif is_prediction(name) and name in small and dtype.kind in "iuf":
            predictions[name] = _reduce_prediction(small[name], shape, dtype)
    stacked = [n for n in kept if n not in shared and n not in predictions]

    out: Any = _MemoryTarget() if target is None else _FileTarget(target)
    try:
        for d, n in zip(sweep_dims, shape):
            out.dimension(d, n)
        for dim, n in sizes.items():
            if dim not in ragged and any(dim in layout[v][0] for v in kept):
                out.dimension(dim, n)
        # Sweep coordinates.
        for sd, dname in zip(plan.dims, sweep_dims):
            for path in sd.paths:
                cname = dname if path == sd.paths[0] else sd.coord_names[path]
                values = np.asarray(sd.coords[path])
                attrs = {
                    "long_name": f"swept {path}",
                    "units": sd.units[path],
                    "sweep_path": path,
                    # the unit the scenario wrote the values in (values are stored in SI ``units``)
                    "display_units": sd.display_units.get(path, sd.units[path]),
                }
                out.variable(cname, (dname,), values.dtype, attrs, None, True)
                out.write(cname, values.astype(object) if values.dtype.kind == "U" else values)
        # Which file holds each point, and whether it finished.
        ids = np.empty(shape, dtype=object)
        status = np.zeros(shape, dtype=np.int8)
        for p in plan.points:
            ids[p.index] = p.id
            status[p.index] = 1 if p.id in finished else 0
        out.variable(
            "point_id", sweep_dims, object, {"long_name": "point file points/<point_id>.h5", "units": "1"}, None, False
        )
        out.write("point_id", ids)
        out.variable(
            "point_status",
            sweep_dims,
            np.int8,
            {"long_name": "1 = finished, 0 = failed or not run", "units": "1"},
            None,
            False,
        )
        out.write("point_status", status)
        for name, values in shared.items():
            vdims, _dtype, attrs, _coord = layout[name]
            out.variable(name, vdims, values.dtype, attrs, _fill(values.dtype), True)
            out.write(name, values)
        for name, (arr, keep_axes) in predictions.items():
            vdims, _dtype, attrs, coord = layout[name]
            out.variable(
                name, tuple(sweep_dims[i] for i in keep_axes) + vdims, arr.dtype, attrs, _fill(arr.dtype), coord
            )
            out.write(name, arr)
        dtypes = {}
        for name in stacked:
            vdims, dtype, attrs, coord = layout[name]
            if incomplete and dtype.kind in "iub":
                dtype = np.dtype(np.float64)
            dtypes[name] = dtype
            out.variable(name, sweep_dims + vdims, dtype, attrs, _fill(dtype), coord)
        # Pass 2: the data, one point at a time (read_plain where the stored bytes are the values).
        for p in plan.points:
            if p.id not in finished:
                continue
            data = read_plain(finished[p.id], stacked)
            if data is None:
                with open_point(finished[p.id]) as ds:
                    data = {name: ds[name].values for name in stacked if name in ds.variables}
            for name, values in data.items():
                if values.dtype != dtypes[name] and values.dtype.kind not in "OUS":
                    values = values.astype(dtypes[name])
                out.write(name, values, p.index)
        attrs = {k: v for k, v in (first_attrs or {}).items() if k not in _POINT_ATTRS}
        failed = sorted(p.id for p in plan.points if p.id not in finished)
        attrs.update(
            {
                "title": plan.description or plan.name,
                "scenario_name": plan.name,
                "family": plan.family,
                "scenario": plan.scenario_yaml,
                "sweep": {"dims": [{"name": n, "paths": d.paths} for n, d in zip(sweep_dims, plan.dims)]},
                "sweep_dims": list(sweep_dims),
                "sweep_complete": int(not failed),
                "failed_points": failed,
                "dropped_variables": dropped,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            }
        )
        out.set_attrs(attrs)
    except BaseException:
        if isinstance(out, _FileTarget):
            out.writer.abort(keep=False)
        raise
    if isinstance(out, _FileTarget):
        return out.writer.commit()
    return out.dataset()


def _final_dims(plan: SweepPlan, finished: dict[str, Path]) -> list[str]:
    """Sweep dimension names, prefixed with ``sweep_`` where a point already uses the name."""
    taken: set[str] = set()
    if finished:
        with open_point(next(iter(finished.values()))) as ds:
            taken = set(map(str, ds.variables)) | set(map(str, ds.dims))
    names = []
    for d in plan.dims:
        names.append(f"sweep_{d.name}" if d.name in taken else d.name)
        for p, c in d.coord_names.items():
            if p != d.paths[0] and c in taken:
                d.coord_names[p] = f"sweep_{c}"
    return names


@contextlib.contextmanager
def open_point(path: Path) -> Iterator[xr.Dataset]:
    """A point file opened lazily, closed on leaving the block."""
    ds = open_run(path, load=False)
    try:
        yield ds
    finally:
        ds.close()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def _fill(dtype: np.dtype) -> Any:
    return np.nan if np.dtype(dtype).kind in "fc" else None


def _reduce_prediction(
    values: dict[tuple[int, ...], np.ndarray], shape: tuple[int, ...], dtype: np.dtype
) -> tuple[np.ndarray, tuple[int, ...]]:
    """A prediction over all points, reduced to the sweep dimensions along which it varies.

    Predictions do not depend on ``run.seed`` (say); keeping only the dimensions they vary along lets
    ``compare`` average the simulation over the others with a confidence interval. Missing points
    (NaN) do not count as variation.
    """
    some = next(iter(values.values()))
    arr = np.full(shape + np.shape(some), np.nan)
    for index, v in values.items():
        arr[index] = v
    keep = []
    for axis in range(len(shape)):
        first = np.take(arr, [0], axis=axis)
        if not np.all((arr == first) | np.isnan(arr) | np.isnan(first)):
            keep.append(axis)
    reduced = arr
    for axis in reversed([a for a in range(len(shape)) if a not in keep]):
        # The value is the same along this axis wherever it is known: take the first known one.
        first = np.argmax(~np.isnan(reduced), axis=axis)
        reduced = np.take_along_axis(reduced, np.expand_dims(first, axis), axis=axis).squeeze(axis)
    if dtype.kind in "iu" and not np.isnan(reduced).any():
        reduced = reduced.astype(dtype)
    return reduced, tuple(keep)


def open_sweep(path: str | os.PathLike, load: bool = False) -> xr.Dataset:
    """Open a sweep's combined Dataset.

    Parameters
    ----------
    path : path-like
        The sweep directory (``outputs/<name>``) or its combined file ``outputs/<name>/<name>.h5``.
    load : bool
        Read everything into memory. By default the combined file is opened lazily.

    Returns
    -------
    xarray.Dataset
        One dimension per swept path. While a sweep is unfinished (no combined file yet), the finished
        points are combined in memory and the others are NaN with ``point_status == 0``.
    """
    path = Path(path)
    if path.is_file():
        return open_run(path, load=load)
    plan = load_plan(path)
    if plan.combined.is_file():
        return open_run(plan.combined, load=load)
    ds = combine(plan)
    assert isinstance(ds, xr.Dataset)
    return ds
