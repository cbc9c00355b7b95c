"""What a run loads: nothing it does not use (dask, matplotlib), and dask arrays still work once imported.

Exact properties of the module set, each in a fresh interpreter; the times are in
``benchmarks/bench_startup.py`` (no timing here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest


def _python(repo, code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter with the checkout on the path; it prints one JSON line last."""
    env = {**os.environ, "PYTHONPATH": str(repo), "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_run_imports_neither_dask_nor_matplotlib(repo, tmp_path):
    out = _python(
        repo,
        """
        import json, sys
        import neurodyn.cli
        rc = neurodyn.cli.main(["run", sys.argv[1], "--output", sys.argv[2], "--quiet", "--set", "run.duration=20 ms"])
        loaded = sorted({m.split(".")[0] for m in sys.modules} & {"dask", "matplotlib", "xarray"})
        print(json.dumps({"rc": rc, "loaded": loaded}))
        """,
        "scenarios/cuba.yaml",
        str(tmp_path / "x.h5"),
    )
    assert out == {"rc": 0, "loaded": ["xarray"]}
    assert (tmp_path / "x.h5").is_file()


def test_dask_arrays_are_still_dask_arrays_to_xarray(repo, tmp_path):
    pytest.importorskip("dask.array")
    out = _python(
        repo,
        """
        import json, sys
        import numpy as np
        import xarray as xr
        import neurodyn.storage  # defers xarray's dask detection
        plain = xr.Variable("x", np.arange(4.0))
        assert "dask" not in sys.modules
        import dask.array as da
        lazy = xr.Dataset({"v": ("x", da.arange(4.0, chunks=2))})
        path = neurodyn.storage.write_run(lazy, sys.argv[1])
        back = neurodyn.storage.open_run(path)
        print(json.dumps({
            "chunked": lazy["v"].chunks is not None,
            "plain_chunked": plain.chunks is not None,
            "values": back["v"].values.tolist(),
        }))
        """,
        str(tmp_path / "d.h5"),
    )
    assert out == {"chunked": True, "plain_chunked": False, "values": [0.0, 1.0, 2.0, 3.0]}


def test_provenance_platform_and_commit_are_the_standard_answers_without_subprocesses(repo, monkeypatch):
    import platform
    import shutil
    import subprocess as sp

    from neurodyn import runner

    uname = platform.uname()
    if uname.system == "Linux" and uname.processor in ("", "unknown", uname.machine):
        assert runner.platform_text() == platform.platform()
    if shutil.which("git") is None:
        pytest.skip("no git")
    head = sp.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    if head.returncode != 0:
        pytest.skip("not a git checkout")

    def no_subprocess(*args, **kwargs):
        raise AssertionError("a subprocess was started")

    monkeypatch.setattr(runner.subprocess, "run", no_subprocess)
    assert runner._git_head(repo) == head.stdout.strip()
