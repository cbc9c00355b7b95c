"""Result files: atomic, never silently overwritten, readable by plain xarray and h5py."""

import h5py
import numpy as np
import pytest
import xarray as xr

from neurodyn.errors import OutputExistsError
from neurodyn.storage import open_run, partial_path, write_run


def _ds():
    ds = xr.Dataset(
        {"x": ("t", np.arange(5.0), {"units": "s", "long_name": "x", "meta": {"a": [1, 2]}})},
        coords={"t": ("t", np.arange(5), {"units": "1", "long_name": "t"})},
    )
    ds.attrs.update(flag=True, nothing=None, nested={"k": 1.5}, text="hello", seed=3)
    return ds


def test_roundtrip_plain_xarray_and_h5py(tmp_path):
    path = write_run(_ds(), tmp_path / "r.h5")
    plain = xr.open_dataset(path, engine="h5netcdf")
    np.testing.assert_array_equal(plain["x"].values, np.arange(5.0))
    plain.close()
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["x"][()], np.arange(5.0))
    ds = open_run(path)
    assert ds.attrs["flag"] is True and ds.attrs["nothing"] is None
    assert ds.attrs["nested"] == {"k": 1.5} and ds.attrs["seed"] == 3
    assert ds["x"].attrs["meta"] == {"a": [1, 2]}


def test_no_silent_overwrite(tmp_path):
    path = write_run(_ds(), tmp_path / "r.h5")
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="--force"):
        write_run(_ds().assign(x=lambda d: d.x * 2), path)
    assert path.read_bytes() == before
    write_run(_ds().assign(x=lambda d: d.x * 2), path, force=True)
    np.testing.assert_array_equal(open_run(path)["x"].values, 2 * np.arange(5.0))


def test_failed_write_leaves_nothing(tmp_path):
    bad = _ds()
    bad.attrs["unstorable"] = object()
    with pytest.raises(TypeError):
        write_run(bad, tmp_path / "r.h5")
    assert list(tmp_path.iterdir()) == []
    assert not partial_path(tmp_path / "r.h5").exists()


def test_claim_retries_when_its_lock_file_was_replaced(tmp_path, monkeypatch):
    """The unlink race: between our open and our flock, the holder removed the lock file and another run
    created a new one. Locking the removed inode proves nothing, so the claim starts again."""
    import fcntl
    import os

    from neurodyn import storage

    out = tmp_path / "r.h5"
    lock = storage.lock_path(out)
    real = fcntl.flock
    locked: list[int] = []

    def flock(fd: int, op: int) -> None:
        if not locked:
            lock.unlink()
            lock.write_text("")  # a new lock file under the same name
        locked.append(fd)
        real(fd, op)

    monkeypatch.setattr(storage.fcntl, "flock", flock)
    with storage.claim_output(out):
        assert len(locked) == 2  # the first lock was on the removed inode: tried again
        assert os.path.samestat(os.fstat(locked[-1]), os.stat(lock))
    assert not lock.exists()


def test_force_replaces_only_marked_files(tmp_path):
    from neurodyn.errors import UserError
    from neurodyn.storage import check_writable, is_neurodyn_result

    ours = write_run(_ds(), tmp_path / "ours.h5")
    assert is_neurodyn_result(ours)
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f.attrs["family"] = "lif_network"
    (tmp_path / "text.h5").write_text("x")
    check_writable(ours, force=True)
    for name in ("foreign.h5", "text.h5"):
        assert not is_neurodyn_result(tmp_path / name)
        with pytest.raises(UserError, match="not a neurodyn result"):
            check_writable(tmp_path / name, force=True)
    with pytest.raises(UserError, match="is a folder"):
        check_writable(tmp_path, force=True)


@pytest.mark.parametrize(
    ("content", "ours"),
    [
        (b"", True),  # killed between creating the file and HDF5 writing to it
        (b"\x89HDF", True),  # killed while HDF5 wrote its signature
        (b"\x89HDF\r\n\x1a\n" + b"\0" * 100, True),  # an HDF5 file cut short (HDF5 cannot open it)
        (b"my notes", False),
        (b"\x89HDX", False),
    ],
    ids=["empty", "piece of the signature", "cut short", "text", "other binary"],
)
def test_a_partial_file_is_recognised_as_a_killed_runs_by_its_content(tmp_path, content, ours):
    from neurodyn.storage import is_partial_result

    path = tmp_path / "r.partial.h5"
    path.write_bytes(content)
    assert is_partial_result(path) is ours
