"""Sweep benchmark: a 16-point sweep on 2 worker processes against serial, and the per-point overhead.

Family: the exact Ornstein-Uhlenbeck test family (tests/sweep_family.py, one Numba kernel), sized so a
point takes about ``--point-seconds`` of simulation. Measured, with warm Numba caches:

* serial sweep (``workers=1``, in this process) and a plain loop ``simulate`` + ``write_run`` over the
  same points (the reference: what a user would write by hand);
* ``neurodyn sweep --workers 1`` against ``--workers 2`` as a user runs them (fresh processes, warm
  on-disk Numba caches, pool start included), alternating, best of ``--repeat`` each: speed-up
  (target >= 1.7x on 2 cores), and the pool run's fixed cost (wall time - own point times / workers);
* overhead per point = (sweep wall time - sum of the points' own simulate times) / points, in process
  with warm caches (target < 0.2 s).

Run: ``python benchmarks/bench_sweep.py [--points 16] [--point-seconds 1.0] [--workers 2] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


import neurodyn  # noqa: E402
from neurodyn.storage import write_run  # noqa: E402
from neurodyn.sweep import execute_sweep, open_sweep, plan_sweep  # noqa: E402
from tests import sweep_family as fam  # noqa: E402

BURN = "import time\nt = time.perf_counter()\nx = 0\nfor i in range(10_000_000): x += i\nprint(time.perf_counter() - t)"


def available_parallelism(k: int = 2) -> float:
    """How many cores this machine gives us right now: k x (time of one job) / (time of k at once).

    2.0 on an idle 2-core machine; about 1.0 when other processes already keep every core busy, in which
    case no executor can speed a sweep up.
    """

    def burn(n: int) -> float:
        procs = [subprocess.Popen([sys.executable, "-c", BURN], stdout=subprocess.PIPE, text=True) for _ in range(n)]
        return max(float(p.communicate()[0]) for p in procs)

    return k * burn(1) / burn(k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=16)
    ap.add_argument("--point-seconds", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="serial/pool command-line pairs; best of each")
    args = ap.parse_args()
    fam.register()
    tmp = Path(tempfile.mkdtemp(prefix="bench_sweep_"))

    # Calibrate: steps per second of the kernel for 64 processes, after a warm-up call (cache load).
    probe = fam.write_scenario(
        tmp / "probe.yaml",
        "{grid: {run.seed: [1]}}",
        params="{n: 64, tau: 10 ms}",
        run="{duration: 2 s, dt: 0.1 ms, seed: 1}",
        record="{every: 10 ms}",
    )
    sc = neurodyn.load_scenario(probe).with_values({"run.seed": 1})
    neurodyn.simulate(sc)
    wall = neurodyn.simulate(sc).attrs["wall_time_s"]
    duration = 2.0 * args.point_seconds / wall
    seeds = list(range(1, args.points + 1))
    path = fam.write_scenario(
        tmp / "bench.yaml",
        f"{{grid: {{run.seed: {seeds}}}}}",
        params="{n: 64, tau: 10 ms}",
        run=f"{{duration: {duration:.3f} s, dt: 0.1 ms}}",
        record="{every: 10 ms}",
    )
    scenario = neurodyn.load_scenario(path)
    print(f"{args.points} points of {duration:.2f} s simulated time (~{args.point_seconds:.2f} s each)")

    # Reference: a hand-written loop over the points.
    t0 = time.perf_counter()
    own = 0.0
    for p in plan_sweep(scenario, tmp / "loop").points:
        ds = neurodyn.simulate(scenario.with_values(p.values))
        own += ds.attrs["wall_time_s"]
        write_run(ds, tmp / "loop" / f"{p.id}.h5", force=True)
    t_loop = time.perf_counter() - t0

    t0 = time.perf_counter()
    serial = execute_sweep(scenario, output=tmp / "serial", workers=1)
    t_serial = time.perf_counter() - t0
    own_serial = sum(neurodyn.open_run(serial.plan.point_path(p)).attrs["wall_time_s"] for p in serial.plan.points)

    # What a user runs: the command line, a fresh process each time (Numba's on-disk caches are warm).
    def cli(out: str, workers: int) -> float:
        env = {**os.environ, **fam.ENV, "PYTHONPATH": str(REPO)}
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "neurodyn.cli",
                "sweep",
                str(path),
                "--workers",
                str(workers),
                "--output",
                str(tmp / out),
                "--quiet",
                "--force",
            ],
            check=True,
            env=env,
        )
        return time.perf_counter() - t0

    # Serial and pool runs alternate, and each keeps its best time: another tenant's burst then spoils
    # one repeat, not the ratio.
    t_cli_serial, t_cli_pool, ratios = math.inf, math.inf, []
    for _ in range(args.repeat):
        ts, tp = cli("cli_serial", 1), cli("cli_pool", args.workers)
        ratios.append(ts / tp)
        t_cli_serial, t_cli_pool = min(t_cli_serial, ts), min(t_cli_pool, tp)
    own_pool = sum(
        neurodyn.open_run(tmp / "cli_pool" / "points" / f"{p.id}.h5").attrs["wall_time_s"] for p in serial.plan.points
    )

    n = args.points
    print(
        f"hand-written loop (simulate + write_run), in process: {t_loop:7.2f} s  "
        f"(own simulate time {own:.2f} s, overhead/point {(t_loop - own) / n:.3f} s)"
    )
    print(
        f"sweep, serial, in process (warm):                    {t_serial:7.2f} s  "
        f"overhead/point {(t_serial - own_serial) / n:.3f} s  (target < 0.2 s)"
    )
    print(f"neurodyn sweep --workers 1 (fresh process, best of {args.repeat}): {t_cli_serial:7.2f} s")
    print(
        f"neurodyn sweep --workers {args.workers} (fresh process, best of {args.repeat}): {t_cli_pool:7.2f} s  "
        f"speed-up {t_cli_serial / t_cli_pool:.2f}x (target >= 1.7x; per repeat "
        f"{', '.join(f'{r:.2f}x' for r in ratios)})"
    )
    print(
        f"  of which fixed cost (process and pool start, combined file, exit): "
        f"{t_cli_pool - own_pool / args.workers:.2f} s; points ran {own_pool / n:.3f} s each "
        f"(serial in process: {own_serial / n:.3f} s)"
    )
    a = open_sweep(tmp / "cli_serial", load=True)
    b = open_sweep(tmp / "cli_pool", load=True)
    same = all(a[v].values.tobytes() == b[v].values.tobytes() for v in ("x", "variance"))
    print(f"pool result identical to serial: {same}")
    print(
        f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
        f"available parallelism now (2 CPU-bound jobs at once): {available_parallelism(2):.2f}"
    )


if __name__ == "__main__":
    main()
