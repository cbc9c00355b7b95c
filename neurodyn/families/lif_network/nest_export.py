"""The cluster path of ``lif_network``: a standalone PyNEST script, and its recordings read back.

:func:`export_script` writes the source of :mod:`.nest_script` verbatim, followed by the scenario's
specification (:func:`.nest_backend.nest_spec`) and the resolved scenario, so ``python OUT.py`` builds the
very network ``run.backend: nest`` builds (same calls, same seed) and ``mpirun -n N python OUT.py`` runs it
on N processes of a NEST built with MPI. :func:`read_nest_output` reads the folder the script wrote (every
rank's recordings) into the Dataset a run writes.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from neurodyn.errors import UserError
from neurodyn.families.lif_network import nest_script
from neurodyn.families.lif_network.nest_backend import (
    NEST_VERSION,
    Recordings,
    nest_attrs,
    nest_spec,
    recordings_dataset,
)

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.lif_network.build import LIFBuilt

#: first line of every exported script after the shebang: how ``--force`` tells neurodyn's own scripts
EXPORT_MARKER = "# neurodyn export: lif_network -> NEST"


def export_script(scenario: Any, version: str) -> str:
    """The text of a standalone PyNEST script that runs ``scenario`` (its ``run.backend`` set to ``nest``).

    Parameters
    ----------
    scenario : Scenario
        A validated ``lif_network`` scenario with ``run.backend: nest`` (its resolved YAML is embedded
        and written beside the recordings, so ``neurodyn import-nest`` knows what was run).
    version : str
        neurodyn's version, named in the script's header.

    Raises
    ------
    ScenarioError
        What NEST cannot express (as for ``run.backend: nest``).
    """
    spec = nest_spec(scenario)
    source = inspect.getsource(nest_script)
    header = "\n".join(
        [
            "#!/usr/bin/env python3",
            EXPORT_MARKER,
            f"# Scenario '{scenario.name}', written by neurodyn {version} for NEST {NEST_VERSION}.",
            "#   python THIS.py [--output-dir DIR] [--threads N]   one process",
            "#   mpirun -n 4 python THIS.py                        four MPI processes (a NEST built with MPI)",
            "#   neurodyn import-nest DIR --output RESULT.h5       the recordings as a neurodyn result file",
            "# The same number of processes x threads as the scenario's run (1 process x run.threads) reproduces",
            "# its spikes exactly; other counts give another realisation of the same network model.",
            "",
        ]
    )
    tail = "\n".join(
        [
            "",
            "",
            "# ---------------------------------------------------------------- the scenario",
            f"SCENARIO_YAML = {scenario.resolved_yaml()!r}",
            f"SPEC = json.loads({json.dumps(spec, sort_keys=True)!r})",
            "",
            'if __name__ == "__main__":',
            "    sys.exit(main(SPEC, SCENARIO_YAML))",
            "",
        ]
    )
    return header + source + tail


def _read_records(path: Path, dtype: np.dtype, count: int) -> np.ndarray:
    """The ``count`` records of ``dtype`` a rank wrote to ``path`` (its size checked: a cut file is refused)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UserError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if size != count * dtype.itemsize:
        raise UserError(
            f"{path}: {size} bytes, but its rank file says {count} records of {dtype.itemsize} bytes "
            "(cut short or replaced); run the script again"
        )
    return np.fromfile(path, dtype=dtype, count=count)


def read_rank_files(folder: Path) -> list[dict[str, Any]]:
    """Every rank's ``rank-<r>.json`` in ``folder``, checked to be one complete run.

    Raises
    ------
    UserError
        No rank file, ranks missing, or rank files of different runs mixed in one folder.
    """
    infos = []
    for path in sorted(folder.glob("rank-*.json")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: unreadable ({exc})") from None
        if not isinstance(info, dict) or info.get("format") != nest_script.SPEC_FORMAT:
            raise UserError(f"{path}: not a rank file of a script written by 'neurodyn export --to nest'")
        infos.append(info)
    if not infos:
        raise UserError(
            f"{folder}: no rank-<r>.json; each process of the exported script writes one when it has finished "
            "(the script has not run, not to its end, or wrote elsewhere: see its --output-dir)"
        )
    n = int(infos[0]["num_processes"])
    digests = {i["spec_sha256"] for i in infos}
    ranks = sorted(int(i["rank"]) for i in infos)
    if len(digests) > 1 or any(int(i["num_processes"]) != n for i in infos):
        raise UserError(f"{folder}: holds the rank files of different runs; give each run its own --output-dir")
    if ranks != list(range(n)):
        missing = sorted(set(range(n)) - set(ranks))
        raise UserError(
            f"{folder}: a run of {n} processes, but the rank files of processes {missing or ranks} are "
            "missing or extra (processes still running, failed, or files of another run)"
        )
    return infos


def read_nest_output(built: LIFBuilt, folder: Path) -> xr.Dataset:
    """The Dataset of what an exported script wrote into ``folder`` (without theory and provenance).

    Parameters
    ----------
    built : LIFBuilt
        The built scenario the script was made from (its ``scenario.yaml``); its NEST specification
        must be the one the script ran (compared by digest).
    folder : Path
        The script's output folder.

    Raises
    ------
    UserError
        Incomplete or mixed output, or recordings of another network than ``scenario``'s.
    """
    spec = nest_spec(built.scenario)
    infos = read_rank_files(folder)
    if infos[0]["spec_sha256"] != nest_script.spec_digest(spec):
        raise UserError(
            f"{folder}: its recordings were made from another network than its scenario.yaml describes "
            "(edited after the run?); export and run the scenario again"
        )
    spike_dtype = np.dtype([("sender", "<i8"), ("step", "<i8")])
    spikes = [_read_records(folder / i["spike_file"], spike_dtype, int(i["n_spikes"])) for i in infos]
    spikes = np.concatenate(spikes)
    rec = Recordings(spikes["sender"], spikes["step"])
    if spec["probe"] is not None:
        v = np.concatenate([_read_records(folder / i["v_file"], nest_script.V_RECORD, int(i["n_v"])) for i in infos])
        rec.v_sender, rec.v_step, rec.v_mv = v["sender"], v["step"], v["v"]
    first = infos[0]
    attrs = nest_attrs(
        spec,
        str(first["nest_version"]),
        int(first["num_processes"]),
        int(first["threads"]),
        sum(int(i["n_synapses"]) for i in infos),
    )
    attrs["nest_wall_time_s"] = max(float(i["wall_time_s"]) for i in infos)
    return recordings_dataset(built, rec, attrs)
