"""Sweep benchmark: a 16-point sweep on 2 worker processes against serial, and the per-point overhead.

Family: the exact Ornstein-Uhlenbeck test family (tests/sweep_family.py, one Numba kernel), sized so a
point takes about ``--point-seconds`` of simulation. Measured, with warm Numba caches:

* serial sweep (``workers=1``, in this process) and a plain loop ``simulate`` + ``write_run`` over the
  same points (the reference: what a user would write by hand);
* the same sweep on a 2-process pool, including starting the pool: speed-up = serial / pool
  (target >= 1.7x on 2 cores);
* overhead per point = (sweep wall time - sum of the points' own simulate times) / points
  (target < 0.2 s), for serial and pool (pool: 2 x wall time, since 2 points run at once).

Run: ``python benchmarks/bench_sweep.py [--points 16] [--point-seconds 1.0] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import neurodyn  # noqa: E402
from neurodyn.storage import write_run  # noqa: E402
from neurodyn.sweep import execute_sweep, open_sweep, plan_sweep  # noqa: E402
from tests import sweep_family as fam  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=16)
    ap.add_argument("--point-seconds", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    fam.register()
    tmp = Path(tempfile.mkdtemp(prefix="bench_sweep_"))

    # Calibrate: steps per second of the kernel for 64 processes, after a warm-up call (cache load).
    probe = fam.write_scenario(tmp / "probe.yaml", "{grid: {run.seed: [1]}}", params="{n: 64, tau: 10 ms}",
                               run="{duration: 2 s, dt: 0.1 ms, seed: 1}", record="{every: 10 ms}")
    sc = neurodyn.load_scenario(probe).with_values({"run.seed": 1})
    neurodyn.simulate(sc)
    wall = neurodyn.simulate(sc).attrs["wall_time_s"]
    duration = 2.0 * args.point_seconds / wall
    seeds = list(range(1, args.points + 1))
    path = fam.write_scenario(tmp / "bench.yaml", f"{{grid: {{run.seed: {seeds}}}}}",
                              params="{n: 64, tau: 10 ms}", run=f"{{duration: {duration:.3f} s, dt: 0.1 ms}}",
                              record="{every: 10 ms}")
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
    own_serial = sum(neurodyn.open_run(serial.plan.point_path(p)).attrs["wall_time_s"]
                     for p in serial.plan.points)

    t0 = time.perf_counter()
    pool = execute_sweep(scenario, output=tmp / "pool", workers=args.workers)
    t_pool = time.perf_counter() - t0
    own_pool = sum(neurodyn.open_run(pool.plan.point_path(p)).attrs["wall_time_s"] for p in pool.plan.points)
    # A second pool sweep: the forkserver is already running (as in a session that runs several sweeps).
    t0 = time.perf_counter()
    pool2 = execute_sweep(scenario, output=tmp / "pool", workers=args.workers, force=True)
    t_pool2 = time.perf_counter() - t0
    own_pool2 = sum(neurodyn.open_run(pool2.plan.point_path(p)).attrs["wall_time_s"]
                    for p in pool2.plan.points)

    n = args.points
    print(f"hand-written loop (simulate + write_run): {t_loop:7.2f} s  (own simulate time {own:.2f} s)")
    print(f"neurodyn sweep, serial:                 {t_serial:7.2f} s  overhead/point "
          f"{(t_serial - own_serial) / n:.3f} s  (loop: {(t_loop - own) / n:.3f} s)")
    for label, t, own_t in (("cold", t_pool, own_pool), ("warm", t_pool2, own_pool2)):
        print(f"neurodyn sweep, {args.workers} processes ({label} pool):  {t:7.2f} s  "
              f"speed-up {t_serial / t:.2f}x  overhead/point {(args.workers * t - own_t) / n:.3f} s")
    a, b = open_sweep(serial.path, load=True), open_sweep(pool.path, load=True)
    same = all(np.array_equal(a[v].values, b[v].values) for v in ("x", "variance"))
    print(f"pool result identical to serial: {same}")


if __name__ == "__main__":
    main()
