"""The one writer and the one reader of run results.

Results are NetCDF4/HDF5 files written through xarray's h5netcdf engine, so plain
``xarray.open_dataset(path, engine="h5netcdf")`` and h5py both read them. Writes go to a temporary
``.<name>.partial-<pid>.h5`` beside the target and are renamed into place, so a crash never leaves a
half-written result under the final name. netCDF attributes cannot hold dicts, bools or None: those are
stored as JSON strings and listed in the ``_json_attrs`` attribute, which :func:`open_run` decodes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from neurodyn.errors import OutputExistsError, UserError

ENGINE = "h5netcdf"
JSON_ATTRS = "_json_attrs"


def _encode_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    encoded: list[str] = []
    for key, value in attrs.items():
        if isinstance(value, str | int | float | np.integer | np.floating) and not isinstance(value, bool):
            out[key] = value
        elif isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
            out[key] = value
        else:
            out[key] = json.dumps(value, default=_json_default)
            encoded.append(key)
    if encoded:
        out[JSON_ATTRS] = json.dumps(encoded)
    return out


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store attribute value of type {type(obj).__name__}")


def _decode_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    attrs = dict(attrs)
    names = json.loads(attrs.pop(JSON_ATTRS, "[]"))
    for key in names:
        if key in attrs:
            attrs[key] = json.loads(attrs[key])
    return attrs


def partial_path(path: Path) -> Path:
    """Name of the temporary file used while ``path`` is being written."""
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix or '.h5'}")


def check_writable(path: Path, force: bool) -> None:
    """Refuse up front when ``path`` exists and ``force`` is false."""
    if path.exists() and not force:
        raise OutputExistsError(f"output {path} already exists; pass --force to replace it "
                                f"or --output to write elsewhere")
    if path.exists() and path.is_dir():
        raise UserError(f"output {path} is a directory")


def write_run(ds: xr.Dataset, path: str | os.PathLike, force: bool = False) -> Path:
    """Write ``ds`` atomically to ``path``.

    Parameters
    ----------
    ds : xarray.Dataset
        The run. Dataset and variable attributes may hold dicts, lists, bools and None.
    path : path-like
        Target file (``.h5``); parent folders are created.
    force : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    check_writable(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = ds.copy(deep=False)
    out.attrs = _encode_attrs(ds.attrs)
    for name in list(out.variables):
        out[name].attrs = _encode_attrs(ds[name].attrs)
    tmp = partial_path(path)
    try:
        out.to_netcdf(tmp, engine=ENGINE)
        with open(tmp, "rb") as fh:  # make the bytes durable before the rename publishes them
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def open_run(path: str | os.PathLike, load: bool = True) -> xr.Dataset:
    """Open a run written by neurodyn.

    Parameters
    ----------
    path : path-like
        A result file.
    load : bool
        Read everything into memory and close the file (default). ``False`` keeps it lazy.

    Returns
    -------
    xarray.Dataset
        With JSON-encoded attributes decoded back to Python objects.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no result file at {path}")
    try:
        ds = xr.open_dataset(path, engine=ENGINE)
    except OSError as exc:
        raise UserError(f"{path} is not a readable neurodyn result ({exc})") from None
    if load:
        ds = ds.load()
        ds.close()
    ds.attrs = _decode_attrs(ds.attrs)
    for name in ds.variables:
        ds[name].attrs = _decode_attrs(ds[name].attrs)
    return ds
