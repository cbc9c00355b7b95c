"""The example notebooks in examples/ run from top to bottom, so they cannot fall behind the API.

Each notebook is executed in a fresh ``python3`` kernel (ipykernel of this interpreter) with the working
directory set to an empty temporary folder: besides running, this checks that a notebook writes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from neurodyn.registry import builtin_names
from neurodyn.scenario import REPO_ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.ipynb"))
#: notebooks that take more than about 15 s (kernel start included) on two busy cores
SLOW = {"cortical_field", "sync_learners"}
#: generous: a busy shared machine can make a 15 s notebook take minutes; only a hang should fail
TIMEOUT = 600


def test_one_notebook_per_family():
    assert [p.stem for p in EXAMPLES] == sorted(builtin_names())


@pytest.mark.parametrize(
    "path", [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in SLOW else []) for p in EXAMPLES]
)
def test_notebook_runs(path: Path, tmp_path, monkeypatch, repo):
    nb = nbformat.read(path, as_version=4)
    # stored without outputs, so the repository stays small and diffs stay readable
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    # the kernel imports this checkout's neurodyn and draws off screen
    monkeypatch.setenv("PYTHONPATH", str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(
        nb, timeout=TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    assert list(tmp_path.iterdir()) == []
    # the figures were made (their labels are the file suffixes of `neurodyn plot`) and shown inline
    cell = next(c for c in nb.cells if "get_label()" in c.source)
    labels = [o for o in cell.outputs if o.get("output_type") == "execute_result"][0]["data"]["text/plain"]
    assert labels.startswith("['") and labels.endswith("']"), labels
    shown = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(shown) >= labels.count("'") // 2
