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
import time
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
        import neurodyn, neurodyn.cli, neurodyn.sweep.executors
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
    from neurodyn.sweep.executors import pool_context
    with ProcessPoolExecutor(1, mp_context=pool_context({family!r})) as pool:
        # eval is a builtin: unpickling it imports nothing, so the worker reports what it forked with.
        state = pool.submit(eval, "(sorted(__import__('sys').modules), __import__('gc').get_freeze_count())")
        modules, frozen = state.result()
    print(json.dumps({{"modules": [m for m in modules if m in {wanted!r}], "frozen": frozen}}))
"""
WANTED = [
    "neurodyn.runner",
    "neurodyn.sweep",
    "neurodyn.sweep.warmup",
    "numba.np.arraymath",
    fam.TARGET.partition(":")[0],
]


def test_workers_fork_with_neurodyn_the_family_numba_and_xarray_loaded():
    state = _python(WORKER_STATE.format(start="", family=fam.TARGET.partition(":")[0], wanted=[*WANTED, "dask"]))
    assert state["modules"] == sorted(WANTED)  # dask is not needed: xarray no longer imports it to check types
    assert state["frozen"] > 10_000  # gc.freeze() in the server: workers' collections skip all that


def test_prestart_reads_the_family_of_a_sweep_scenario(tmp_path):
    sweep = fam.write_scenario(tmp_path / "sweep.yaml", "{grid: {run.seed: [1, 2]}}")
    start = f"from neurodyn.sweep.executors import prestart_pool; prestart_pool({str(sweep)!r})"
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
        from neurodyn.sweep.executors import prestart_pool
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
        import json
        from concurrent.futures import ProcessPoolExecutor
        import neurodyn
        from neurodyn import registry
        from neurodyn.sweep import PointTask, plan_sweep, run_point
        from neurodyn.sweep.executors import pool_context
        from tests import sweep_family as fam

        fam.register()
        scenario = neurodyn.load_scenario({str(path)!r})
        plan = plan_sweep(scenario, {str(tmp_path / "out")!r})
        (plan.root / "points").mkdir(parents=True)
        tasks = [PointTask(scenario=p.scenario, family_target=fam.TARGET, point_id=p.id,
                           path=str(plan.point_path(p))) for p in plan.points]
        with ProcessPoolExecutor(1, mp_context=pool_context(None)) as pool:
            ok = [pool.submit(run_point, t).result().ok for t in tasks]
            sigs = pool.submit(eval, "len(__import__('tests.sweep_family').sweep_family.ou_advance.signatures)")
            print(json.dumps({{"ok": ok, "signatures": sigs.result()}}))
    """)
    assert state == {"ok": [True, True, True], "signatures": 1}


SIGNAL_DURING_SERVER_START = """
    import json, os, signal, time
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import forkserver
    from neurodyn.cli import _interrupt
    from neurodyn.sweep.executors import pool_context, start_server

    signal.signal(signal.SIGTERM, _interrupt)  # as the command line does
    real = forkserver.ensure_running

    def ensure_running():
        real()
        os.kill(os.getpid(), signal.{name})  # arrives while the server is being started

    forkserver.ensure_running = ensure_running
    try:
        start_server(pool_context("tests.sweep_family"))
        outcome = "returned"
    except KeyboardInterrupt:
        outcome = "KeyboardInterrupt"
    forkserver.ensure_running = real
    server = forkserver._forkserver._forkserver_pid
    # Ctrl-C reaches the server during its preload (a terminal sends it to the whole process group)
    os.kill(server, signal.SIGINT)
    lines = open(f"/proc/{{server}}/status").read().splitlines()
    status = dict(line.split(":\\t", 1) for line in lines if ":\\t" in line)
    held = (int(status["SigBlk"], 16) | int(status["SigIgn"], 16)) >> (signal.SIGINT - 1) & 1
    with ProcessPoolExecutor(1, mp_context=pool_context(None)) as pool:
        works = pool.submit(eval, "6 * 7").result()
    print(json.dumps({{"outcome": outcome, "sigint_held": held, "works": works}}))
"""


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_during_the_server_start_is_acted_on_not_lost(name):
    """A Ctrl-C (or SIGTERM) that arrives while the fork server is being started raises KeyboardInterrupt
    as soon as it runs (it used to be dropped: the driver ignored SIGINT meanwhile); the server itself holds
    SIGINT back during its preload, so a Ctrl-C sent to it there neither kills it nor prints a traceback."""
    env = {**os.environ, **fam.ENV, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SIGNAL_DURING_SERVER_START.format(name=name))],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # no traceback from the server
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "outcome": "KeyboardInterrupt",
        "sigint_held": 1,
        "works": 42,
    }


def test_interrupts_deferred_keeps_ignored_and_default_signals():
    """Only signals with a Python handler are held back; an ignored SIGINT stays ignored (a sweep started
    in the background of a script) and a default SIGTERM keeps its default action."""
    import signal

    from neurodyn.sweep.executors import interrupts_deferred

    before = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with interrupts_deferred() as received:
            os.kill(os.getpid(), signal.SIGINT)
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert received == []
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])
    with pytest.raises(KeyboardInterrupt), interrupts_deferred() as received:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler runs between two bytecodes of this block: it only takes note
        assert received == [signal.SIGINT]


def test_a_second_sigterm_during_a_workers_exit_routine_does_not_cut_it_short():
    # A worker stopped by SIGTERM commonly gets two: the one sent to the whole process group, then the
    # driver's terminate(). The exit routine (which unlinks and unregisters the worker's semaphores) must
    # run to its end even when the second arrives inside it; here it arrives at a known moment, sent by
    # the exit routine itself, so the check does not depend on timing.
    result = _python("""
        import json, os, signal, sys, tempfile
        from multiprocessing import util
        from neurodyn.sweep import executors

        log = tempfile.mktemp()
        pid = os.fork()
        if pid == 0:
            def exit_routine():
                with open(log, "a") as f:
                    f.write("start ")
                os.kill(os.getpid(), signal.SIGTERM)  # the second SIGTERM, in the middle of the routine
                for _ in range(1000):
                    pass  # bytecodes: a pending Python signal handler would run here
                with open(log, "a") as f:
                    f.write("end ")
            util._exit_function = exit_routine
            signal.signal(signal.SIGTERM, executors._exit_on_sigterm)
            os.kill(os.getpid(), signal.SIGTERM)
            while True:
                pass
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"code": os.waitstatus_to_exitcode(status), "log": open(log).read().split()}))
    """)
    assert result == {"code": 128 + 15, "log": ["start", "end"]}
