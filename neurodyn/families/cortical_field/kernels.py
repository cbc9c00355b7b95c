"""Numba kernels of the ``cortical_field`` family.

Layout: a field is an array ``u[f, j, i]`` of shape ``(F, ny + 2, nx + 2)``; row/column 0 and the last
row/column are ghost sites. Periodic boundaries copy the opposite edge into the ghosts before each force
evaluation; fixed (and absorbing, which is fixed plus a sponge) boundaries keep the ghosts at zero. The
interior loop is then branch-free.

Three schemes:

``stormer_run``
    Störmer–Verlet in two-level form ``u_{n+1} = 2 u_n - u_{n-1} + dt^2 a_n`` with centred damping
    ``gamma (u_{n+1} - u_{n-1}) / (2 dt)``; symplectic when ``gamma = 0`` (Hairer, Lubich & Wanner 2003,
    Acta Numerica 12:399). Deterministic drives only. Rows run in parallel (``prange``); every row writes
    only its own cells and its own partial sums, so results do not depend on the number of threads.
``baoab_run``
    The BAOAB Langevin splitting (Leimkuhler & Matthews 2013, Appl. Math. Res. Express 2013:34): half
    kick, half drift, exact Ornstein–Uhlenbeck step of the velocity, half drift, half kick. For a
    harmonic (linear) lattice its stationary distribution of ``u`` is exact at any stable ``dt``, which
    is why noise-driven runs use it. Noise is drawn serially (one stream, fixed order) before the
    parallel sweep, so it too is deterministic.
``rk4_run``
    Classical RK4 over the two-component site state (harmonic ``(u, v)``, E–I pair or Wilson–Cowan
    ``(e, i)`` deviations from the fixed point); noise is added after each step (Euler–Maruyama).

Every driver takes its arrays in named tuples (Numba passes them whole): the lattice's :class:`Consts`,
the scheme's state (:class:`StormerState`, :class:`BaoabState`, :class:`Rk4State`) and coefficients
(:class:`StormerCoeffs`, :class:`BaoabCoeffs`, :class:`SiteModel`), and one :class:`Recording`
(snapshots, probes, energy), all built once per run by the engine. Every driver returns
``(status, step, f, j, i)``: a :class:`~neurodyn.stepping.Status`, ``NAN`` when a non-finite value
appeared at step ``step`` in field ``f`` at site ``(x=i-1, y=j-1)``.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from neurodyn.stepping import Status

# site-model codes for rk4_run
HARMONIC = 0
EI_LINEAR = 1
WILSON_COWAN = 2

# time-course codes for sources
COURSE_CONSTANT = 0
COURSE_PULSE = 1
COURSE_SINE = 2
COURSE_STEP = 3

# columns of the source table
S_FIELD, S_KIND, S_X, S_Y, S_VX, S_VY, S_W, S_AMP, S_COURSE, S_T0, S_T1, S_TW, S_FREQ, S_PHASE = range(14)
N_SRC_COLS = 14


# --------------------------------------------------------------------------- what the drivers take


class Consts(NamedTuple):
    """What every scheme reads about the lattice, unchanged during a run."""

    dt: float  #: time step, s
    kappa: np.ndarray  #: (F,) lateral coupling of each field, 1/s^2
    mass: np.ndarray  #: (F, F) mass matrix, rad^2/s^2
    periodic: bool  #: periodic ghosts (else fixed at zero)
    src: np.ndarray  #: (n_src, N_SRC_COLS) source table, positions in site units
    parallel: bool  #: rows in threads (the ``_par`` twins) or serially (the ``_ser`` twins)


class Recording(NamedTuple):
    """Output buffers and strides of one run.

    Row ``r`` of a buffer holds step ``r * k_*``; a stride of 0 records nothing.
    """

    snaps: np.ndarray  #: (n_snap, F, ny, nx) field snapshots
    k_snap: int
    probes: np.ndarray  #: (n_probes, 3) int64 rows (field, y, x) of the probed sites
    probe_out: np.ndarray  #: (n_probe, n_probes)
    k_probe: int
    energy: np.ndarray  #: (n_energy, 4) total, kinetic, mass, gradient
    k_energy: int
    erow: np.ndarray  #: (F, ny + 2, 3) row partial sums of the energy


class StormerState(NamedTuple):
    """Störmer–Verlet state: three time levels of the padded field, rotating."""

    U: np.ndarray  #: (3, F, ny + 2, nx + 2); ``U[level]`` is u_n, ``U[(level + 2) % 3]`` is u_{n-1}
    level: np.ndarray  #: (1,) int64, the index of u_n in ``U`` (advanced by the driver)
    vbuf: np.ndarray  #: (F, ny + 2, nx + 2) the velocity at recorded energy steps
    rowsum: np.ndarray  #: (max(F, 2), ny + 2) per-row finiteness flags (0 or NaN)


class StormerCoeffs(NamedTuple):
    """Störmer–Verlet damping and drive coefficients."""

    gamma: np.ndarray  #: (F,) damping rate of each field, 1/s
    sponge: np.ndarray  #: (ny + 2, nx + 2) extra damping of the absorbing layer, 1/s
    has_sponge: bool  #: any sponge damping at all (else the per-site damping is skipped)
    src_scale: np.ndarray  #: (F, ny + 2, nx + 2) ``dt^2 / (1 + gamma_site dt / 2)``: how a drive enters u_{n+1}


class BaoabState(NamedTuple):
    """BAOAB state: ``v_n = w + dt/2 a``."""

    u: np.ndarray  #: (F, ny + 2, nx + 2) the field, ghosts filled
    w: np.ndarray  #: (F, ny + 2, nx + 2) the velocity before the final half kick
    a: np.ndarray  #: (F, ny + 2, nx + 2) the acceleration at u, sources included
    xi: np.ndarray  #: (F, ny, nx) this step's standard normal draws
    vbuf: np.ndarray  #: (F, ny + 2, nx + 2) the velocity at recorded energy steps
    rowsum: np.ndarray  #: (max(F, 2), ny + 2) per-row finiteness flags (0 or NaN)


class BaoabCoeffs(NamedTuple):
    """BAOAB's exact Ornstein–Uhlenbeck step of the velocity."""

    decay: np.ndarray  #: (F, ny + 2, nx + 2) ``exp(-gamma_site dt)``
    amp: np.ndarray  #: (F, ny + 2, nx + 2) noise amplitude of one step
    noisy: bool  #: whether noise is drawn at all
    src_scale: np.ndarray  #: (F, ny + 2, nx + 2) ones: a drive enters the acceleration as it is


class Rk4State(NamedTuple):
    """RK4 state of the two-component site and its work arrays."""

    X: np.ndarray  #: (2, ny + 2, nx + 2) the site state; the recorded field is ``X[0]``
    work: np.ndarray  #: (5, 2, ny + 2, nx + 2) the four stages and the trial state
    J: np.ndarray  #: (2, ny + 2, nx + 2) the drive at the stage's time (on component 1)
    ubuf: np.ndarray  #: (1, ny + 2, nx + 2) the recorded field
    vbuf: np.ndarray  #: (1, ny + 2, nx + 2) its velocity at recorded energy steps
    rowsum: np.ndarray  #: (2, ny + 2) per-row finiteness flags (0 or NaN)


class SiteModel(NamedTuple):
    """The site dynamics integrated by RK4."""

    model: int  #: HARMONIC, EI_LINEAR or WILSON_COWAN
    p: np.ndarray  #: the model's parameter vector (see :func:`_rhs_row`)
    vel: np.ndarray  #: (2,) the field's velocity ``vel[0] X[0] + vel[1] X[1]``
    sigma: float  #: noise amplitude
    noise_gain: float  #: how noise enters the second component (1 harmonic, -1/b E–I)
    ones: np.ndarray  #: (1, ny + 2, nx + 2) ones: a drive enters as it is


def _twins(fn: Callable) -> tuple[Callable, Callable]:
    """Compile one row sweep twice: rows in threads (``parallel=True``) and serially (``prange`` as ``range``).

    Each twin is a copy of ``fn`` under its own name (``<name>_par``, ``<name>_ser``): Numba's on-disk
    cache files a compiled function under its module, name and first line, and keys the entry by its
    signature and bytecode but not by the ``parallel`` flag, so two dispatchers of one function would
    load each other's code from the cache.
    """

    def renamed(suffix: str) -> types.FunctionType:
        f = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + suffix, fn.__defaults__, fn.__closure__)
        f.__qualname__ = fn.__qualname__ + suffix
        f.__doc__ = fn.__doc__
        return f

    return njit(cache=True, parallel=True)(renamed("_par")), njit(cache=True)(renamed("_ser"))


# The drivers unpack their named tuples once per call; the row sweeps and the row functions they run
# every step take plain arrays and scalars. Given the tuples, the Störmer row ran 25% slower (LLVM
# optimised its inner loop less well), and taking an array out of a tuple costs a reference-count
# increment and decrement, which every step of a small lattice would pay.


# --------------------------------------------------------------------------- helpers


@njit(cache=True, inline="always")
def _due(n: int, k: int) -> bool:
    """Whether step ``n`` is recorded with stride ``k`` (0 = never)."""
    return k > 0 and n % k == 0


@njit(cache=True, inline="always")
def _lap(u: np.ndarray, f: int, j: int, i: int, c: float) -> float:
    """Five-point Laplacian (site units) of ``u[f]`` at ``(j, i)`` with centre value ``c``."""
    return u[f, j, i - 1] + u[f, j, i + 1] + u[f, j - 1, i] + u[f, j + 1, i] - 4.0 * c


@njit(cache=True, inline="always")
def _flag_row(x: np.ndarray, f: int, j: int, rowsum: np.ndarray) -> None:
    """``rowsum[f, j] = 0`` if row ``j`` of ``x[f]`` is finite, NaN otherwise."""
    ok = True
    for i in range(1, x.shape[2] - 1):
        ok &= x[f, j, i] - x[f, j, i] == 0.0  # false for NaN and +-inf; keeps the loop vectorised
    rowsum[f, j] = 0.0 if ok else math.nan


@njit(cache=True)
def fill_ghosts(u: np.ndarray, periodic: bool) -> None:
    """Copy opposite edges into the ghost cells (periodic); fixed boundaries keep ghosts at zero."""
    if not periodic:
        return
    nf, ny2, nx2 = u.shape
    for f in range(nf):
        for j in range(1, ny2 - 1):
            u[f, j, 0] = u[f, j, nx2 - 2]
            u[f, j, nx2 - 1] = u[f, j, 1]
        for i in range(nx2):
            u[f, 0, i] = u[f, ny2 - 2, i]
            u[f, ny2 - 1, i] = u[f, 1, i]


@njit(cache=True)
def _course(src: np.ndarray, s: int, t: float) -> float:
    kind = int(src[s, S_COURSE])
    if kind == COURSE_CONSTANT:
        return 1.0
    if kind == COURSE_PULSE:
        z = (t - src[s, S_T0]) / src[s, S_TW]
        return math.exp(-0.5 * z * z)
    if t < src[s, S_T0] or t >= src[s, S_T1]:
        return 0.0
    if kind == COURSE_SINE:
        return math.sin(2.0 * math.pi * src[s, S_FREQ] * t + src[s, S_PHASE])
    return 1.0


@njit(cache=True)
def add_sources(target: np.ndarray, src: np.ndarray, t: float, scale: np.ndarray, field_offset: int) -> float:
    """``target[f, j, i] += scale[f, j, i] * J_f(x, t)`` for every source (positions in site units).

    Returns the sum of the updated cells (non-finite if a drive overflowed them).

    ``field_offset`` selects which component of ``target`` receives the drive (RK4 puts it on the
    second component).
    """
    ny = target.shape[1] - 2
    nx = target.shape[2] - 2
    total = 0.0
    for s in range(src.shape[0]):
        a = src[s, S_AMP] * _course(src, s, t)
        if a == 0.0:
            continue
        f = int(src[s, S_FIELD]) + field_offset
        sf = int(src[s, S_FIELD])
        cx = src[s, S_X] + src[s, S_VX] * t
        cy = src[s, S_Y] + src[s, S_VY] * t
        if int(src[s, S_KIND]) == 0:  # point: nearest site
            ix = int(math.floor(cx + 0.5))
            iy = int(math.floor(cy + 0.5))
            if 0 <= ix < nx and 0 <= iy < ny:
                target[f, iy + 1, ix + 1] += scale[sf, iy + 1, ix + 1] * a
                total += target[f, iy + 1, ix + 1]
            continue
        w = src[s, S_W]
        r = int(math.ceil(6.0 * w))  # exp(-18) ~ 1.5e-8 of the peak is dropped
        i0 = max(0, int(math.floor(cx)) - r)
        i1 = min(nx - 1, int(math.floor(cx)) + r + 1)
        j0 = max(0, int(math.floor(cy)) - r)
        j1 = min(ny - 1, int(math.floor(cy)) + r + 1)
        inv = 0.5 / (w * w)
        for iy in range(j0, j1 + 1):
            dy = iy - cy
            for ix in range(i0, i1 + 1):
                dx = ix - cx
                target[f, iy + 1, ix + 1] += scale[sf, iy + 1, ix + 1] * a * math.exp(-(dx * dx + dy * dy) * inv)
                total += target[f, iy + 1, ix + 1]
    return total


@njit(cache=True)
def _first_nonfinite(u: np.ndarray, rowsum: np.ndarray) -> tuple[int, int, int]:
    """Locate the first non-finite cell in the rows whose partial sums are non-finite."""
    nf, ny2, nx2 = u.shape
    for f in range(nf):
        for j in range(1, ny2 - 1):
            if not math.isfinite(rowsum[f, j]):
                for i in range(1, nx2 - 1):
                    if not math.isfinite(u[f, j, i]):
                        return f, j, i
                return f, j, 1
    return -1, -1, -1


@njit(cache=True)
def _rows_finite(rowsum: np.ndarray) -> bool:
    s = 0.0
    for f in range(rowsum.shape[0]):
        for j in range(1, rowsum.shape[1] - 1):
            s += rowsum[f, j]
    return math.isfinite(s)


@njit(cache=True)
def _nonfinite_at(u: np.ndarray, rowsum: np.ndarray) -> tuple[int, int, int]:
    """``(f, j, i)`` of the first non-finite cell after a step, ``(-1, -1, -1)`` if all rows are finite."""
    if _rows_finite(rowsum):
        return -1, -1, -1
    return _first_nonfinite(u, rowsum)


# --------------------------------------------------------------------------- energy


@njit(cache=True)
def _energy_row(
    j: int, u: np.ndarray, v: np.ndarray, kap: np.ndarray, mass: np.ndarray, periodic: bool, erow: np.ndarray
) -> None:
    nf = u.shape[0]
    nx = u.shape[2] - 2
    for f in range(nf):
        ek = 0.0
        em = 0.0
        eg = 0.0
        for i in range(1, nx + 1):
            c = u[f, j, i]
            ek += v[f, j, i] * v[f, j, i]
            m = 0.0
            for g in range(nf):
                m += mass[f, g] * u[g, j, i]
            em += c * m
            dx = u[f, j, i + 1] - c
            dy = u[f, j + 1, i] - c
            eg += dx * dx + dy * dy
        if not periodic:  # bonds to the (zero) ghosts on the left and top edges
            dx = u[f, j, 1] - u[f, j, 0]
            eg += dx * dx
            if j == 1:
                for i in range(1, nx + 1):
                    dy = u[f, 1, i] - u[f, 0, i]
                    eg += dy * dy
        erow[f, j, 0] = 0.5 * ek
        erow[f, j, 1] = 0.5 * em
        erow[f, j, 2] = 0.5 * kap[f] * eg


def _energy_sweep(
    u: np.ndarray, v: np.ndarray, kap: np.ndarray, mass: np.ndarray, periodic: bool, erow: np.ndarray
) -> None:
    for j in prange(1, u.shape[1] - 1):
        _energy_row(j, u, v, kap, mass, periodic, erow)


_energy_sweep_par, _energy_sweep_ser = _twins(_energy_sweep)


@njit(cache=True)
def lattice_energy(u: np.ndarray, v: np.ndarray, lat: Consts, erow: np.ndarray) -> tuple[float, float, float]:
    """Kinetic, mass and gradient energy ``(sum v^2/2, sum u.M u/2, kappa/2 sum_bonds (du)^2)``.

    ``u`` must have its ghosts filled. Row partial sums are added serially in a fixed order.
    """
    if lat.parallel:
        _energy_sweep_par(u, v, lat.kappa, lat.mass, lat.periodic, erow)
    else:
        _energy_sweep_ser(u, v, lat.kappa, lat.mass, lat.periodic, erow)
    ek = 0.0
    em = 0.0
    eg = 0.0
    for f in range(u.shape[0]):
        for j in range(1, u.shape[1] - 1):
            ek += erow[f, j, 0]
            em += erow[f, j, 1]
            eg += erow[f, j, 2]
    return ek, em, eg


# --------------------------------------------------------------------------- recording


@njit(cache=True)
def _record(n: int, u: np.ndarray, v: np.ndarray, rec: Recording, lat: Consts) -> None:
    """Record step ``n`` (snapshots, probes, energy); ``v`` is the velocity at step ``n``."""
    ny = u.shape[1] - 2
    nx = u.shape[2] - 2
    if _due(n, rec.k_snap):
        r = n // rec.k_snap
        if r < rec.snaps.shape[0]:
            for f in range(u.shape[0]):
                for j in range(ny):
                    for i in range(nx):
                        rec.snaps[r, f, j, i] = u[f, j + 1, i + 1]
    if _due(n, rec.k_probe):
        r = n // rec.k_probe
        if r < rec.probe_out.shape[0]:
            probes = rec.probes
            for p in range(probes.shape[0]):
                rec.probe_out[r, p] = u[probes[p, 0], probes[p, 1] + 1, probes[p, 2] + 1]
    if _due(n, rec.k_energy):
        r = n // rec.k_energy
        if r < rec.energy.shape[0]:
            ek, em, eg = lattice_energy(u, v, lat, rec.erow)
            rec.energy[r, 0] = ek + em + eg
            rec.energy[r, 1] = ek
            rec.energy[r, 2] = em
            rec.energy[r, 3] = eg


# --------------------------------------------------------------------------- Störmer–Verlet


@njit(cache=True)
def _stormer_row(
    j: int,
    up: np.ndarray,
    u: np.ndarray,
    un: np.ndarray,
    kap: np.ndarray,
    mass: np.ndarray,
    gam: np.ndarray,
    gs: np.ndarray,
    sponge: bool,
    dt: float,
    rowsum: np.ndarray,
) -> None:
    nf = u.shape[0]
    nx = u.shape[2] - 2
    dt2 = dt * dt
    for f in range(nf):
        k = kap[f]
        m2 = mass[f, f]
        ok = True
        if not sponge:
            g = 0.5 * gam[f] * dt
            c1 = 2.0 / (1.0 + g)
            c2 = (1.0 - g) / (1.0 + g)
            c3 = dt2 / (1.0 + g)
            for i in range(1, nx + 1):
                c = u[f, j, i]
                lap = _lap(u, f, j, i, c)
                x = c1 * c - c2 * up[f, j, i] + c3 * (k * lap - m2 * c)
                un[f, j, i] = x
                ok &= x - x == 0.0  # false for NaN and +-inf; a bool reduction keeps the loop vectorised
        else:
            for i in range(1, nx + 1):
                g = 0.5 * (gam[f] + gs[j, i]) * dt
                c = u[f, j, i]
                lap = _lap(u, f, j, i, c)
                x = (2.0 * c - (1.0 - g) * up[f, j, i] + dt2 * (k * lap - m2 * c)) / (1.0 + g)
                un[f, j, i] = x
                ok &= x - x == 0.0
        if nf > 1:  # off-diagonal mass couplings between fields
            for g2 in range(nf):
                if g2 == f or mass[f, g2] == 0.0:
                    continue
                mfg = mass[f, g2]
                for i in range(1, nx + 1):
                    g = 0.5 * (gam[f] + gs[j, i]) * dt
                    un[f, j, i] -= dt2 / (1.0 + g) * mfg * u[g2, j, i]
            _flag_row(un, f, j, rowsum)
        else:
            rowsum[f, j] = 0.0 if ok else math.nan


def _stormer_sweep(
    up: np.ndarray,
    u: np.ndarray,
    un: np.ndarray,
    kap: np.ndarray,
    mass: np.ndarray,
    gam: np.ndarray,
    gs: np.ndarray,
    sponge: bool,
    dt: float,
    rowsum: np.ndarray,
) -> None:
    for j in prange(1, u.shape[1] - 1):
        _stormer_row(j, up, u, un, kap, mass, gam, gs, sponge, dt, rowsum)


_stormer_sweep_par, _stormer_sweep_ser = _twins(_stormer_sweep)


@njit(cache=True)
def stormer_run(
    st: StormerState, start: int, count: int, lat: Consts, co: StormerCoeffs, rec: Recording
) -> tuple[int, int, int, int, int]:
    """Advance steps ``start .. start+count-1``; ``st.U[st.level[0]]`` is ``u_n`` (the level advances).

    Returns ``(status, step, f, j, i)``.
    """
    U, vbuf, rowsum = st.U, st.vbuf, st.rowsum
    dt, kap, mass, periodic, src, parallel = lat.dt, lat.kappa, lat.mass, lat.periodic, lat.src, lat.parallel
    gam, gs, sponge, src_scale = co.gamma, co.sponge, co.has_sponge, co.src_scale
    nf = U.shape[1]
    ny = U.shape[2] - 2
    nx = U.shape[3] - 2
    cur = st.level[0]
    for n in range(start, start + count):
        up = U[(cur + 2) % 3]
        u = U[cur]
        un = U[(cur + 1) % 3]
        fill_ghosts(u, periodic)
        if parallel:
            _stormer_sweep_par(up, u, un, kap, mass, gam, gs, sponge, dt, rowsum)
        else:
            _stormer_sweep_ser(up, u, un, kap, mass, gam, gs, sponge, dt, rowsum)
        if src.shape[0] > 0:
            if not math.isfinite(add_sources(un, src, n * dt, src_scale, 0)):
                for f in range(nf):  # a drive overflowed: rescan the rows to locate it
                    for j in range(1, ny + 1):
                        _flag_row(un, f, j, rowsum)
        f, j, i = _nonfinite_at(un, rowsum)
        if f >= 0:
            st.level[0] = cur
            return Status.NAN, n, f, j, i
        if _due(n, rec.k_energy):
            inv = 0.5 / dt
            for f in range(nf):
                for j in range(1, ny + 1):
                    for i in range(1, nx + 1):
                        vbuf[f, j, i] = (un[f, j, i] - up[f, j, i]) * inv
        _record(n, u, vbuf, rec, lat)
        cur = (cur + 1) % 3
    st.level[0] = cur
    return Status.OK, start + count, -1, -1, -1


# --------------------------------------------------------------------------- BAOAB


@njit(cache=True)
def _force_row(j: int, u: np.ndarray, a: np.ndarray, kap: np.ndarray, mass: np.ndarray, rowsum: np.ndarray) -> None:
    nf = u.shape[0]
    nx = u.shape[2] - 2
    for f in range(nf):
        k = kap[f]
        ok = True
        for i in range(1, nx + 1):
            c = u[f, j, i]
            lap = _lap(u, f, j, i, c)
            m = 0.0
            for g in range(nf):
                m += mass[f, g] * u[g, j, i]
            x = k * lap - m
            a[f, j, i] = x
            ok &= c - c == 0.0
        rowsum[f, j] = 0.0 if ok else math.nan


@njit(cache=True)
def _baoa_row(
    j: int,
    u: np.ndarray,
    w: np.ndarray,
    a: np.ndarray,
    decay: np.ndarray,
    amp: np.ndarray,
    xi: np.ndarray,
    dt: float,
    noisy: bool,
) -> None:
    nf = u.shape[0]
    nx = u.shape[2] - 2
    h = 0.5 * dt
    for f in range(nf):
        for i in range(1, nx + 1):
            x = w[f, j, i] + dt * a[f, j, i]  # end kick of the previous step + start kick of this one
            y = u[f, j, i] + h * x
            if noisy:
                x = decay[f, j, i] * x + amp[f, j, i] * xi[f, j - 1, i - 1]
            else:
                x = decay[f, j, i] * x
            w[f, j, i] = x
            u[f, j, i] = y + h * x


def _baoab_sweep(
    u: np.ndarray,
    w: np.ndarray,
    a: np.ndarray,
    decay: np.ndarray,
    amp: np.ndarray,
    xi: np.ndarray,
    dt: float,
    noisy: bool,
    kap: np.ndarray,
    mass: np.ndarray,
    rowsum: np.ndarray,
    periodic: bool,
) -> None:
    for j in prange(1, u.shape[1] - 1):
        _baoa_row(j, u, w, a, decay, amp, xi, dt, noisy)
    fill_ghosts(u, periodic)
    for j in prange(1, u.shape[1] - 1):
        _force_row(j, u, a, kap, mass, rowsum)


_baoab_sweep_par, _baoab_sweep_ser = _twins(_baoab_sweep)


@njit(cache=True)
def baoab_force(u: np.ndarray, a: np.ndarray, lat: Consts, rowsum: np.ndarray) -> None:
    """Conservative acceleration ``kappa lap u - M u`` (fills ghosts first)."""
    fill_ghosts(u, lat.periodic)
    for j in range(1, u.shape[1] - 1):
        _force_row(j, u, a, lat.kappa, lat.mass, rowsum)


@njit(cache=True)
def baoab_run(
    st: BaoabState,
    start: int,
    count: int,
    lat: Consts,
    co: BaoabCoeffs,
    rng: np.random.Generator,
    rec: Recording,
) -> tuple[int, int, int, int, int]:
    """Advance steps ``start .. start+count-1`` of BAOAB.

    State: ``u`` (ghosts filled), ``a`` the acceleration at ``u`` *including* sources, ``w`` the
    velocity before the final half kick, so ``v_n = w + dt/2 a``. Returns ``(status, step, f, j, i)``.
    """
    u, w, a, xi, vbuf, rowsum = st.u, st.w, st.a, st.xi, st.vbuf, st.rowsum
    decay, amp, noisy, src_scale = co.decay, co.amp, co.noisy, co.src_scale
    dt, kap, mass, periodic, src, parallel = lat.dt, lat.kappa, lat.mass, lat.periodic, lat.src, lat.parallel
    nf = u.shape[0]
    ny = u.shape[1] - 2
    nx = u.shape[2] - 2
    h = 0.5 * dt
    for n in range(start, start + count):
        if _due(n, rec.k_energy):
            for f in range(nf):
                for j in range(1, ny + 1):
                    for i in range(1, nx + 1):
                        vbuf[f, j, i] = w[f, j, i] + h * a[f, j, i]
        _record(n, u, vbuf, rec, lat)
        if noisy:
            for f in range(nf):
                for j in range(ny):
                    for i in range(nx):
                        xi[f, j, i] = rng.standard_normal()
        if parallel:
            _baoab_sweep_par(u, w, a, decay, amp, xi, dt, noisy, kap, mass, rowsum, periodic)
        else:
            _baoab_sweep_ser(u, w, a, decay, amp, xi, dt, noisy, kap, mass, rowsum, periodic)
        if src.shape[0] > 0:
            add_sources(a, src, (n + 1) * dt, src_scale, 0)
        f, j, i = _nonfinite_at(u, rowsum)
        if f >= 0:
            return Status.NAN, n, f, j, i
    return Status.OK, start + count, -1, -1, -1


# --------------------------------------------------------------------------- RK4 site models


@njit(cache=True)
def _sig(x: float, a: float, th: float) -> float:
    return 1.0 / (1.0 + math.exp(-a * (x - th)))


@njit(cache=True)
def _rhs_row(
    j: int, model: int, p: np.ndarray, X: np.ndarray, J: np.ndarray, K: np.ndarray, rowsum: np.ndarray
) -> None:
    nx = X.shape[2] - 2
    ok = True
    if model == HARMONIC:  # p = [omega0^2, kappa, gamma]
        w2 = p[0]
        k = p[1]
        g = p[2]
        for i in range(1, nx + 1):
            c = X[0, j, i]
            lap = _lap(X, 0, j, i, c)
            K[0, j, i] = X[1, j, i]
            K[1, j, i] = -w2 * c + k * lap - g * X[1, j, i] + J[1, j, i]
            ok &= c - c == 0.0
    elif model == EI_LINEAR:  # p = [a, b, c, d, kappa]
        a = p[0]
        b = p[1]
        cc = p[2]
        d = p[3]
        k = p[4]
        for i in range(1, nx + 1):
            e = X[0, j, i]
            lap = _lap(X, 0, j, i, e)
            K[0, j, i] = a * e - b * X[1, j, i]
            K[1, j, i] = cc * e - d * X[1, j, i] - (k * lap + J[1, j, i]) / b
            ok &= e - e == 0.0
    else:  # Wilson–Cowan
        # p = [tau_e, tau_i, w_ee, w_ei, w_ie, w_ii, p_e, p_i, a_e, th_e, a_i, th_i, E*, I*, G, kappa]
        te = p[0]
        ti = p[1]
        es = p[12]
        is_ = p[13]
        G = p[14]
        k = p[15]
        for i in range(1, nx + 1):
            e = X[0, j, i]
            lap = _lap(X, 0, j, i, e)
            E = es + e
            I = is_ + X[1, j, i]
            K[0, j, i] = (-E + _sig(p[2] * E - p[3] * I + p[6], p[8], p[9])) / te
            K[1, j, i] = (-I + _sig(p[4] * E - p[5] * I + p[7] - G * (k * lap + J[1, j, i]), p[10], p[11])) / ti
            ok &= e - e == 0.0
    rowsum[0, j] = 0.0 if ok else math.nan


def _rhs_sweep(model: int, p: np.ndarray, X: np.ndarray, J: np.ndarray, K: np.ndarray, rowsum: np.ndarray) -> None:
    for j in prange(1, X.shape[1] - 1):
        _rhs_row(j, model, p, X, J, K, rowsum)


_rhs_sweep_par, _rhs_sweep_ser = _twins(_rhs_sweep)


@njit(cache=True)
def _rhs(site: SiteModel, X: np.ndarray, K: np.ndarray, st: Rk4State, lat: Consts, t: float) -> None:
    """``K = f(X, t)``: the site dynamics with lateral coupling and the drive at time ``t``."""
    fill_ghosts(X, lat.periodic)
    if lat.src.shape[0] > 0:
        st.J[:] = 0.0
        add_sources(st.J, lat.src, t, site.ones, 1)
    if lat.parallel:
        _rhs_sweep_par(site.model, site.p, X, st.J, K, st.rowsum)
    else:
        _rhs_sweep_ser(site.model, site.p, X, st.J, K, st.rowsum)


@njit(cache=True)
def rk4_run(
    st: Rk4State,
    start: int,
    count: int,
    lat: Consts,
    site: SiteModel,
    rng: np.random.Generator,
    rec: Recording,
) -> tuple[int, int, int, int, int]:
    """Advance the two-component site state ``st.X`` (shape ``(2, ny+2, nx+2)``) by RK4.

    The recorded field is ``u = X[0]``; its velocity for the energy is ``vel[0] u + vel[1] X[1]`` (the
    linearisation's ``u' = a e - b i``; ``(0, 1)`` for the harmonic model). Noise ``sigma xi`` enters the
    second component with gain ``noise_gain`` (``1`` harmonic, ``-1/b`` E–I) by Euler–Maruyama.
    Returns ``(status, step, f, j, i)``.
    """
    X = st.X
    ubuf = st.ubuf
    vbuf = st.vbuf
    rowsum = st.rowsum
    vel = site.vel
    sigma = site.sigma
    dt = lat.dt
    ny = X.shape[1] - 2
    nx = X.shape[2] - 2
    k1 = st.work[0]
    k2 = st.work[1]
    k3 = st.work[2]
    k4 = st.work[3]
    Xt = st.work[4]
    sq = math.sqrt(dt) * sigma * site.noise_gain
    for n in range(start, start + count):
        t = n * dt
        fill_ghosts(X, lat.periodic)
        for j in range(ny + 2):
            for i in range(nx + 2):
                ubuf[0, j, i] = X[0, j, i]
        if _due(n, rec.k_energy):
            for j in range(1, ny + 1):
                for i in range(1, nx + 1):
                    vbuf[0, j, i] = vel[0] * X[0, j, i] + vel[1] * X[1, j, i]
            if site.model == WILSON_COWAN:  # exact u' of the nonlinear model
                _rhs(site, X, k1, st, lat, t)
                for j in range(1, ny + 1):
                    for i in range(1, nx + 1):
                        vbuf[0, j, i] = k1[0, j, i]
        _record(n, ubuf, vbuf, rec, lat)
        _rhs(site, X, k1, st, lat, t)
        for c in range(2):
            for j in range(1, ny + 1):
                for i in range(1, nx + 1):
                    Xt[c, j, i] = X[c, j, i] + 0.5 * dt * k1[c, j, i]
        _rhs(site, Xt, k2, st, lat, t + 0.5 * dt)
        for c in range(2):
            for j in range(1, ny + 1):
                for i in range(1, nx + 1):
                    Xt[c, j, i] = X[c, j, i] + 0.5 * dt * k2[c, j, i]
        _rhs(site, Xt, k3, st, lat, t + 0.5 * dt)
        for c in range(2):
            for j in range(1, ny + 1):
                for i in range(1, nx + 1):
                    Xt[c, j, i] = X[c, j, i] + dt * k3[c, j, i]
        _rhs(site, Xt, k4, st, lat, t + dt)
        for c in range(2):
            for j in range(1, ny + 1):
                ok = True
                for i in range(1, nx + 1):
                    x = X[c, j, i] + dt / 6.0 * (k1[c, j, i] + 2.0 * k2[c, j, i] + 2.0 * k3[c, j, i] + k4[c, j, i])
                    if c == 1 and sigma > 0.0:
                        x += sq * rng.standard_normal()
                    X[c, j, i] = x
                    ok &= x - x == 0.0
                rowsum[c, j] = 0.0 if ok else math.nan
        c, j, i = _nonfinite_at(X, rowsum)
        if c >= 0:
            return Status.NAN, n, c, j, i
    return Status.OK, start + count, -1, -1, -1
