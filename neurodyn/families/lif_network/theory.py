"""Analytic firing rates of LIF populations, stored beside the simulated rates as ``rate_theory``.

Four regimes, chosen per population from the scenario:

``fi``
    No synaptic input, no noise: deterministic f–I curve. With ``mu = v_rest + drive`` the free
    membrane relaxes as ``v(t) = mu + (v_reset - mu) exp(-t/tau_m)``; it reaches ``v_threshold`` after
    ``tau_m ln((mu - v_reset)/(mu - v_threshold))`` if ``mu > v_threshold`` (never otherwise), so the
    period is ``T = t_ref + tau_m ln((mu - v_reset)/(mu - v_threshold))`` and the rate ``1/T``
    (e.g. Gerstner et al., *Neuronal Dynamics* (2014), eq. 1.11, with the refractory period added).
``siegert``
    Gaussian white noise and/or Poisson input, no recurrent synapses: the Siegert (1951) mean
    first-passage-time rate of the Ornstein–Uhlenbeck membrane
    ``tau_m dv = (mu - v) dt + sigma sqrt(tau_m) dW``
    (Brunel 2000, eq. 21; Ricciardi 1977)::

        1/nu = t_ref + tau_m sqrt(pi) int_{(v_reset-mu)/sigma}^{(v_threshold-mu)/sigma} e^{u^2} (1 + erf u) du

    Poisson inputs enter by the diffusion approximation (Campbell's theorem): a train of rate ``r`` whose
    spikes each inject the charge ``J`` adds ``tau_m r J`` to ``mu`` and ``tau_m r J^2`` to ``sigma^2``.
``brunel``
    Recurrent current-based synapses: the same rate function, made self-consistent (Brunel 2000,
    eqs. 4-5, 21): ``mu_a = v_rest + drive + tau_m sum_b K_ab J_ab nu_b + ...``,
    ``sigma_a^2 = sigma_noise^2 + tau_m sum_b K_ab J_ab^2 nu_b + ...``, with the mean in-degree
    ``K_ab = (synapses of the projection) / n_post``.
``coba``
    Conductance-based Poisson input, no recurrent synapses of conductance kind: the effective-time-constant
    (Gaussian) approximation for shot-noise conductances with exponential synapses (Kuhn, Aertsen & Rotter,
    J. Neurosci. 24:2345, 2004; Richardson, Phys. Rev. E 69:051918, 2004). A channel ``k`` receiving spikes
    at total rate ``r_k`` (``rate n_sources``), each making ``g_k`` jump by ``w_k`` and decay with ``tau_k``,
    has (Campbell) mean ``g0_k = r_k w_k tau_k`` and variance ``r_k w_k^2 tau_k / 2`` with correlation time
    ``tau_k``. With ``g_k = g0_k + dg_k`` the membrane equation becomes::

        g_T = g_L + sum_k g0_k,   tau_eff = tau_m g_L / g_T,   mu = (g_L (v_rest + drive) + sum_k g0_k E_k) / g_T
        tau_eff dv/dt = (mu - v) + sum_k (E_k - v) dg_k / g_T  ~  (mu - v) + sum_k (E_k - mu) dg_k / g_T

    (driving force frozen at the mean). Each channel is then an exponentially correlated input of variance
    ``(E_k - mu)^2 r_k w_k^2 tau_k / (2 g_T^2)``; low-pass filtered by the membrane it gives::

        sigma_V^2 = sum_k (E_k - mu)^2 r_k w_k^2 tau_k^2 / (2 g_T^2 (tau_k + tau_eff))

    (the stationary variance of v, :attr:`Membrane.var_v`). The ``sigma`` of the Siegert formula is not
    ``sqrt 2 sigma_V``: it is the white-noise-equivalent intensity (the time integral of the input
    autocorrelation), which the Fourcaud–Brunel correction also assumes::

        sigma^2 = sum_k (E_k - mu)^2 r_k w_k^2 tau_k^2 / (g_T^2 tau_eff)
                = sum_k 2 sigma_V,k^2 (tau_k + tau_eff) / tau_eff

    i.e. Brunel's ``tau r J^2`` with ``tau = tau_eff`` and ``J_k = w_k (E_k - mu) tau_k / (g_T tau_eff)``. The
    rate is ``siegert_rate(mu, sigma, tau_eff, ...)`` with the Fourcaud–Brunel shift computed with
    ``sqrt(tau_k / tau_eff)``. Current-based input on the same population (drive, noise, current synapses)
    passes through the leak: ``tau_m dv = ... + I dt`` becomes ``tau_eff dv = ... + (g_L/g_T) I dt``, so its
    contribution to ``mu`` and to ``sigma^2`` is scaled by ``g_L / g_T`` (in ``sigma_V^2`` it is counted as
    white noise). The first-order Fourcaud–Brunel shift fails when the synapses are not fast against
    ``tau_eff`` (which conductance input shortens): the rate is refused (``none (slow synapses)``) when
    ``sqrt(tau_s / tau_eff) > sqrt(1/2)``. Measured accuracy (``tests/validation/test_lif_theory_coba.py``):
    sub-threshold mean within 0.5% of ``E_exc - E_inh``, std within 2%; rates of 3–43 Hz at
    ``sqrt(tau_s/tau_eff) ~ 0.4`` 2–22% below the simulation; ``rel_tol = 0.10 + 0.5 sqrt(tau_s/tau_eff)``.
    Populations receiving *recurrent* conductance synapses get NaN (``none (recurrent conductance)``): in
    the Brette et al. (2007) COBA network ``tau_eff`` falls to ~1 ms against 5/10 ms synapses, and the mean
    field predicts the silent state or ~2.6 Hz against the simulated 17–18 Hz.

Exponential synapses are treated as instantaneous: a presynaptic spike that makes the synaptic drive
``x`` jump by ``w`` (decaying with ``tau_s``) injects ``int x dt / tau_m = w tau_s / tau_m`` of voltage
into the membrane, so ``J = w tau_s / tau_m`` — the exact charge, hence the exact mean; the variance is
that of white noise, which holds for ``tau_s << tau_m`` (the colored-noise correction of Fourcaud & Brunel
2002, a threshold and reset shift of ``sigma sqrt(tau_s/tau_m) |zeta(1/2)|/sqrt 2``, is applied, see
``filtered`` in :func:`self_consistent_rates`).

Discrete time: a simulation with step ``dt`` checks the threshold only at the grid, so the noisy
membrane crosses it less often than the continuous process. Following the continuity correction for
discretely monitored diffusions (Broadie, Glasserman & Kou 1997, Siegmund 1985) the Siegert/Brunel rates
use ``v_threshold + beta sigma sqrt(dt/tau_m)`` with ``beta = -zeta(1/2)/sqrt(2 pi) ~ 0.5826`` (the std of
the membrane noise over one step is ``sigma sqrt(dt/tau_m)``); this correction vanishes as ``dt -> 0``.
In the ``coba`` regime it is applied to the current-based part of ``sigma^2`` only: noise filtered by
conductance synapses makes ``v`` smooth on the scale of ``dt``. Also in discrete time, the kernel holds
``g`` at its start-of-step value over each step, so ``g0_k`` is the mean of the sampled conductance,
``r_k w_k dt / (1 - e^{-dt/tau_k}) = r_k w_k tau_k (1 + dt/(2 tau_k) + ...)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from neurodyn.families.lif_network.params import peak_normalisation, population_layout, synapse_rise
from neurodyn.schema import var_attrs

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.lif_network.build import LIFBuilt, Network
    from neurodyn.families.lif_network.params import Connect, LIFParams, Population

#: -zeta(1/2) / sqrt(2 pi): continuity correction of a discretely monitored Brownian barrier
BETA_DISCRETE = 0.5825971579390106
#: sqrt(2) |zeta(1/2)|: Fourcaud & Brunel (2002) threshold shift for synaptically filtered noise
ALPHA_FB = 2.0652531522312172
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(24)
#: below -_TAIL the Siegert integrand is integrated through its asymptotic series
_TAIL = 20.0

#: relative tolerances stored with the prediction (documented in docs/lif_network.md)
REL_TOL_SIEGERT = 0.10
#: extra tolerance per unit of sqrt(tau_s / tau_m): the white-noise treatment of filtered synaptic input
#: (with its first-order Fourcaud-Brunel correction) degrades as the synapses slow down
REL_TOL_FILTER = 0.25
#: conductance input: tolerance per unit of sqrt(tau_s / tau_eff) (measured, see docs/lif_network.md)
REL_TOL_COBA_FILTER = 0.5
#: adapted rate and ISIs: the mean-w treatment errs at second order in ISI / tau_w (measured on
#: scenarios/adaptation_fi.yaml: below 1.1 (ISI/tau_w)^2 for the adapted ISI and the ratio, 2% for the first ISI)
REL_TOL_ADAPT = 0.02
REL_TOL_ADAPT_SLOW = 1.2
REL_TOL_ISI_FIRST = 0.03
#: largest sqrt(tau_s / tau_eff) for which the ``coba`` regime gives a rate (tau_s <= tau_eff / 2)
COBA_MAX_FILTER = math.sqrt(0.5)
#: a population with ``tau_m <= BERNOULLI_TAU dt`` (and no refractory period) fires as a Bernoulli process
#: (``exp(-dt/tau_m) < 0.7 %``: each step's potential is independent of the last); its rate is exact up to
#: that memory, so the tolerance covers the sampling error of a run
BERNOULLI_TAU = 0.2
REL_TOL_BERNOULLI = 0.03


def fi_rate(mu: float, tau_m: float, t_ref: float, v_threshold: float, v_reset: float) -> float:
    """Deterministic LIF rate (Hz) for a constant asymptotic potential ``mu`` (no noise).

    ``1 / (t_ref + tau_m ln((mu - v_reset)/(mu - v_threshold)))`` when ``mu > v_threshold``, else 0.
    """
    if not mu > v_threshold:
        return 0.0
    return 1.0 / (t_ref + tau_m * math.log((mu - v_reset) / (mu - v_threshold)))


_erfc = np.frompyfunc(math.erfc, 1, 1)


def erfcx(z: np.ndarray) -> np.ndarray:
    """Scaled complementary error function ``e^{z^2} erfc(z)`` for ``z <= 26`` (``inf`` where ``e^{z^2}`` overflows).

    ``z^2`` is split exactly into ``hi + lo`` (Veltkamp/Dekker), so ``e^{hi} (1 + lo)`` carries no rounding
    error of the square, which would grow like ``z^2`` ulps; with the C library's ``erfc`` the result is
    within a few ulps of the exact value (checked against SciPy's ``erfcx`` in the tests). The Python
    standard library gives ``erfc``; SciPy's special functions cost a fifth of a second to import.
    """
    z = np.asarray(z, dtype=np.float64)
    c = 134217729.0 * z  # 2**27 + 1
    zh = c - (c - z)
    zl = z - zh
    hi = z * z
    lo = ((zh * zh - hi) + 2.0 * zh * zl) + zl * zl
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.exp(hi) * (1.0 + lo) * _erfc(z).astype(np.float64)
    return np.where(np.isnan(out) & (z < 0), np.inf, out)


def norm_sf(x: float) -> float:
    """Standard normal upper tail ``Q(x) = P(Z > x)``."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def _int_erfcx(a: float, b: float) -> float:
    """``int_a^b e^{u^2}(1 + erf u) du = int_a^b erfcx(-u) du`` by composite Gauss–Legendre.

    ``erfcx(-u)`` is smooth and stays finite for very negative ``u``, so no cancellation occurs; panels
    of width <= 0.5 give ~1e-14 relative accuracy. Returns ``inf`` on overflow (rate 0).
    """
    if b <= a:
        return 0.0
    if a < -_TAIL:
        # erfcx(z) = (1/(z sqrt(pi))) (1 - 1/(2z^2) + 3/(4z^4) - ...) for z = -u >= 20: integrate the series
        # (error ~ z^-6 / 6, below 1e-9 relative) instead of panels all the way down to a
        def prim(z: float) -> float:
            return (math.log(z) + 1.0 / (4.0 * z * z) - 3.0 / (16.0 * z**4)) / math.sqrt(math.pi)

        top = min(b, -_TAIL)
        return prim(-a) - prim(-top) + (_int_erfcx(-_TAIL, b) if b > -_TAIL else 0.0)
    n_pan = max(1, int(math.ceil((b - a) / 0.5)))
    edges = np.linspace(a, b, n_pan + 1)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    u = mid[:, None] + half[:, None] * _GL_NODES[None, :]
    vals = erfcx(-u)
    return float(np.sum(half[:, None] * _GL_WEIGHTS[None, :] * vals))


def siegert_rate(
    mu: float,
    sigma: float,
    tau_m: float,
    t_ref: float,
    v_threshold: float,
    v_reset: float,
) -> float:
    """Siegert mean first-passage rate (Hz) of ``tau_m dv = (mu - v) dt + sigma sqrt(tau_m) dW``.

    Falls back to :func:`fi_rate` for ``sigma == 0``.
    """
    if sigma <= 0.0:
        return fi_rate(mu, tau_m, t_ref, v_threshold, v_reset)
    y_th = (v_threshold - mu) / sigma
    y_r = (v_reset - mu) / sigma
    if y_th > 26.0:  # e^{y^2} overflows: the rate is below 1e-290 Hz
        return 0.0
    integral = _int_erfcx(y_r, y_th)
    t = t_ref + tau_m * math.sqrt(math.pi) * integral
    return 1.0 / t if math.isfinite(t) and t > 0 else 0.0


@dataclass
class Adapted:
    """Deterministic firing of an adaptive population under constant drive (:func:`adapted_firing`)."""

    rate: float  #: adapted steady-state rate (Hz)
    w_mean: float  #: mean adaptation current in the adapted state (A)
    v_mean: float  #: mean membrane potential over an adapted period (V)
    isi_first: float  #: first inter-spike interval (s)
    isi_adapted: float  #: adapted inter-spike interval, 1 / rate (s)


def _frozen_w_period(pop: Population, mu: float, w: float, v_start: float, t_ref: float) -> tuple[float, float]:
    """Time from ``v_start`` to ``v_threshold`` (plus ``t_ref``) with ``w`` frozen, and the mean ``v`` over it.

    ``tau_m dv/dt = F(v) = mu - w/g_leak - v + delta_T exp((v - v_T)/delta_T)``; the time is
    ``t_ref + tau_m int dv / F`` and the mean ``(t_ref v_reset + tau_m int v dv / F) / T`` (the membrane sits at
    ``v_reset`` while refractory). ``(inf, v*)`` when ``F`` has a zero below threshold (no spike).
    """
    ad = pop.adaptation
    m = mu - w / pop.g_leak
    lo, hi = v_start, pop.v_threshold
    if ad.delta_T > 0:
        v_min = min(max(ad.v_T, lo), hi)
        f_min = m - v_min + ad.delta_T * math.exp((v_min - ad.v_T) / ad.delta_T)
    else:
        f_min = m - hi
    if not f_min > 0:
        return math.inf, min(m, hi)
    if ad.delta_T > 0:
        from scipy import integrate

        def f(v: float) -> float:
            return m - v + ad.delta_T * math.exp((v - ad.v_T) / ad.delta_T)

        pts = [ad.v_T] if lo < ad.v_T < hi else None
        i0 = integrate.quad(lambda v: 1.0 / f(v), lo, hi, points=pts, limit=200, epsabs=0, epsrel=1e-10)[0]
        i1 = integrate.quad(lambda v: v / f(v), lo, hi, points=pts, limit=200, epsabs=0, epsrel=1e-10)[0]
    else:
        i0 = math.log((m - lo) / (m - hi))
        i1 = m * i0 - (hi - lo)
    period = t_ref + pop.tau_m * i0
    return period, (t_ref * pop.v_reset + pop.tau_m * i1) / period


def adapted_firing(pop: Population, mu: float) -> Adapted:
    """Adapted rate and first/adapted ISIs of an adaptive neuron under constant drive (no noise, no synapses).

    Adaptation is slow against the ISI (``tau_w >> 1/rate``), so over one interval ``w`` is replaced by its
    mean (Ermentrout 1998; Benda & Herz 2003). In the adapted state the mean of ``tau_w dw/dt =
    a (v - v_rest) - w`` over a period vanishes, so ``w_mean = a (v_mean - v_rest) + b tau_w rate`` exactly;
    the rate is ``1 / T(w_mean)``, ``T(w)`` the period with ``w`` frozen (:func:`_frozen_w_period`), and the
    pair is solved self-consistently. The first ISI (from the first spike to the second) starts from
    ``w_1 = b + w_0``, ``w_0`` the current built up before the first spike (``a (v_mean - v_rest)`` relaxed
    over the first-spike latency from ``w = 0``); over the interval ``T`` ``w`` relaxes towards
    ``a (v_mean - v_rest)``, whose mean over the interval is used, again self-consistently in ``T``.
    """
    from scipy import optimize

    ad = pop.adaptation
    v_init = float(pop.v_init) if isinstance(pop.v_init, int | float) else pop.v_rest
    v_rest, tau_w, b, a = pop.v_rest, ad.tau_w, ad.b, ad.a

    def h(w: float) -> float:
        period, v_mean = _frozen_w_period(pop, mu, w, pop.v_reset, pop.t_ref)
        rate = 0.0 if not math.isfinite(period) else 1.0 / period
        return w - a * (v_mean - v_rest) - b * tau_w * rate

    # bracket: h < 0 at a w below every a (v - v_rest) the membrane can reach; h grows past the silencing w
    w_lo = min(0.0, a * (pop.v_reset - v_rest), a * (pop.v_threshold - v_rest)) - 1e-15
    w_hi = pop.g_leak * (mu - pop.v_reset) + abs(a) * (pop.v_threshold - pop.v_reset) + abs(b) + 1e-12
    nan = float("nan")
    if not (h(w_lo) < 0 < h(w_hi)):
        return Adapted(nan, nan, nan, nan, nan)
    w_mean = optimize.brentq(h, w_lo, w_hi, xtol=1e-22, rtol=1e-13)
    period, v_mean = _frozen_w_period(pop, mu, w_mean, pop.v_reset, pop.t_ref)
    if not math.isfinite(period):
        return Adapted(0.0, w_mean, v_mean, math.inf, math.inf)
    # before the first spike: latency and the current built up over it
    latency, v_lat = _frozen_w_period(pop, mu, 0.0, min(v_init, pop.v_threshold), 0.0)
    if not math.isfinite(latency):
        return Adapted(1.0 / period, w_mean, v_mean, math.inf, period)
    w1 = b + a * (v_lat - v_rest) * -math.expm1(-latency / tau_w)

    def first(t: float) -> float:
        phi = tau_w / t * -math.expm1(-t / tau_w)  # mean of exp(-s/tau_w) over [0, t]
        v_bar = v_mean
        for _ in range(3):  # v_mean of the interval depends (weakly) on w: a few passes
            w_bar = a * (v_bar - v_rest) + (w1 - a * (v_bar - v_rest)) * phi
            t_new, v_bar = _frozen_w_period(pop, mu, w_bar, pop.v_reset, pop.t_ref)
        return t - t_new

    t_hi = 1.5 * period
    while first(t_hi) <= 0 and t_hi < 1e3 * tau_w:
        t_hi *= 2.0
    t_lo = pop.t_ref + 1e-9
    isi_first = optimize.brentq(first, t_lo, t_hi, xtol=1e-15, rtol=1e-12) if first(t_lo) < 0 < first(t_hi) else nan
    return Adapted(1.0 / period, w_mean, v_mean, isi_first, period)


def psp_response(tau_m: float, tau: float, tau_rise: float, t: float) -> tuple[float, float]:
    """PSP ``v(t) - v_rest`` and its slope after a unit peak synaptic drive (exact linear response).

    ``tau_m dv/dt = -v + x``; ``x`` jumps to 1 and decays with ``tau`` (``tau_rise = 0``), or is the
    alpha/biexponential ``dx/dt = -x/tau + h``, ``dh/dt = -h/tau_rise``, ``h(0) = N`` (peak of ``x`` = 1,
    :func:`.params.peak_normalisation`). ``v(t)`` is an entry of ``exp(M t)`` of the linear system (exact also
    in the degenerate cases ``tau = tau_m`` and alpha).
    """
    from scipy.linalg import expm

    if tau_rise <= 0:
        mat = np.array([[-1.0 / tau_m, 1.0 / tau_m], [0.0, -1.0 / tau]])
        z0 = np.array([0.0, 1.0])
    else:
        mat = np.array([[-1.0 / tau_m, 1.0 / tau_m, 0.0], [0.0, -1.0 / tau, 1.0], [0.0, 0.0, -1.0 / tau_rise]])
        z0 = np.array([0.0, 0.0, peak_normalisation(tau, tau_rise)])
    z = expm(mat * t) @ z0
    return float(z[0]), float((mat @ z)[0])


def psp_peak(tau_m: float, tau: float, tau_rise: float) -> tuple[float, float]:
    """Time to peak (s) and peak (per unit peak drive) of the PSP of :func:`psp_response`.

    The slope is positive after the event and negative once the drive has decayed below ``v``: its single
    root is found by Brent's method. For the exponential synapse this is the closed form
    ``t* = tau tau_m ln(tau / tau_m) / (tau - tau_m)``.
    """
    from scipy import optimize

    t_hi = 50.0 * max(tau_m, tau, tau_rise)
    t_lo = 1e-6 * min(tau_m, tau, tau_rise if tau_rise > 0 else tau)
    t_peak = optimize.brentq(lambda t: psp_response(tau_m, tau, tau_rise, t)[1], t_lo, t_hi, xtol=1e-15, rtol=1e-13)
    return t_peak, psp_response(tau_m, tau, tau_rise, t_peak)[0]


def _psp_theory(built: LIFBuilt) -> xr.Dataset:
    """``psp_amplitude_theory`` and ``psp_peak_time_theory`` per projection (``record.psp``).

    A current synapse of weight ``w`` (the peak drive) gives ``w`` times :func:`psp_peak`. A conductance
    synapse is taken in its small-PSP limit, the current ``(g / g_L)(E - v_rest)`` with the leak unchanged:
    relative error about ``|PSP| / |E - v_rest| + w / g_L`` (stored as ``rel_tol``). The time counts from the
    presynaptic spike: the engine (and Brian2) adds a spike to the synapse at the end of its step, so the PSP
    starts one step (``dt``) plus the delay after it.
    """
    params, dt = built.params, float(built.scenario.run.dt)
    amp, t_pk, tol_a = [], [], []
    names = []
    for syn in params.synapses:
        rise = synapse_rise(syn)
        for tgt in syn.targets:
            pop = params.populations[tgt]
            t_star, unit = psp_peak(pop.tau_m, syn.tau, rise)
            if syn.kind == "current":
                a, tol = syn.weight * unit, 1e-6
            else:
                a = syn.weight / pop.g_leak * (syn.reversal - pop.v_rest) * unit
                tol = abs(a) / abs(syn.reversal - pop.v_rest) + syn.weight / pop.g_leak
            names.append(f"{syn.source}->{tgt}")
            amp.append(a)
            t_pk.append(t_star + dt + round(syn.delay / dt) * dt)
            tol_a.append(tol)
    src = "exact linear response of the membrane to one synaptic event (conductance: small-PSP limit)"
    coords = {"projection": ("projection", np.array(names, dtype=object), var_attrs("1", "source->target"))}
    return xr.Dataset(
        {
            "psp_amplitude_theory": (
                "projection",
                np.array(amp),
                var_attrs("V", "peak of the unitary PSP (target at rest)", source=src, rel_tol=max(tol_a, default=0)),
            ),
            "psp_peak_time_theory": (
                "projection",
                np.array(t_pk),
                var_attrs("s", "time from the presynaptic spike to the PSP peak", source=src, rel_tol=0.01),
            ),
        },
        coords=coords,
    )


@dataclass
class PopulationInput:
    """What drives one population, in Brunel's (mu, sigma) terms."""

    mu0: float  #: v_rest + drive + noise mu (V)
    var0: float  #: noise sigma^2 plus Poisson contribution (V^2)
    colored0: float  #: sum of Poisson variance contributions times sqrt(tau_s / tau_m) (V^2)
    recurrent: list[tuple[int, float, float, float]]  #: (source population, K, J, tau_s)
    conductance: bool
    stochastic: bool
    slowest: float = 0.0  #: largest sqrt(tau_s / tau_m) among the synapses and Poisson inputs it receives
    #: conductance channels (source population or -1 for a Poisson input, K or total rate, weight (S),
    #: tau_s, reversal): the spike rate arriving at a neuron is ``K nu_source`` or the Poisson rate
    cond: list[tuple[int, float, float, float, float]] = field(default_factory=list)


def population_inputs(params: LIFParams) -> tuple[list[str], list[PopulationInput]]:
    """Per-population (mu, sigma) ingredients, from the parameters alone.

    Mean in-degrees ``K`` are the expectations of the connection rules (graph rules give NaN here;
    :func:`theory` measures them on the built network).
    """
    names, _, sizes = population_layout(params)
    index = {nm: k for k, nm in enumerate(names)}
    out = []
    for nm in names:
        pop = params.populations[nm]
        out.append(
            PopulationInput(mu0=pop.v_rest, var0=0.0, colored0=0.0, recurrent=[], conductance=False, stochastic=False)
        )
    for inp in params.inputs:
        for tgt in inp.targets:
            a, pop = index[tgt], params.populations[tgt]
            if inp.kind == "constant":
                out[a].mu0 += inp.drive if inp.drive is not None else inp.current / pop.g_leak
            elif inp.kind == "noise":
                out[a].mu0 += inp.mu
                out[a].var0 += inp.sigma**2
                out[a].stochastic = out[a].stochastic or inp.sigma > 0
            elif inp.synapse == "conductance":
                out[a].conductance = True
                out[a].cond.append((-1, inp.rate * inp.n_sources, inp.weight, inp.tau, inp.reversal))
                out[a].stochastic = out[a].stochastic or inp.rate > 0
            else:
                j = inp.weight * inp.tau / pop.tau_m
                r = inp.rate * inp.n_sources
                out[a].mu0 += pop.tau_m * r * j
                out[a].var0 += pop.tau_m * r * j * j
                out[a].colored0 += pop.tau_m * r * j * j * math.sqrt(inp.tau / pop.tau_m)
                out[a].slowest = max(out[a].slowest, math.sqrt(inp.tau / pop.tau_m))
                out[a].stochastic = out[a].stochastic or r > 0
    for syn in params.synapses:
        b = index[syn.source]
        for tgt in syn.targets:
            a, pop = index[tgt], params.populations[tgt]
            k = expected_in_degree(syn.connect, int(sizes[b]), int(sizes[a]), a == b)
            # alpha/biexponential synapses enter through their charge: an exponential synapse of the same
            # tau and of weight w int x dt / (w tau) (shape factor N tau_rise, 1 for exponential)
            weight = syn.weight * _shape_factor(syn)
            if syn.kind == "conductance":
                out[a].conductance = True
                out[a].cond.append((b, k, weight, syn.tau, syn.reversal))
                continue
            out[a].recurrent.append((b, k, weight * syn.tau / pop.tau_m, syn.tau))
            out[a].slowest = max(out[a].slowest, math.sqrt(syn.tau / pop.tau_m))
    return names, out


def _shape_factor(syn: Any) -> float:
    """``int x dt / (weight tau)`` of one synaptic event: 1 (exponential), ``N tau_rise`` otherwise (e, alpha)."""
    rise = synapse_rise(syn)
    return 1.0 if rise == 0 else peak_normalisation(float(syn.tau), rise) * rise


def expected_in_degree(conn: Connect, n_pre: int, n_post: int, same: bool) -> float:
    """Mean number of synapses a target neuron receives under a connection rule."""
    if conn.p is not None:
        return conn.p * (n_pre - 1 if same and not conn.autapses else n_pre)
    if conn.in_degree is not None:
        return float(conn.in_degree)
    if conn.one_to_one:
        return 1.0
    return float("nan")  # graphs: degree depends on the generator; the network gives it (see theory)


@dataclass
class Membrane:
    """Diffusion-approximation description of one population's free membrane at given source rates."""

    mu: float  #: mean (effective) potential (V)
    var: float  #: white-noise-equivalent sigma^2 of ``tau dv = (mu - v) dt + sigma sqrt(tau) dW`` (V^2)
    colored: float  #: sum over channels of their part of ``var`` times sqrt(tau_s / tau) (V^2)
    tau: float  #: membrane time constant: tau_m, or tau_eff = tau_m g_L / g_T with conductances (s)
    var_v: float  #: stationary variance of v (V^2), current-based inputs counted as white noise
    slowest: float  #: largest sqrt(tau_s / tau) among the channels
    var_grid: float  #: the part of ``var`` that gets the discrete-time threshold shift (V^2)


def membrane(
    pop: Population, inp: PopulationInput, nu: np.ndarray, k_of: Callable[[int, float], float], dt: float
) -> Membrane:
    """The (mu, sigma, tau) that enter the Siegert rate of population ``pop`` when its sources fire at ``nu``.

    Current-based input follows Brunel (2000). With conductance channels the effective-time-constant
    approximation (Kuhn, Aertsen & Rotter 2004; Richardson 2004) is applied on top: see the module
    docstring.

    Parameters
    ----------
    pop : Population
        The target population's parameters.
    inp : PopulationInput
        What drives it (:func:`population_inputs`).
    nu : ndarray
        Rates (Hz) of all populations; only the sources of ``inp`` are read.
    k_of : callable
        ``k_of(b, k)``: the in-degree from source population ``b`` whose rule gives ``k``.
    dt : float
        Time step (s); the conductance means are those of the step-sampled conductances.
    """
    mu, var, colored = inp.mu0, inp.var0, inp.colored0
    for b, k, j, tau_s in inp.recurrent:
        rate_in = k_of(b, k) * nu[b]
        mu += pop.tau_m * rate_in * j
        var += pop.tau_m * rate_in * j * j
        colored += pop.tau_m * rate_in * j * j * math.sqrt(tau_s / pop.tau_m)
    if not inp.cond:
        return Membrane(mu, var, colored, pop.tau_m, 0.5 * var, inp.slowest, var)
    # spike rate arriving through each conductance channel, and its mean conductance; the kernel holds g
    # at its start-of-step value over each step, so the conductance the membrane sees is the grid sample,
    # whose mean is r w dt / (1 - e^{-dt/tau_s}) = r w tau_s (1 + dt/(2 tau_s) + ...)
    chans = [(nu[b] * k_of(b, k) if b >= 0 else k, w, tau_s, rev) for b, k, w, tau_s, rev in inp.cond]
    g0 = [r * w * dt / -math.expm1(-dt / tau_s) for r, w, tau_s, _ in chans]
    g_t = pop.g_leak + sum(g0)
    c = pop.g_leak / g_t
    tau = pop.tau_m * c
    # current-based terms (drive, noise, current synapses) pass through the leak: tau_m dv = ... + I dt
    # becomes tau_eff dv = ... + c I dt, which scales their mean and white-equivalent variance by c and
    # (since tau_s/tau_eff = (tau_s/tau_m)/c) their colored term by sqrt(c)
    mu = c * mu + sum(g * rev for g, (_, _, _, rev) in zip(g0, chans)) / g_t
    var, colored = c * var, math.sqrt(c) * colored
    var_v, var_grid = 0.5 * var, var
    slowest = inp.slowest / math.sqrt(c)
    for r, w, tau_s, rev in chans:
        # driving force frozen at the mean: the channel is a current of weight w (rev - mu) / g_T in the
        # tau_eff equation, i.e. J = w (rev - mu) tau_s / (g_T tau_eff)
        var_k = r * (w * (rev - mu) * tau_s / g_t) ** 2 / tau
        var += var_k
        colored += var_k * math.sqrt(tau_s / tau)
        var_v += 0.5 * var_k * tau / (tau + tau_s)  # exponentially correlated input, low-pass filtered
        slowest = max(slowest, math.sqrt(tau_s / tau))
    return Membrane(mu, var, colored, tau, var_v, slowest, var_grid)


def self_consistent_rates(
    params: LIFParams, dt: float, k_override: dict[tuple[int, int], float] | None = None, filtered: bool = True
) -> tuple[list[str], np.ndarray, list[str]]:
    """Rates (Hz) of every population and the regime used (``fi``, ``siegert``, ``brunel``, ``coba``,
    ``none``).

    Parameters
    ----------
    params : LIFParams
        Validated network parameters.
    dt : float
        Time step of the simulation (s): the discrete-time threshold shift and the sampled conductances.
    k_override : dict, optional
        ``(source, target) -> mean in-degree`` measured on the built network (used for graph rules).
    filtered : bool
        Apply the Fourcaud–Brunel (2002) correction for the synaptic filtering of the noise.
    """
    dt = float(dt)
    names, inputs = population_inputs(params)
    pops = [params.populations[n] for n in names]
    n_pop = len(names)
    regime = [_regime(inp) for inp in inputs]
    for a, p in enumerate(pops):
        if p.adaptation is not None:
            # the adapted rate is derived for constant drive only
            regime[a] = "adaptive" if regime[a] == "fi" else "none (adaptation with noise or synapses)"
    for a, p in enumerate(pops):
        if (
            regime[a] in ("siegert", "brunel")
            and p.tau_m <= BERNOULLI_TAU * dt
            and p.t_ref == 0
            and p.adaptation is None
        ):
            regime[a] = "bernoulli"
    # sources of a population without theory make their targets theory-less too
    changed = True
    while changed:
        changed = False
        for a, inp in enumerate(inputs):
            if not _none(regime[a]) and any(_none(regime[b]) for b in _sources(inp)):
                regime[a] = "none"
                changed = True

    def rates_from(nu: np.ndarray) -> np.ndarray:
        out = np.full(n_pop, np.nan)
        for a, inp in enumerate(inputs):
            if _none(regime[a]):
                continue
            p = pops[a]
            mem = membrane(p, inp, nu, _in_degree(k_override, a), dt)
            sigma = math.sqrt(max(mem.var, 0.0))
            if regime[a] == "adaptive":
                out[a] = adapted_firing(p, mem.mu).rate
            elif regime[a] == "bernoulli":
                # v forgets its past within a step: a fresh Gaussian every step, above threshold with
                # probability Q((v_threshold - mu) / s), s^2 the exact one-step variance of the noise
                d = math.exp(-dt / p.tau_m)
                s = math.sqrt(0.5 * mem.var * (1.0 - d * d))
                out[a] = norm_sf((p.v_threshold - mem.mu) / s) / dt if s > 0 else float(mem.mu >= p.v_threshold) / dt
            elif regime[a] == "fi" or sigma == 0.0:
                out[a] = fi_rate(mem.mu, mem.tau, p.t_ref, p.v_threshold, p.v_reset)
            else:
                # threshold and reset shifts: synaptic filtering (Fourcaud & Brunel 2002) and discrete time
                shift = ALPHA_FB / 2.0 * mem.colored / sigma if filtered else 0.0
                grid = BETA_DISCRETE * math.sqrt(max(mem.var_grid, 0.0)) * math.sqrt(dt / mem.tau)
                out[a] = siegert_rate(mem.mu, sigma, mem.tau, p.t_ref, p.v_threshold + shift + grid, p.v_reset + shift)
        return out

    active = np.array([not _none(r) for r in regime])
    recurrent = np.array([not _none(r) and bool(_sources(inp)) for r, inp in zip(regime, inputs)])
    nu = np.where(active, 0.0, np.nan)
    nu = rates_from(np.nan_to_num(nu))
    if recurrent.any():
        nu = _solve(rates_from, np.nan_to_num(nu), active)
        # no stable, finite fixed point (e.g. runaway excitation): no prediction rather than a wrong one
        resid = np.abs(np.nan_to_num(rates_from(np.nan_to_num(nu)), nan=np.inf) - nu)
        ok = np.isfinite(nu[recurrent]) & (resid[recurrent] <= 1e-6 * (1.0 + np.abs(nu[recurrent])))
        if not np.all(ok):
            nu[recurrent] = np.nan
            regime = ["none (no fixed point)" if rec else r for r, rec in zip(regime, recurrent)]
    for a, inp in enumerate(inputs):
        # the Fourcaud-Brunel correction is first order in sqrt(tau_s/tau_eff) and fails once the synapses
        # are not fast against the (shortened) effective time constant: no prediction rather than a poor one
        if (
            regime[a] == "coba"
            and membrane(pops[a], inp, np.nan_to_num(nu), _in_degree(k_override, a), dt).slowest > COBA_MAX_FILTER
        ):
            nu[a], regime[a] = np.nan, "none (slow synapses)"
    return names, nu, regime


def _none(regime: str) -> bool:
    return regime.startswith("none")


def _in_degree(k_override: dict[tuple[int, int], float] | None, a: int) -> Callable[[int, float], float]:
    """``k_of(b, k)`` for target population ``a``: the in-degree measured on the network if given, else k."""

    def k_of(b: int, k: float) -> float:
        if k_override and (b, a) in k_override:
            return k_override[(b, a)]
        return k

    return k_of


def _regime(inp: PopulationInput) -> str:
    if any(b >= 0 for b, _, _, _, _ in inp.cond):
        # recurrent conductance networks (e.g. Brette 2007 COBA) sit far outside the approximation's range
        # (tau_eff ~ 1 ms against 5-10 ms synapses) and the mean field misses their rate: see the docs
        return "none (recurrent conductance)"
    if inp.conductance:
        return "coba"
    if inp.recurrent:
        return "brunel"
    return "siegert" if inp.stochastic else "fi"


def _sources(inp: PopulationInput) -> list[int]:
    """Populations whose rates enter this population's input (current and conductance synapses)."""
    return [b for b, _, _, _ in inp.recurrent] + [b for b, _, _, _, _ in inp.cond if b >= 0]


def newton(
    f: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, xtol: float = 1e-12, max_iter: int = 50
) -> tuple[np.ndarray, bool]:
    """Root of ``f`` near ``x0`` by Newton's method with a forward-difference Jacobian and step halving.

    Meant for a polish of a few unknowns (one rate per population) from a start already close to the root:
    it stops when a step changes ``x`` by at most ``xtol (|x| + xtol)`` (the criterion of MINPACK's
    ``hybrd``) and reports failure when the Jacobian is singular or no step length reduces ``|f|``.
    """
    x = np.array(x0, dtype=np.float64)
    fx = f(x)
    for _ in range(max_iter):
        if not np.all(np.isfinite(fx)):
            return x, False
        if not np.any(fx):
            return x, True
        jac = np.empty((fx.size, x.size))
        for j in range(x.size):
            h = 1e-7 * max(abs(x[j]), 1.0)
            xj = x.copy()
            xj[j] += h
            jac[:, j] = (f(xj) - fx) / h
        try:
            dx = np.linalg.solve(jac, -fx)
        except np.linalg.LinAlgError:
            return x, False
        norm = np.linalg.norm(fx)
        t = 1.0
        for _ in range(40):
            xn = x + t * dx
            fn = f(xn)
            if np.linalg.norm(fn) < norm or np.linalg.norm(t * dx) <= xtol * (np.linalg.norm(x) + xtol):
                break
            t *= 0.5
        else:
            return x, False
        x, fx = xn, fn
        if np.linalg.norm(t * dx) <= xtol * (np.linalg.norm(x) + xtol):
            return x, True
    return x, False


def _solve(phi: Callable[[np.ndarray], np.ndarray], nu0: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Fixed point ``nu = phi(nu)``: relax ``dnu/ds = phi(nu) - nu`` (stable for the asynchronous state),
    then polish with a root finder."""
    nu = nu0.copy()
    for _ in range(2000):
        new = np.nan_to_num(phi(nu))
        step = new - nu
        nu = nu + 0.2 * step
        if np.all(np.abs(step[active]) <= 1e-9 * (1.0 + np.abs(nu[active]))):
            break
    idx = np.flatnonzero(active)

    def resid(x: np.ndarray) -> np.ndarray:
        full = nu.copy()
        full[idx] = np.maximum(x, 0.0)
        return np.nan_to_num(phi(full))[idx] - np.maximum(x, 0.0)

    x, ok = newton(resid, nu[idx])
    if ok and np.all(x >= -1e-9):
        nu[idx] = np.maximum(x, 0.0)
    out = np.full(nu.size, np.nan)
    out[idx] = nu[idx]
    return out


def measured_in_degrees(net: Network) -> dict[tuple[int, int], float]:
    """``(source, target) -> mean in-degree`` (synapses per target neuron) of every projection of ``net``."""
    k: dict[tuple[int, int], float] = {}
    for p in net.projections:
        a, b = net.names.index(p.target), net.names.index(p.source)
        k[(b, a)] = k.get((b, a), 0.0) + p.n_synapses / p.n_post
    return k


def theory(built: LIFBuilt, ds: xr.Dataset) -> xr.Dataset:
    """``rate_theory`` (population) with ``source``, ``rel_tol`` and the regime of every population.

    The mean in-degrees are the expectations of the connection rules, except in a network with a graph
    rule, whose in-degrees are measured on the built network (all of its projections').

    ``rel_tol`` is the largest tolerance among the populations: for the deterministic f–I curve it covers
    the spike-count quantisation (one period in the analysis window) and the step (``dt``); for Siegert and
    the self-consistent mean field ``0.10 + 0.25 sqrt(tau_s/tau_m)`` with the slowest synapse the
    population receives (0.10 for white noise; 0.14 for Brunel's network here, 0.28 for CUBA); for
    ``coba`` ``0.10 + 0.5 sqrt(tau_s/tau_eff)`` (at most 0.45: beyond that no rate is given).
    """
    params, run, record = built.params, built.scenario.run, built.record
    k_override = None
    if any(s.connect.graph is not None for s in params.synapses):
        k_override = measured_in_degrees(built.network)
    names, nu, regime = self_consistent_rates(params, float(run.dt), k_override)
    _, inputs = population_inputs(params)
    duration = run.n_steps * run.dt
    window = max(duration - min(record.analysis_start, duration), run.dt)
    tols = np.full(len(names), np.nan)
    for a in range(len(names)):
        if regime[a] == "fi":
            rate = nu[a]
            tols[a] = 1.0 / (rate * window) + 2.0 * run.dt * rate + 1e-3 if rate > 0 else 0.0
        elif regime[a] in ("siegert", "brunel"):
            tols[a] = REL_TOL_SIEGERT + REL_TOL_FILTER * inputs[a].slowest
        elif regime[a] == "bernoulli":
            tols[a] = REL_TOL_BERNOULLI
        elif regime[a] == "adaptive":
            rate = nu[a]
            slow = REL_TOL_ADAPT_SLOW / (rate * params.populations[names[a]].adaptation.tau_w) ** 2 if rate > 0 else 0.0
            tols[a] = REL_TOL_ADAPT + slow + (1.0 / (rate * window) if rate > 0 else 0.0)
        elif regime[a] == "coba":
            mem = membrane(
                params.populations[names[a]], inputs[a], np.nan_to_num(nu), _in_degree(k_override, a), float(run.dt)
            )
            tols[a] = REL_TOL_SIEGERT + REL_TOL_COBA_FILTER * mem.slowest
    # `neurodyn compare` reads one rel_tol per variable: the largest; the per-population ones are stored too
    rel_tol = float(np.nanmax(tols)) if np.any(np.isfinite(tols)) else REL_TOL_SIEGERT
    described = {
        "fi": "deterministic f-I curve 1/(t_ref + tau_m ln((mu - v_reset)/(mu - v_threshold)))",
        "siegert": "Siegert first-passage rate (Brunel 2000 eq. 21) with discrete-time threshold shift",
        "brunel": "Brunel (2000) self-consistent mean field (synapses as instantaneous charge w tau_s/tau_m)",
        "coba": "effective-time-constant approximation for conductance input (Kuhn et al. 2004, "
        "Richardson 2004) with the Siegert rate and Fourcaud-Brunel (2002) correction",
        "none": "no theory (a source population has none)",
        "none (recurrent conductance)": "no theory (recurrent conductance synapses: mean field not validated)",
        "none (slow synapses)": "no theory (conductance synapses slower than tau_eff/2)",
        "none (no fixed point)": "no theory (the mean-field equations have no finite fixed point)",
        "bernoulli": "membrane time constant far below the step (tau_m <= dt/5, no refractory period): v is a "
        "fresh Gaussian every step and the neuron a Bernoulli process, rate Q((v_threshold - mu)/s)/dt",
        "adaptive": "adapted rate with the self-consistent mean adaptation current w = a (v_mean - v_rest) + "
        "b tau_w rate (Ermentrout 1998; Benda & Herz 2003)",
        "none (adaptation with noise or synapses)": "no theory (adaptation is predicted for constant drive only)",
    }
    source = "; ".join(f"{nm}: {described[r]}" for nm, r in zip(names, regime))
    out = xr.Dataset(
        {
            "rate_theory": (
                "population",
                np.asarray(nu, dtype=np.float64),
                var_attrs("Hz", "predicted mean firing rate per neuron", source=source, rel_tol=float(rel_tol)),
            ),
            "rate_theory_rel_tol": (
                "population",
                tols,
                var_attrs("1", "relative tolerance of rate_theory for this population"),
            ),
            "rate_theory_regime": (
                "population",
                np.array(regime, dtype=object),
                var_attrs("1", "which theory predicts the rate (fi, siegert, brunel, coba, none)"),
            ),
        },
        coords={"population": ("population", np.array(names, dtype=object), var_attrs("1", "population name"))},
    )
    if any(r == "adaptive" for r in regime):
        out = out.merge(_adaptation_theory(params, names, regime, inputs))
    if record.psp and params.synapses:
        out = out.merge(_psp_theory(built))
    if "final_weight" in ds:
        from neurodyn.families.lif_network.plasticity import stdp_theory

        out = out.merge(xr.Dataset(stdp_theory(built, ds), coords={"plastic_projection": ds["plastic_projection"]}))
    return out


def _adaptation_theory(
    params: LIFParams, names: list[str], regime: list[str], inputs: list[PopulationInput]
) -> xr.Dataset:
    """``isi_first_theory``, ``isi_adapted_theory`` and ``isi_ratio_theory`` of the adaptive populations."""
    first, adapted = np.full(len(names), np.nan), np.full(len(names), np.nan)
    slow = 0.0
    for a, nm in enumerate(names):
        if regime[a] != "adaptive":
            continue
        pop = params.populations[nm]
        res = adapted_firing(pop, inputs[a].mu0)
        first[a], adapted[a] = res.isi_first, res.isi_adapted
        if math.isfinite(res.isi_adapted):
            slow = max(slow, (res.isi_adapted / pop.adaptation.tau_w) ** 2)
    src = (
        "mean adaptation current over each interval, self-consistent (Ermentrout 1998; Benda & Herz 2003); "
        "first ISI from w = b + the current built up before the first spike"
    )
    tol_adapted = REL_TOL_ADAPT + REL_TOL_ADAPT_SLOW * slow
    return xr.Dataset(
        {
            "isi_first_theory": (
                "population",
                first,
                var_attrs("s", "predicted first inter-spike interval", source=src, rel_tol=REL_TOL_ISI_FIRST),
            ),
            "isi_adapted_theory": (
                "population",
                adapted,
                var_attrs("s", "predicted adapted inter-spike interval", source=src, rel_tol=tol_adapted),
            ),
            "isi_ratio_theory": (
                "population",
                first / adapted,
                var_attrs(
                    "1", "predicted first ISI / adapted ISI", source=src, rel_tol=tol_adapted + REL_TOL_ISI_FIRST
                ),
            ),
        },
        coords={"population": ("population", np.array(names, dtype=object), var_attrs("1", "population name"))},
    )
