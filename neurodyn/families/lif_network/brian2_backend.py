"""Brian2 backend of ``lif_network``: the same network, simulated by Brian2 in runtime mode.

``run.backend: brian2`` translates the network the build made (:class:`~.build.Network` in
:class:`~.build.LIFBuilt`: the very same connectivity, initial potentials, channels and inputs the Numba
engine uses) into Brian2 objects and returns the Dataset of :func:`~.dataset.make_dataset`, so a run can
be cross-checked by switching that one line. This module is the family's one extra beyond the house
layout: a second backend, loaded (with Brian2) only when a scenario asks for it.

Translation
-----------
* one ``NeuronGroup`` per distinct population model (populations with identical equations and parameter
  values, such as CUBA's exc and inh, share a group and are contiguous subgroups of it); the parameters
  are constants of the group's namespace, so Brian2 sees them as exact float64 values;
* one state variable per synaptic channel the population receives (through a projection or a Poisson
  drive; the engine skips the other channels in the same way): ``x<c>`` (volt, current channel) or
  ``g<c>`` (siemens, conductance channel), ``d<var>/dt = -<var>/tau_c``;
* membrane ``tau_m dv/dt = (v_rest - v) + sum x_c + sum (g_c / g_leak)(E_c - v) + drive + mu
  + sigma sqrt(tau_m) xi`` with ``(unless refractory)``, threshold ``v >= v_threshold``, reset
  ``v = v_reset``, ``refractory = ref_steps * dt``;
* one ``Synapses`` per projection, ``connect(i=, j=)`` from ``Projection.pairs()``, a scalar ``delay`` of
  ``delay_steps * dt`` and ``on_pre: <var>_post += w`` with the projection's weight;
* one ``PoissonInput`` (``N = n_sources``, ``rate``, ``weight``) per Poisson drive, on the target channel;
* Brian2's seed is drawn from the scenario's *dynamics* stream, so the run is reproducible.

Integration method per group: ``exact`` (Brian2's linear solver) when the group has only current channels
and no noise; ``exponential_euler`` when it has conductance channels; ``euler`` (Euler-Maruyama) with noise,
which Brian2's exact and exponential-Euler solvers refuse. ``exact`` falls back to ``exponential_euler``
when a current channel's tau equals tau_m (Brian2's solution then divides 0 by 0).

Code generation target
----------------------
``run.backend: brian2:numpy`` or ``brian2:cython`` names the target. Plain ``brian2`` takes the
environment variable ``NEURODYN_BRIAN2_TARGET`` (``cython`` or ``numpy``) if set, else ``cython`` when a C
compiler works (Brian2's own test compilation), otherwise ``numpy``. The target, the methods and Brian2's
seed are stored in the Dataset attributes ``brian2_target``, ``brian2_method`` (per population) and
``brian2_seed``.

Brian2's schedule (its default, which the Numba engine follows)
----------------------------------------------------------------
Each step ``n`` (time ``t_n = n dt``) runs ``start`` (state probes record here, i.e. before the update),
``groups`` (state update, ``not_refractory = timestep(t - lastspike) >= ref_steps``), ``thresholds``
(spikes, recorded with time ``t_n``; ``lastspike = t_n``), ``synapses`` (spikes emitted at step
``n - delay_steps`` and the Poisson counts are added to the target channels), ``resets`` (``v = v_reset``).
So a neuron that spikes at step ``n`` is clamped during steps ``n+1 .. n+ref_steps-1`` and integrates again
at step ``n + ref_steps``.
"""

from __future__ import annotations

import functools
import os
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from neurodyn.errors import ScenarioError, SimulationError
from neurodyn.families.lif_network.build import LIFBuilt, Network, Probes, streams
from neurodyn.families.lif_network.dataset import make_dataset
from neurodyn.families.lif_network.kernels import KIND_CURRENT, KIND_RISE
from neurodyn.families.lif_network.plasticity import WeightSampler
from neurodyn.progress import QUIET, Progress
from neurodyn.stepping import steps

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.lif_network.params import LIFParams
    from neurodyn.scenario import RunConfig

#: environment variable that forces the Brian2 code generation target
TARGET_ENV = "NEURODYN_BRIAN2_TARGET"
TARGETS = ("cython", "numpy")
#: current-channel and membrane time constants closer than this (relative) make Brian2's exact solution
#: singular (0/0); such a group is integrated with exponential Euler instead
_DEGENERATE_RTOL = 1e-6


@functools.cache
def _cython_works() -> bool:
    """Whether Brian2's Cython target can compile here (Brian2's own test compilation, run once)."""
    try:
        from brian2.codegen.runtime.cython_rt import CythonCodeObject

        return bool(CythonCodeObject.is_available())
    except Exception:  # no compiler, no Cython, broken toolchain: all mean "use numpy"
        return False


def codegen_target(backend: str = "brian2") -> str:
    """The Brian2 code generation target of ``run.backend``.

    ``brian2:<target>`` names it; plain ``brian2`` takes ``$NEURODYN_BRIAN2_TARGET``, else cython if it
    works here, else numpy.

    Raises
    ------
    ScenarioError
        When the environment variable names an unknown target, or the scenario asks for cython and
        Brian2 cannot compile here.
    """
    named = backend.partition(":")[2]
    if named:
        if named == "cython" and not _cython_works():
            raise ScenarioError(
                "run.backend",
                backend,
                "Brian2's Cython target cannot compile here (no "
                "working C compiler or Cython); allowed: brian2:numpy, brian2",
            )
        return named
    env = os.environ.get(TARGET_ENV, "").strip().lower()
    if env:
        if env not in TARGETS:
            raise ScenarioError(TARGET_ENV, env, f"one of {', '.join(TARGETS)}")
        return env
    return "cython" if _cython_works() else "numpy"


def check_brian2(params: LIFParams, run: RunConfig) -> None:
    """Refuse, before anything is built, what the Brian2 backend would refuse while building its network.

    Called by the family's ``check`` for ``brian2`` backends, after the checks every backend shares.
    """
    codegen_target(run.backend)
    dt = float(run.dt)
    for i, inp in enumerate(params.inputs):
        if inp.kind == "poisson" and inp.rate * dt > 1:
            raise ScenarioError(
                f"params.inputs.{i}.rate",
                f"{inp.rate:g} Hz",
                f"rate * dt must be <= 1 for Brian2's PoissonInput (dt = {dt:g} s)",
            )


def channel_var(net: Network, c: int) -> str:
    """Name of channel ``c``'s state variable in the Brian2 model (``x<c>`` current, ``g<c>`` conductance,
    ``h<c>`` the rise variable of an alpha/biexponential channel)."""
    kind = net.channels[c].kind
    return f"x{c}" if kind == KIND_CURRENT else f"h{c}" if kind == KIND_RISE else f"g{c}"


def channel_unit(net: Network, c: int) -> Any:
    """Brian2 unit of channel ``c``'s variable (a rise variable: its channel's unit per second)."""
    import brian2 as b2

    ch = net.channels[c]
    if ch.kind == KIND_RISE:
        return channel_unit(net, ch.feeds) / b2.second
    return b2.volt if ch.kind == KIND_CURRENT else b2.siemens


def _uniform(arr: np.ndarray, sl: slice, what: str, pop: str) -> float:
    vals = arr[sl]
    if vals.size and not np.all(vals == vals[0]):
        raise SimulationError(
            f"brian2 backend: {what} varies within population {pop!r}; it must be uniform per population"
        )
    return float(vals[0])


def received_channels(net: Network, k: int) -> list[int]:
    """Channels population ``k`` receives through a projection or a Poisson drive, ascending."""
    lo, hi = int(net.starts[k]), int(net.starts[k] + net.sizes[k])
    chans = {p.channel for p in net.projections if p.target == net.names[k]}
    chans |= {d.channel for d in net.poisson if lo <= d.start < hi}
    chans |= {net.channels[c].feeds for c in chans if net.channels[c].feeds >= 0}  # a rise variable's channel
    return sorted(chans)


def population_model(net: Network, k: int, dt: float) -> tuple[str, dict[str, Any], str, float]:
    """Equations, namespace, integration method and refractory period of population ``k``'s NeuronGroup.

    Parameters
    ----------
    net : Network
        The built network.
    k : int
        Population index.
    dt : float
        Time step (s).

    Returns
    -------
    (str, dict, str, float)
        Brian2 equations, their namespace (Brian2 quantities), the method name and ``ref_steps * dt`` (s).
    """
    import brian2 as b2

    name = net.names[k]
    sl = slice(int(net.starts[k]), int(net.starts[k] + net.sizes[k]))
    attrs = ("tau_m", "v_rest", "v_reset", "v_threshold", "g_leak", "drive", "noise_mu", "noise_sigma")
    par = {a: _uniform(getattr(net, a), sl, a, name) for a in attrs}
    ref_steps = int(_uniform(net.ref_steps, sl, "ref_steps", name))
    ns: dict[str, Any] = {
        "tau_m": par["tau_m"] * b2.second,
        "v_rest": par["v_rest"] * b2.volt,
        "v_reset": par["v_reset"] * b2.volt,
        "v_threshold": par["v_threshold"] * b2.volt,
        "g_leak": par["g_leak"] * b2.siemens,
        "drive": (par["drive"] + par["noise_mu"]) * b2.volt,
    }
    terms = ["(v_rest - v)", "drive"]
    chan_eqs = []
    has_cond = False
    degenerate = False
    received = received_channels(net, k)
    chained: list[tuple[int, int]] = []  # (channel, its rise variable)
    for c in received:
        ch = net.channels[c]
        var = channel_var(net, c)
        ns[f"tau_{var}"] = ch.tau * b2.second
        # an alpha/biexponential channel is fed by its rise variable: dx/dt = -x/tau + h
        rise = "".join(f" + {channel_var(net, r)}" for r in received if net.channels[r].feeds == c)
        if ch.kind == KIND_RISE:
            unit = "volt/second" if net.channels[ch.feeds].kind == KIND_CURRENT else "siemens/second"
            chan_eqs.append(f"d{var}/dt = -{var} / tau_{var} : {unit}")
            chained.append((ch.feeds, c))
            # equal time constants in the chain (alpha: tau_rise = tau) make the symbolic solution 0/0 too
            taus = (ch.tau, net.channels[ch.feeds].tau, par["tau_m"])
            degenerate |= any(abs(p - q) <= _DEGENERATE_RTOL * q for i, p in enumerate(taus) for q in taus[i + 1 :])
        elif ch.kind == KIND_CURRENT:
            terms.append(var)
            chan_eqs.append(f"d{var}/dt = -{var} / tau_{var}{rise} : volt")
            degenerate |= abs(ch.tau - par["tau_m"]) <= _DEGENERATE_RTOL * par["tau_m"]
        else:
            has_cond = True
            ns[f"E_{var}"] = ch.reversal * b2.volt
            terms.append(f"({var} / g_leak) * (E_{var} - v)")
            chan_eqs.append(f"d{var}/dt = -{var} / tau_{var}{rise} : siemens")
    adaptive = bool(net.adaptive.size and net.adaptive[sl.start])
    exp_term = False
    if adaptive:
        # AdEx (Brette & Gerstner 2005): w in amperes, through the leak into the membrane equation
        ad = {a: _uniform(getattr(net, f"ad_{a}"), sl, a, name) for a in ("a", "b", "tau_w", "delta_T", "v_T")}
        ns.update(
            a_w=ad["a"] * b2.siemens,
            b_w=ad["b"] * b2.amp,
            tau_w=ad["tau_w"] * b2.second,
            delta_T=ad["delta_T"] * b2.volt,
        )
        terms.append("(-w / g_leak)")
        if ad["delta_T"] > 0:
            exp_term = True
            ns["v_T"] = ad["v_T"] * b2.volt
            terms.append("delta_T * exp((v - v_T) / delta_T)")
        chan_eqs.append("dw/dt = (a_w * (v - v_rest) - w) / tau_w : amp")
    noisy = par["noise_sigma"] > 0
    if noisy:
        # tau_m dv = (...) dt + sigma sqrt(tau_m) dW  (Brunel 2000); xi has units s**-0.5
        ns["sigma"] = par["noise_sigma"] * b2.volt
        terms.append("sigma * sqrt(tau_m) * xi")
    eqs = "\n".join([f"dv/dt = ({' + '.join(terms)}) / tau_m : volt (unless refractory)", *chan_eqs])
    # an adaptive population with synaptic channels: sympy's symbolic solution of the coupled (v, w, x, ...)
    # system takes many minutes, so exponential Euler (alpha/biexponential chains stay exact, see below)
    slow_symbolic = adaptive and bool(received)
    method = (
        "euler" if noisy else ("exponential_euler" if has_cond or degenerate or exp_term or slow_symbolic else "exact")
    )
    if chained and method != "exact":
        # Brian2's approximate solvers freeze h in dx/dt = -x/tau + h over a step; the engine advances the
        # (x, h) chain exactly. Here too: the chain becomes parameters advanced by chain_code after the state
        # update (the membrane sees them at their start-of-step values, as the engine's frozen channels)
        for c, r in chained:
            for var in (channel_var(net, c), channel_var(net, r)):
                eq = next(e for e in chan_eqs if e.startswith(f"d{var}/dt"))
                chan_eqs[chan_eqs.index(eq)] = f"{var} : {eq.rsplit(':', 1)[1].strip()}"
        eqs = "\n".join([eqs.split("\n")[0], *chan_eqs])
    return eqs, ns, method, ref_steps * dt


def chain_code(net: Network, k: int, method: str, dt: float) -> tuple[str, dict[str, float]] | None:
    """``run_regularly`` code advancing population ``k``'s alpha/biexponential chains exactly, or None.

    Only when the population's method is not ``exact`` (see :func:`population_model`): ``x <- x d_x + k h``,
    ``h <- h d_h`` with the engine's constants (``ch_feed_k``).
    """
    from neurodyn.families.lif_network.build import current_kernel

    if method == "exact":
        return None
    lines, ns = [], {}
    for r in received_channels(net, k):
        ch = net.channels[r]
        if ch.kind != KIND_RISE:
            continue
        c, tau = ch.feeds, net.channels[ch.feeds].tau
        xv, hv = channel_var(net, c), channel_var(net, r)
        ns[f"d_{xv}"] = float(np.exp(-dt / tau))
        ns[f"d_{hv}"] = float(np.exp(-dt / ch.tau))
        ns[f"k_{hv}"] = tau * float(current_kernel(dt, np.array([tau]), ch.tau)[0])
        lines += [f"{xv} = {xv} * d_{xv} + k_{hv} * {hv} * second", f"{hv} = {hv} * d_{hv}"]
    return ("\n".join(lines), ns) if lines else None


def brian2_seed(seed: int) -> int:
    """Brian2's seed for a scenario seed: the first draw of the scenario's dynamics stream (32 bit)."""
    return int(streams(seed)[2].integers(0, 2**32 - 1))


def _model_key(eqs: str, ns: dict[str, Any], method: str, t_ref: float) -> tuple:
    """Identity of a population's model: populations with equal keys share one NeuronGroup."""
    return (eqs, method, float(t_ref), tuple(sorted((k, repr(float(v))) for k, v in ns.items())))


def build_brian2(built: LIFBuilt) -> dict[str, Any]:
    """Translate the built network into Brian2 objects (runtime device).

    Populations with the same model (equations, parameter values, method, refractory period) share one
    ``NeuronGroup`` (as in Brian2's own CUBA/COBA examples: fewer code objects, one symbolic solution of
    the linear system instead of one per population); each population is then a contiguous subgroup.

    Returns
    -------
    dict
        ``network`` (a ``brian2.Network``), ``groups`` (NeuronGroups), ``glob`` (per group: the global
        index of each of its neurons), ``spike_monitors`` (per group), ``state_monitors`` (per group:
        a list of ``(variable number, Brian2 name, monitor, local indices)``), ``methods`` (per population), ``net``.
    """
    import brian2 as b2

    dt = float(built.scenario.run.dt)
    net = built.network
    clock = b2.Clock(dt=dt * b2.second, name="neurodyn_clock*")
    probes = built.probes
    probe_clock = b2.Clock(dt=probes.every * dt * b2.second, name="neurodyn_probe_clock*") if probes.size else None

    # plan: which populations share a group, and where each population sits inside its group
    plans: dict[tuple, dict[str, Any]] = {}
    place: list[tuple[int, int]] = []  # per population: (group number, local offset)
    methods: dict[str, str] = {}
    for k, name in enumerate(net.names):
        eqs, ns, method, t_ref = population_model(net, k, dt)
        plan = plans.setdefault(
            _model_key(eqs, ns, method, t_ref),
            {"eqs": eqs, "ns": ns, "method": method, "t_ref": t_ref, "pops": [], "number": len(plans)},
        )
        offset = sum(int(net.sizes[q]) for q in plan["pops"])
        plan["pops"].append(k)
        place.append((plan["number"], offset))
        methods[name] = method

    groups, glob, spike_mons, state_mons = [], [], [], []
    objects: list[Any] = []
    for g_i, plan in enumerate(plans.values()):
        chain = chain_code(net, plan["pops"][0], plan["method"], dt)
        if chain is not None:
            plan["ns"].update(chain[1])
        members = np.concatenate([np.arange(net.starts[k], net.starts[k] + net.sizes[k]) for k in plan["pops"]])
        g = b2.NeuronGroup(
            members.size,
            plan["eqs"],
            threshold="v >= v_threshold",
            # adaptive populations: the spike-triggered jump of w with the reset
            reset="v = v_reset" + ("\nw += b_w" if "b_w" in plan["ns"] else ""),
            refractory=plan["t_ref"] * b2.second,
            method=plan["method"],
            namespace=plan["ns"],
            clock=clock,
            name=f"neurons_{g_i}*",
        )
        g.v = net.v0[members] * b2.volt
        if chain is not None:  # after the state update (order 1 in the groups slot); a contained object of g
            g.run_regularly(chain[0], when="groups", order=1, name=f"chains_{g_i}*")
        sm = b2.SpikeMonitor(g, record=True, name=f"spikes_{g_i}*")
        groups.append(g)
        glob.append(members.astype(np.int64))
        spike_mons.append(sm)
        objects += [g, sm]
        # one StateMonitor per sampled variable of the group, on the neurons that variable samples there
        mons = []
        for k, var in enumerate(probes.variables):
            local = np.flatnonzero(np.isin(members, probes.neuron[probes.var == k]))
            if local.size:
                b2_name = {-1: "v", -2: "w"}.get(var.channel) or channel_var(net, var.channel)
                mon = b2.StateMonitor(g, b2_name, record=local, clock=probe_clock, name=f"state_{g_i}_{k}*")
                mons.append((k, b2_name, mon, local))
                objects.append(mon)
        state_mons.append(mons)

    def view(k: int, lo: int = 0, hi: int | None = None) -> Any:
        """Population ``k`` (its local range ``lo:hi``) as a Brian2 group or subgroup."""
        g_i, off = place[k]
        hi = int(net.sizes[k]) if hi is None else hi
        g = groups[g_i]
        return g if (off + lo == 0 and off + hi == len(g)) else g[off + lo : off + hi]

    index = {nm: k for k, nm in enumerate(net.names)}
    plastic: list[Any] = []
    for p_i, proj in enumerate(net.projections):
        var = channel_var(net, proj.channel)
        unit = channel_unit(net, proj.channel)
        i, j = proj.pairs()
        if proj.plasticity is not None:
            plastic.append(
                plastic_synapses(
                    b2, proj, p_i, var, unit, view(index[proj.source]), view(index[proj.target]), dt, clock
                )
            )
            plastic[-1].connect(i=i, j=j)
            plastic[-1].w = proj.weight_peak
            objects.append(plastic[-1])
            continue
        if i.size == 0:
            continue
        syn = b2.Synapses(
            view(index[proj.source]),
            view(index[proj.target]),
            on_pre=f"{var}_post += w_syn",
            delay=proj.delay_steps * dt * b2.second,
            namespace={"w_syn": proj.weight * unit},
            clock=clock,
            name=f"proj_{p_i}*",
        )
        syn.connect(i=i, j=j)
        objects.append(syn)

    for d_i, drive in enumerate(net.poisson):
        if drive.rate <= 0 or drive.weight == 0 or drive.stop <= drive.start:
            continue
        if drive.rate * dt > 1:
            raise ScenarioError(
                "params.inputs",
                f"rate {drive.rate:g} Hz",
                f"rate * dt must be <= 1 for Brian2's PoissonInput (dt = {dt:g} s)",
            )
        var = channel_var(net, drive.channel)
        unit = b2.volt if net.channels[drive.channel].kind == KIND_CURRENT else b2.siemens
        k = int(np.searchsorted(net.starts, drive.start, side="right") - 1)
        lo = int(net.starts[k])
        if drive.stop > lo + int(net.sizes[k]):
            raise SimulationError(f"brian2 backend: Poisson drive {d_i} spans several populations")
        objects.append(
            b2.PoissonInput(
                view(k, drive.start - lo, drive.stop - lo),
                var,
                drive.n_sources,
                drive.rate * b2.Hz,
                drive.weight * unit,
            )
        )

    return {
        "network": b2.Network(*objects),
        "groups": groups,
        "glob": glob,
        "spike_monitors": spike_mons,
        "state_monitors": state_mons,
        "methods": methods,
        "net": net,
        "plastic": plastic,
    }


def plastic_synapses(
    b2: Any, proj: Any, p_i: int, var: str, unit: Any, source: Any, target: Any, dt: float, clock: Any
) -> Any:
    """Brian2's standard STDP ``Synapses`` for a plastic projection (the rule of :mod:`.plasticity`).

    Per synapse ``w`` (in the group's weight unit, dimensionless here) and event-driven traces ``apre``
    (``tau_plus``) and ``apost`` (``tau_minus``); ``on_pre`` transmits ``w`` (times the peak normalisation),
    depresses with ``apost`` and then raises ``apre``; ``on_post`` potentiates with ``apre`` and then raises
    ``apost`` (Brian2 runs the pre pathway before the post pathway within a step). With a delay the
    transmission goes through a delayed pathway of its own and the plasticity stays at the spike, as in
    the Numba engine: the weight at the spike (``w_sent``) is what arrives, exact while the delay is shorter
    than the source's inter-spike intervals (a refractory period at least as long guarantees it). A
    presynaptic trace delay puts the learning on a pathway of its own (``learn``, delayed by ``delay_pre``);
    a postsynaptic one delays the ``post`` pathway by ``delay_post``.
    """
    rule = proj.plasticity
    f = "(w - w_min) / (w_max - w_min)" if rule.rule == "multiplicative" else "1"
    ns = {
        "tau_plus": float(rule.tau_plus) * b2.second,
        "tau_minus": float(rule.tau_minus) * b2.second,
        "A_plus": float(rule.A_plus),
        "A_minus": float(rule.A_minus),
        "w_min": float(rule.w_min),
        "w_max": float(rule.w_max),
        "w_scale": (proj.weight / proj.weight_peak if proj.weight_peak else 1.0) * unit,
    }
    model = """w : 1
dapre/dt = -apre / tau_plus : 1 (event-driven)
dapost/dt = -apost / tau_minus : 1 (event-driven)"""
    transmit = f"{var}_post += w * w_scale"
    learn = f"w = clip(w - A_minus * {f} * apost, w_min, w_max)\napre += 1"
    on_post = "w = clip(w + A_plus * apre, w_min, w_max)\napost += 1"
    delay = proj.delay_steps * dt * b2.second
    d_pre = steps(rule.delay_pre, dt)
    d_post = steps(rule.delay_post, dt)
    common = {"namespace": ns, "clock": clock, "name": f"proj_{p_i}*"}
    post_delay = {"post": d_post * dt * b2.second} if d_post > 0 else {}
    if proj.delay_steps == 0 and d_pre == 0:
        syn = b2.Synapses(
            source, target, model=model, on_pre=transmit + "\n" + learn, on_post=on_post, delay=post_delay, **common
        )
    else:
        # transmission and learning on pathways of their own: "pre" (order -3) transmits, "learn" (order -1,
        # after it) depresses and raises apre delay_pre after the spike. With a transmission delay the weight
        # at the spike (w_sent, written before the step's learning) is what arrives; the arrivals run before
        # this step's spikes overwrite it
        pathways = {"pre": transmit, "learn": learn}
        delays = {"pre": delay, "learn": d_pre * dt * b2.second}
        if proj.delay_steps > 0:
            pathways["pre"] = transmit.replace("w * w_scale", "w_sent * w_scale")
            if d_pre == 0:
                pathways["learn"] = "w_sent = w\n" + learn
            else:
                pathways["send"] = "w_sent = w"
                delays["send"] = 0 * b2.second
            model += "\nw_sent : 1"
        syn = b2.Synapses(
            source, target, model=model, on_pre=pathways, on_post=on_post, delay={**delays, **post_delay}, **common
        )
        syn.pre.order = -3
        if "send" in pathways:
            syn.send.order = -2
    return syn


def simulate(built: LIFBuilt, progress: Progress = QUIET) -> xr.Dataset:
    """Run the built network in Brian2 (runtime mode) and return the shared ``lif_network`` Dataset.

    Parameters
    ----------
    built : LIFBuilt
        The built scenario (``run.backend`` is ``brian2`` or ``brian2:<target>``).
    progress : Progress
        Progress reporting (fed from Brian2's report callback).

    Raises
    ------
    SimulationError
        When the membrane potential became NaN or infinite.
    """
    import brian2 as b2
    from brian2.devices.device import RuntimeDevice

    run = built.scenario.run
    target = codegen_target(run.backend)
    if not isinstance(b2.get_device(), RuntimeDevice):
        b2.set_device("runtime")
    old_target = b2.prefs.codegen.target
    b2.prefs.codegen.target = target
    try:
        b2.seed(brian2_seed(run.seed))
        model = build_brian2(built)
        n_steps = run.n_steps
        with progress.task(n_steps, f"brian2 ({target})", "step") as bar:
            done = [0]

            def report(elapsed: Any, completed: float, start: Any, duration: Any) -> None:
                now = int(completed * n_steps)
                bar.update(now - done[0])
                done[0] = now

            weights = WeightSampler(built) if model["plastic"] else None
            if weights is None:
                model["network"].run(
                    n_steps * run.dt * b2.second, report=report, report_period=1 * b2.second, namespace={}
                )
            else:
                # the weight samples are taken between runs of the network, each up to the next sample
                m = 0
                while m < n_steps:
                    weights.take(_weights(model), m)
                    nxt = weights.limit(m, n_steps)
                    model["network"].run((nxt - m) * run.dt * b2.second, namespace={})
                    m = nxt
                    bar.update(m - done[0])
                    done[0] = m
                weights.take(_weights(model), n_steps)
                weights.finish(_weights(model))
            bar.update(n_steps - done[0])
    finally:
        b2.prefs.codegen.target = old_target

    for g, members in zip(model["groups"], model["glob"]):
        bad = np.flatnonzero(~np.isfinite(g.v_[:]))
        if bad.size:
            raise SimulationError(
                f"brian2: membrane potential of neuron {int(members[bad[0]])} became "
                "NaN or infinite; reduce dt or check weights"
            )
    times, idx = [], []
    for sm, members in zip(model["spike_monitors"], model["glob"]):
        times.append(np.asarray(sm.t_[:], dtype=np.float64))
        idx.append(members[np.asarray(sm.i[:], dtype=np.int64)])
    spike_time = np.concatenate(times) if times else np.zeros(0)
    spike_index = np.concatenate(idx) if idx else np.zeros(0, dtype=np.int64)

    samples = _probe_samples(model, built.probes, run.n_steps) if built.probes.size else None
    ds = make_dataset(built, spike_time, spike_index, samples)
    ds.attrs.update(
        brian2_target=target,
        brian2_method=model["methods"],
        brian2_version=b2.__version__,
        brian2_seed=brian2_seed(run.seed),
    )
    return ds if weights is None else ds.assign(weights.variables())


def _weights(model: dict[str, Any]) -> Any:
    """The plastic weights of every plastic projection, concatenated as the Numba engine holds them."""
    return SimpleNamespace(syn_w=np.concatenate([np.asarray(s.w[:], dtype=np.float64) for s in model["plastic"]]))


def _probe_samples(model: dict[str, Any], probes: Probes, n_steps: int) -> np.ndarray:
    """The state samples (sample, column) in the column layout of ``probes``, from the StateMonitors."""
    n_samples = probes.n_samples(n_steps)
    out = np.full((n_samples, probes.size), np.nan)
    for mons, members in zip(model["state_monitors"], model["glob"]):
        for k, b2_name, mon, local in mons:
            data = np.asarray(getattr(mon, b2_name + "_")[:], dtype=np.float64)  # (len(local), samples)
            m = min(n_samples, data.shape[1])
            row_of = {int(members[li]): r for r, li in enumerate(local)}
            for col in np.flatnonzero(probes.var == k):
                r = row_of.get(int(probes.neuron[col]))
                if r is not None:
                    out[:m, col] = data[r, :m]
    return out
