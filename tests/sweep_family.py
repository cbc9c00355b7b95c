"""A small real family for the sweep tests: independent Ornstein–Uhlenbeck processes.

    dx = -x / tau dt + sigma * sqrt(2 / tau) dW

integrated *exactly* (no discretisation error): ``x[k+1] = a x[k] + sigma sqrt(1 - a^2) xi``, with
``a = exp(-dt / tau)``. Started from the stationary law N(0, sigma^2), the variance is sigma^2 at every
time, which is the ``_theory`` the compare step checks (Gardiner, *Stochastic Methods*, sec. 3.8.4).

Registered under the name ``ou_test`` by the tests (``registry.register`` in-process, the
``NEURODYN_FAMILIES`` environment variable for subprocesses). Test hooks, all off by default:
``NEURODYN_TEST_COUNTER`` (a file each simulation appends one line to, to count runs),
``params.fail_when_sigma`` (raise for that sigma), ``params.pause`` (sleep after simulating),
``params.fail_at_step`` (the kernel reports an instability there).
When the runner offers streaming, the trajectory ``x`` is appended to the result file in blocks that fit
the memory budget instead of being held in memory.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import xarray as xr
from numba import njit

from neurodyn.families.base import Family, StrictModel, var_attrs
from neurodyn.quantities import Time
from neurodyn.runner import run_chunked
from neurodyn.storage import stream_writer

NAME = "ou_test"
TARGET = "tests.sweep_family:OUFamily"
COUNTER_ENV = "NEURODYN_TEST_COUNTER"


class OUParams(StrictModel):
    """Parameters of ``n`` independent OU processes."""

    n: int = 4
    tau: Time = 0.01
    sigma: float = 1.0
    #: test hook: raise a RuntimeError when sigma equals this value
    fail_when_sigma: float | None = None
    #: test hook: sleep this long after simulating (to interrupt a sweep between points)
    pause: Time = 0.0
    #: stream ``x`` to the result file when the runner offers it
    stream: bool = True
    #: test hook: the kernel reports an instability after this many steps
    fail_at_step: int | None = None


class OURecord(StrictModel):
    """Record ``x`` every ``every`` (default: every step)."""

    x: bool = True
    every: Time | None = None


@njit(cache=True)
def ou_advance(x, a, b, rng, n_steps, every, offset, out, acc):  # pragma: no cover - compiled
    """Advance ``x`` by ``n_steps`` exact OU steps; store every ``every``-th state in ``out``.

    ``acc`` accumulates (count, sum, sum of squares) over all steps and units for the variance.
    Returns the number of rows written.
    """
    row = 0
    m = x.shape[0]
    for s in range(n_steps):
        for i in range(m):
            x[i] = a * x[i] + b * rng.standard_normal()
            acc[0] += 1.0
            acc[1] += x[i]
            acc[2] += x[i] * x[i]
        if (offset + s + 1) % every == 0:
            for i in range(m):
                out[row, i] = x[i]
            row += 1
    return row


class OUFamily(Family):
    """Independent Ornstein–Uhlenbeck processes (test family for sweeps and streaming)."""

    name = NAME
    description = "independent Ornstein-Uhlenbeck processes (tests)"
    Params = OUParams
    Record = OURecord

    def simulate(self, built, progress):
        scenario = built.scenario
        p, run, rec = scenario.params, scenario.run, scenario.record
        counter = os.environ.get(COUNTER_ENV)
        if counter:
            with open(counter, "a") as fh:  # one short append per run: safe across processes
                fh.write(f"sigma={p.sigma} seed={run.seed}\n")
        if p.fail_when_sigma is not None and p.sigma == p.fail_when_sigma:
            raise RuntimeError(f"injected failure at sigma={p.sigma}")
        rng = np.random.default_rng(run.seed)
        a = math.exp(-run.dt / p.tau)
        b = p.sigma * math.sqrt(1.0 - a * a)
        x = rng.standard_normal(p.n) * p.sigma  # the stationary law, so var = sigma^2 from t = 0
        n_steps = run.n_steps
        every = max(1, int(round((rec.every or run.dt) / run.dt)))
        if not rec.x:
            every = n_steps + 1  # the kernel then never writes a row
        n_rec = n_steps // every
        acc = np.zeros(3)
        writer = stream_writer() if (p.stream and rec.x) else None
        up_crossings: list[np.ndarray] = []
        last = np.array([x[0]])

        def crossings(block: np.ndarray, first_row: int) -> None:
            # Upward zero crossings of process 0 between recorded samples: a ragged variable.
            v = np.concatenate([last, block[:, 0]])
            idx = np.nonzero((v[:-1] < 0) & (v[1:] >= 0))[0]
            up_crossings.append((first_row + idx + 1) * every * run.dt)
            last[0] = v[-1]

        if writer is not None:
            writer.dimension("time", None)
            writer.dimension("unit", p.n)
            writer.variable("time", ("time",), "f8", var_attrs("s", "time"))
            writer.variable("x", ("time", "unit"), "f8", var_attrs("1", "OU process value"))
            max_rows = writer.rows(8 * p.n)
            buf = np.empty((min(max_rows, max(n_rec, 1)), p.n))
        else:
            buf = np.empty((n_rec, p.n))
        rows_done = [0]

        def advance(start: int, n: int) -> tuple[int, str]:
            unstable = p.fail_at_step is not None and start + n > p.fail_at_step
            if unstable:  # run up to the injected failure, as a kernel that detects it mid-chunk would
                n = max(0, p.fail_at_step - start)
            if writer is None:
                r = ou_advance(x, a, b, rng, n, every, start, buf[rows_done[0] :], acc)
                if r:
                    crossings(buf[rows_done[0] : rows_done[0] + r], rows_done[0])
                rows_done[0] += r
            else:
                # Sub-blocks of at most buf.shape[0] recorded rows keep memory within the budget.
                done = 0
                block_steps = buf.shape[0] * every
                while done < n:
                    k = min(block_steps, n - done)
                    r = ou_advance(x, a, b, rng, k, every, start + done, buf, acc)
                    if r:
                        first = rows_done[0]
                        writer.append("x", buf[:r])
                        writer.append("time", (np.arange(first, first + r) + 1) * every * run.dt)
                        crossings(buf[:r], first)
                        rows_done[0] += r
                    done += k
            if unstable:
                return 1, f"injected instability at step {p.fail_at_step}"
            ok = np.isfinite(x).all()
            return (0, "") if ok else (1, "x is not finite")

        run_chunked(n_steps, advance, progress, desc=f"OU sigma={p.sigma:g}")
        count, s1, s2 = acc
        var = s2 / count - (s1 / count) ** 2
        data = {
            "variance": ((), var, var_attrs("1", "variance of x over time and units")),
            "crossing_time": (
                ("crossing",),
                np.concatenate(up_crossings) if up_crossings else np.zeros(0),
                var_attrs("s", "upward zero crossings of process 0"),
            ),
        }
        ds = xr.Dataset({k: (d, v, at) for k, (d, v, at) in data.items()})
        if writer is None and rec.x:
            ds["x"] = (("time", "unit"), buf, var_attrs("1", "OU process value"))
            ds = ds.assign_coords(time=("time", (np.arange(n_rec) + 1) * every * run.dt, var_attrs("s", "time")))
        if p.pause:
            time.sleep(p.pause)
        return ds

    def theory(self, built, ds):
        scenario = built.scenario
        sigma = scenario.params.sigma
        return xr.Dataset(
            {
                "variance_theory": (
                    (),
                    sigma**2,
                    var_attrs(
                        "1",
                        "stationary variance sigma^2",
                        rel_tol=0.1,
                        source="stationary OU variance sigma^2 (Gardiner, Stochastic Methods, 3.8.4)",
                    ),
                )
            }
        )

    def plot(self, ds, out_dir, stem):
        import matplotlib  # here, not at the top: like the built-in families, importing it stays fast

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if "x" not in ds:
            return []
        fig, ax = plt.subplots(figsize=(5, 3))
        x = ds["x"]
        extra = [d for d in x.dims if d not in ("time", "unit")]
        x = x.isel({d: 0 for d in extra}).isel(unit=0)
        ax.plot(x["time"].values, x.values, lw=0.5)
        ax.set(xlabel="time (s)", ylabel="x", title=f"{stem}: OU process 0")
        path = Path(out_dir) / f"{stem}_trace.png"
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)
        return [path]

    def summary(self, ds):
        return f"variance {float(ds['variance']):.4g} (theory {float(ds['variance_theory']):.4g})"


# --------------------------------------------------------------------------- helpers for the sweep tests

ENV = {"NEURODYN_FAMILIES": f"{NAME}={TARGET}"}


def register() -> None:
    """Register the family in this process (workers learn it from the point task)."""
    from neurodyn import registry

    registry.register(NAME, TARGET)


def write_scenario(
    path: Path,
    sweep: str,
    params: str = "{n: 64, tau: 10 ms, sigma: 1.0}",
    run: str = "{duration: 0.2 s, dt: 0.1 ms, seed: 0}",
    name: str = "ousweep",
    record: str = "{every: 1 ms}",
) -> Path:
    """Write a small OU sweep scenario (``sweep`` is the YAML flow mapping of the sweep section)."""
    path.write_text(
        f"name: {name}\nfamily: {NAME}\ndescription: OU variance sweep\n"
        f"params: {params}\nrun: {run}\nrecord: {record}\nsweep: {sweep}\n"
    )
    return path


def assert_same_data(a: xr.Dataset, b: xr.Dataset) -> None:
    """Same variables, dims, dtypes, coordinates and bytes (NaN equal to NaN); run-time attrs ignored."""
    assert sorted(a.variables) == sorted(b.variables)
    assert dict(a.sizes) == dict(b.sizes)
    for name in a.variables:
        va, vb = a[name], b[name]
        assert va.dims == vb.dims, name
        x, y = va.values, vb.values
        assert x.dtype == y.dtype, (name, x.dtype, y.dtype)
        if x.dtype.kind == "f":
            assert np.array_equal(x, y, equal_nan=True), name
            assert x.tobytes() == y.tobytes() or np.isnan(x).any(), name
        else:
            assert np.array_equal(x, y), name
        assert dict(va.attrs) == dict(vb.attrs), name
    keep = ("family", "scenario", "sweep", "sweep_dims", "sweep_complete", "failed_points", "dropped_variables")
    assert {k: a.attrs.get(k) for k in keep} == {k: b.attrs.get(k) for k in keep}
