"""Files that are not usable neurodyn results, given to ``info``, ``compare`` and ``plot``.

Each faulty file is made from a real small result (``scenarios/quickstart.yaml``, shrunk) or a real
small sweep (the ``ou_test`` family of :mod:`tests.sweep_family`). Every command must refuse it with
exit code 2 and one line on stderr that names the file and what is wrong: no traceback, no warning.
Unwritable output folders for ``plot`` and ``compare`` are refused the same way, before any work.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

import neurodyn
from neurodyn import cli as cli_module
from neurodyn import storage
from neurodyn.sweep import execute_sweep
from tests import sweep_family as fam

COMMANDS = ("info", "compare", "plot")
QUICK = [
    "--set",
    "run.duration=0.1 s",
    "--set",
    "params.populations.noisy.size=20",
    "--set",
    "params.populations.poisson.size=20",
    "--set",
    "record.analysis_start=0.01 s",
    "--set",
    "record.v.indices=[0, 10, 40]",
]


@pytest.fixture(scope="module")
def cli_env() -> dict[str, str]:
    """Every command of this module knows the sweep test family."""
    return fam.ENV


@pytest.fixture(scope="module")
def result(tmp_path_factory, cli) -> Path:
    """A real (small) lif_network result file."""
    out = tmp_path_factory.mktemp("result") / "quick.h5"
    proc = cli("run", "scenarios/quickstart.yaml", *QUICK, "--output", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A real finished sweep folder (3 points), run in this process."""
    fam.register()
    base = tmp_path_factory.mktemp("sweep")
    scenario = fam.write_scenario(
        base / "s.yaml", "{grid: {params.sigma: [0.5, 1.0, 2.0]}}", params="{n: 4, tau: 10 ms, sigma: 1.0}"
    )
    out = execute_sweep(neurodyn.load_scenario(scenario), output=base / "ousweep", workers=1)
    assert not out.failed and out.path.is_file()
    return base / "ousweep"


# --------------------------------------------------------------------------- faulty result files


def _copy(src: Path, dest: Path) -> Path:
    shutil.copy(src, dest)
    return dest


def _set_attrs(src: Path, dest: Path, **attrs) -> Path:
    _copy(src, dest)
    with h5py.File(dest, "r+") as f:
        for k, v in attrs.items():
            f.attrs[k] = v
    return dest


def _flip_header(src: Path, dest: Path, name: str | None) -> Path:
    """Copy with 8 bytes flipped inside the object header of ``name`` (None: the root group).

    HDF5 checksums its metadata: the damage is found when the header is read (an HDF5 "incorrect
    metadata checksum"), as it would be after a disk or transfer error.
    """
    with h5py.File(src, "r") as f:
        addr = h5py.h5o.get_info(f.id if name is None else f[name].id).addr
    data = bytearray(src.read_bytes())
    for i in range(addr + 20, addr + 28):
        data[i] ^= 0xFF
    dest.write_bytes(bytes(data))
    return dest


def _damaged_chunk(src: Path, dest: Path) -> Path:
    """The result rewritten with ``v`` compressed, then bytes of its first compressed chunk flipped.

    Metadata is intact (``info`` describes it); reading ``v`` fails in the decompression filter, so the
    damage is found only when data is read.
    """
    tmp = dest.with_name("zlib-" + dest.name)
    with xr.open_dataset(src, engine="h5netcdf") as ds:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding={"v": {"zlib": True}})
    with h5py.File(tmp, "r") as f:
        offset = f["v"].id.get_chunk_info(0).byte_offset
    data = bytearray(tmp.read_bytes())
    for i in range(offset + 10, offset + 40):
        data[i] ^= 0xFF
    dest.write_bytes(bytes(data))
    tmp.unlink()
    return dest


def _foreign(src: Path, dest: Path) -> Path:
    with h5py.File(dest, "w") as f:
        f["data"] = np.arange(10.0)  # a dataset without dimension scales: h5netcdf would warn about it
        f.attrs["title"] = "someone else's data"
    return dest


def _family_only(src: Path, dest: Path) -> Path:
    with h5py.File(dest, "w") as f:
        f["data"] = np.arange(10.0)
        f.attrs["family"] = "lif_network"
    return dest


def _other_variables(src: Path, dest: Path) -> Path:
    """neurodyn's attributes of a lif_network run over variables no family writes."""
    ds = xr.Dataset(
        {"x": ("t", np.arange(3.0)), "x_theory": ("t", np.array(["a", "b", "c"], dtype=object))},
        attrs={"family": "lif_network", "scenario_name": "x", "scenario": "name: x\n"},
    )
    storage.write_run(ds, dest)
    return dest


def _killed_partial(src: Path, dest: Path) -> Path:
    """What a streamed run killed with SIGKILL leaves: recorded variables, no attributes yet."""
    with h5py.File(dest, "w") as f:
        f["v"] = np.zeros((4, 3))
    return dest


def _truncated(src: Path, dest: Path) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: len(data) // 2])
    return dest


def _text(src: Path, dest: Path) -> Path:
    dest.write_text("name: x\nfamily: lif_network\n")
    return dest


def _empty(src: Path, dest: Path) -> Path:
    dest.write_bytes(b"")
    return dest


def _directory(src: Path, dest: Path) -> Path:
    dest.mkdir()
    (dest / "some.h5").write_bytes(b"")
    return dest


# name -> (builder, words of the message, the commands that must refuse it)
FAULTY = {
    "foreign.h5": (_foreign, ["not a neurodyn result", "without neurodyn's attributes"], COMMANDS),
    "family_only.h5": (_family_only, ["not a neurodyn result", "family", "scenario_name"], COMMANDS),
    "unknown_family.h5": (
        lambda s, d: _set_attrs(s, d, family="zzz_net"),
        ["family 'zzz_net'", "not installed"],
        ("compare", "plot"),  # info describes it: that needs no family code
    ),
    "relabelled.h5": (
        lambda s, d: _set_attrs(s, d, family="sync_learners"),
        ["do not match its family 'sync_learners'", "KeyError"],
        ("plot",),  # info describes it; compare's generic rows are family-independent and hold
    ),
    "other_variables.h5": (
        _other_variables,
        ["do not match its family 'lif_network'"],
        ("compare", "plot"),
    ),
    "bad_json_value.h5": (
        lambda s, d: _set_attrs(s, d, _json_attrs=json.dumps(["title"])),
        ["attribute 'title'", "does not hold JSON"],
        COMMANDS,
    ),
    "bad_json_list.h5": (
        lambda s, d: _set_attrs(s, d, _json_attrs="{not json"),
        ["_json_attrs", "not a JSON list"],
        COMMANDS,
    ),
    "checksum_root.h5": (lambda s, d: _flip_header(s, d, None), ["incorrect metadata checksum"], COMMANDS),
    "checksum_variable.h5": (lambda s, d: _flip_header(s, d, "rate"), ["incorrect metadata checksum"], COMMANDS),
    "damaged_chunk.h5": (_damaged_chunk, ["not a readable neurodyn result", "filter"], ("compare", "plot")),
    "truncated.h5": (_truncated, ["not a readable neurodyn result", "truncated file"], COMMANDS),
    "empty.h5": (_empty, ["the file is empty"], COMMANDS),
    "text.h5": (_text, ["not an HDF5 file"], COMMANDS),
    "folder.h5": (_directory, ["is a directory", "no sweep.json"], COMMANDS),
    "killed.partial.h5": (_killed_partial, ["unfinished partial file", "xarray.open_dataset"], COMMANDS),
}
CASES = [(name, cmd) for name, (_b, _n, cmds) in FAULTY.items() for cmd in cmds]


@pytest.fixture(scope="module")
def faulty(result, tmp_path_factory) -> Path:
    """A folder with every file of :data:`FAULTY`."""
    folder = tmp_path_factory.mktemp("faulty")
    for name, (build, _needles, _cmds) in FAULTY.items():
        build(result, folder / name)
    return folder


def test_the_result_itself_is_accepted(result, tmp_path, cli):
    for cmd in COMMANDS:
        extra = ["--out", tmp_path] if cmd == "plot" else []
        proc = cli(cmd, result, *extra)
        assert proc.returncode == 0 and proc.stderr == "", (cmd, proc.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quick_overview.png"]


@pytest.mark.parametrize(("name", "command"), CASES, ids=[f"{c}-{n}" for n, c in CASES])
def test_faulty_file_is_refused_in_one_line(faulty, tmp_path, name, command, cli, user_error):
    _build, needles, _cmds = FAULTY[name]
    extra = ["--out", tmp_path / "figs"] if command == "plot" else []
    proc = cli(command, faulty / name, *extra)
    user_error(proc, str(faulty / name), *needles)
    assert "warn" not in proc.stderr.lower()
    assert not (tmp_path / "figs").exists()  # refused before anything was written


@pytest.mark.parametrize(
    "name", sorted(n for n, (_b, _n, cmds) in FAULTY.items() if "info" not in cmds and n != "damaged_chunk.h5")
)
def test_info_describes_a_file_whose_family_code_cannot_read_it(faulty, name, cli):
    """``info`` reads only what neurodyn writes in every file (attributes, dimensions, variable names)."""
    proc = cli("info", faulty / name)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.startswith(f"{faulty / name}: ")


def test_info_describes_a_file_with_damaged_data_but_intact_metadata(faulty, cli):
    proc = cli("info", faulty / "damaged_chunk.h5")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "    v                        (time,neuron) [V] membrane potential" in proc.stdout


def test_identification_functions(result, faulty):
    assert storage.is_neurodyn_result(result)
    assert storage.identify_result(result)["family"] == "lif_network"
    ours = sorted(n for n in FAULTY if storage.is_neurodyn_result(faulty / n))
    # files whose root attributes name neurodyn's markers, however damaged or mislabelled elsewhere
    assert ours == [
        "bad_json_list.h5",
        "bad_json_value.h5",
        "checksum_variable.h5",
        "damaged_chunk.h5",
        "other_variables.h5",
        "relabelled.h5",
        "unknown_family.h5",
    ]
    readable = []
    for name in FAULTY:
        try:
            storage.identify_result(faulty / name, known_family=False)
            readable.append(name)
        except neurodyn.UserError:
            pass
    # data damage and mismatched variables show only when the data is read or interpreted
    assert sorted(readable) == ["damaged_chunk.h5", "other_variables.h5", "relabelled.h5", "unknown_family.h5"]


def test_aborted_partial_file_is_described(tmp_path, cli):
    """A stream stopped by an error keeps what it recorded, marked ``partial``: ``info`` shows it."""
    w = storage.ChunkedWriter(tmp_path / "r.h5")
    w.dimension("time", None)
    w.variable("v", ("time",), "f8", {"units": "V", "long_name": "membrane potential"})
    w.append("v", np.arange(3.0))
    w.set_attrs({"family": "lif_network", "scenario_name": "r", "scenario": "name: r\n"})
    w.abort(keep=True)
    proc = cli("info", tmp_path / "r.partial.h5")
    assert proc.returncode == 0, proc.stderr
    assert "  partial          yes: the run stopped before its end" in proc.stdout
    assert "  dimensions       time=3" in proc.stdout


# --------------------------------------------------------------------------- sweeps


def _manifest_without(key):
    def edit(doc):
        del doc[key]
        return json.dumps(doc)

    return edit


def _bad_point_id(doc):
    doc["points"][0]["id"] = "../../escape"
    return json.dumps(doc)


def _index_outside(doc):
    doc["points"][0]["index"] = [7]
    return json.dumps(doc)


def _unknown_family(doc):
    doc["family"] = "zzz_net"
    return json.dumps(doc)


BAD_MANIFESTS = {
    "not JSON": (lambda doc: "{this is not json", ["not a readable sweep plan", "not JSON"]),
    "a list": (lambda doc: "[1, 2, 3]", ["not a sweep plan neurodyn wrote", "JSON list, not an object"]),
    "no dims": (_manifest_without("dims"), ["not a sweep plan neurodyn wrote", "missing key 'dims'"]),
    "no points": (_manifest_without("points"), ["missing key 'points'"]),
    "point id with a path": (_bad_point_id, ["point id '../../escape' is not a file name"]),
    "index outside": (_index_outside, ["index [7] outside the sweep's shape [3]"]),
    "unknown family": (_unknown_family, ["family 'zzz_net' is not installed here"]),
    "not text": (lambda doc: b"\xff\xfe\x00garbage", ["not a readable sweep plan"]),
}


@pytest.fixture
def bad_sweep(sweep, tmp_path):
    """A copy of the finished sweep, to damage its sweep.json."""
    copy = tmp_path / "ousweep"
    shutil.copytree(sweep, copy)
    return copy


def _damage_manifest(folder: Path, case: str) -> Path:
    edit, _needles = BAD_MANIFESTS[case]
    manifest = folder / "sweep.json"
    text = edit(json.loads(manifest.read_text()))
    manifest.write_bytes(text if isinstance(text, bytes) else text.encode())
    return manifest


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_garbage_sweep_json_is_refused_in_one_line(bad_sweep, case, command, cli, user_error):
    manifest = _damage_manifest(bad_sweep, case)
    proc = cli(command, bad_sweep)
    user_error(proc, str(manifest), *BAD_MANIFESTS[case][1])
    assert not (bad_sweep / "report").exists()
    assert not (bad_sweep.parent / "escape_trace.png").exists()


@pytest.mark.parametrize("case", list(BAD_MANIFESTS))
def test_combined_file_beside_a_garbage_sweep_json(bad_sweep, case, cli, user_error):
    """``plot`` and ``compare`` need the plan (point files, dimensions) and say which file is wrong;
    ``info`` describes the combined file, which is intact."""
    manifest = _damage_manifest(bad_sweep, case)
    combined = bad_sweep / "ousweep.h5"
    user_error(cli("plot", combined), str(manifest), *BAD_MANIFESTS[case][1])
    if case == "not JSON":
        user_error(cli("compare", combined), str(manifest), *BAD_MANIFESTS[case][1])
        proc = cli("info", combined)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert proc.stdout.startswith(f"{combined}: ousweep (ou_test, backend numba)")


@pytest.mark.parametrize("command", ["compare", "plot"])
def test_combined_file_away_from_its_folder(sweep, tmp_path, command, cli, user_error):
    lone = shutil.copy(sweep / "ousweep.h5", tmp_path / "ousweep.h5")
    proc = cli(command, lone)
    user_error(proc, str(lone), "combined sweep file without its sweep folder", "give the sweep folder")


def test_damaged_point_file_is_named(bad_sweep, cli, user_error):
    """A sweep whose combined file is missing is combined from its point files: a damaged one is named."""
    (bad_sweep / "ousweep.h5").unlink()
    point = bad_sweep / "points" / "sigma=1.0.h5"
    _flip_header(_copy(point, bad_sweep / "ok.h5"), point, None)
    (bad_sweep / "ok.h5").unlink()
    for command in ("compare", "plot"):
        proc = cli(command, bad_sweep)
        user_error(proc, str(point), "incorrect metadata checksum")


@pytest.mark.parametrize("given", ["folder", "combined file"])
def test_plot_on_a_sweep_writes_the_report_figures(sweep, tmp_path, given, cli):
    out = tmp_path / "figs"
    proc = cli("plot", sweep if given == "folder" else sweep / "ousweep.h5", "--out", out)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    # the variance against sigma, and the family's figures of the points along the first sweep dimension
    names = ["ousweep_variance_sweep.png", "sigma=0.5_trace.png", "sigma=1.0_trace.png", "sigma=2.0_trace.png"]
    assert proc.stdout.splitlines() == [str(out / n) for n in names]
    assert sorted(p.name for p in out.iterdir()) == names
    assert not (sweep / "report").exists()


def test_info_on_a_sweep_folder_describes_its_combined_file(sweep, cli):
    proc = cli("info", sweep)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.splitlines()[0] == f"{(sweep / 'ousweep.h5').absolute()}: ousweep (ou_test, backend numba)"


def test_info_on_an_unfinished_sweep_folder(bad_sweep, cli):
    (bad_sweep / "ousweep.h5").unlink()
    (bad_sweep / "points" / "sigma=2.0.h5").unlink()
    proc = cli("info", bad_sweep)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.splitlines() == [
        f"{bad_sweep}: sweep ousweep (ou_test), 3 points (sigma=3)",
        "  2 finished, no combined result yet; run the sweep again to finish it",
        "  swept:",
        "    sigma                    params.sigma: 0.5, 1, 2",
    ]


# --------------------------------------------------------------------------- unwritable places


def test_plot_out_under_a_file(result, tmp_path, cli, user_error):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = cli("plot", result, "--out", blocker / "figs")
    user_error(proc, str(blocker / "figs"), f"{blocker} is a file, not a folder", "--out DIR")


def test_compare_report_dir_under_a_file(sweep, tmp_path, cli, user_error):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = cli("compare", sweep, "--report-dir", blocker / "rep")
    user_error(proc, str(blocker / "rep"), "is a file, not a folder", "--report-dir DIR")
    assert not (sweep / "report").exists()


def test_compare_when_the_report_path_is_a_file(bad_sweep, cli, user_error):
    (bad_sweep / "report").write_text("someone's notes")
    proc = cli("compare", bad_sweep)
    user_error(proc, str(bad_sweep / "report"), "is a file, not a folder", "--report-dir DIR")
    assert (bad_sweep / "report").read_text() == "someone's notes"


def test_compare_report_dir_writes_elsewhere(sweep, tmp_path, cli):
    """A read-only (shared) sweep folder: the table is printed and the report goes where asked."""
    proc = cli("compare", sweep, "--report-dir", tmp_path / "rep")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.splitlines()[-1] == f"report: {tmp_path / 'rep' / 'report.md'}"
    assert (tmp_path / "rep" / "report.md").read_text().startswith("# Sweep report: ousweep")
    assert not (sweep / "report").exists()


def test_report_dir_of_a_single_run_is_refused(result, tmp_path, cli, user_error):
    proc = cli("compare", result, "--report-dir", tmp_path / "rep")
    user_error(proc, f"--report-dir {tmp_path / 'rep'}", "only a sweep has a report", str(result))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def read_only(monkeypatch):
    """Make ``os.access`` report the given folders as read-only (as a read-only mount does, for root too).

    The tests run as root, for whom a chmod 0o555 folder stays writable; ``os.access`` is what
    :func:`neurodyn.storage.check_folder_writable` asks, so this exercises the same code path.
    """
    folders: list[Path] = []
    real = storage.os.access

    def access(path, mode, *a, **k):
        if mode & storage.os.W_OK and Path(path).absolute() in folders:
            return False
        return real(path, mode, *a, **k)

    monkeypatch.setattr(storage.os, "access", access)
    return folders


def _no_reading(monkeypatch):
    """Fail the test if a sweep is opened: refusals must come before any work."""

    def boom(*a, **k):
        raise AssertionError("opened the sweep before checking where to write")

    monkeypatch.setattr("neurodyn.sweep.report.open_sweep", boom)


def test_compare_on_a_read_only_sweep_folder(sweep, read_only, monkeypatch, capsys):
    fam.register()
    read_only.append(sweep.absolute())
    _no_reading(monkeypatch)
    assert cli_module.main(["compare", str(sweep)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"neurodyn: error: {sweep.absolute() / 'report'}: cannot write there: {sweep.absolute()} is not "
        "writable (read-only); write the report elsewhere with --report-dir DIR"
    ]
    assert not (sweep / "report").exists()


def test_plot_into_a_read_only_folder(result, sweep, tmp_path, read_only, monkeypatch, capsys):
    fam.register()
    read_only.append(tmp_path.absolute())
    _no_reading(monkeypatch)
    assert cli_module.main(["plot", str(result), "--out", str(tmp_path / "figs")]) == 2
    assert cli_module.main(["plot", str(sweep), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"neurodyn: error: {tmp_path / 'figs'}: cannot write there: {tmp_path} is not writable (read-only); "
        "choose another folder with --out DIR",
        f"neurodyn: error: {tmp_path}: cannot write there: {tmp_path} is not writable (read-only); "
        "choose another folder with --out DIR",
    ]
    assert list(tmp_path.iterdir()) == []
