"""How sweep workers start: a light ``import neurodyn``, and a fork server that is warm before it forks.

Each check runs in a fresh interpreter: the fork server of a process starts once, with the preload of
whoever started it first, so the pytest process (whose other tests already use the pool) cannot show it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import sweep_family as fam

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("xarray", "numba", "pydantic", "h5py", "dask")


def _python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter (repository on the path); it prints one JSON line."""
    env = {**os.environ, **fam.ENV, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_neurodyn_and_the_cli_loads_no_heavy_library():
    # The command line starts the pool's fork server before it pays for xarray, Numba and pydantic.
    loaded = _python(f"""
        import json, sys
        import neurodyn, neurodyn.cli, neurodyn.worker_pool
        print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
    """)
    assert loaded == []


def test_lazy_api_is_the_real_functions():
    import neurodyn.runner
    import neurodyn.scenario
    import neurodyn.storage
    import neurodyn.sweep

    assert neurodyn.simulate is neurodyn.runner.simulate
    assert neurodyn.run_scenario is neurodyn.runner.run_scenario
    assert neurodyn.open_sweep is neurodyn.sweep.open_sweep
    assert neurodyn.load_scenario is neurodyn.scenario.load_scenario
    assert neurodyn.open_run is neurodyn.storage.open_run
    assert set(neurodyn.__all__) <= set(dir(neurodyn))
    with pytest.raises(AttributeError, match="no attribute 'simulat'"):
        neurodyn.simulat  # noqa: B018


WORKER_STATE = """
    import json
    from concurrent.futures import ProcessPoolExecutor
    {start}
    from neurodyn.worker_pool import pool_context
    with ProcessPoolExecutor(1, mp_context=pool_context({family!r})) as pool:
        # eval is a builtin: unpickling it imports nothing, so the worker reports what it forked with.
        state = pool.submit(eval, "(sorted(__import__('sys').modules), __import__('gc').get_freeze_count())")
        modules, frozen = state.result()
    print(json.dumps({{"modules": [m for m in modules if m in {wanted!r}], "frozen": frozen}}))
"""
WANTED = [
    "dask.array",
    "neurodyn.runner",
    "neurodyn.sweep",
    "neurodyn.worker_warmup",
    "numba.np.arraymath",
    fam.TARGET.partition(":")[0],
]


def test_workers_fork_with_neurodyn_the_family_numba_and_xarray_loaded():
    state = _python(WORKER_STATE.format(start="", family=fam.TARGET.partition(":")[0], wanted=WANTED))
    assert state["modules"] == sorted(WANTED)
    assert state["frozen"] > 10_000  # gc.freeze() in the server: workers' collections skip all that


def test_prestart_reads_the_family_of_a_sweep_scenario(tmp_path):
    sweep = fam.write_scenario(tmp_path / "sweep.yaml", "{grid: {run.seed: [1, 2]}}")
    start = f"from neurodyn.worker_pool import prestart_pool; prestart_pool({str(sweep)!r})"
    # The server started by prestart_pool keeps its preload: the later context names no family.
    state = _python(WORKER_STATE.format(start=start, family=None, wanted=WANTED))
    assert fam.TARGET.partition(":")[0] in state["modules"]


@pytest.mark.parametrize("text", ["name: x\nfamily: ou_test\nparams: {}\n", "{not yaml: [", "- a list\n"])
def test_prestart_starts_nothing_without_a_sweep(tmp_path, text):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    started = _python(f"""
        import json
        from multiprocessing import active_children, forkserver
        from neurodyn.worker_pool import prestart_pool
        prestart_pool({str(path)!r})
        prestart_pool({str(tmp_path / "missing.yaml")!r})
        print(json.dumps(forkserver._forkserver._forkserver_pid is not None))
    """)
    assert started is False


def test_a_worker_runs_points_of_other_parameters_without_recompiling(tmp_path):
    # Three points that differ in n, tau and sigma, run by the same pool worker: the kernel has one
    # signature there (parameters are arguments, not compile-time constants).
    path = fam.write_scenario(
        tmp_path / "s.yaml",
        "{zip: {params.n: [4, 16, 64], params.tau: [5 ms, 10 ms, 20 ms], params.sigma: [0.5, 1.0, 2.0]}}",
    )
    state = _python(f"""
        import copy, json
        from concurrent.futures import ProcessPoolExecutor
        import neurodyn
        from neurodyn import registry
        from neurodyn.sweep import PointTask, plan_sweep, run_point
        from neurodyn.worker_pool import pool_context
        from tests import sweep_family as fam

        fam.register()
        scenario = neurodyn.load_scenario({str(path)!r})
        plan = plan_sweep(scenario, {str(tmp_path / "out")!r})
        (plan.root / "points").mkdir(parents=True)
        raw = copy.deepcopy(scenario.raw)
        raw.pop("sweep")
        tasks = [PointTask(raw=raw, source=None, family=scenario.family, family_target=fam.TARGET,
                           values=p.values, point_id=p.id, path=str(plan.point_path(p))) for p in plan.points]
        with ProcessPoolExecutor(1, mp_context=pool_context(None)) as pool:
            ok = [pool.submit(run_point, t).result().ok for t in tasks]
            sigs = pool.submit(eval, "len(__import__('tests.sweep_family').sweep_family.ou_advance.signatures)")
            print(json.dumps({{"ok": ok, "signatures": sigs.result()}}))
    """)
    assert state == {"ok": [True, True, True], "signatures": 1}
