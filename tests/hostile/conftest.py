"""The fork server of the hostile-input suite, started and warmed up once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.hostile.harness import SCENARIO, ForkServer
from tests.hostile.tiny import tiny_scenario

REPO = Path(__file__).resolve().parents[2]

#: scenarios run once inside the server before any case: together they load the kernels and lazily
#: imported modules of every family and experiment kind, which each forked case then finds ready
WARM_UP = (
    "quickstart",
    "brunel",
    "lif_coba_theory",
    "field_dispersion",
    "field_invariance",
    "sync_ou_topologies",
    "sync_logistic",
    "eqprop_gradient_theorem",
    "eqprop_digits_2h",
    "ultralif_bounds",
    "ultralif_digits_T1",
    "ultradlif_events",
    "ltc_bounds",
    "cfc_vs_ltc",
    "cfc_speed",
)


@pytest.fixture(scope="session")
def hostile_server(tmp_path_factory):
    """A :class:`~tests.hostile.harness.ForkServer` whose kernels are loaded; its cases go under ``cases``."""
    root = tmp_path_factory.mktemp("hostile")
    with ForkServer(REPO) as server:
        for name in WARM_UP:
            doc = tiny_scenario(REPO / "scenarios" / f"{name}.yaml")
            folder = root / "warm" / name
            folder.mkdir(parents=True)
            (folder / SCENARIO).write_text(yaml.safe_dump(doc, sort_keys=False))
            cmd = ["sweep", SCENARIO, "--workers", "1"] if "sweep" in doc else ["run", SCENARIO]
            out = "out/r" if "sweep" in doc else "out/r.h5"
            codes = server.warm(folder, [["validate", SCENARIO], [*cmd, "--output", out, "--quiet"]])
            assert codes == [0, 0], (name, codes)
        shutil.rmtree(root / "warm")
        server.cases = root / "cases"
        yield server
