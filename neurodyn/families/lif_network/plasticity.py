"""Spike-timing-dependent plasticity of ``lif_network``: the kernel's tables, a run's plastic state, the weight
recording (``record.weights``) and the theory of the mean weight drift.

The rule (:class:`~.params.Plasticity`) is pair-based with all-to-all traces, as Brian2's standard STDP
example: per plastic synapse a weight ``w``; per source neuron a trace ``x_pre`` (``tau_plus``), per target
neuron a trace ``x_post`` (``tau_minus``), each jumping by 1 at its neuron's spikes. At a presynaptic spike
the synapse transmits ``w``, then ``w <- clip(w - A_minus f(w) x_post)``; at a postsynaptic spike
``w <- clip(w + A_plus x_pre)``, the presynaptic spikes of the same step counted (Brian2 runs ``on_pre``
before ``on_post``). The kernel side is :func:`.kernels._deliver_plastic` and :func:`.kernels._potentiate_part`;
each part of the network writes only the synapses of its own targets, so results do not depend on the
thread count.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from neurodyn.families.lif_network.kernels import KIND_CONDUCTANCE, State, Synapses
from neurodyn.stepping import steps

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.lif_network.build import LIFBuilt, Network, Projection

#: the rules as the kernel numbers them (``Synapses.pl_rule``)
RULES = {"additive": 0, "multiplicative": 1}


def plastic_projections(net: Network) -> list[tuple[int, Projection]]:
    """``(k, projection)`` of every plastic projection, in projection order."""
    return [(k, p) for k, p in enumerate(net.projections) if p.plasticity is not None]


def weight_unit(net: Network) -> str:
    """Unit of the plastic weights: V (current synapses), S (conductances) or ``V or S`` for a mix."""
    kinds = {net.channels[p.channel].kind for _, p in plastic_projections(net)}
    return "S" if kinds == {KIND_CONDUCTANCE} else "V" if KIND_CONDUCTANCE not in kinds else "V or S"


def incoming_index(indptr: np.ndarray, indices: np.ndarray, n_post: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The incoming (CSC) index of one projection: ``ptr`` (``n_post + 1``), and per incoming synapse, by
    target then source, its position in ``indices`` and its local source."""
    src = np.repeat(np.arange(indptr.size - 1, dtype=np.int32), np.diff(indptr))
    order = np.argsort(indices, kind="stable")
    ptr = np.zeros(n_post + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(np.bincount(indices, minlength=n_post))
    return ptr, order.astype(np.int64), src[order]


def plasticity_tables(net: Network, dt: float, tables: Synapses) -> Synapses:
    """``tables`` with the plasticity tables of every plastic projection of ``net`` (see :class:`.kernels.Synapses`)."""
    plastic = plastic_projections(net)
    pr_plastic = np.full(len(net.projections), -1, dtype=np.int64)
    cols: dict[str, list] = {name: [] for name in Synapses._fields if name.startswith("pl_")}
    ptrs, poss, srcs = [], [], []
    w_off = pre_off = post_off = ptr_off = in_off = 0
    for pl, (k, p) in enumerate(plastic):
        rule = p.plasticity
        pr_plastic[k] = pl
        ptr, pos, src = incoming_index(p.indptr, p.indices, p.n_post)
        ptrs.append(ptr)
        poss.append(pos)
        srcs.append(src)
        row = {
            "pl_proj": k,
            "pl_rule": RULES[rule.rule],
            "pl_a_plus": float(rule.A_plus),
            "pl_a_minus": float(rule.A_minus),
            "pl_w_min": float(rule.w_min),
            "pl_w_max": float(rule.w_max),
            "pl_dt_tau_plus": dt / float(rule.tau_plus),
            "pl_dt_tau_minus": dt / float(rule.tau_minus),
            "pl_scale": p.weight / p.weight_peak if p.weight_peak != 0 else 1.0,
            "pl_w_off": w_off,
            "pl_pre_off": pre_off,
            "pl_post_off": post_off,
            "pl_in_ptr_off": ptr_off,
            "pl_in_off": in_off,
            "pl_d_pre": steps(rule.delay_pre, dt),
            "pl_d_post": steps(rule.delay_post, dt),
        }
        for name, value in row.items():
            cols[name].append(value)
        w_off += p.n_synapses
        pre_off += p.n_pre
        post_off += p.n_post
        ptr_off += p.n_post + 1
        in_off += p.n_synapses
    ints = {
        "pl_proj",
        "pl_rule",
        "pl_w_off",
        "pl_pre_off",
        "pl_post_off",
        "pl_in_ptr_off",
        "pl_in_off",
        "pl_d_pre",
        "pl_d_post",
    }
    arrays = {name: np.array(v, dtype=np.int64 if name in ints else np.float64) for name, v in cols.items()}
    return tables._replace(
        pr_plastic=pr_plastic,
        in_ptr=np.concatenate(ptrs),
        in_pos=np.concatenate(poss),
        in_src=np.concatenate(srcs).astype(np.int32),
        **arrays,
    )


def plastic_state(built: LIFBuilt, state: State, n_parts: int) -> State:
    """``state`` with the initial plastic weights (the group's weight on every synapse) and empty traces, one
    copy of the presynaptic traces per part; ``state`` itself when nothing is plastic."""
    plastic = plastic_projections(built.network)
    if not plastic:
        return state
    n_pre = sum(p.n_pre for _, p in plastic)
    n_post = sum(p.n_post for _, p in plastic)
    syn = built.synapses
    longest = int(max(syn.pl_d_pre.max(), syn.pl_d_post.max()))
    n_hist = longest + 1 if longest > 0 else 0
    return state._replace(
        hist=np.zeros((n_hist, state.v.size if n_hist else 0), dtype=np.int64),
        hist_n=np.zeros(n_hist, dtype=np.int64),
        syn_w=np.concatenate([np.full(p.n_synapses, p.weight_peak) for _, p in plastic]),
        tr_pre=np.zeros((n_parts, n_pre)),
        last_pre=np.full((n_parts, n_pre), -(2**62), dtype=np.int64),
        tr_post=np.zeros(n_post),
        last_post=np.full(n_post, -(2**62), dtype=np.int64),
    )


class WeightSampler:
    """``record.weights``: every ``every`` steps (from step 0, before the step) the mean, standard deviation and
    histogram of each plastic projection's weights; at the end of the run every synapse's final weight."""

    def __init__(self, built: LIFBuilt):
        spec = built.record.weights
        self.plastic = plastic_projections(built.network)
        n_steps = built.scenario.run.n_steps
        # without record.weights only the final weights are kept
        self.every = max(1, steps(spec.every, built.scenario.run.dt)) if spec is not None else n_steps + 1
        self.sampled = spec is not None
        self.bins = int(spec.bins) if spec is not None else 1
        self.dt = float(built.scenario.run.dt)
        self.duration = n_steps * self.dt
        self.unit = weight_unit(built.network)
        self.offsets = np.cumsum([0] + [p.n_synapses for _, p in self.plastic])
        self.steps: list[int] = []
        self.mean: list[np.ndarray] = []
        self.std: list[np.ndarray] = []
        self.hist: list[np.ndarray] = []
        self.final: np.ndarray | None = None

    def limit(self, m: int, stop: int) -> int:
        """Last step (exclusive) the kernel may run from ``m`` before the next sample is due."""
        return min(stop, (m // self.every + 1) * self.every)

    def take(self, state: State, m: int) -> None:
        """Sample the weights at step ``m`` if it is a sampling step not taken yet."""
        if not self.sampled or m % self.every or (self.steps and self.steps[-1] >= m):
            return
        self.steps.append(m)
        mean, std, hist = [], [], []
        for n, (_, p) in enumerate(self.plastic):
            w = state.syn_w[self.offsets[n] : self.offsets[n + 1]]
            rule = p.plasticity
            mean.append(w.mean() if w.size else np.nan)
            std.append(w.std() if w.size else np.nan)
            hist.append(np.histogram(w, self.bins, range=(rule.w_min, rule.w_max))[0])
        self.mean.append(np.array(mean))
        self.std.append(np.array(std))
        self.hist.append(np.array(hist))

    def finish(self, state: State) -> None:
        """Keep the final weights."""
        self.final = state.syn_w.copy()

    def variables(self) -> dict[str, Any]:
        """The recorded weights as Dataset variables and coordinates."""
        names = np.array([p.name for _, p in self.plastic], dtype=object)
        lo = np.array([p.plasticity.w_min for _, p in self.plastic])
        hi = np.array([p.plasticity.w_max for _, p in self.plastic])
        centres = lo[:, None] + (hi - lo)[:, None] * (np.arange(self.bins) + 0.5)[None, :] / self.bins
        syn_proj = np.repeat(np.arange(len(self.plastic)), np.diff(self.offsets))
        pre = np.concatenate([np.repeat(np.arange(p.n_pre), np.diff(p.indptr)) for _, p in self.plastic])
        post = np.concatenate([p.indices.astype(np.int64) for _, p in self.plastic])
        unit = self.unit
        means = np.array(
            [self.final[a:b].mean() if b > a else np.nan for a, b in zip(self.offsets[:-1], self.offsets[1:])]
        )
        stds = np.array(
            [self.final[a:b].std() if b > a else np.nan for a, b in zip(self.offsets[:-1], self.offsets[1:])]
        )
        initial = np.array([p.weight_peak for _, p in self.plastic])
        final = {
            "weight_final_mean": ("plastic_projection", means, {"long_name": "mean final weight", "units": unit}),
            "weight_final_std": (
                "plastic_projection",
                stds,
                {"long_name": "standard deviation of the final weights", "units": unit},
            ),
            "weight_drift": (
                "plastic_projection",
                (means - initial) / self.duration,
                {"long_name": "mean weight change per unit time over the run", "units": unit + "/s"},
            ),
            "plastic_projection": ("plastic_projection", names, {"long_name": "plastic synapse group source->target"}),
            "final_weight": ("synapse", self.final, {"long_name": "weight at the end of the run", "units": unit}),
            "synapse_projection": (
                "synapse",
                syn_proj,
                {"long_name": "plastic_projection index of the synapse", "units": "1"},
            ),
            "synapse_pre": ("synapse", pre, {"long_name": "local presynaptic index", "units": "1"}),
            "synapse_post": ("synapse", post, {"long_name": "local postsynaptic index", "units": "1"}),
        }
        if not self.sampled:
            return final
        return final | {
            "weight_time": ("weight_time", np.array(self.steps) * self.dt, {"units": "s", "long_name": "time"}),
            "weight_mean": (
                ("weight_time", "plastic_projection"),
                np.array(self.mean),
                {"long_name": "mean weight", "units": unit},
            ),
            "weight_std": (
                ("weight_time", "plastic_projection"),
                np.array(self.std),
                {"long_name": "standard deviation of the weights", "units": unit},
            ),
            "weight_hist": (
                ("weight_time", "plastic_projection", "weight_bin"),
                np.array(self.hist, dtype=np.int64),
                {"long_name": "synapses per weight bin (equal bins from w_min to w_max)", "units": "1"},
            ),
            "weight_bin_centre": (
                ("plastic_projection", "weight_bin"),
                centres,
                {"long_name": "centre of the weight bin", "units": unit},
            ),
        }


#: relative tolerances of the STDP theory: the drift is exact in expectation for independent trains (the
#: tolerance covers the sampling error of the scenarios' synapse counts); the stationary mean is exact to
#: first order in the step sizes; the spread comes from the diffusion approximation of the weight
#: (Ornstein-Uhlenbeck, linear drift at the fixed point) and Poisson statistics of both trains
REL_TOL_DRIFT = 0.1
REL_TOL_MEAN = 0.05
REL_TOL_SPREAD = 0.2
#: the theory assumes independent pre- and postsynaptic trains: it is given for a plastic group whose largest
#: total input (largest in-degree x w_max) moves its targets by at most this fraction of
#: ``v_threshold - v_rest`` (current synapses; conductance groups get none)
INDEPENDENT_INPUT = 0.01


def stationary_spread(rule: Any, r_pre: float, r_post: float) -> tuple[float, float]:
    """Stationary mean and standard deviation of a multiplicative-STDP weight for independent Poisson trains.

    The weight's rate of change is ``A_plus x_pre S_post - A_minus g(w) x_post S_pre`` with
    ``g(w) = (w - w_min) / (w_max - w_min)``. Its mean vanishes at
    ``w* = w_min + (w_max - w_min) A_plus tau_plus / (A_minus tau_minus)``; near ``w*`` it relaxes at
    ``gamma = r_pre r_post A_minus tau_minus / (w_max - w_min)``. The fluctuation's integrated
    autocovariance (Poisson trains, Campbell's theorem) is
    ``D = a^2 [r_post ((r_pre tau_plus)^2 + r_pre tau_plus / 2) + r_post^2 r_pre tau_plus^2]
    + b^2 [r_pre ((r_post tau_minus)^2 + r_post tau_minus / 2) + r_pre^2 r_post tau_minus^2]
    - 2 a b r_pre r_post tau_plus tau_minus (r_pre + r_post)`` with ``a = A_plus``, ``b = A_minus g(w*)``, and
    the Ornstein-Uhlenbeck variance is ``D / (2 gamma)`` (van Rossum, Bi & Turrigiano 2000 give the same
    picture: a unimodal distribution whose width grows with the step sizes).
    """
    span = rule.w_max - rule.w_min
    tp, tm = float(rule.tau_plus), float(rule.tau_minus)
    w_star = rule.w_min + span * rule.A_plus * tp / (rule.A_minus * tm) if rule.A_minus > 0 else rule.w_max
    w_star = min(max(w_star, rule.w_min), rule.w_max)
    a = rule.A_plus
    b = rule.A_minus * (w_star - rule.w_min) / span
    d = a * a * (r_post * ((r_pre * tp) ** 2 + r_pre * tp / 2) + r_post**2 * r_pre * tp**2)
    d += b * b * (r_pre * ((r_post * tm) ** 2 + r_post * tm / 2) + r_pre**2 * r_post * tm**2)
    d -= 2 * a * b * r_pre * r_post * tp * tm * (r_pre + r_post)
    gamma = r_pre * r_post * rule.A_minus * tm / span
    return w_star, math.sqrt(max(d, 0.0) / (2 * gamma)) if gamma > 0 else math.nan


def independent(built: LIFBuilt, p: Projection) -> bool:
    """Whether a plastic group's input is too weak to correlate its targets with its sources: a current
    group whose largest total input (the largest in-degree of the built network x ``w_max``) moves its
    targets by at most :data:`INDEPENDENT_INPUT` of ``v_threshold - v_rest``."""
    if built.network.channels[p.channel].kind == KIND_CONDUCTANCE:
        return False
    pop = built.params.populations[p.target]
    k = int(np.bincount(p.indices, minlength=1).max()) if p.n_synapses else 0
    scale = p.weight / p.weight_peak if p.weight_peak else 1.0
    return k * abs(p.plasticity.w_max) * scale <= INDEPENDENT_INPUT * abs(pop.v_threshold - pop.v_rest)


def stdp_theory(built: LIFBuilt, ds: Any) -> dict[str, Any]:
    """Theory of every plastic group with independent trains (:func:`independent`), from the simulated rates:
    ``weight_drift_theory`` (additive: ``r_pre r_post (A_plus tau_plus - A_minus tau_minus)``, Kempter,
    Gerstner & van Hemmen 1999) and ``weight_final_mean_theory`` / ``weight_final_std_theory``
    (multiplicative: :func:`stationary_spread`); NaN elsewhere."""
    from neurodyn.schema import var_attrs

    plastic = plastic_projections(built.network)
    n = len(plastic)
    drift = np.full(n, np.nan)
    mean = np.full(n, np.nan)
    std = np.full(n, np.nan)
    names = list(ds["population"].values)
    for g, (_, p) in enumerate(plastic):
        if not independent(built, p):
            continue
        rule = p.plasticity
        r_pre = float(ds["rate"].values[names.index(p.source)])
        r_post = float(ds["rate"].values[names.index(p.target)])
        if rule.rule == "additive":
            drift[g] = r_pre * r_post * (rule.A_plus * rule.tau_plus - rule.A_minus * rule.tau_minus)
        else:
            mean[g], std[g] = stationary_spread(rule, r_pre, r_post)
    unit = weight_unit(built.network)
    out = {}
    if np.isfinite(drift).any():
        out["weight_drift_theory"] = (
            "plastic_projection",
            drift,
            var_attrs(
                unit + "/s",
                "predicted mean weight drift",
                source="additive STDP, independent trains: r_pre r_post (A_plus tau_plus - A_minus tau_minus) "
                "(Kempter, Gerstner & van Hemmen 1999), with the simulated rates",
                rel_tol=REL_TOL_DRIFT,
            ),
        )
    if np.isfinite(mean).any():
        out["weight_final_mean_theory"] = (
            "plastic_projection",
            mean,
            var_attrs(
                unit,
                "predicted stationary mean weight",
                source="multiplicative STDP, independent trains: w_min + (w_max - w_min) A_plus tau_plus / "
                "(A_minus tau_minus) (van Rossum, Bi & Turrigiano 2000)",
                rel_tol=REL_TOL_MEAN,
            ),
        )
        out["weight_final_std_theory"] = (
            "plastic_projection",
            std,
            var_attrs(
                unit,
                "predicted stationary standard deviation of the weights",
                source="multiplicative STDP, independent Poisson trains: diffusion approximation at the fixed "
                "point, sqrt(D / (2 gamma)) with the shot-noise autocovariance D (see the documentation)",
                rel_tol=REL_TOL_SPREAD,
            ),
        )
    return out
