"""The one writer and the one reader of run results.

Results are NetCDF4/HDF5 files written through xarray's h5netcdf engine, so plain
``xarray.open_dataset(path, engine="h5netcdf")`` and h5py both read them. Writes go to a temporary
``.<name>.partial-<pid>.h5`` beside the target and are renamed into place, so a crash never leaves a
half-written result under the final name. netCDF attributes cannot hold dicts, bools or None: those are
stored as JSON strings and listed in the ``_json_attrs`` attribute, which :func:`open_run` decodes.

Long runs can *stream* their recordings instead of holding them in memory: while
:func:`neurodyn.runner.run_scenario` runs a family, :func:`stream_writer` returns a
:class:`ChunkedWriter` for the run's result file. The family appends each chunk of recordings to it
(``writer.append("v", block)``) and returns the small rest of its Dataset as usual. The data goes to a
visible ``<stem>.partial.h5`` beside the target, renamed to the final name only when the run finished; a
crash leaves what was recorded so far in the partial file, never under the final name.

Nothing is overwritten by accident. A run or sweep first *claims* its output (:func:`claim_output`: an
advisory lock beside it, held until the result is in place), so two processes never write one output;
:func:`check_writable` then refuses an existing result without ``force``, anything that is not
neurodyn's own result even with ``force`` (:func:`is_neurodyn_result`: the ``neurodyn_version``
attribute every file written here carries), and the ``<stem>.partial.h5`` of an unfinished earlier run.
"""

from __future__ import annotations

import contextvars
import errno
import fcntl
import itertools
import json
import os
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5netcdf
import h5py
import numpy as np
import xarray as xr

from neurodyn import __version__
from neurodyn.errors import OutputExistsError, UserError, _short_repr


def _defer_dask_detection() -> None:
    """Stop xarray importing dask merely to ask whether an array is a dask array.

    Every new xarray Variable asks whether its data is a dask array, through
    ``xarray.namedarray.pycompat.array_type("dask")`` and ``xarray.namedarray.utils.is_dask_collection``;
    both import dask (0.3-0.7 s, more than the rest of a small run) whenever it is installed. Both answers
    are exact without the import: nothing is an instance of ``dask.array.Array`` before ``dask.array`` is
    imported, and a dask collection is an object with a ``__dask_graph__`` method (dask's own test starts
    with that). So ``array_type("dask")`` gives the empty type tuple until ``dask.array`` is imported (xarray's
    own entry from then on), and ``is_dask_collection`` asks dask only about objects with
    ``__dask_graph__``. A no-op where xarray's internals differ.
    """
    try:
        from xarray.namedarray import pycompat
        from xarray.namedarray import utils as xr_utils
    except ImportError:  # pragma: no cover - another xarray layout
        return
    cache = getattr(pycompat, "_cached_duck_array_modules", None)
    real_type = getattr(pycompat, "DuckArrayModule", None)
    if isinstance(cache, dict) and real_type is not None and "dask" not in cache:

        class _DeferredDask:
            _real = None

            def _resolve(self) -> Any:
                if self._real is None:
                    self._real = real_type("dask")
                    cache["dask"] = self._real
                return self._real

            @property
            def type(self) -> tuple:
                return self._resolve().type if "dask.array" in sys.modules else ()

            def __getattr__(self, name: str) -> Any:  # module, version, available: xarray's own answer
                return getattr(self._resolve(), name)

        cache["dask"] = _DeferredDask()
    asks_dask = getattr(xr_utils, "is_dask_collection", None)
    if asks_dask is not None and not getattr(asks_dask, "_neurodyn_deferred", False):

        def is_dask_collection(x: object) -> bool:
            return hasattr(x, "__dask_graph__") and asks_dask(x)

        is_dask_collection._neurodyn_deferred = True  # type: ignore[attr-defined]
        xr_utils.is_dask_collection = is_dask_collection


_defer_dask_detection()

ENGINE = "h5netcdf"
#: global attribute every file neurodyn writes carries (:func:`write_run`, :class:`ChunkedWriter`); it is
#: how ``--force`` tells neurodyn's own results from anything else
MARKER_ATTR = "neurodyn_version"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
JSON_ATTRS = "_json_attrs"
#: default memory budget of one streamed block (bytes); ``NEURODYN_STREAM_BUFFER`` overrides it
STREAM_BUFFER_BYTES = 64 * 2**20


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


def _decode_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes with the values listed in ``_json_attrs`` decoded from JSON.

    Raises
    ------
    ValueError
        When ``_json_attrs`` is not a JSON list of names or a value it lists does not hold JSON (a
        damaged or hand-edited file), with a one-line reason.
    """
    attrs = dict(attrs)
    listing = attrs.pop(JSON_ATTRS, "[]")
    try:
        names = json.loads(listing) if isinstance(listing, str | bytes) else None
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"attribute {JSON_ATTRS} = {_short_repr(listing)} is not a JSON list of attribute names")
    for key in names:
        if key in attrs:
            try:
                attrs[key] = json.loads(attrs[key])
            except (TypeError, ValueError):
                raise ValueError(
                    f"attribute {key!r} = {_short_repr(attrs[key])} is listed in {JSON_ATTRS} but does not hold JSON"
                ) from None
    return attrs


def partial_path(path: Path) -> Path:
    """Name of the temporary file used while ``path`` is being written."""
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix or '.h5'}")


def is_neurodyn_result(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file neurodyn wrote: HDF5 whose global attributes carry ``neurodyn_version``.

    Only the root group's attributes are read (no data), so the check is cheap for any file size. Every
    file written through :func:`write_run` or :class:`ChunkedWriter` carries the attribute.
    """
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get(MARKER_ATTR)
    except Exception:  # noqa: BLE001 - whatever h5py cannot open is not a neurodyn result
        return False
    return isinstance(value, str | bytes) and len(value) > 0


def is_partial_result(path: Path) -> bool:
    """Whether ``path`` (a ``<stem>.partial.h5``) is what a neurodyn run left behind.

    A run killed with SIGKILL can leave a file HDF5 cannot open, so the HDF5 signature at the start of the
    file identifies it; a file HDF5 can open must carry the marker. Killed in the instant after creating
    the file and before HDF5 wrote its signature, a run leaves the file empty or holding a piece of the
    signature: such a file holds nothing to lose, and counts as the run's too.
    """
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(HDF5_SIGNATURE))
        if len(head) < len(HDF5_SIGNATURE) and HDF5_SIGNATURE.startswith(head):
            return True
        if head != HDF5_SIGNATURE:
            return False
        with h5py.File(path, "r") as f:
            return MARKER_ATTR in f.attrs
    except OSError:
        return True  # an HDF5 file cut short by a kill: neurodyn's, and unreadable as a whole


def check_writable(path: Path, force: bool) -> None:
    """Refuse up front what writing ``path`` would destroy.

    * ``path`` exists: refused without ``force``; with ``force`` only a neurodyn result
      (:func:`is_neurodyn_result`) is replaced, anything else is refused and left untouched.
    * ``path`` is a folder: refused.
    * ``<stem>.partial.h5`` beside it (what an unfinished earlier run recorded, possibly the only copy of
      a long run): refused without ``force``; with ``force`` it is discarded (overwritten by a streaming
      run, deleted once the new result is in place otherwise), provided it is neurodyn's.

    Raises
    ------
    OutputExistsError
        Something is in the way and ``force`` is false.
    UserError
        A folder, or (with ``force``) a file that is not neurodyn's.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"output {path} is a folder; a run writes one file, e.g. --output {path / 'run.h5'}")
    if path.exists() or path.is_symlink():
        if not force:
            raise OutputExistsError(
                f"output {path} already exists; pass --force to replace it or --output to write elsewhere"
            )
        if not is_neurodyn_result(path):
            raise UserError(
                f"output {path} exists and is not a neurodyn result (no {MARKER_ATTR} attribute); "
                f"--force replaces only neurodyn's own results: move it away or choose another --output"
            )
    partial = stream_partial_path(path)
    if partial.exists() or partial.is_symlink():
        if not force:
            raise OutputExistsError(
                f"{partial} holds what an unfinished earlier run recorded; inspect it with "
                f"'neurodyn info {partial}', then move or delete it (or pass --force to discard it)"
            )
        if not is_partial_result(partial):
            raise UserError(
                f"{partial} is in the way and is not a partial neurodyn result; --force discards only "
                f"neurodyn's own files: move it away or choose another --output"
            )


# --------------------------------------------------------------------------- claiming an output


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of the output ``path`` (a result file or a sweep folder): ``.<name>.lock`` beside it."""
    path = Path(path).absolute()
    return path.with_name(f".{path.name}.lock")


@contextmanager
def claim_output(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the exclusive claim on the output ``path`` (a result file or a sweep folder) while inside.

    The claim is an advisory ``flock`` on :func:`lock_path`, taken before any work and held until the
    result has been renamed into place. A second claimant is refused with one line naming the process
    that holds it (pid, host, start time, as written into the lock file). The kernel drops the lock when
    its holder dies in any way (SIGKILL included), so the claim of a dead run is never stale; the lock
    file a killed run leaves behind is reused by the next one.

    The lock file is removed when the claim ends, which opens a race: B opens the file, A unlinks it and
    releases, B locks the unlinked inode while C creates and locks a new file under the same name. So a
    claimant that got the lock checks that the path still names the inode it locked and starts again
    otherwise; the holder unlinks while still holding the lock, so this check is decisive.

    Claiming is also the writability check: the parent folders are created and the lock file written
    there, so a folder that cannot be written (read-only, or a file in the way) is refused here, with
    one line, before anything runs. Folders created here are removed again (when empty) on release, so
    a refused or failed run leaves nothing new behind.

    Raises
    ------
    UserError
        The output is claimed by another run, or its folder cannot be created or written.
    """
    path = Path(path).absolute()
    lock = lock_path(path)
    created: list[Path] = []
    for attempt in itertools.count():
        created += _make_folders(path, lock.parent)
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and not lock.parent.is_dir() and attempt < 100:
                continue  # another run removed the empty folder it had created just now: create it again
            _remove_folders(created)
            raise UserError(f"output {path}: cannot write in {lock.parent} ({_reason(exc)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(lock) if exc.errno in (errno.EAGAIN, errno.EACCES) else None
            os.close(fd)
            _remove_folders(created)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise UserError(
                    f"output {path} is being written by another neurodyn run ({holder}); wait for it to "
                    f"end or choose another --output"
                ) from None
            raise UserError(f"output {path}: cannot lock {lock} ({_reason(exc)})") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # we locked a lock file its holder had just removed: start again
        if attempt >= 100:
            _remove_folders(created)
            raise UserError(f"output {path}: cannot claim {lock} (it keeps being replaced)")
    try:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join([os.path.basename(sys.argv[0] or "python"), *sys.argv[1:]])[:300],
            "output": str(path),
        }
        try:
            os.ftruncate(fd, 0)
            os.write(fd, (json.dumps(info) + "\n").encode())
        except OSError as exc:  # a full disk, a quota: nothing could be written there
            raise UserError(f"output {path}: cannot write in {lock.parent} ({_reason(exc)})") from None
        yield path
    finally:
        try:
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                os.unlink(lock)  # while still holding the lock, see above
        except OSError:
            pass
        os.close(fd)
        _remove_folders(created)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _make_folders(path: Path, folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created (deepest last)."""
    missing = []
    f = folder
    while not f.exists() and f != f.parent:
        missing.append(f)
        f = f.parent
    if f.exists() and not f.is_dir():
        raise UserError(f"output {path}: {f} is a file, not a folder")
    created = []
    for f in reversed(missing):
        try:
            f.mkdir()
        except FileExistsError:
            if not f.is_dir():
                _remove_folders(created)
                raise UserError(f"output {path}: {f} is a file, not a folder") from None
            continue
        except OSError as exc:
            _remove_folders(created)
            raise UserError(f"output {path}: cannot create folder {f} ({_reason(exc)})") from None
        created.append(f)
    return created


def _remove_folders(created: list[Path]) -> None:
    for f in reversed(created):
        try:
            f.rmdir()  # only when empty: whatever someone put there stays
        except OSError:
            return


def _holder(lock: Path) -> str:
    """Who holds the claim, as its lock file says (it writes this right after locking; wait a moment)."""
    for _ in range(40):
        try:
            info = json.loads(lock.read_text())
            return f"pid {info['pid']} on {info['host']}, started {info['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.05)
    return f"see {lock}"


def write_run(ds: xr.Dataset, path: str | os.PathLike, force: bool = False) -> Path:
    """Write ``ds`` atomically to ``path``.

    Parameters
    ----------
    ds : xarray.Dataset
        The run. Dataset and variable attributes may hold dicts, lists, bools and None. The file also gets
        the ``neurodyn_version`` attribute (the marker of neurodyn's own results) when ``ds`` has none.
    path : path-like
        Target file (``.h5``); parent folders are created.
    force : bool
        Replace an existing neurodyn result (see :func:`check_writable`; anything else is refused).

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    check_writable(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = ds.copy(deep=False)
    out.attrs = _encode_attrs({**ds.attrs, MARKER_ATTR: ds.attrs.get(MARKER_ATTR, __version__)})
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
    if force:
        # check_writable accepted it as neurodyn's: the partial file of an earlier unfinished run is
        # discarded once the new result is in place, as --force promises
        stream_partial_path(path).unlink(missing_ok=True)
    return path


def open_run(path: str | os.PathLike, load: bool = True) -> xr.Dataset:
    """Open a run written by neurodyn.

    Any netCDF4/HDF5 file opens (attributes are not checked: see :func:`identify_result`); a file that
    cannot be read (not HDF5, truncated, damaged metadata, undecodable ``_json_attrs``) is refused with
    one line naming it.

    Parameters
    ----------
    path : path-like
        A result file.
    load : bool
        Read everything into memory and close the file (default). ``False`` keeps it lazy: errors in
        data read later are the caller's to catch (:func:`reading`).

    Returns
    -------
    xarray.Dataset
        With JSON-encoded attributes decoded back to Python objects.

    Raises
    ------
    UserError
        No file at ``path``, or a file that cannot be read.
    """
    path = Path(path)
    _read_header(path, markers=False)
    with reading(path):
        # phony_dims="access" is h5netcdf's default, named to keep it from warning about datasets
        # without dimension scales (files not written by netCDF)
        ds = xr.open_dataset(path, engine=ENGINE, phony_dims="access")
        try:
            if load:
                ds = ds.load()
                ds.close()
            ds.attrs = _decode_attrs(ds.attrs)
            for name in ds.variables:
                ds[name].attrs = _decode_attrs(ds[name].attrs)
        except BaseException:
            ds.close()
            raise
    return ds


# --------------------------------------------------------------------------- fast reads of result files
# What combining a sweep's points reads, many times over: the layout and the plain values of a result
# file, read with h5py where xarray's decoding would not change them (at a fraction of its cost).


def stored_scenario(path: Path) -> str | None:
    """The resolved scenario (YAML text) a result file stores, or None when the file cannot be read."""
    try:
        with h5py.File(path, "r") as f:
            value = f.attrs.get("scenario")
    except OSError:
        return None
    return value.decode() if isinstance(value, bytes) else value


def _bare_dimension(obj: Any) -> bool:
    """A netCDF dimension without a coordinate variable (stored as an empty dimension scale)."""
    name = obj.attrs.get("NAME", b"")
    return isinstance(name, bytes) and name.startswith(b"This is a netCDF dimension but not")


def read_raw_values(path: Path, names: list[str]) -> dict[str, np.ndarray] | None:
    """The stored (undecoded) values of the variables ``names``, read with h5py; None if any is absent."""
    try:
        with h5py.File(path, "r") as f:
            return {n: f[n][()] for n in names}
    except (OSError, KeyError):
        return None


def fast_scan(
    path: Path, layout: dict[str, tuple], ref_raw: dict[str, np.ndarray]
) -> tuple[dict[str, tuple[tuple[int, ...], np.dtype]], dict[str, np.ndarray]] | None:
    """Shapes and dtypes of a point's variables and raw values of ``ref_raw``'s variables, via h5py.

    None when the point does not look like the first one (other variables, other ranks, packed or
    filled data): the caller then reads it with xarray.
    """
    try:
        with h5py.File(path, "r") as f:
            items = {k: obj for k, obj in f.items() if isinstance(obj, h5py.Dataset) and not _bare_dimension(obj)}
            if set(items) != set(layout):
                return None
            shapes = {}
            for name, obj in items.items():
                packed = "scale_factor" in obj.attrs or "add_offset" in obj.attrs
                if packed or len(obj.shape) != len(layout[name][0]):
                    return None
                shapes[name] = (tuple(obj.shape), obj.dtype)
            raw = {}
            for name in ref_raw:
                fill = items[name].attrs.get("_FillValue")
                # A NaN fill decodes to NaN: raw values are the decoded ones. Anything else: use xarray.
                if fill is not None and not np.isnan(np.asarray(fill, dtype=float)).all():
                    return None
                raw[name] = items[name][()]
            return shapes, raw
    except (OSError, KeyError, TypeError):
        return None


#: attributes that make xarray transform stored values when it decodes them
_DECODED_ATTRS = ("scale_factor", "add_offset", "_Unsigned", "dtype", "calendar", "missing_value")


def read_plain(path: Path, names: list[str]) -> dict[str, np.ndarray] | None:
    """Read variables with h5py when decoding would not change them; None if any would change.

    Plain numbers (no packing, no CF time units, NaN or no fill value) and strings read back exactly as
    xarray would return them, at a fraction of the cost of opening the file with xarray.
    """
    out: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            for name in names:
                if name not in f:
                    continue
                obj = f[name]
                attrs = obj.attrs
                if any(a in attrs for a in _DECODED_ATTRS) or " since " in str(attrs.get("units", "")):
                    return None
                fill = attrs.get("_FillValue")
                if obj.dtype.kind == "O":
                    values = obj.asstr()[()]
                    out[name] = np.asarray(values, dtype=object)
                    continue
                if obj.dtype.kind not in "iuf":
                    return None
                nan_fill = obj.dtype.kind == "f" and np.isnan(np.asarray(fill, float)).all()
                if fill is not None and not nan_fill:
                    return None
                out[name] = obj[()]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return out


#: root attributes every result neurodyn writes carries: :func:`neurodyn.runner.provenance` sets them on
#: a run, :func:`neurodyn.sweep.combine` on a combined sweep
RESULT_MARKERS = ("family", "scenario_name", "scenario")
#: errno values of a failed write that the user can fix (permissions, read-only or full filesystem)
_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EEXIST}


def identify_result(path: str | os.PathLike, known_family: bool = True, partial: bool = False) -> dict[str, Any]:
    """Check that ``path`` is a readable neurodyn result and return its decoded root attributes.

    Only metadata is read, with h5py, before xarray opens anything: the file must be HDF5, carry the
    attributes of :data:`RESULT_MARKERS`, name a registered family, have decodable JSON attributes, and
    every object header in it must read back (HDF5 checksums its metadata, so flipped bytes there are
    found here rather than half-way through a command). Raw data is not read; a damaged chunk index is
    found when the data is read (:func:`reading`). Whether neurodyn *wrote* a file, readable or not (what
    ``--force`` may replace), is :func:`is_neurodyn_result`.

    Parameters
    ----------
    path : path-like
        A file given to ``neurodyn info``, ``plot`` or ``compare``.
    known_family : bool
        Also require its family to be installed (to plot or compare it; describing it needs no family).
    partial : bool
        Also accept what an unfinished run left behind (marked with :data:`MARKER_ATTR` only, before the
        run could set its other attributes): enough to describe it.

    Returns
    -------
    dict
        The file's root attributes, JSON values decoded.

    Raises
    ------
    UserError
        One line naming the file and what is wrong with it.
    """
    from neurodyn import registry

    path = Path(path)
    attrs = _read_header(path, markers=True, partial=partial)
    if partial and "family" not in attrs:
        return attrs
    family = attrs["family"]
    if not isinstance(family, str):
        shown = _short_repr(family)
        raise UserError(f"{path}: not a readable neurodyn result (attribute family = {shown} is not a name)")
    if known_family and registry.target(family) is None:
        known = ", ".join(registry.names())
        raise UserError(f"{path}: written by family {family!r}, which is not installed here (known: {known})")
    return attrs


def _read_header(path: Path, markers: bool, partial: bool = False) -> dict[str, Any]:
    """Read a result file's metadata with h5py: its decoded root attributes, every object header checked.

    With ``markers``, a file without the attributes of :data:`RESULT_MARKERS` is refused before anything
    else is read. Done before xarray opens a file: h5netcdf fails on a damaged root group with a second
    error printed from its destructor, and warns about datasets of files netCDF did not write.
    """
    if not path.exists():
        raise UserError(f"no result file at {path}")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a result file (nor a sweep folder: it has no sweep.json)")
    if not path.is_file():  # a pipe or a device: opening it could block or read forever
        raise UserError(f"{path}: not a regular file, so not a result file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: not a readable neurodyn result (the file is empty)")
    with reading(path):
        try:
            fh = h5py.File(path, "r")
        except OSError as exc:
            reason = _h5_reason(exc)
            if "signature not found" in reason:
                reason = "not an HDF5 file"
            raise UserError(f"{path}: not a readable neurodyn result ({reason})") from None
        with fh:
            names = set(fh.attrs)
            missing = [m for m in RESULT_MARKERS if m not in names]
            if markers and missing and not (partial and MARKER_ATTR in names):
                raise UserError(f"{path}: not a neurodyn result ({_missing_markers(path, names, missing)})")
            raw = {k: fh.attrs[k] for k in names}
            fh.visititems(_touch)  # reads every object header and its attribute names once
            try:
                return _decode_attrs(raw)
            except ValueError as exc:
                raise UserError(f"{path}: not a readable neurodyn result ({exc})") from None


def _touch(name: str, obj: Any) -> None:
    """A :meth:`h5py.Group.visititems` callback that makes HDF5 read (and checksum) an object's header."""
    list(obj.attrs)


def _missing_markers(path: Path, raw: set[str], missing: list[str]) -> str:
    if "partial" in raw or path.name.endswith(".partial.h5") or ".partial-" in path.name:
        return (
            "an unfinished partial file, of a run that stopped before its end or is still running; "
            f"read what it recorded with xarray.open_dataset('{path}', engine='h5netcdf')"
        )
    if len(missing) == len(RESULT_MARKERS):
        return "an HDF5 file without neurodyn's attributes " + ", ".join(RESULT_MARKERS)
    have = [m for m in RESULT_MARKERS if m in raw]
    return f"it has the attribute {', '.join(have)} but not {', '.join(missing)}, which neurodyn writes with it"


def _h5_reason(exc: BaseException) -> str:
    """The useful part of an h5py/HDF5 error message, on one line."""
    text = str(exc).strip().strip("'\"")
    inner = text[text.find("(") + 1 : text.rfind(")")] if "(" in text and text.endswith(")") else text
    return " ".join((inner or type(exc).__name__).split())[:200]


@contextmanager
def reading(path: Path, family: str | None = None) -> Iterator[None]:
    """Turn a failure to read the result ``path`` into one :class:`UserError` line naming it.

    A damaged file fails wherever HDF5 first touches the damage, possibly only when a variable is read,
    so every place that reads a result's contents runs inside this: :func:`open_run`, and the family
    code of ``plot`` and ``compare``. Inside family code (``family`` given), a failure means the file's
    variables are not what that family writes: the message says so. A failed write of a figure (no
    permission, read-only or full filesystem) names the file it could not write. ``MemoryError`` and
    :class:`UserError` pass through unchanged, and so does ``BrokenPipeError`` (the reader of our
    output went away).
    """
    try:
        yield
    except (UserError, MemoryError, BrokenPipeError):
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here is the file's, reported as one line
        if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS and exc.filename:
            raise UserError(f"{exc.filename}: cannot write ({exc.strerror})") from None
        reason = _h5_reason(exc)
        if family is None:  # HDF5's own words say what is damaged; its exception type adds nothing
            raise UserError(f"{path}: not a readable neurodyn result ({reason})") from None
        reason = reason.split(". ")[0] if len(reason) > 100 else reason  # xarray goes on to list variables
        raise UserError(
            f"{path}: its variables do not match its family {family!r} ({type(exc).__name__}: {reason})"
        ) from None


def check_folder_writable(folder: str | os.PathLike, hint: str = "") -> Path:
    """Refuse, before any work, a folder that files cannot be created in.

    The folder may not exist yet: then its nearest existing ancestor must be a writable directory (the
    folder is created later with ``mkdir(parents=True)``). Checked with :func:`os.access`, which also
    reports read-only filesystems (for root too).

    Parameters
    ----------
    folder : path-like
        Where figures or a report will be written.
    hint : str
        What the user can do instead, appended to the message.

    Raises
    ------
    UserError
        One line naming the folder.
    """
    folder = Path(folder)
    tail = f"; {hint}" if hint else ""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{folder}: cannot write there: {probe} is a file, not a folder{tail}")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{folder}: cannot write there: {probe} is not writable (read-only){tail}")
    return folder


@contextmanager
def writes_to(folder: Path) -> Iterator[None]:
    """Turn a failed write into ``folder`` (no permission, read-only or full filesystem, a file in the
    way) into one :class:`UserError` line naming the folder, for writes :func:`check_folder_writable`
    could not foresee (permissions changed meanwhile, network filesystems)."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _WRITE_ERRNOS:
            raise
        raise UserError(f"{folder}: cannot write there ({exc.strerror}: {exc.filename})") from None


# --------------------------------------------------------------------------- streaming writer


def stream_partial_path(path: Path) -> Path:
    """The clearly marked ``<stem>.partial.h5`` that holds a streamed result until it is complete."""
    return path.with_name(f"{path.stem}.partial{path.suffix or '.h5'}")


def stream_budget() -> int:
    """Bytes one streamed block may hold (``NEURODYN_STREAM_BUFFER`` or :data:`STREAM_BUFFER_BYTES`)."""
    text = os.environ.get("NEURODYN_STREAM_BUFFER")
    try:
        return max(1024, int(float(text))) if text else STREAM_BUFFER_BYTES
    except ValueError:
        raise UserError(f"NEURODYN_STREAM_BUFFER = {text!r}: expected a number of bytes") from None


class ChunkedWriter:
    """Write a result file piece by piece, so it never has to fit in memory.

    Variables are declared with :meth:`variable` and filled with :meth:`append` (along their first
    dimension, which may be unlimited) or :meth:`write` (a region). Everything goes to
    :func:`stream_partial_path`; :meth:`commit` closes the file and renames it to ``path``. The file is
    flushed after every append, so after a crash the partial file holds every completed block. The
    result reads back with :func:`open_run` like one written by :func:`write_run`.

    Parameters
    ----------
    path : path-like
        Final result file.
    force : bool
        Replace an existing result.
    budget_bytes : int, optional
        Memory budget of one block (default :func:`stream_budget`); see :meth:`rows`.
    attrs : dict, optional
        Global attributes known from the start (what is being run), written at once so that the partial
        file of a killed run says what it holds. The file carries ``neurodyn_version`` from the start.

    Examples
    --------
    >>> w = ChunkedWriter("outputs/long.h5")                           # doctest: +SKIP
    >>> w.dimension("time", None); w.dimension("neuron", 100)          # doctest: +SKIP
    >>> w.variable("v", ("time", "neuron"), "f8", {"units": "V", "long_name": "membrane potential"})
    >>> w.append("v", block)   # any number of times                   # doctest: +SKIP
    >>> w.commit()                                                     # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike,
        force: bool = False,
        budget_bytes: int | None = None,
        attrs: dict[str, Any] | None = None,
    ):
        self.path = Path(path)
        check_writable(self.path, force)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = stream_partial_path(self.path)
        self.budget_bytes = budget_bytes or stream_budget()
        #: largest block handed to :meth:`append`/:meth:`write` so far (bytes), for tests and logs
        self.max_block_bytes = 0
        self._file = h5netcdf.File(self.partial, "w")
        self._lengths: dict[str, int] = {}
        self._unlimited: set[str] = set()
        self._coords: set[str] = set()
        # marked as neurodyn's from the start, so that even the partial file of a killed run is recognised
        self._attrs: dict[str, Any] = {MARKER_ATTR: __version__, **(attrs or {})}
        self._file.attrs.update(_encode_attrs(self._attrs))
        self._closed = False
        self.flush()  # a valid (empty) HDF5 file on disk from the start, whenever the process dies

    # -- declaring
    def dimension(self, name: str, size: int | None) -> None:
        """Declare a dimension; ``None`` makes it unlimited (grown by :meth:`append`)."""
        if name in self._file.dimensions:
            current = None if name in self._unlimited else self._file.dimensions[name].size
            if current != size:
                raise ValueError(f"dimension {name!r} already declared with size {current}")
            return
        self._file.dimensions[name] = size
        if size is None:
            self._unlimited.add(name)

    def variable(
        self,
        name: str,
        dims: tuple[str, ...],
        dtype: Any,
        attrs: dict[str, Any] | None = None,
        fill: Any = None,
        coord: bool = False,
    ) -> None:
        """Declare a variable over declared dimensions.

        Parameters
        ----------
        fill : scalar, optional
            Value of elements never written (stored as ``_FillValue``; NaN for float gaps).
        coord : bool
            Mark a non-index variable as a coordinate (index coordinates, named like their dimension,
            are coordinates anyway).
        """
        dtype = np.dtype(dtype)
        kwargs: dict[str, Any] = {}
        if dtype.kind in "OUS":
            dtype = h5py.string_dtype()
        elif fill is not None:
            kwargs["fillvalue"] = np.asarray(fill, dtype=dtype)
        if any(d in self._unlimited for d in dims):
            # Chunks of about 1 MiB along the unlimited dimension keep appends and reads cheap.
            shape = [1 if d in self._unlimited else max(1, self._file.dimensions[d].size) for d in dims]
            row = int(np.prod(shape[1:])) * max(1, np.dtype(dtype).itemsize)
            shape[0] = max(1, 2**20 // row)
            kwargs["chunks"] = tuple(shape)
        var = self._file.create_variable(name, dims, dtype, **kwargs)
        var.attrs.update(_encode_attrs(attrs or {}))
        self._lengths[name] = 0
        if coord and name not in dims:
            self._coords.add(name)
        self.flush()

    def set_attrs(self, attrs: dict[str, Any]) -> None:
        """Set global attributes (dicts, lists, bools are JSON-encoded on commit)."""
        self._attrs.update(attrs)

    def rows(self, bytes_per_row: int) -> int:
        """How many rows of ``bytes_per_row`` bytes fit in one block of the memory budget (at least 1)."""
        return max(1, self.budget_bytes // max(1, int(bytes_per_row)))

    # -- filling
    def append(self, name: str, data: Any) -> None:
        """Append ``data`` along the first (unlimited) dimension of variable ``name`` and flush."""
        var = self._file.variables[name]
        data = np.asarray(data)
        dim = var.dimensions[0]
        if dim not in self._unlimited:
            raise ValueError(f"{name!r}: first dimension {dim!r} is not unlimited; use write()")
        start = self._lengths[name]
        stop = start + data.shape[0]
        if stop > self._file.dimensions[dim].size:
            self._file.resize_dimension(dim, stop)
        if data.shape[0]:
            var[start:stop] = data
        self._lengths[name] = stop
        self.max_block_bytes = max(self.max_block_bytes, data.nbytes)
        self.flush()

    def flush(self) -> None:
        """Push everything written so far to the file on disk.

        ``h5netcdf.File.flush`` only writes netCDF bookkeeping attributes; the HDF5 file itself (its
        metadata cache and chunk cache) is flushed by h5py, without which a killed process leaves an
        unreadable partial file.
        """
        self._file.flush()
        self._file._h5file.flush()

    def write(self, name: str, data: Any, index: tuple = ()) -> None:
        """Write ``data`` into variable ``name`` at ``index`` (a tuple of ints/slices; () = everything)."""
        var = self._file.variables[name]
        data = np.asarray(data)
        if data.dtype.kind == "U":
            data = data.astype(object)
        var[index if index else ...] = data
        self.max_block_bytes = max(self.max_block_bytes, data.nbytes)

    def write_dataset(self, ds: xr.Dataset) -> None:
        """Write every variable of a (small, in-memory) Dataset whole, declaring what is missing."""
        for dim, size in ds.sizes.items():
            if dim not in self._file.dimensions:
                self.dimension(str(dim), int(size))
        for name, var in ds.variables.items():
            values = var.values
            fill = np.nan if values.dtype.kind == "f" else None
            self.variable(
                str(name), tuple(map(str, var.dims)), values.dtype, var.attrs, fill=fill, coord=name in ds.coords
            )
            if values.ndim and var.dims[0] in self._unlimited:
                self.append(str(name), values)
            else:
                self.write(str(name), values)
        self.set_attrs(ds.attrs)

    # -- finishing
    def commit(self) -> Path:
        """Close the file, make it durable and rename it to the final path."""
        lengths = {}
        for name, n in self._lengths.items():
            dims = self._file.variables[name].dimensions
            if dims and dims[0] in self._unlimited:
                lengths.setdefault(dims[0], set()).add(n)
        ragged = {d: sorted(ns) for d, ns in lengths.items() if len(ns) > 1}
        if ragged:
            raise ValueError(f"variables along unlimited dimensions have unequal lengths: {ragged}")
        attrs = _encode_attrs(self._attrs)
        if self._coords:
            attrs["coordinates"] = " ".join(sorted(self._coords))
        self._file.attrs.update(attrs)
        self._file.close()
        self._closed = True
        with open(self.partial, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(self.partial, self.path)
        return self.path

    def abort(self, keep: bool = True) -> None:
        """Close without publishing; keep the partial file (what was recorded) or delete it."""
        if not self._closed:
            self._file.attrs.update(_encode_attrs({**self._attrs, "partial": True}))
            self._file.close()
            self._closed = True
        if not keep and self.partial.exists():
            self.partial.unlink()

    def __enter__(self) -> ChunkedWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            if not self._closed:
                self.commit()
        else:
            self.abort(keep=True)


class _StreamSlot:
    def __init__(self, path: Path, force: bool, attrs: dict[str, Any] | None = None):
        self.path = path
        self.force = force
        self.attrs = attrs
        self.writer: ChunkedWriter | None = None


_ACTIVE: contextvars.ContextVar[_StreamSlot | None] = contextvars.ContextVar("neurodyn_stream", default=None)


@contextmanager
def streaming(
    path: str | os.PathLike, force: bool = False, attrs: dict[str, Any] | None = None
) -> Iterator[_StreamSlot]:
    """Offer streaming to the code run inside: :func:`stream_writer` then returns a writer for ``path``.

    Used by :func:`neurodyn.runner.run_scenario`. The writer is created only when a family asks for it;
    ``slot.writer`` stays None otherwise. A writer left uncommitted (an error) keeps its partial file.
    ``attrs`` are written into the file when it is created (see :class:`ChunkedWriter`).
    """
    slot = _StreamSlot(Path(path), force, attrs)
    token = _ACTIVE.set(slot)
    try:
        yield slot
    finally:
        _ACTIVE.reset(token)
        if slot.writer is not None and not slot.writer._closed:
            slot.writer.abort(keep=True)


def stream_writer() -> ChunkedWriter | None:
    """The writer of the result being produced, or None when the run stays in memory.

    Families call this at the start of ``simulate``: with a writer, append each chunk of recordings
    (``writer.append``) and size chunks with ``writer.rows(bytes_per_row)``; the Dataset they return then
    holds only the remaining variables (coordinates along streamed dimensions included in the stream).
    ``neurodyn.simulate`` (in memory) gets None, so families must support both paths.
    """
    slot = _ACTIVE.get()
    if slot is None:
        return None
    if slot.writer is None:
        slot.writer = ChunkedWriter(slot.path, force=slot.force, attrs=slot.attrs)
    return slot.writer
