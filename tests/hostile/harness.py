"""A fork server that runs ``neurodyn`` commands in memory- and time-limited child processes.

Starting a fresh interpreter costs 1-2 s (imports, Numba cache loads), too much for hundreds of hostile
inputs. The server is one interpreter that imports neurodyn and every family once; for each case it forks
a child that limits its address space (``RLIMIT_AS``) and its wall time (``alarm``), sends its stderr to a
file and calls :func:`neurodyn.cli.main` once per command, as the console script would. The child prints
the traceback of an uncaught exception into that file and counts the command as exit code 1, as the
interpreter would. A child killed by a limit is reported by its signal.

Protocol: one JSON object per line on the server's stdin, one JSON answer per line on its stdout.
Request ``{"cwd": str, "steps": [[arg, ...], ...], "stop_unless_zero": bool, "mem": int, "wall": int}``;
answer ``{"codes": [int, ...], "signal": int | null, "seconds": float}``. Step ``i`` writes its stderr to
``<cwd>/stderr.<i>.txt``; the steps after the first non-zero exit code are skipped when
``stop_unless_zero``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

#: modules the server imports before it forks a child: the command line, the runner, the sweep driver
#: and every family, so a child pays only for the kernels it loads from Numba's on-disk cache
PRELOAD = (
    "neurodyn.cli",
    "neurodyn.runner",
    "neurodyn.sweep.run",
    "neurodyn.scenario",
    "neurodyn.sweep.warmup",
    "neurodyn.families.lif_network",
    "neurodyn.families.cortical_field",
    "neurodyn.families.sync_learners",
    "neurodyn.families.eqprop",
    "neurodyn.families.ultralif_network",
    "neurodyn.families.ltc_cfc",
)


@dataclass
class Outcome:
    """What one case did: the exit code and stderr of each command that ran, or the limit that killed it."""

    codes: list[int]
    stderr: list[str]
    signal: int | None
    seconds: float
    steps: list[list[str]] = field(default_factory=list)


class ForkServer:
    """A running server process (see the module docstring); use as a context manager.

    Parameters
    ----------
    repo : Path
        The checkout whose ``neurodyn`` is imported (put first on ``PYTHONPATH``).
    """

    def __init__(self, repo: Path):
        env = {**os.environ, "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        env.pop("PYTHONWARNINGS", None)  # the children see the warnings a user would see
        env["MPLBACKEND"] = "Agg"
        # The server runs parallel kernels while it warms up, then forks: Numba's own work queue survives
        # a fork (the child starts new threads); GNU OpenMP, its usual choice here, aborts the child.
        env["NUMBA_THREADING_LAYER"] = "workqueue"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from tests.hostile.harness import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=repo,
            env=env,
            text=True,
            bufsize=1,
        )
        ready = self.proc.stdout.readline()
        if not ready.startswith("ready"):
            raise RuntimeError(f"hostile-input fork server did not start: {ready!r}")
        #: the server's address space after its imports, bytes (the children start from it)
        self.base_vm = int(ready.split()[1])

    def run(self, cwd: Path, steps: list[list[str]], mem: int, wall: int, stop_unless_zero: bool = True) -> Outcome:
        """Run ``steps`` (argument lists of ``neurodyn``) one after another in one limited child."""
        request = {"cwd": str(cwd), "steps": steps, "mem": mem, "wall": wall, "stop_unless_zero": stop_unless_zero}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("hostile-input fork server died")
        answer = json.loads(line)
        stderr = []
        for i in range(len(steps)):
            f = cwd / f"stderr.{i}.txt"
            if f.exists():
                stderr.append(f.read_bytes().decode(errors="replace"))
        return Outcome(answer["codes"], stderr, answer["signal"], answer["seconds"], steps)

    def warm(self, cwd: Path, steps: list[list[str]]) -> list[int]:
        """Run ``steps`` inside the server itself once, so that the children fork with their kernels loaded."""
        self.proc.stdin.write(json.dumps({"warm": True, "cwd": str(cwd), "steps": steps}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("hostile-input fork server died")
        return json.loads(line)["codes"]

    def close(self) -> None:
        """Stop the server (its stdin closes; it exits)."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- the server process


def _vm_size() -> int:
    """This process's address space in bytes (``VmSize`` of /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def serve() -> None:
    """Server main loop: import, then fork one limited child per request (or warm up in-process)."""
    import importlib

    # The protocol goes to a copy of stdout; what neurodyn itself prints goes nowhere.
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    for name in PRELOAD:
        importlib.import_module(name)
    print(f"ready {_vm_size()}", file=out, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("warm"):
            print(json.dumps(_warm(request)), file=out, flush=True)
            continue
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            _child(request)
        _, status = os.waitpid(pid, 0)
        seconds = time.perf_counter() - t0
        codes_file = Path(request["cwd"]) / "codes.json"
        codes = json.loads(codes_file.read_text()) if codes_file.exists() else []
        codes_file.unlink(missing_ok=True)
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        if sig is None and os.WEXITSTATUS(status) != 0:
            sig = -os.WEXITSTATUS(status)  # the child itself failed outside main(): report it as a kill
        print(json.dumps({"codes": codes, "signal": sig, "seconds": seconds}), file=out, flush=True)


def _warm(request: dict) -> dict:
    """Run ``request["steps"]`` in the server itself, unlimited, stderr discarded: every child forked
    afterwards finds the Numba kernels loaded and the lazily imported modules (SciPy, h5py) imported."""
    from neurodyn.cli import main

    t0 = time.perf_counter()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    cwd = os.getcwd()
    codes = []
    try:
        os.chdir(request["cwd"])
        for argv in request["steps"]:
            try:
                codes.append(int(main(argv) or 0))
            except BaseException:  # noqa: BLE001 - a failed warm-up only costs the children time
                codes.append(1)
    finally:
        os.chdir(cwd)
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return {"codes": codes, "signal": None, "seconds": time.perf_counter() - t0}


def _child(request: dict) -> None:  # pragma: no cover - runs in a forked child
    """Limit this process, run each step through ``neurodyn.cli.main``, record the exit codes, exit."""
    import faulthandler
    import resource
    import signal
    import traceback
    import warnings

    try:
        os.chdir(request["cwd"])
        resource.setrlimit(resource.RLIMIT_AS, (request["mem"], request["mem"]))
        signal.signal(signal.SIGALRM, signal.SIG_DFL)  # the alarm kills the child, even inside a kernel
        signal.alarm(request["wall"])
        # Shortly before the alarm, the stacks go to the step's stderr: where a killed case was stuck.
        faulthandler.dump_traceback_later(max(request["wall"] - 3, 1), exit=False)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        # Warnings are shown as a user's interpreter shows them (its default filters come first), but
        # every time: nothing an earlier command printed may hide a later one.
        warnings.filterwarnings("always", append=True)
        from neurodyn.cli import main

        codes: list[int] = []
        for i, argv in enumerate(request["steps"]):
            fd = os.open(f"stderr.{i}.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 2)
            os.close(fd)
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - what the interpreter would print and exit with
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            codes.append(int(code or 0))
            Path("codes.json").write_text(json.dumps(codes))
            if code != 0 and request["stop_unless_zero"]:
                break
    except BaseException:  # noqa: BLE001
        try:
            traceback.print_exc()
        finally:
            os._exit(70)
    os._exit(0)


# --------------------------------------------------------------------------- one hostile case

#: address-space limit of a case. Measured: the server takes 0.57 GiB after its imports, 0.91 GiB after
#: its warm-up (Numba's LLVM, loaded kernels); the tiny scenarios all run under 1.5 GiB. 4 GiB leaves
#: room for a legitimate mutation and still stops a runaway allocation long before the machine suffers.
MEM_LIMIT = 4 * 2**30
#: wall-time limit of a case, seconds: generous; what is checked is the outcome, not the speed
WALL_LIMIT = 60
#: the name of the scenario file and of the result inside a case's folder
SCENARIO = "scenario.yaml"
RESULT = "result"

#: a field as the error line names it: ``<dotted path> = <value>: <allowed>``, a dotted path anywhere in
#: the line, or the scenario file itself
_FIELD_FIRST = re.compile(r"^[\w\-]+(\.[\w\-]+)* = ")
_DOTTED = re.compile(r"(?<![\w/])(params|run|record|sweep)\.[A-Za-z_][\w\-]*")
_SIGNALS = {14: "wall-time limit (SIGALRM)", 9: "SIGKILL", 11: "SIGSEGV", 6: "SIGABRT"}


@dataclass
class Verdict:
    """What went wrong in one case (nothing: ``problems`` is empty), with a signature that groups cases
    failing the same way (the step, the kind of failure and the exception or the field)."""

    problems: list[str]
    signature: str
    outcome: Outcome


def run_case(server: ForkServer, folder: Path, text: str | bytes, sweep: bool, run: bool = True) -> Verdict:
    """Write ``text`` as the scenario in ``folder``, then ``validate`` it and, if that passes (and ``run``),
    run it.

    A sweep runs serially (``sweep --workers 1``): a process pool of its own in every case would cost
    more than the case. The result goes to ``folder/out/result[.h5]``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SCENARIO).write_bytes(text.encode() if isinstance(text, str) else text)
    out = folder / "out"
    out.mkdir()
    final = f"out/{RESULT}" if sweep else f"out/{RESULT}.h5"
    runner = ["sweep", SCENARIO, "--workers", "1"] if sweep else ["run", SCENARIO]
    steps = [["validate", SCENARIO], [*runner, "--output", final, "--quiet"]][: 2 if run else 1]
    outcome = server.run(folder, steps, mem=MEM_LIMIT, wall=WALL_LIMIT)
    return judge(outcome, out, Path(final).name, sweep)


def judge(outcome: Outcome, out: Path, final: str, sweep: bool) -> Verdict:
    """Apply the rules of a hostile case to ``outcome`` (see the module docstring of the tests)."""
    problems: list[str] = []
    sig = "ok"
    step_names = ("validate", "sweep" if sweep else "run")
    n_ran = len(outcome.codes)
    if outcome.signal is not None:
        step = step_names[min(n_ran, 1)]
        what = _SIGNALS.get(outcome.signal, f"signal {outcome.signal}")
        if outcome.signal < 0:
            what = f"the case's child failed outside neurodyn.cli.main (status {-outcome.signal})"
        err = outcome.stderr[min(n_ran, 1)] if len(outcome.stderr) > min(n_ran, 1) else ""
        # faulthandler's dump lists the innermost frame first
        frames = re.findall(r'File "[^"]*/(neurodyn/[^"]+)", line \d+ in (\w+)', err)
        stuck = f" in {frames[0][0]}:{frames[0][1]}" if frames else ""
        problems.append(f"{step}: killed by {what}{stuck}; stderr ends: {err[-1500:]!r}")
        return Verdict(problems, f"{step}: killed by {what}{stuck}", outcome)
    for i, code in enumerate(outcome.codes):
        step, err = step_names[i], outcome.stderr[i]
        lines = err.strip().splitlines()
        if code == 0:
            if err.strip():
                problems.append(f"{step}: exit 0 but stderr says: {err[-500:]!r}")
                sig = f"{step}: exit 0 with stderr: {_shape(lines[0])}"
        elif code == 2:
            if i == 1:
                problems.append(f"{step}: refused although validate passed: {err.strip()[-300:]!r}")
                sig = f"{step}: refused after validate passed: {_error_key(lines)}"
            if len(lines) != 1 or "Traceback" in err or not lines[0].startswith("neurodyn: error: "):
                problems.append(f"{step}: exit 2 but stderr is not one error line: {err[-800:]!r}")
                sig = f"{step}: exit 2, not one line: {_error_key(lines)}"
            elif not _names_a_field(lines[0]):
                problems.append(f"{step}: the error line names no field: {lines[0]!r}")
                if sig == "ok":
                    sig = f"{step}: names no field: {_shape(lines[0])}"
        elif code == 3 and i == 1 and _simulation_failed(lines, sweep):
            pass  # the simulation itself became invalid (NaN, instability): a documented outcome
        else:
            problems.append(
                f"{step}: exit {code} ({lines[-1] if lines else 'no stderr'}); stderr ends: {err[-1500:]!r}"
            )
            sig = f"{step}: exit {code}: {_error_key(lines)}"
        if code != 0:
            break
    left = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    succeeded = outcome.codes == [0, 0] or len(outcome.steps) == 1 and outcome.codes == [0]
    if succeeded and len(outcome.steps) == 2 and left != [final]:
        problems.append(f"run succeeded but the output folder holds {left} instead of [{final!r}]")
        sig = sig if sig != "ok" else "leftover files after success"
    elif not succeeded and left and not (sweep and outcome.codes == [0, 3]):
        problems.append(f"refused or failed, yet the output folder holds {left}")
        sig = sig if sig != "ok" else "leftover files after a refusal"
    return Verdict(problems, sig, outcome)


def _names_a_field(line: str) -> bool:
    msg = line.removeprefix("neurodyn: error: ")
    return bool(_FIELD_FIRST.match(msg) or _DOTTED.search(msg) or SCENARIO in msg)


def _simulation_failed(lines: list[str], sweep: bool) -> bool:
    """True when stderr reports only a simulation that became invalid (exit code 3)."""
    if not sweep:
        return len(lines) == 1 and lines[0].startswith("neurodyn: simulation failed: ")
    points = [ln for ln in lines if ln.startswith("neurodyn: point ")]
    summary = [ln for ln in lines if re.match(r"neurodyn: \d+ of \d+ points failed", ln)]
    return (
        len(points) + len(summary) == len(lines)
        and len(summary) == 1
        and all(" failed: SimulationError: " in ln for ln in points)
    )


def _shape(text: str) -> str:
    """``text`` with its numbers, quoted values and reprs blanked, to group messages of one kind."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"\[[^\]]*\]|\{[^}]*\}|\([^)]*\)", "(…)", text)
    text = re.sub(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", "N", text)
    return text[:160]


def _error_key(lines: list[str]) -> str:
    """A traceback's exception type and the innermost neurodyn frame; else the first line's shape."""
    if any(ln.startswith("Traceback") for ln in lines):
        frames = [ln.strip() for ln in lines if ln.strip().startswith('File "') and "/neurodyn/" in ln]
        where = re.sub(r'.*/(neurodyn/[^"]+)", line \d+, in (\S+)', r"\1:\2", frames[-1]) if frames else "?"
        last = next((ln for ln in reversed(lines) if ln and not ln.startswith(" ")), "?")
        return f"{last.split(':')[0]} at {where}"
    first = lines[0] if lines else ""
    m = re.match(r"neurodyn: error: ([\w.\-]+) = ", first)
    if m:
        return "field " + re.sub(r"\.\d+(?=\.|$)", ".N", m.group(1)) + ": " + _shape(first[m.end() :])[:80]
    return _shape(first)
