"""NEST backend of ``lif_network``: the scenario mapped onto NEST's neuron models and connection rules.

``run.backend: nest`` translates the scenario into a specification in NEST's units (:func:`nest_spec`),
builds it with :mod:`.nest_script` (the same code an exported script runs) and returns the Dataset of
:func:`~neurodyn.families.lif_network.dataset.make_dataset`. The network is drawn by NEST's own
connection rules and random streams: the same model and the same connectivity statistics as the Numba
engine, not the same draws. The mapping is described in ``docs/lif_nest.md``; in short:

* a population that receives only current synapses: ``iaf_psc_exp`` (positive weights go to its
  ``tau_syn_ex`` synapse, negative ones to ``tau_syn_in``), or ``iaf_psc_exp_multisynapse`` (one
  receptor per synaptic time constant) when the signs do not sort the time constants into two;
* a population that receives conductance synapses: ``iaf_cond_exp`` (two channels at most);
* ``C_m = g_leak tau_m``, so a current synapse's ``weight`` (the jump of the drive ``x`` in volts, with
  ``tau_m dv/dt = (v_rest - v) + x``) becomes the current jump ``weight * C_m / tau_m = weight * g_leak``;
* ``t_ref``: NEST clamps one step longer than the Numba engine's schedule for the same value, so NEST
  gets ``(round(t_ref/dt) - 1) dt``; NEST's spike time (the end of the step) is moved to the start of the
  step, as the Numba engine records it;
* delays: ``round(delay/dt)`` steps, at least one (NEST's minimum, where the Numba engine allows 0);
* Poisson input: one ``poisson_generator`` of rate ``n_sources * rate`` per input and population (each
  target gets its own trains); white noise: a ``noise_generator`` per population whose per-step current
  gives each step exactly the Numba engine's Ornstein-Uhlenbeck increment of ``v``;
* ``run.seed`` -> ``rng_seed`` (:func:`nest_rng_seed`), ``run.threads`` -> ``local_num_threads``.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from neurodyn.errors import ScenarioError, SimulationError
from neurodyn.families.lif_network.build import check_rule, state_probes
from neurodyn.families.lif_network.dataset import make_dataset
from neurodyn.families.lif_network.nest_script import SPEC_FORMAT
from neurodyn.families.lif_network.params import population_layout
from neurodyn.progress import QUIET, Progress
from neurodyn.stepping import Status, run_chunked, steps

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.lif_network.build import LIFBuilt

#: NEST version the backend is written and validated against (the ``neurodyn[nest]`` extra pins it)
NEST_VERSION = "3.10.0"
INSTALL_HINT = "pip install 'neurodyn[nest]' (the nest-simulator wheel; or a NEST 3.10 built with MPI on a cluster)"
#: NEST's time grid: 1000 tics per ms by default, so the resolution must be a whole number of microseconds
TICS_PER_MS = 1000


def nest_available() -> bool:
    """Whether PyNEST can be imported here (checked without importing it: the import takes half a second)."""
    return importlib.util.find_spec("nest") is not None


def nest_rng_seed(seed: int) -> int:
    """NEST's ``rng_seed`` (1 .. 2**32 - 1) for a scenario's ``run.seed`` (0 .. 2**63 - 1): a hash of it."""
    state = int(np.random.SeedSequence(int(seed)).generate_state(1, dtype=np.uint32)[0])
    return state or 1


def _graph_seed(seed: int, projection: int) -> int:
    """Seed of a networkx generator for projection number ``projection``."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(1, projection))
    return int(ss.generate_state(1, dtype=np.uint32)[0] >> 1)


@dataclass
class _Entry:
    """One synaptic input of a population: a projection or a Poisson input."""

    path: str  #: field of the scenario that makes it (for refusals)
    kind: str  #: "current" or "conductance"
    tau: float  #: s
    reversal: float | None  #: V
    weight: float  #: V or S


@dataclass
class _Plan:
    """The NEST model of one population and how its inputs reach it."""

    model: str
    params: dict[str, Any]
    #: per entry: (receptor_type, NEST weight) in entry order
    routes: list[tuple[int, float]] = field(default_factory=list)


def _ms(t: float) -> float:
    return float(t) * 1e3


def _mv(v: float) -> float:
    return float(v) * 1e3


def _ns(g: float) -> float:
    return float(g) * 1e9


def _plan_population(name: str, pop: Any, entries: list[_Entry], dt: float, n_steps: int) -> _Plan:
    """Choose the NEST model of population ``name`` from the synaptic inputs it receives."""
    if getattr(pop, "adaptation", None) is not None:
        raise ScenarioError(
            f"params.populations.{name}.adaptation",
            "given",
            "the nest backend maps plain LIF populations only (iaf_psc_exp, iaf_cond_exp); "
            "run adaptive neurons with run.backend: numba or brian2",
        )
    g_ns = _ns(pop.g_leak)
    tau_ms = _ms(pop.tau_m)
    ref_steps = int(np.rint(min(pop.t_ref / dt, n_steps + 1)))
    base = {
        # C_m = g_leak tau_m: then C_m / tau_m = g_leak, and a drive x (mV) is the current x * g_leak (pA)
        "C_m": g_ns * tau_ms,
        "tau_m": tau_ms,
        "E_L": _mv(pop.v_rest),
        "V_reset": _mv(pop.v_reset),
        "V_th": _mv(pop.v_threshold),
        # NEST clamps the steps n+1 .. n+R after a spike in step n; the Numba engine n+1 .. n+ref_steps-1
        "t_ref": max(ref_steps - 1, 0) * _ms(dt),
    }
    cond = [e for e in entries if e.kind == "conductance"]
    curr = [e for e in entries if e.kind == "current"]
    if cond:
        if curr:
            odd = curr[0] if entries.index(curr[0]) > entries.index(cond[0]) else cond[0]
            raise ScenarioError(
                f"{odd.path}",
                odd.kind,
                f"population {name!r} receives both current and conductance synapses; NEST's iaf_cond_exp has "
                "conductance synapses only: give the population one kind for the nest backend",
            )
        channels: list[tuple[float, float]] = []
        for e in cond:
            key = (e.tau, float(e.reversal))
            if key not in channels:
                if len(channels) == 2:
                    raise ScenarioError(
                        f"{e.path}",
                        f"tau {e.tau:g} s, reversal {e.reversal:g} V",
                        f"population {name!r} would need a third conductance channel; NEST's iaf_cond_exp has two "
                        "(excitatory and inhibitory): use at most two (tau, reversal) pairs per population",
                    )
                channels.append(key)
        # the channel of the higher reversal is NEST's "ex" channel (positive weights), the other "in"
        channels.sort(key=lambda c: -c[1])
        ex = channels[0]
        inh = channels[1] if len(channels) > 1 else channels[0]
        params = {
            **{k: v for k, v in base.items() if k != "tau_m"},  # iaf_cond_exp's tau_m is C_m / g_L
            "g_L": g_ns,
            "E_ex": _mv(ex[1]),
            "E_in": _mv(inh[1]),
            "tau_syn_ex": _ms(ex[0]),
            "tau_syn_in": _ms(inh[0]),
        }
        plan = _Plan("iaf_cond_exp", params)
        for e in cond:
            sign = 1.0 if (e.tau, float(e.reversal)) == ex else -1.0
            plan.routes.append((0, sign * _ns(e.weight)))
        return plan
    # current synapses only (or none)
    pos = {e.tau for e in curr if e.weight > 0}
    neg = {e.tau for e in curr if e.weight < 0}
    if len(pos) <= 1 and len(neg) <= 1:
        # NEST's iaf_psc_exp routes by the sign of the weight: one time constant per sign
        tau_ex = next(iter(pos or neg or {pop.tau_m / 2}))
        tau_in = next(iter(neg or pos or {pop.tau_m / 2}))
        plan = _Plan("iaf_psc_exp", {**base, "tau_syn_ex": _ms(tau_ex), "tau_syn_in": _ms(tau_in)})
        plan.routes = [(0, _mv(e.weight) * g_ns) for e in curr]
        return plan
    taus: list[float] = []
    for e in curr:
        if e.tau not in taus:
            if _ms(e.tau) == tau_ms:
                raise ScenarioError(
                    f"{e.path.rsplit('.', 1)[0]}.tau",
                    f"{e.tau:g} s",
                    f"equals tau_m of population {name!r}; NEST's iaf_psc_exp_multisynapse (needed for its "
                    f"{len(pos | neg)} synaptic time constants) requires them to differ",
                )
            taus.append(e.tau)
    plan = _Plan("iaf_psc_exp_multisynapse", {**base, "tau_syn": [_ms(t) for t in taus]})
    plan.routes = [(taus.index(e.tau) + 1, _mv(e.weight) * g_ns) for e in curr]
    return plan


def _v_init(pop: Any) -> dict[str, Any]:
    init = pop.v_init
    if init is None:
        return {"kind": "constant", "value": _mv(pop.v_rest)}
    if isinstance(init, float | int):
        return {"kind": "constant", "value": _mv(init)}
    if hasattr(init, "uniform"):
        lo, hi = init.uniform
        if hi > lo:
            return {"kind": "uniform", "low": _mv(lo), "high": _mv(hi)}
        return {"kind": "constant", "value": _mv(lo)}
    mean, std = init.normal
    if std > 0:
        return {"kind": "normal", "mean": _mv(mean), "std": _mv(std)}
    return {"kind": "constant", "value": _mv(mean)}


def nest_spec(scenario: Any) -> dict[str, Any]:
    """The specification :func:`.nest_script.build` builds: the scenario in NEST's models, rules and units.

    Cheap (no connectivity is drawn), so the family's check calls it to refuse what NEST cannot express.

    Raises
    ------
    ScenarioError
        A field NEST cannot express (named in the message).
    """
    params, run = scenario.params, scenario.run
    for s_i, syn in enumerate(params.synapses):
        if getattr(syn, "shape", "exponential") != "exponential":
            raise ScenarioError(
                f"params.synapses.{s_i}.shape",
                syn.shape,
                "the nest backend maps exponential synapses only (iaf_psc_exp, iaf_cond_exp); "
                "run alpha/biexponential synapses with run.backend: numba or brian2",
            )
        if getattr(syn, "plasticity", None) is not None:
            raise ScenarioError(
                f"params.synapses.{s_i}.plasticity",
                syn.plasticity.rule,
                "the nest backend runs static synapses only; run plasticity with run.backend: numba or brian2",
            )
    dt = float(run.dt)
    n_steps = run.n_steps
    tics = dt * 1e3 * TICS_PER_MS
    if abs(tics - round(tics)) > 1e-6 * max(1.0, tics) or round(tics) < 1:
        raise ScenarioError(
            "run.dt", f"{dt:g} s", "NEST's resolution must be a whole number of microseconds (its time grid)"
        )
    names, starts, sizes = population_layout(params)
    index = {nm: k for k, nm in enumerate(names)}
    entries: list[list[_Entry]] = [[] for _ in names]
    #: per projection / Poisson input: (population, entry number)
    proj_at: list[tuple[int, int]] = []
    for s_i, syn in enumerate(params.synapses):
        for tgt in syn.targets:
            k = index[tgt]
            proj_at.append((k, len(entries[k])))
            entries[k].append(_Entry(f"params.synapses.{s_i}.kind", syn.kind, syn.tau, syn.reversal, syn.weight))
    poisson_at: list[tuple[int, int, Any]] = []
    noise_var = np.zeros(len(names))
    drive = np.zeros(len(names))
    for i_i, inp in enumerate(params.inputs):
        for tgt in inp.targets:
            k = index[tgt]
            pop = params.populations[tgt]
            if inp.kind == "constant":
                drive[k] += inp.drive if inp.drive is not None else inp.current / pop.g_leak
            elif inp.kind == "noise":
                drive[k] += inp.mu
                noise_var[k] += inp.sigma**2  # independent noises add in variance
            else:
                poisson_at.append((k, len(entries[k]), inp))
                entries[k].append(
                    _Entry(f"params.inputs.{i_i}.synapse", inp.synapse, inp.tau, inp.reversal, inp.weight)
                )

    plans = [_plan_population(nm, params.populations[nm], entries[k], dt, n_steps) for k, nm in enumerate(names)]
    populations = []
    noise = []
    h = dt
    for k, nm in enumerate(names):
        pop = params.populations[nm]
        g_ns = _ns(pop.g_leak)
        plan = plans[k]
        v_init = _v_init(pop)
        p = dict(plan.params)
        p["I_e"] = _mv(drive[k]) * g_ns
        if v_init["kind"] == "constant":
            p["V_m"] = v_init["value"]
        populations.append({"name": nm, "size": int(sizes[k]), "model": plan.model, "params": p, "v_init": v_init})
        if noise_var[k] > 0:
            # A current held for one step moves v by I tau_m (1 - e^{-h/tau_m}) / C_m; its std is chosen so
            # that this is the exact OU increment sigma sqrt((1 - e^{-2h/tau_m}) / 2) of the Numba engine.
            a = -math.expm1(-h / pop.tau_m)
            b = -math.expm1(-2 * h / pop.tau_m)
            sigma_mv = _mv(math.sqrt(noise_var[k]))
            noise.append({"target": k, "std": sigma_mv * g_ns * math.sqrt(b / 2) / a})

    projections = []
    p_i = 0
    for syn in params.synapses:
        d = max(steps(syn.delay, dt), 1)  # NEST's minimum delay is one step
        for tgt in syn.targets:
            k, e = proj_at[p_i]
            receptor, weight = plans[k].routes[e]
            same = syn.source == tgt
            autapses = bool(syn.connect.autapses or not same)
            conn = graph = None
            c = syn.connect
            if c.p is not None:
                conn = {"rule": "pairwise_bernoulli", "p": float(c.p), "allow_autapses": autapses}
            elif c.in_degree is not None:
                conn = {
                    "rule": "fixed_indegree",
                    "indegree": int(c.in_degree),
                    "allow_autapses": autapses,
                    "allow_multapses": False,
                }
            elif c.one_to_one:
                conn = {"rule": "one_to_one", "allow_autapses": True}
            else:
                seed = _graph_seed(run.seed, p_i)
                graph = {"name": c.graph, "args": dict(c.args), "seed": seed, "autapses": autapses}
            projections.append(
                {
                    "name": f"{syn.source}->{tgt}",
                    "source": index[syn.source],
                    "target": k,
                    "conn": conn,
                    "graph": graph,
                    "weight": weight,
                    "delay": d * _ms(dt),
                    "receptor": receptor,
                }
            )
            p_i += 1
    poisson = []
    for k, e, inp in poisson_at:
        receptor, weight = plans[k].routes[e]
        if inp.rate > 0 and inp.weight != 0:
            poisson.append(
                {"target": k, "rate": float(inp.rate) * int(inp.n_sources), "weight": weight, "receptor": receptor}
            )
    sampled = state_probes(params, scenario.record, dt)
    other = [var.name for var in sampled.variables if var.name != "v"]
    if other:
        raise ScenarioError(
            "record.state", other[0], "the NEST backend records v only (its synaptic states are NEST's own)"
        )
    probes, every = sampled.neuron, sampled.every
    probe = {"indices": [int(i) for i in probes], "every": every} if probes.size else None
    return {
        "format": SPEC_FORMAT,
        "name": scenario.name,
        "resolution": _ms(dt),
        "n_steps": int(n_steps),
        "rng_seed": nest_rng_seed(run.seed),
        "threads": int(run.threads or 1),
        "populations": populations,
        "projections": projections,
        "poisson": poisson,
        "noise": noise,
        "probe": probe,
    }


def check_nest(scenario: Any) -> None:
    """Refuse, before anything is built, what the NEST backend cannot run (one line naming the field).

    Called by the family's ``check`` for ``run.backend: nest``, after the checks every backend shares.
    """
    if not nest_available():
        raise ScenarioError("run.backend", "nest", f"NEST is not installed; install it with {INSTALL_HINT}")
    nest_spec(scenario)


def check_nest_rules(scenario: Any) -> None:
    """What an exported script would refuse: connection rules the sizes cannot satisfy, what NEST cannot express.

    Neither NEST nor this machine's memory is needed: the script runs elsewhere, on as many processes as
    the network needs.
    """

    params = scenario.params
    for s_i, syn in enumerate(params.synapses):
        n_pre = params.populations[syn.source].size
        for tgt in syn.targets:
            n_post = params.populations[tgt].size
            check_rule(syn.connect, n_pre, n_post, syn.source == tgt, f"params.synapses.{s_i}.connect")
    nest_spec(scenario)


# --------------------------------------------------------------------------- recordings -> Dataset


@dataclass
class Recordings:
    """What NEST recorded, in its own terms (node IDs, time steps, mV), from memory or from ASCII files."""

    spike_sender: np.ndarray
    spike_step: np.ndarray  #: NEST's time stamp of the spike: the end of the step in which it fired
    v_sender: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    v_step: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    v_mv: np.ndarray = field(default_factory=lambda: np.zeros(0))


def recordings_dataset(built: LIFBuilt, rec: Recordings, attrs: dict[str, Any]) -> xr.Dataset:
    """The ``lif_network`` Dataset of NEST's recordings (the Numba engine's conventions).

    A spike NEST stamps ``s`` (the end of the step in which ``v`` crossed threshold) is the spike of step
    ``s - 1``, at time ``(s - 1) dt`` as the Numba engine records it; node ID ``i + 1`` is neuron ``i``.
    The multimeter's sample at step ``k`` is ``v(k dt)``, the Numba engine's sample at ``k dt``; the
    sample at t = 0 (the initial potentials, ``v_step == 0``) is recorded before the run. What NEST
    recorded after the run's last step is left out.
    """
    dt = float(built.run.dt)
    n_steps = built.run.n_steps
    step = np.asarray(rec.spike_step, dtype=np.int64) - 1
    spike_index = np.asarray(rec.spike_sender, dtype=np.int64) - 1
    within = step < n_steps  # the steps simulated after the run (FLUSH_STEPS) are not part of it
    step, spike_index = step[within], spike_index[within]
    probes = built.probes  # v only (check_nest refuses other variables): one column per sampled neuron
    samples = None
    if probes.size:
        every = probes.every
        samples = np.full((probes.n_samples(n_steps), probes.size), np.nan)
        vs = np.asarray(rec.v_step, dtype=np.int64)
        keep = (vs % every == 0) & (vs < n_steps)
        rows = vs[keep] // every
        node = np.asarray(rec.v_sender, dtype=np.int64)[keep]
        vals = np.asarray(rec.v_mv, dtype=np.float64)[keep] * 1e-3
        for col, gidx in enumerate(probes.neuron):
            mine = node == gidx + 1
            samples[rows[mine], col] = vals[mine]
    ds = make_dataset(built, step * dt, spike_index, samples)
    ds.attrs.update(attrs)
    return ds


def nest_attrs(spec: dict[str, Any], nest_version: str, processes: int, threads: int, n_synapses: int) -> dict:
    """Dataset attributes of a NEST run: version, models, seed, virtual processes, synapse count."""
    return {
        "nest_version": nest_version,
        "nest_model": {p["name"]: p["model"] for p in spec["populations"]},
        "nest_rng_seed": int(spec["rng_seed"]),
        "nest_processes": int(processes),
        "nest_threads": int(threads),
        "n_synapses": int(n_synapses),
    }


def simulate(built: LIFBuilt, progress: Progress = QUIET) -> xr.Dataset:
    """Run the built scenario in NEST in this process and return the shared ``lif_network`` Dataset.

    NEST draws its own network from the parameters (its connection rules); ``built`` supplies the
    population layout and the probes, as for the other backends.

    Raises
    ------
    SimulationError
        When NEST fails during the run (e.g. its ODE solver for ``iaf_cond_exp``) or ``v`` became NaN.
    """
    from neurodyn.families.lif_network import nest_script

    scenario = built.scenario
    spec = nest_spec(scenario)
    nest = nest_script.import_nest()
    threads = int(spec["threads"])
    try:
        nest_script.configure(nest, spec, threads)
        handles = nest_script.build(nest, spec)
        v0_ids, v0 = nest_script.initial_potentials(nest, handles["probed"])
        res = float(spec["resolution"])

        def advance(start: int, count: int) -> tuple[Status, str]:
            nest.Run(count * res)
            return Status.OK, ""

        nest.Prepare()
        try:
            run_chunked(
                int(spec["n_steps"]),
                advance,
                progress,
                desc=f"{scenario.name} in NEST ({sum(p['size'] for p in spec['populations'])} neurons)",
            )
            nest.Run(nest_script.FLUSH_STEPS * res)  # the multimeter's last samples (see FLUSH_STEPS)
        finally:
            nest.Cleanup()
        for nodes, pop in zip(handles["populations"], spec["populations"]):
            v_end = np.atleast_1d(np.asarray(nodes.get("V_m"), dtype=np.float64))
            bad = np.flatnonzero(~np.isfinite(v_end))
            if bad.size:
                raise SimulationError(
                    f"nest: membrane potential of neuron {int(nodes[int(bad[0])].global_id) - 1} (population "
                    f"{pop['name']!r}) became NaN or infinite; reduce dt or check weights"
                )
        events = handles["spikes"].get("events")
        rec = Recordings(np.asarray(events["senders"]), np.asarray(events["times"]))
        if handles["multimeter"] is not None:
            mm = handles["multimeter"].get("events")
            rec.v_sender = np.concatenate([v0_ids, np.asarray(mm["senders"], dtype=np.int64)])
            v0_step = np.zeros(v0_ids.size, dtype=np.int64)
            rec.v_step = np.concatenate([v0_step, np.asarray(mm["times"], dtype=np.int64)])
            rec.v_mv = np.concatenate([v0, np.asarray(mm["V_m"], dtype=np.float64)])
    except nest.NESTError as exc:
        raise SimulationError(f"nest: {exc}") from None
    version = str(nest.build_info.get("version", ""))
    attrs = nest_attrs(spec, version, int(nest.NumProcesses()), threads, handles["n_synapses"])
    return recordings_dataset(built, rec, attrs)
