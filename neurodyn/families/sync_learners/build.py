"""What a ``sync_learners`` run builds once, before any step: the loss, every coupling graph, the step counts.

:func:`prepare` checks a scenario and builds its run in one pass: the refusals that read a graph (a
disconnected graph where the bound needs ``lambda_2 > 0``, an Euler-Maruyama step beyond the stability
limit of ``L + k lambda_max``) read the very graphs, spectra and loss that :mod:`.engine` then runs and
:mod:`.theory` then predicts from. :func:`check` is the same pass without the result (``neurodyn validate``
and the sweep planner); it builds the loss and the graphs, which are small (state buffers, the memory the
estimate is about, are allocated by the engine only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from neurodyn import stepping
from neurodyn.errors import ResourceError, ScenarioError
from neurodyn.families.base import Built
from neurodyn.families.sync_learners import kernels
from neurodyn.families.sync_learners.graphs import Graph, build_graph
from neurodyn.families.sync_learners.losses import LossSetup, make_loss
from neurodyn.families.sync_learners.params import SyncParams, SyncRecord
from neurodyn.resources import require_memory

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.scenario import RunConfig, Scenario

#: the spectrum is a dense eigendecomposition; beyond this it would take minutes and gigabytes
MAX_N_SPECTRUM = 4000


@dataclass(frozen=True)
class Steps:
    """Step counts derived from the run configuration."""

    #: steps of the run
    n_steps: int
    #: time averages start after this step (the burn-in) ...
    stat_start: int
    #: ... and take a sample every this many steps
    stat_every: int
    #: traces take a sample every this many steps ...
    rec_every: int
    #: ... and have this many samples (the initial state included)
    n_rec: int

    @property
    def schedule(self) -> kernels.Schedule:
        """The sampling steps as the kernels take them."""
        return kernels.Schedule(self.stat_start, self.stat_every, self.rec_every)


@dataclass
class SyncBuilt(Built):
    """A checked ``sync_learners`` run: its scenario and what is built from it once.

    Attributes
    ----------
    steps : Steps
        Step counts of the run, burn-in and sampling intervals.
    loss : LossSetup
        The loss as arrays for the kernels and the constants the theory needs.
    graphs : dict
        The coupling graph of every ``(topology index, n)``; each keeps its Laplacian spectrum (and, for the
        exact integrator, its eigenbasis) once computed.
    """

    steps: Steps
    loss: LossSetup
    graphs: dict[tuple[int, int], Graph]

    @property
    def params(self) -> SyncParams:
        """The scenario's validated parameters."""
        return self.scenario.params

    @property
    def record(self) -> SyncRecord:
        """What the scenario asks to record."""
        return self.scenario.record

    @property
    def run(self) -> RunConfig:
        """The scenario's run settings."""
        return self.scenario.run

    @property
    def labels(self) -> list[str]:
        """Coordinate labels of the topologies."""
        return [t.label_or_name for t in self.params.topology]


def run_steps(scenario: Scenario) -> Steps:
    """Step counts (total, burn-in, statistics interval, trace interval, trace length) of a scenario."""
    run, p, rec = scenario.run, scenario.params, scenario.record
    n_steps = run.n_steps
    burn = p.burn_in if p.burn_in is not None else 0.2 * run.duration
    stat_start = int(math.ceil(burn / run.dt - 1e-9))
    stat_every = stepping.steps(rec.stats_every, run.dt, at_least=1) if rec.stats_every else 1
    every = rec.every if rec.every is not None else run.duration / 200
    rec_every = stepping.steps(every, run.dt, at_least=1)
    return Steps(n_steps, stat_start, stat_every, rec_every, n_steps // rec_every + 1)


def graph_seed(seed: int, topo_index: int, n: int) -> int:
    """Seed of a random topology (independent of the learners' noise streams)."""
    return int(np.random.SeedSequence([seed, 0x5EED, topo_index, n]).generate_state(1)[0])


def build_graphs(scenario: Scenario) -> dict[tuple[int, int], Graph]:
    """All graphs of a scenario keyed by ``(topology index, n)``; raises ScenarioError on a bad spec."""
    p = scenario.params
    out = {}
    for ti, topo in enumerate(p.topology):
        for n in p.n:
            if n > MAX_N_SPECTRUM:
                raise ResourceError(
                    f"params.n = {n}: the Laplacian spectrum is computed densely; at most {MAX_N_SPECTRUM} learners"
                )
            out[(ti, n)] = build_graph(topo, n, graph_seed(scenario.run.seed, ti, n), f"params.topology.{ti}")
    return out


def build(scenario: Scenario) -> SyncBuilt:
    """Build the loss, the graphs and the step counts of a scenario (checked: see :func:`prepare`)."""
    p = scenario.params
    return SyncBuilt(scenario, run_steps(scenario), make_loss(p.loss, p.d), build_graphs(scenario))


def prepare(scenario: Scenario) -> SyncBuilt:
    """Refuse what the run would refuse, then return the built run; nothing is built twice.

    Raises
    ------
    ScenarioError
        A burn-in as long as the run, a sampling interval shorter than a step, a bad topology, a disconnected
        graph where the spread bound needs ``lambda_2 > 0``, an unstable Euler-Maruyama step.
    ResourceError
        The state would not fit in the available memory, or ``n`` is beyond :data:`MAX_N_SPECTRUM`.
    """
    _check_run(scenario)
    built = build(scenario)
    _check_graphs(built)
    return built


def check(scenario: Scenario) -> None:
    """The refusals of :func:`prepare`, for ``neurodyn validate`` and the sweep planner."""
    prepare(scenario)


def _check_run(scenario: Scenario) -> None:
    """Refusals from the scenario's numbers alone, before anything is built."""
    p, run, rec = scenario.params, scenario.run, scenario.record
    st = run_steps(scenario)
    if st.stat_start >= st.n_steps:
        raise ScenarioError("params.burn_in", p.burn_in, f"must be shorter than run.duration ({run.duration:g} s)")
    for key in ("every", "stats_every"):
        value = getattr(rec, key)
        if value is not None and stepping.steps(value, run.dt) < 1:
            raise ScenarioError(
                f"record.{key}", f"{value:g} s", f"at least one step (run.dt = {run.dt:g} s); omit it for the default"
            )
    # two state buffers and one step of noise, the traces, the loss's d x d matrices
    state = 3 * p.trials * max(p.n) * p.d * 8 + p.trials * st.n_rec * kernels.N_COLS * 8 + 4 * 8 * p.d * p.d
    require_memory(
        state,
        f"{p.trials} trials x {max(p.n)} learners x d = {p.d} x 3 buffers x 8 B, {st.n_rec} trace samples",
        what="params.trials, params.n, params.d",
        hint="reduce trials, n or d",
    )


def _check_graphs(built: SyncBuilt) -> None:
    """Refusals that read the built graphs and loss: connectivity, Euler-Maruyama stability."""
    p, run, loss = built.params, built.run, built.loss
    for (ti, n), g in built.graphs.items():
        if loss.lam_f <= 0 and g.components > 1 and not p.allow_disconnected:
            raise ScenarioError(
                f"params.topology.{ti}",
                g.label,
                f"graph is disconnected for n = {n} ({g.components} components, lambda_2 = 0); the "
                f"spread bound needs lambda_f + k lambda_2 > 0 and the {loss.kind} loss has lambda_f = "
                f"{loss.lam_f:g}; connect the graph or set params.allow_disconnected: true "
                "(the bound is then stored as undefined)",
            )
        if p.integrator == "euler_maruyama" and math.isfinite(loss.lip):
            lam_max = float(g.spectrum[-1]) if max(p.k) > 0 else 0.0
            for k in p.k:
                limit = 2.0 / (loss.lip + k * lam_max)
                if run.dt >= limit:
                    raise ScenarioError(
                        "run.dt",
                        run.dt,
                        "Euler-Maruyama is unstable for dt >= 2/(L + k lambda_max) = "
                        f"{limit:.3g} s "
                        f"(topology {g.label}, n = {n}, k = {k:g}); use a smaller dt"
                        + (" or integrator: exact" if loss.is_quadratic else ""),
                    )
