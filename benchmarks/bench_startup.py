"""Start-up benchmark: ``neurodyn run scenarios/cuba.yaml`` end to end, and where the time goes.

Every measurement is a fresh process (best of ``--repeat``, default 5), with warm Numba caches (one
untimed run first):

* end to end: ``python -m neurodyn.cli run SCENARIO --output TMP`` (wall time of the whole process);
* imports: ``import neurodyn.cli`` alone, and everything a run of the scenario imports;
* breakdown of one run in one process: imports, load of the scenario, checks, network build, simulation
  (kernel time included), theory, writing and the rest of the command.

Usage::

    python benchmarks/bench_startup.py [--scenario scenarios/cuba.yaml] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: the imports of a run of a lif_network scenario (what `neurodyn run` loads before and while it runs)
RUN_IMPORTS = (
    "import neurodyn.cli, neurodyn.runner, neurodyn.scenario, neurodyn.compare; "
    "import neurodyn.families.lif_network.build, neurodyn.families.lif_network.engine, "
    "neurodyn.families.lif_network.theory, neurodyn.families.lif_network.dataset"
)

#: run in a child process: time the stages of one `neurodyn run` by wrapping the family's entry points
_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import neurodyn.cli, neurodyn.runner, neurodyn.scenario, neurodyn.compare
from neurodyn import registry
fam = registry.get("lif_network")
import neurodyn.families.lif_network.build, neurodyn.families.lif_network.engine
import neurodyn.families.lif_network.theory, neurodyn.families.lif_network.dataset
stages = {"imports": time.perf_counter() - t0}
def timed(obj, name, key):
    f = getattr(obj, name)
    def g(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            stages[key] = stages.get(key, 0.0) + time.perf_counter() - t
    setattr(obj, name, g)
import neurodyn.families.lif_network.kernels as kernels
import neurodyn.families.lif_network.engine as engine
timed(neurodyn.scenario, "load_scenario", "load scenario")
timed(fam, "check", "checks (memory estimate)")
timed(fam, "build", "network build")
timed(fam, "simulate", "simulate")
timed(kernels, "advance", "  of which kernel")
timed(fam, "theory", "theory")
t1 = time.perf_counter()
neurodyn.cli.main(["run", sys.argv[1], "--output", sys.argv[2], "--quiet"])
stages["write and the rest"] = time.perf_counter() - t1 - sum(
    v for k, v in stages.items() if k not in ("imports", "  of which kernel"))
stages["total"] = time.perf_counter() - t0
print(json.dumps(stages))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}


def wall(cmd: list[str]) -> float:
    """Wall time of one fresh process running ``cmd`` (it must succeed)."""
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=_env(), cwd=REPO, capture_output=True)
    return time.perf_counter() - t


def best(cmds: list[list[str]] | list[str], repeat: int, before=None) -> float:
    """Best of ``repeat`` wall times (``before()`` runs untimed ahead of each)."""
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        times.append(wall(cmds))
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="scenarios/cuba.yaml")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.h5"

        def fresh() -> None:
            out.unlink(missing_ok=True)

        run = [py, "-m", "neurodyn.cli", "run", args.scenario, "--output", str(out)]
        fresh()
        wall(run)  # warms the Numba cache of this checkout
        python = best([py, "-c", "pass"], args.repeat)
        cli = best([py, "-c", "import neurodyn.cli"], args.repeat)
        imports = best([py, "-c", RUN_IMPORTS], args.repeat)
        end_to_end = best(run, args.repeat, before=fresh)
        breakdowns = []
        for _ in range(args.repeat):
            fresh()
            proc = subprocess.run(
                [py, "-c", _CHILD, args.scenario, str(out)], env=_env(), cwd=REPO, capture_output=True, text=True
            )
            if proc.returncode != 0:
                sys.exit(proc.stderr)
            breakdowns.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    load = os.getloadavg()
    print(f"neurodyn run {args.scenario}, warm Numba cache, best of {args.repeat} fresh processes")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(f"  end to end (process start -> result file): {end_to_end:.3f} s")
    print(f"  python -c pass: {python:.3f} s; import neurodyn.cli: {cli:.3f} s; a run's imports: {imports:.3f} s")
    fastest = min(breakdowns, key=lambda b: b["total"])
    print("breakdown of the fastest in-process run (s):")
    for key, value in fastest.items():
        print(f"  {key:<28} {value:.3f}")


if __name__ == "__main__":
    main()
