"""Running a ``cortical_field`` scenario: plan the recording, refuse what cannot run, run every variant."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np

from neurodyn.errors import ResourceError
from neurodyn.families.cortical_field import kernels as K
from neurodyn.families.cortical_field.build import Setup, build_setups, check_stability, planned_lattices
from neurodyn.resources import available_bytes, format_bytes, require_memory
from neurodyn.stepping import Status, kernel_threads, run_chunked, steps

DIRECTIONS = ("x", "y", "diagonal")
#: lattices smaller than this run the serial kernels (a parallel region per step would cost more)
PARALLEL_MIN_SITES = 256 * 256


@dataclass
class Plan:
    """What one variant records, in steps and sites."""

    k_snap: int = 0
    n_snap: int = 0
    k_probe: int = 0
    n_probe: int = 0
    probes: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))
    probe_role: list[str] = field(default_factory=list)  #: "user", "pulse:<dir>:<r index>", "spectrum"
    probe_dist: list[float] = field(default_factory=list)
    k_energy: int = 0
    n_energy: int = 0

    def record_bytes(self, setup: Setup) -> int:
        """Bytes of the recording buffers."""
        return 8 * (
            self.n_snap * setup.n_fields * setup.nx * setup.ny + self.n_probe * len(self.probes) + 4 * self.n_energy
        )


def _every(every: float | None, dt: float, path: str = "") -> int:
    """Sampling interval in whole steps; an interval shorter than half a step is refused, not made 1."""
    if every is None:
        return 1
    k = steps(every, dt)
    if k < 1:
        from neurodyn.errors import ScenarioError

        raise ScenarioError(path, f"{every:g} s", f"at least one step (dt = {dt:g} s); omit it to sample every step")
    return k


def state_bytes(setup: Setup) -> int:
    """Bytes of the state arrays the scheme allocates."""
    return _state_bytes(setup.scheme, setup.n_fields, setup.nx, setup.ny)


def center_site(scenario, setup: Setup) -> tuple[int, int]:
    """Site closest to the initial bump's centre (default: the middle of the lattice)."""
    c = scenario.params.initial.center
    if c is None:
        return (setup.nx - 1) // 2, (setup.ny - 1) // 2
    return int(round(c[0] / setup.h)), int(round(c[1] / setup.h))


def plan_recording(scenario, setup: Setup) -> Plan:
    """Recording plan of one variant (snapshots, probes, energy) in whole steps."""
    rec = scenario.record
    an = scenario.params.analysis
    plan = Plan()
    n = setup.n_steps
    if rec.snapshots is not None or an.dispersion_modes or an.variance_modes:
        every = rec.snapshots.every if rec.snapshots is not None else None
        plan.k_snap = _every(every, setup.dt, "record.snapshots.every")
        if every is None and (an.dispersion_modes or an.variance_modes):
            # analysis only: sample at 80% of the Nyquist limit of the fastest lattice mode
            plan.k_snap = max(1, int(0.8 * math.pi / (setup.omega_max() * setup.dt)))
        plan.n_snap = -(-n // plan.k_snap)
    if rec.energy is not None:
        plan.k_energy = _every(rec.energy.every, setup.dt, "record.energy.every")
        plan.n_energy = -(-n // plan.k_energy)
    probes: list[tuple[int, int, int]] = []
    if rec.probes is not None:
        for k, (ix, iy) in enumerate(rec.probes.sites):
            if not (0 <= ix < setup.nx and 0 <= iy < setup.ny):
                from neurodyn.errors import ScenarioError

                raise ScenarioError(
                    f"record.probes.sites.{k}",
                    [ix, iy],
                    f"a site [ix, iy] inside the {setup.nx} x {setup.ny} lattice",
                )
            probes.append((0, iy, ix))
            plan.probe_role.append("user")
            plan.probe_dist.append(math.nan)
    if an.pulse_radii:
        cx, cy = center_site(scenario, setup)
        for d in DIRECTIONS:
            for r_idx, r in enumerate(an.pulse_radii):
                sites = r / setup.h if d != "diagonal" else r / (setup.h * math.sqrt(2))
                s = int(round(sites))
                ix, iy = (cx + s, cy) if d == "x" else (cx, cy + s) if d == "y" else (cx + s, cy + s)
                if not (0 <= ix < setup.nx and 0 <= iy < setup.ny):
                    from neurodyn.errors import ScenarioError

                    raise ScenarioError(
                        "params.analysis.pulse_radii",
                        r,
                        "radii inside the lattice from the initial bump's centre",
                    )
                probes.append((0, iy, ix))
                plan.probe_role.append(f"pulse:{d}:{r_idx}")
                plan.probe_dist.append(setup.h * math.hypot(ix - cx, iy - cy))
    if an.spectrum_probes:
        p = an.spectrum_probes
        side = int(math.ceil(math.sqrt(p)))
        for q in range(p):
            ix = int((q % side + 0.5) * setup.nx / side)
            iy = int((q // side + 0.5) * setup.ny / side)
            probes.append((0, iy, ix))
            plan.probe_role.append("spectrum")
            plan.probe_dist.append(math.nan)
    if probes:
        every = rec.probes.every if rec.probes is not None else None
        plan.k_probe = _every(every, setup.dt, "record.probes.every") if not an.pulse_radii else 1
        plan.n_probe = -(-n // plan.k_probe)
        plan.probes = np.array(probes, dtype=np.int64)
    return plan


def memory_limit_mb(scenario) -> float:
    """``record.max_memory_mb`` or half the available memory (at most 4096 MB)."""
    if scenario.record.max_memory_mb is not None:
        return float(scenario.record.max_memory_mb)
    return min(4096.0, 0.5 * available_bytes() / 2**20)


def check_analysis(scenario, setup: Setup, plan: Plan) -> None:
    """Refuse analyses that cannot work on this lattice (mode numbers, sampling below Nyquist)."""
    from neurodyn.errors import ScenarioError

    an = scenario.params.analysis
    for key in ("dispersion_modes", "variance_modes"):
        for k, (mx, my) in enumerate(getattr(an, key)):
            if setup.boundary == "absorbing":
                raise ScenarioError(
                    f"params.analysis.{key}",
                    [mx, my],
                    "mode analyses need periodic or fixed boundaries (the sponge has no modes)",
                )
            if not setup.periodic and not (1 <= mx <= setup.nx and 1 <= my <= setup.ny):
                raise ScenarioError(
                    f"params.analysis.{key}.{k}",
                    [mx, my],
                    f"fixed-boundary modes are sine modes with 1 <= n_x <= {setup.nx}, 1 <= n_y <= {setup.ny}",
                )
    if an.dispersion_modes and plan.k_snap * setup.dt * setup.omega_max() >= math.pi:
        kmax = math.pi / (setup.omega_max() * setup.dt)
        raise ScenarioError(
            "record.snapshots.every",
            f"{plan.k_snap * setup.dt:g} s",
            f"too coarse for the dispersion analysis (aliasing above {setup.omega_max():.4g} "
            f"rad/s); use every < {kmax * setup.dt:.4g} s",
        )
    if an.variance_modes and not (setup.sigma > 0 and setup.gamma[0] > 0):
        raise ScenarioError(
            "params.analysis.variance_modes",
            "...",
            "mode variances need a noise-driven damped lattice (noise.sigma > 0, gamma > 0)",
        )
    if an.spectrum_probes and not (setup.sigma > 0 and setup.gamma[0] > 0):
        raise ScenarioError(
            "params.analysis.spectrum_probes",
            an.spectrum_probes,
            "the local spectrum needs a noise-driven damped lattice (noise.sigma > 0, gamma > 0)",
        )
    if an.variance_modes:
        frames = plan.n_snap - int(math.ceil(an.burn_in / (plan.k_snap * setup.dt)))
        if frames < 10 * an.batches:
            raise ScenarioError(
                "params.analysis.batches",
                an.batches,
                f"needs >= 10 snapshots per batch after burn_in; there are {max(frames, 0)} "
                "(run longer, sample snapshots more often, or use fewer batches)",
            )
    if (an.variance_modes or an.spectrum_probes) and setup.n_fields > 1:
        raise ScenarioError(
            "params.analysis",
            "variance_modes/spectrum_probes",
            "noise-spectrum analyses are for a single field (omit params.fields)",
        )
    if scenario.params.initial.kind == "packet" and not setup.periodic:
        raise ScenarioError("params.initial.kind", "packet", "a wave packet needs periodic boundaries")
    if an.pulse_radii and len(an.pulse_radii) < 2:
        raise ScenarioError("params.analysis.pulse_radii", an.pulse_radii, "two or more distances")


def _state_bytes(scheme: str, n_fields: int, nx: int, ny: int) -> int:
    planes = {"stormer": 6, "baoab": 8, "rk4": 17}[scheme]
    return 8 * planes * n_fields * (nx + 2) * (ny + 2)


def check_resources(scenario) -> list[Setup]:
    """Build the variants, check stability and memory; refuse before anything big is allocated.

    The lattices' state is checked first, from the sizes alone, because building a variant already
    allocates lattice-sized arrays (the sponge profile).
    """
    for where, nx, ny, scheme, n_fields in planned_lattices(scenario.params):
        need = _state_bytes(scheme, n_fields, nx, ny) + 8 * (nx + 2) * (ny + 2)  # + the sponge profile
        planes = _state_bytes(scheme, n_fields, nx, ny) // (8 * n_fields * (nx + 2) * (ny + 2))
        require_memory(
            need,
            f"{nx} x {ny} sites x ({n_fields} field(s) x {planes} {scheme} state planes + 1 sponge plane) x 8 B",
            what=where,
            hint="use a smaller lattice",
        )
    setups = build_setups(scenario.params, scenario.run.dt, scenario.run.duration)
    limit = memory_limit_mb(scenario)
    for st in setups:
        check_stability(st)
        plan = plan_recording(scenario, st)
        check_analysis(scenario, st, plan)
        rec_mb = plan.record_bytes(st) / 2**20
        if rec_mb > limit:
            hint = ""
            if plan.n_snap:
                snap_mb = 8 * plan.n_snap * st.n_fields * st.nx * st.ny / 2**20
                other = rec_mb - snap_mb
                need = st.n_steps * st.n_fields * st.nx * st.ny * 8 / 2**20 / max(limit - other, 1e-9)
                k = max(plan.k_snap + 1, int(math.ceil(need)))
                hint = f"; use record.snapshots.every >= {k * st.dt:.4g} s ({k} steps) or a shorter run"
            raise ResourceError(
                f"recording for {st.label} would need {rec_mb:,.0f} MB (limit {limit:,.0f} MB, "
                f"record.max_memory_mb){hint}"
            )
        require_memory(
            state_bytes(st) + plan.record_bytes(st),
            f"{st.nx} x {st.ny} lattice state {format_bytes(state_bytes(st))}, "
            f"recording {format_bytes(plan.record_bytes(st))}",
            what=f"{st.label}",
            hint="use a smaller lattice or record less",
        )
    return setups


# --------------------------------------------------------------------------- initial state


def initial_field(scenario, setup: Setup, rng: np.random.Generator) -> np.ndarray:
    """Interior initial field ``(F, ny, nx)`` (the bump or mode goes into field 0)."""
    ini = scenario.params.initial
    u0 = np.zeros((setup.n_fields, setup.ny, setup.nx))
    ix = np.arange(setup.nx)
    iy = np.arange(setup.ny)
    if ini.kind == "random":
        u0[:] = ini.amplitude * rng.standard_normal(u0.shape)
    elif ini.kind == "gaussian":
        cx, cy = center_site(scenario, setup)
        if ini.center is not None:
            cx, cy = ini.center[0] / setup.h, ini.center[1] / setup.h
        dx = ix - cx
        dy = iy - cy
        if setup.periodic:  # minimal image on the torus
            dx = (dx + setup.nx / 2) % setup.nx - setup.nx / 2
            dy = (dy + setup.ny / 2) % setup.ny - setup.ny / 2
        w = ini.width / setup.h
        u0[0] = ini.amplitude * np.exp(-(dy[:, None] ** 2 + dx[None, :] ** 2) / (2 * w * w))
    elif ini.kind == "packet":
        cx = center_site(scenario, setup)[0] if ini.center is None else ini.center[0] / setup.h
        dx = (ix - cx + setup.nx / 2) % setup.nx - setup.nx / 2  # minimal image on the torus
        k0 = 2 * np.pi * ini.mode[0] / setup.nx  # per site
        env = np.exp(-(dx**2) / (2 * (ini.width / setup.h) ** 2))
        u0[0] = ini.amplitude * (env * np.cos(k0 * dx))[None, :]
    elif ini.kind == "mode":
        mx, my = ini.mode
        if setup.periodic:
            u0[0] = ini.amplitude * np.cos(2 * np.pi * (mx * ix[None, :] / setup.nx + my * iy[:, None] / setup.ny))
        else:
            u0[0] = ini.amplitude * (
                np.sin(np.pi * mx * (ix[None, :] + 1) / (setup.nx + 1))
                * np.sin(np.pi * my * (iy[:, None] + 1) / (setup.ny + 1))
            )
    return u0


def _padded(a: np.ndarray) -> np.ndarray:
    out = np.zeros((a.shape[0], a.shape[1] + 2, a.shape[2] + 2))
    out[:, 1:-1, 1:-1] = a
    return out


# --------------------------------------------------------------------------- running


@dataclass
class Raw:
    """What one variant produced."""

    setup: Setup
    plan: Plan
    snaps: np.ndarray
    probe_out: np.ndarray
    energy: np.ndarray
    u_init: np.ndarray
    u_final: np.ndarray
    wall: float = 0.0
    rate: float = math.nan  #: site-updates/s after the first chunk (NaN if the run had one chunk)


def use_parallel(setup: Setup) -> bool:
    """Row-parallel kernels when more than one thread is available and the lattice is large."""
    return numba.get_num_threads() > 1 and setup.nx * setup.ny >= PARALLEL_MIN_SITES


def run_variant(
    scenario,
    setup: Setup,
    plan: Plan,
    init_seed: np.random.SeedSequence,
    noise_seed: np.random.SeedSequence,
    progress,
) -> Raw:
    """Run one variant in chunks and return its recordings."""
    import time

    rng_init = np.random.default_rng(init_seed)
    rng = np.random.default_rng(noise_seed)
    F, ny, nx = setup.n_fields, setup.ny, setup.nx
    u0 = initial_field(scenario, setup, rng_init)
    snaps = np.zeros((plan.n_snap, F, ny, nx))
    probe_out = np.zeros((plan.n_probe, len(plan.probes)))
    energy = np.zeros((plan.n_energy, 4))
    probes = plan.probes if len(plan.probes) else np.zeros((0, 3), dtype=np.int64)
    rec = K.Recording(
        snaps, plan.k_snap, probes, probe_out, plan.k_probe, energy, plan.k_energy, np.zeros((F, ny + 2, 3))
    )
    rowsum = np.zeros((max(F, 2), ny + 2))
    parallel = use_parallel(setup)
    dt = setup.dt
    lat = K.Consts(dt, setup.kappa, setup.mass, setup.periodic, setup.src, parallel)
    periodic = setup.periodic
    t_start = time.perf_counter()
    timing: dict = {}
    chunk = steps(scenario.run.chunk, dt, at_least=1) if scenario.run.chunk else None
    desc = f"{setup.label} ({nx}x{ny}, {setup.scheme})"

    def status(st: Status, step: int, f: int, j: int, i: int) -> tuple[Status, str]:
        """``(status, detail)`` for :func:`~neurodyn.stepping.run_chunked` from a kernel's ``(status, step, ...)``."""
        if st == Status.OK:
            return Status.OK, ""
        name = setup.names[f] if setup.scheme != "rk4" else ("u" if f == 0 else "second component")
        return Status.NAN, (
            f"non-finite value at step {step} (t = {step * dt:.6g} s), field {name}, site "
            f"(x={i - 1}, y={j - 1}); the dynamics diverged (unstable mass matrix, drive or model)"
        )

    if setup.scheme == "stormer":
        U = np.zeros((3, F, ny + 2, nx + 2))
        U[1] = _padded(u0)
        K.fill_ghosts(U[1], periodic)
        acc = _initial_acceleration(U[1], setup, lat)
        U[0] = U[1] + 0.5 * dt * dt * acc  # u_{-1} with v_0 = 0
        U[0][:, 0, :] = U[0][:, -1, :] = 0.0
        U[0][:, :, 0] = U[0][:, :, -1] = 0.0
        g = 0.5 * (setup.gamma[:, None, None] + setup.sponge[None]) * dt
        src_scale = dt * dt / (1.0 + g)
        state = K.StormerState(U, np.ones(1, dtype=np.int64), np.zeros_like(U[1]), rowsum)
        co = K.StormerCoeffs(setup.gamma, setup.sponge, bool(setup.sponge.any()), src_scale)

        def advance(start: int, n: int) -> tuple[Status, str]:
            return status(*K.stormer_run(state, start, n, lat, co, rec))

        def final_field() -> np.ndarray:
            return U[state.level[0]][:, 1:-1, 1:-1].copy()

    elif setup.scheme == "baoab":
        u = _padded(u0)
        a = _initial_acceleration(u, setup, lat)
        w = -0.5 * dt * a
        gtot = setup.gamma[:, None, None] + setup.sponge[None] + np.zeros_like(u)
        decay = np.exp(-gtot * dt)
        with np.errstate(divide="ignore", invalid="ignore"):
            amp = np.where(
                gtot > 0,
                setup.sigma * np.sqrt((1 - decay**2) / (2 * np.where(gtot > 0, gtot, 1))),
                setup.sigma * math.sqrt(dt),
            )
        bstate = K.BaoabState(u, w, a, np.zeros((F, ny, nx)), np.zeros_like(u), rowsum)
        bco = K.BaoabCoeffs(decay, amp, setup.sigma > 0, np.ones_like(u))

        def advance(start: int, n: int) -> tuple[Status, str]:
            return status(*K.baoab_run(bstate, start, n, lat, bco, rng, rec))

        def final_field() -> np.ndarray:
            return u[:, 1:-1, 1:-1].copy()

    else:
        X = np.zeros((2, ny + 2, nx + 2))
        X[0, 1:-1, 1:-1] = u0[0]
        code, pvec, vel, gain = rk4_site(setup)
        plane = (ny + 2, nx + 2)
        site = K.SiteModel(code, pvec, vel, setup.sigma, gain, np.ones((1, *plane)))
        rstate = K.Rk4State(
            X, np.zeros((5, 2, *plane)), np.zeros((2, *plane)), np.zeros((1, *plane)), np.zeros((1, *plane)), rowsum
        )

        def advance(start: int, n: int) -> tuple[Status, str]:
            return status(*K.rk4_run(rstate, start, n, lat, site, rng, rec))

        def final_field() -> np.ndarray:
            return X[0:1, 1:-1, 1:-1].copy()

    run_chunked(setup.n_steps, _timed(advance, timing), progress, desc=desc, chunk_steps=chunk)
    return Raw(
        setup=setup,
        plan=plan,
        snaps=snaps,
        probe_out=probe_out,
        energy=energy,
        u_init=u0,
        u_final=final_field(),
        wall=time.perf_counter() - t_start,
        rate=timing.get("rate", math.nan) * setup.nx * setup.ny * setup.n_fields,
    )


def _initial_acceleration(u: np.ndarray, setup: Setup, lat: K.Consts) -> np.ndarray:
    """Acceleration ``kappa lap u - M u + J(x, 0)`` of the padded field ``u`` (fills its ghosts)."""
    acc = np.zeros_like(u)
    K.baoab_force(u, acc, lat, np.zeros((setup.n_fields, setup.ny + 2)))
    K.add_sources(acc, setup.src, 0.0, np.ones_like(u), 0)
    return acc


def _timed(advance, timing: dict):
    """Wrap ``advance`` to measure steps/s after the first chunk (which includes loading compiled code)."""
    import time

    def inner(start: int, n: int) -> tuple[Status, str]:
        t0 = time.perf_counter()
        out = advance(start, n)
        if start > 0:
            timing["steps"] = timing.get("steps", 0) + n
            timing["wall"] = timing.get("wall", 0.0) + time.perf_counter() - t0
            timing["rate"] = timing["steps"] / max(timing["wall"], 1e-12)
        return out

    return inner


def rk4_site(setup: Setup) -> tuple[int, np.ndarray, np.ndarray, float]:
    """Site-model code, parameter vector, velocity map and noise gain for :func:`kernels.rk4_run`."""
    kap = float(setup.kappa[0])
    if setup.model == "harmonic":
        return K.HARMONIC, np.array([setup.mass[0, 0], kap, setup.gamma[0]]), np.array([0.0, 1.0]), 1.0
    lin = setup.lin
    vel = np.array([lin.a, -lin.b])
    if setup.model == "ei_linear":
        return K.EI_LINEAR, np.array([lin.a, lin.b, lin.c, lin.d, kap]), vel, -1.0 / lin.b
    wc = setup.extras["wc"]
    G = wc.tau_i / (lin.b * lin.slopes[1])
    p = np.array(
        [
            wc.tau_e,
            wc.tau_i,
            wc.w_ee,
            wc.w_ei,
            wc.w_ie,
            wc.w_ii,
            wc.p_e,
            wc.p_i,
            wc.a_e,
            wc.theta_e,
            wc.a_i,
            wc.theta_i,
            lin.fixed_point[0],
            lin.fixed_point[1],
            G,
            kap,
        ]
    )
    return K.WILSON_COWAN, p, vel, -1.0 / lin.b


def run_all(scenario, progress) -> list[Raw]:
    """Run every variant of the scenario (same initial field for all, independent noise streams)."""
    setups = check_resources(scenario)
    seeds = np.random.SeedSequence(scenario.run.seed).spawn(1 + len(setups))
    out = []
    with kernel_threads(scenario.run.threads):  # run.threads, else what the process has (all cores)
        for k, st in enumerate(setups):
            st.extras["wc"] = scenario.params.wilson_cowan
            out.append(run_variant(scenario, st, plan_recording(scenario, st), seeds[0], seeds[1 + k], progress))
    return out
