"""Scenario schema of the ``lif_network`` family (validated, unit-resolved).

Conventions (those of Brette et al. 2007 and Brian2's examples):

* membrane: ``tau_m dv/dt = (v_rest - v) + sum_c x_c + sum_g (g / g_leak)(E_g - v) + drive``;
* current synapse ``x`` (volts): ``dx/dt = -x / tau``, a presynaptic spike adds ``weight`` (V) to ``x``;
  so ``weight`` is the jump of the synaptic drive, not the PSP amplitude;
* conductance synapse ``g`` (siemens): ``dg/dt = -g / tau``, a spike adds ``weight`` (S);
* alpha and biexponential synapses (``shape:``) add a rise variable ``h``: ``dx/dt = -x / tau + h``,
  ``dh/dt = -h / tau_rise`` (``tau_rise = tau`` for alpha); a spike adds ``weight N`` to ``h``, ``N`` chosen so
  that the peak of ``x`` (or ``g``) is ``weight``;
* after a spike ``v = v_reset`` and v is clamped for ``t_ref`` (synapses keep integrating);
* adaptation (``adaptation:``, the adaptive exponential integrate-and-fire neuron of Brette & Gerstner
  2005): ``tau_m dv/dt = (v_rest - v) + delta_T exp((v - v_T)/delta_T) - w / g_leak + ...`` and
  ``tau_w dw/dt = a (v - v_rest) - w`` (``w`` in amperes); a spike (``v >= v_threshold``, the spike
  detection level ``V_peak`` of AdEx) resets ``v = v_reset`` and adds ``b`` to ``w``. ``delta_T = 0`` is
  the adaptive LIF neuron (no exponential term; ``v_T`` unused).
"""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, FieldSerializationInfo, field_serializer, field_validator, model_validator

from neurodyn.errors import FieldIssue, did_you_mean
from neurodyn.quantities import (
    Conductance,
    Current,
    Frequency,
    NonNegativeTime,
    PositiveConductance,
    PositiveTime,
    Time,
    Voltage,
    parse_quantity,
    si_text,
)
from neurodyn.schema import PositiveInt, StrictModel

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


class UniformInit(StrictModel):
    """``v_init: {uniform: [low, high]}``."""

    uniform: tuple[Voltage, Voltage] = Field(
        description="lower and upper bound of the uniformly distributed initial membrane potential (V)"
    )

    @model_validator(mode="after")
    def _order(self) -> UniformInit:
        if self.uniform[0] > self.uniform[1]:
            raise FieldIssue("uniform", list(self.uniform), "the bounds are reversed: [low, high] needs low <= high")
        return self


class NormalInit(StrictModel):
    """``v_init: {normal: [mean, std]}``."""

    normal: tuple[Voltage, Voltage] = Field(
        description="mean and standard deviation of the normally distributed initial membrane potential (V)"
    )

    @model_validator(mode="after")
    def _std(self) -> NormalInit:
        if self.normal[1] < 0:
            raise FieldIssue("normal", list(self.normal), "[mean, std] needs std >= 0")
        return self


#: largest ``(v_threshold - v_T) / delta_T``: exp of it, the spike-initiation term just below the spike
#: detection level, stays far from float64 overflow (exp(709))
MAX_EXP_ARGUMENT = 100.0


class Adaptation(StrictModel):
    """Spike-frequency adaptation and exponential spike initiation (AdEx, Brette & Gerstner 2005).

    ``tau_w dw/dt = a (v - v_rest) - w``; each spike adds ``b`` to ``w``; ``w`` (A) enters the membrane
    equation as ``-w / g_leak``. ``delta_T > 0`` adds the spike-initiation current
    ``delta_T exp((v - v_T)/delta_T)`` (V); ``delta_T = 0`` gives the adaptive LIF neuron.
    """

    a: Conductance = Field(0.0, description="subthreshold adaptation coupling (S); negative values are allowed")
    b: Current = Field(0.0, description="spike-triggered jump of the adaptation current w (A)")
    tau_w: PositiveTime = Field(description="time constant of the adaptation current (s)")
    delta_T: Voltage = Field(0.0, description="slope factor of the exponential spike initiation (V); 0: adaptive LIF")
    v_T: Voltage | None = Field(
        None, description="soft threshold of the exponential spike initiation (V); required when delta_T > 0"
    )

    @model_validator(mode="after")
    def _exp_term(self) -> Adaptation:
        if self.delta_T < 0:
            raise FieldIssue("delta_T", self.delta_T, "must be >= 0 (0 V: adaptive LIF without exponential term)")
        if self.delta_T > 0 and self.v_T is None:
            raise FieldIssue("v_T", None, "delta_T > 0 needs the soft threshold v_T, e.g. v_T: -50 mV")
        return self


class Population(StrictModel):
    """A group of identical LIF neurons (adaptive exponential ones with ``adaptation``)."""

    size: PositiveInt = Field(description="number of neurons")
    tau_m: PositiveTime = Field(description="membrane time constant (s)")
    v_rest: Voltage = Field(description="resting potential, the reversal potential of the leak (V)")
    v_reset: Voltage = Field(description="potential the membrane is reset to after a spike (V)")
    v_threshold: Voltage = Field(description="spike threshold: a neuron fires when v reaches it (V)")
    t_ref: NonNegativeTime = Field(0.0, description="refractory period, during which v stays at v_reset (s)")
    g_leak: PositiveConductance = Field(
        10e-9, description="leak conductance (S); conductance synapses, current inputs (current:) and adaptation use it"
    )
    v_init: Voltage | UniformInit | NormalInit | None = Field(
        None,
        description="initial membrane potential (V): a value, {uniform: [low, high]} or {normal: [mean, std]}; "
        "v_rest when omitted",
    )
    adaptation: Adaptation | None = Field(
        None,
        description="adaptation current w and exponential spike initiation (AdEx): {a, b, tau_w, delta_T, v_T}; "
        "v_threshold is then the spike detection level",
    )

    @model_validator(mode="after")
    def _reset_below_threshold(self) -> Population:
        if self.v_reset >= self.v_threshold:
            raise FieldIssue("v_reset", self.v_reset, f"must be below v_threshold ({self.v_threshold:g} V)")
        return self

    @model_validator(mode="after")
    def _adaptation_stable(self) -> Population:
        ad = self.adaptation
        if ad is None:
            return self
        # the linear part of (v, w) has determinant (1 + a / g_leak) / (tau_m tau_w): a <= -g_leak makes it a
        # saddle, along which v and w run away without bound
        if not ad.a > -self.g_leak:
            raise FieldIssue(
                "adaptation.a", ad.a, f"must be > -g_leak ({-self.g_leak:g} S): the (v, w) system is unstable otherwise"
            )
        if ad.delta_T > 0:
            if not ad.v_T < self.v_threshold:
                raise FieldIssue(
                    "adaptation.v_T", ad.v_T, f"must be below v_threshold ({self.v_threshold:g} V, the spike detection)"
                )
            if (self.v_threshold - ad.v_T) / ad.delta_T > MAX_EXP_ARGUMENT:
                raise FieldIssue(
                    "adaptation.delta_T",
                    ad.delta_T,
                    f"(v_threshold - v_T) / delta_T must be <= {MAX_EXP_ARGUMENT:g}: exp of it would blow up "
                    f"(here {(self.v_threshold - ad.v_T) / ad.delta_T:.3g}); raise delta_T or lower v_threshold",
                )
        return self


#: generator parameters a scenario cannot set: the population size, and networkx's graph-class and
#: dispatch arguments (a graph class cannot be written in YAML; dispatching is not part of the model)
_NOT_GRAPH_ARGS = ("n", "create_using", "backend", "backend_kwargs")


class Connect(StrictModel):
    """How a synapse group is wired; exactly one rule.

    ``p``: each pair independently with probability p. ``in_degree``: every target gets exactly that many
    distinct sources. ``one_to_one``: i -> i. ``graph``: a networkx generator named with its ``args``
    (e.g. ``{graph: watts_strogatz_graph, args: {k: 10, p: 0.1}}``; the population size is passed as the
    generator's ``n`` argument, or as its first argument if it has none); undirected edges connect both
    ways.
    """

    p: float | None = Field(None, description="probability that a given (source, target) pair is connected")
    in_degree: int | None = Field(None, description="number of distinct sources every target neuron receives")
    one_to_one: bool | None = Field(None, description="connect source neuron i to target neuron i")
    graph: str | None = Field(
        None, description="networkx graph generator whose edges are the synapses, e.g. watts_strogatz_graph"
    )
    args: dict[str, Any] = Field({}, description="arguments of the graph generator (the population size is its n)")
    autapses: bool = Field(False, description="allow a neuron to connect to itself (source = target population)")

    @field_validator("p")
    @classmethod
    def _p(cls, v: float | None) -> float | None:
        if v is not None and not 0.0 <= v <= 1.0:
            raise ValueError("a probability in [0, 1]")
        return v

    @field_validator("in_degree")
    @classmethod
    def _k(cls, v: int | None) -> int | None:
        if v is not None and v < 0:
            raise ValueError("a non-negative integer")
        return v

    @field_validator("graph")
    @classmethod
    def _graph(cls, v: str | None) -> str | None:
        if v is None:
            return v
        import networkx as nx

        fn = getattr(nx, v, None)
        if not (v.endswith("_graph") and callable(fn)):
            names = [n for n in dir(nx) if n.endswith("_graph") and callable(getattr(nx, n))]
            raise ValueError(
                f"unknown networkx graph generator{did_you_mean(v, names)}; "
                "use a networkx *_graph function name such as watts_strogatz_graph"
            )
        return v

    @model_validator(mode="after")
    def _one_rule(self) -> Connect:
        # `is` checks: p = 0 and in_degree = 0 are valid rules (0 == False would drop them)
        rules = [
            k
            for k in ("p", "in_degree", "one_to_one", "graph")
            if getattr(self, k) is not None and getattr(self, k) is not False
        ]
        if len(rules) != 1:
            raise ValueError("give exactly one of p, in_degree, one_to_one: true, graph")
        if self.graph is not None:
            import networkx as nx

            sig = inspect.signature(getattr(nx, self.graph))
            try:
                # the population size goes to the parameter named n (e.g. random_regular_graph(d, n)),
                # else to the first positional one (as in build._graph_edges)
                if "n" in sig.parameters:
                    sig.bind(**{**self.args, "n": 1})
                    if "n" in self.args:
                        raise TypeError("n is the population size; do not give it in args")
                else:
                    sig.bind(1, **self.args)
            except TypeError as exc:
                raise ValueError(f"args for {self.graph}: {exc}") from None
        elif self.args:
            raise ValueError("args only go with graph")
        return self

    @model_validator(mode="after")
    def _args_named(self) -> Connect:
        # Many networkx generators end in **backend_kwargs, which swallows any keyword: a misspelt
        # argument would be accepted and ignored. Only the generator's named parameters are allowed.
        if self.graph is not None:
            import networkx as nx

            params = inspect.signature(getattr(nx, self.graph)).parameters
            named = [
                k
                for k, v in params.items()
                if v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL) and k not in _NOT_GRAPH_ARGS
            ]
            for key in self.args:
                if key not in named:
                    raise FieldIssue(
                        f"args.{key}",
                        self.args[key],
                        f"{self.graph} has no argument {key!r}{did_you_mean(key, named)}; "
                        f"its arguments: {', '.join(named) or 'none'}",
                    )
        return self


class Plasticity(StrictModel):
    """Pair-based spike-timing-dependent plasticity with traces (all-to-all pairing).

    Each synapse has its own weight ``w``; a presynaptic trace ``x_pre`` (per source neuron, decay
    ``tau_plus``) and a postsynaptic trace ``x_post`` (per target neuron, decay ``tau_minus``) jump by 1 at
    each spike of their neuron. A presynaptic spike first transmits ``w``, then depresses it,
    ``w <- w - A_minus f(w) x_post``; a postsynaptic spike potentiates every synapse it receives,
    ``w <- w + A_plus x_pre`` (the presynaptic spikes of the same step included); ``w`` is then clipped to
    ``[w_min, w_max]``. ``additive``: ``f = 1``; ``multiplicative`` (van Rossum et al. 2000, depression
    proportional to the weight): ``f(w) = (w - w_min) / (w_max - w_min)``. ``A_plus``, ``A_minus``, ``w_min``
    and ``w_max`` are in the units of the synapse's weight (V for current synapses, S for conductances).

    ``delay_pre`` and ``delay_post`` move a spike's plasticity events (its trace's jump and the weight change
    it triggers) to that much after the spike, as axonal and dendritic delays do; the effective pairing lag
    is ``(t_post + delay_post) - (t_pre + delay_pre)``. Events of one step run presynaptic first. The weight a
    spike transmits is the weight at the spike (its arrival follows the group's ``delay``).
    """

    rule: Literal["additive", "multiplicative"] = Field(
        description="additive (weight-independent) or multiplicative (depression proportional to w - w_min)"
    )
    tau_plus: PositiveTime = Field(description="decay time constant of the presynaptic trace (s)")
    tau_minus: PositiveTime = Field(description="decay time constant of the postsynaptic trace (s)")
    A_plus: int | float | str = Field(description="potentiation per pre-before-post pair at zero lag (weight units)")
    A_minus: int | float | str = Field(description="depression per post-before-pre pair at zero lag (weight units)")
    w_min: int | float | str = Field(0.0, description="lower bound of the weight (weight units)")
    w_max: int | float | str = Field(description="upper bound of the weight (weight units)")
    delay_pre: NonNegativeTime = Field(
        0.0,
        description="time from a presynaptic spike to its effect on the plasticity (the presynaptic trace's "
        "jump and the depression it triggers), rounded to whole steps (s); transmission keeps the group's delay",
    )
    delay_post: NonNegativeTime = Field(
        0.0,
        description="time from a postsynaptic spike to its effect on the plasticity (the postsynaptic trace's "
        "jump and the potentiation it triggers; e.g. dendritic back-propagation), rounded to whole steps (s)",
    )

    def resolve(self, dim: str, kind: str) -> None:
        """Parse the weight-like fields as ``dim`` (``voltage`` or ``conductance``) and check them."""
        for name in ("A_plus", "A_minus", "w_min", "w_max"):
            raw = getattr(self, name)
            try:
                val = parse_quantity(raw, dim)
            except ValueError as exc:
                raise FieldIssue(name, raw, f"{exc} for a {kind} synapse") from None
            if not math.isfinite(val):
                raise FieldIssue(name, raw, "must be finite")
            object.__setattr__(self, name, val)
        for name in ("A_plus", "A_minus"):
            if getattr(self, name) < 0:
                raise FieldIssue(name, getattr(self, name), "must be >= 0 (A_minus is the size of the depression)")
        if not self.w_min < self.w_max:
            raise FieldIssue("w_min", self.w_min, f"must be below w_max ({self.w_max:g})")
        if kind == "conductance" and self.w_min < 0:
            raise FieldIssue("w_min", self.w_min, "conductances are non-negative: w_min >= 0")


class Synapse(StrictModel):
    """A group of synapses (exponential, alpha or biexponential) from one population to one or more."""

    source: str = Field(description="presynaptic population")
    target: str | list[str] = Field(description="postsynaptic population, or a list of them")
    connect: Connect = Field(description="connection rule: exactly one of p, in_degree, one_to_one, graph")
    kind: Literal["current", "conductance"] = Field(
        "current", description="current (a spike adds to a drive in volts) or conductance (in siemens)"
    )
    weight: int | float | str = Field(
        description="jump of the synaptic drive per spike (V, current synapse) or of the conductance "
        "(S, conductance synapse), as a unit string such as 1.62 mV or 6 nS"
    )
    tau: PositiveTime = Field(description="decay time constant of the synapse (s)")
    delay: NonNegativeTime = Field(0.0, description="transmission delay, rounded to whole steps (s)")
    reversal: Voltage | None = Field(None, description="reversal potential, required for conductance synapses (V)")
    shape: Literal["exponential", "alpha", "biexponential"] = Field(
        "exponential",
        description="time course of the synaptic drive or conductance after a spike: exponential (jump, then "
        "decay with tau), alpha ((t/tau) exp(1 - t/tau)) or biexponential (rise tau_rise, decay tau); "
        "weight is its peak in every shape",
    )
    tau_rise: PositiveTime | None = Field(
        None, description="rise time constant of a biexponential synapse (s), below tau; only with shape: biexponential"
    )
    plasticity: Plasticity | None = Field(
        None, description="spike-timing-dependent plasticity of every synapse of the group (pair-based, traces)"
    )

    @model_validator(mode="after")
    def _shape(self) -> Synapse:
        if self.shape == "biexponential":
            if self.tau_rise is None:
                raise FieldIssue("tau_rise", None, "a biexponential synapse needs tau_rise, e.g. tau_rise: 1 ms")
            if not self.tau_rise < self.tau:
                raise FieldIssue(
                    "tau_rise", self.tau_rise, f"must be below tau ({self.tau:g} s); equal: use shape: alpha"
                )
        elif self.tau_rise is not None:
            raise FieldIssue(
                "tau_rise", self.tau_rise, "only a biexponential synapse (shape: biexponential) has tau_rise"
            )
        return self

    @model_validator(mode="after")
    def _weight_units(self) -> Synapse:
        dim = "voltage" if self.kind == "current" else "conductance"
        try:
            w = parse_quantity(self.weight, dim)
        except ValueError as exc:
            raise FieldIssue("weight", self.weight, f"{exc} for a {self.kind} synapse") from None
        object.__setattr__(self, "weight", w)
        if self.kind == "conductance" and self.reversal is None:
            raise ValueError("conductance synapses need a reversal potential, e.g. reversal: 0 mV")
        if self.kind == "conductance" and w < 0:
            raise ValueError("weight: conductances are non-negative; inhibition comes from the reversal potential")
        if self.plasticity is not None:
            try:
                self.plasticity.resolve(dim, self.kind)
            except FieldIssue as exc:
                raise FieldIssue(f"plasticity.{exc.subpath}", exc.value, exc.allowed) from None
            pl = self.plasticity
            if not pl.w_min <= w <= pl.w_max:
                raise FieldIssue(
                    "weight", w, f"the initial weight must lie in [w_min, w_max] = [{pl.w_min:g}, {pl.w_max:g}]"
                )
        return self

    @field_serializer("weight", when_used="json")
    def _weight_text(self, weight: Any) -> Any:
        # with its unit, which the kind implies: the stored scenario reads back (plain numbers need units)
        return si_text(weight, "voltage" if self.kind == "current" else "conductance")

    @field_serializer("plasticity", when_used="json")
    def _plasticity_text(self, pl: Plasticity | None, info: FieldSerializationInfo) -> Any:
        if pl is None:
            return None
        out = pl.model_dump(mode="json")
        dim = "voltage" if self.kind == "current" else "conductance"
        for name in ("A_plus", "A_minus", "w_min", "w_max"):
            out[name] = si_text(getattr(pl, name), dim)
        return out

    @property
    def targets(self) -> list[str]:
        """Target population names as a list."""
        return [self.target] if isinstance(self.target, str) else list(self.target)


class Input(StrictModel):
    """External input to a population.

    ``constant``: add ``drive`` (V) or ``current`` (A, divided by ``g_leak``) to the membrane equation.
    ``noise``: Gaussian white noise, ``tau_m dv = (... + mu) dt + sigma sqrt(tau_m) dW`` (Brunel 2000).
    ``poisson``: ``n_sources`` independent Poisson trains of ``rate`` per neuron, each spike adding
    ``weight`` to a synapse of ``kind``/``tau``/``reversal``.
    """

    kind: Literal["constant", "noise", "poisson"] = Field(
        description="constant drive, Gaussian white noise, or Poisson spike trains through a synapse"
    )
    target: str | list[str] = Field(description="population receiving the input, or a list of them")
    drive: Voltage | None = Field(None, description="constant: drive added to the membrane equation (V)")
    current: int | float | str | None = Field(
        None, description="constant: injected current (A), divided by g_leak, as a unit string such as 0.2 nA"
    )
    mu: Voltage = Field(0.0, description="noise: mean drive added to the membrane equation (V)")
    sigma: Voltage | None = Field(
        None, description="noise: intensity, tau_m dv = (... + mu) dt + sigma sqrt(tau_m) dW (V)"
    )
    rate: Frequency | None = Field(None, description="poisson: rate of each train (Hz)")
    n_sources: PositiveInt = Field(1, description="poisson: number of independent trains per neuron")
    weight: int | float | str | None = Field(
        None, description="poisson: jump per spike, V for a current synapse or S for a conductance synapse"
    )
    tau: Time | None = Field(None, description="poisson: decay time constant of the input synapse (s)")
    synapse: Literal["current", "conductance"] = Field(
        "current", description="poisson: kind of the input synapse, current or conductance"
    )
    reversal: Voltage | None = Field(None, description="poisson: reversal potential of a conductance input synapse (V)")

    @model_validator(mode="after")
    def _fields(self) -> Input:
        if self.kind == "constant":
            if (self.drive is None) == (self.current is None):
                raise ValueError("a constant input needs exactly one of drive (e.g. '15 mV') or current ('0.2 nA')")
            if self.current is not None:
                try:
                    object.__setattr__(self, "current", parse_quantity(self.current, "current"))
                except ValueError as exc:
                    raise FieldIssue("current", self.current, str(exc)) from None
        elif self.kind == "noise":
            if self.sigma is None or self.sigma < 0:
                raise ValueError("a noise input needs sigma >= 0, e.g. sigma: 5 mV")
        else:
            if self.rate is None or self.rate < 0:
                raise ValueError("a poisson input needs rate >= 0, e.g. rate: 10 Hz")
            if self.weight is None or self.tau is None or not self.tau > 0:
                raise ValueError("a poisson input needs weight and a positive tau")
            dim = "voltage" if self.synapse == "current" else "conductance"
            try:
                object.__setattr__(self, "weight", parse_quantity(self.weight, dim))
            except ValueError as exc:
                raise FieldIssue("weight", self.weight, f"{exc} for a {self.synapse} synapse") from None
            if self.synapse == "conductance" and self.reversal is None:
                raise ValueError("conductance inputs need a reversal potential")
        return self

    @field_serializer("weight", "current", when_used="json")
    def _quantity_text(self, value: Any, info: FieldSerializationInfo) -> Any:
        # with its unit, as for Synapse.weight; a value this kind of input does not read stays as written
        if not isinstance(value, float):
            return value
        dim = "current" if info.field_name == "current" else "voltage" if self.synapse == "current" else "conductance"
        return si_text(value, dim)

    @property
    def targets(self) -> list[str]:
        """Target population names as a list."""
        return [self.target] if isinstance(self.target, str) else list(self.target)


class LIFParams(StrictModel):
    """Parameters of a LIF network scenario."""

    populations: dict[str, Population] = Field(
        description="populations by name; global neuron indices follow their declaration order"
    )
    synapses: list[Synapse] = Field([], description="synapse groups between the populations")
    inputs: list[Input] = Field([], description="external inputs to the populations")

    @field_validator("populations")
    @classmethod
    def _nonempty(cls, v: dict[str, Population]) -> dict[str, Population]:
        if not v:
            raise ValueError("at least one population is needed")
        return v

    @model_validator(mode="after")
    def _names(self) -> LIFParams:
        names = list(self.populations)
        for i, syn in enumerate(self.synapses):
            for role, pops in (("source", [syn.source]), ("target", syn.targets)):
                for pop in pops:
                    if pop not in self.populations:
                        raise FieldIssue(
                            f"synapses.{i}.{role}",
                            pop,
                            f"no population {pop!r}{did_you_mean(pop, names)}; populations: {', '.join(names)}",
                        )
        for i, inp in enumerate(self.inputs):
            for pop in inp.targets:
                if pop not in self.populations:
                    raise FieldIssue(
                        f"inputs.{i}.target",
                        pop,
                        f"no population {pop!r}{did_you_mean(pop, names)}; populations: {', '.join(names)}",
                    )
        return self


class Probe(StrictModel):
    """Sample the membrane potential every ``every`` (default: each step) for the listed neuron ``indices``.

    ``every`` is rounded to whole steps of ``run.dt`` (the stored ``time`` coordinate holds the actual
    sampling instants); an interval below one step is refused.

    Indices are global (populations are concatenated in the order they are declared). ``record.state``
    names any state variable and indexes each population on its own; this form is kept as a shorthand
    for ``v`` alone.
    """

    every: Time | None = Field(
        None, description="sampling interval, rounded to whole steps (s); every step when omitted"
    )
    indices: list[Annotated[int, Field(ge=0)]] | Literal["all"] = Field(
        [0], description="global indices of the sampled neurons, or all"
    )

    @field_validator("every")
    @classmethod
    def _every_positive(cls, v: float | None) -> float | None:
        if v is not None and not v > 0:
            raise ValueError("a positive time such as '1 ms' (omit it to sample every step)")
        return v


#: the neurons of one population to sample: population-local indices, or ``all``
NeuronSelection = list[Annotated[int, Field(ge=0)]] | Literal["all"]


class WeightRecord(StrictModel):
    """Sampling of plastic weights (``record.weights``)."""

    every: Time = Field(description="sampling interval, rounded to whole steps (s)")
    bins: PositiveInt = Field(50, description="number of equal histogram bins between w_min and w_max")

    @field_validator("every")
    @classmethod
    def _every_positive(cls, v: float) -> float:
        if not v > 0:
            raise ValueError("a positive time such as '10 ms'")
        return v


class LIFRecord(StrictModel):
    """What a LIF run records."""

    spikes: bool = Field(True, description="store every spike (time, neuron index and population)")
    v: Probe | None = Field(
        None, description="sample the membrane potential of some neurons (global indices; see state)"
    )
    state: dict[str, dict[str, NeuronSelection]] | None = Field(
        None,
        description="state variables to sample, by name, each mapping population names to population-local "
        "neuron indices or all, e.g. {v: {exc: [0, 1], inh: all}, g_exc: {exc: [0]}}; the names are v "
        "(membrane potential), w (adaptation current, populations with adaptation) and one per synaptic "
        "channel: x_<sources> for a current synapse (V), g_<sources> "
        "for a conductance (S), <sources> being the presynaptic populations (input for Poisson input) feeding it",
    )
    every: Time | None = Field(
        None,
        description="sampling interval of the state variables, rounded to whole steps (s); every step when omitted",
    )
    weights: WeightRecord | None = Field(
        None,
        description="sample the weights of every plastic synapse group: mean, standard deviation and histogram "
        "over time, and the final weight of every synapse",
    )
    psp: bool = Field(
        False,
        description="store the unitary postsynaptic potential of every synapse group (peak amplitude and time "
        "to peak after one presynaptic spike, target at rest) as theory: psp_amplitude_theory, psp_peak_time_theory",
    )
    rate_bin: Time = Field(1e-3, description="bin width of the population-rate histogram (s)")
    analysis_start: Time = Field(
        0.0, description="rates and inter-spike intervals are analysed from this time on, past the transient (s)"
    )

    @field_validator("every")
    @classmethod
    def _every_positive(cls, v: float | None) -> float | None:
        if v is not None and not v > 0:
            raise ValueError("a positive time such as '1 ms' (omit it to sample every step)")
        return v

    @field_validator("rate_bin")
    @classmethod
    def _bin_positive(cls, v: float) -> float:
        if not v > 0:
            raise ValueError("a positive bin width such as '1 ms'")
        return v

    @field_validator("analysis_start")
    @classmethod
    def _start_not_negative(cls, v: float) -> float:
        if not v >= 0:
            raise ValueError("a time >= 0 from the start of the run, e.g. '200 ms'")
        return v

    @model_validator(mode="after")
    def _one_form(self) -> LIFRecord:
        # v and state both describe the sampled state: two forms at once would leave two sampling
        # intervals and two index conventions for one time axis
        if self.v is not None and self.state is not None:
            raise FieldIssue(
                "v", self.v.model_dump(), "give either record.v or record.state (record.state: {v: ...} covers it)"
            )
        if self.every is not None and self.state is None:
            raise FieldIssue(
                "every", self.every, "samples record.state; give record.state too (record.v has its own every)"
            )
        return self


def synapse_rise(syn: Synapse) -> float:
    """Rise time constant of a synapse group's channel: 0 (exponential), ``tau`` (alpha) or ``tau_rise``."""
    return {"exponential": 0.0, "alpha": float(syn.tau)}.get(syn.shape, float(syn.tau_rise or 0.0))


def peak_normalisation(tau: float, tau_rise: float) -> float:
    """``N`` such that ``h(0) = N``, ``dx/dt = -x/tau + h``, ``dh/dt = -h/tau_rise`` makes ``max x = 1``.

    ``x(t) = N (e^{-t/tau} - e^{-t/tau_rise}) / (1/tau_rise - 1/tau)``, peaking at
    ``t* = tau tau_rise ln(tau/tau_rise) / (tau - tau_rise)``; the alpha limit ``x = N t e^{-t/tau}`` gives
    ``N = e / tau``.
    """
    if tau_rise == tau:
        return math.e / tau
    t_peak = tau * tau_rise * math.log(tau / tau_rise) / (tau - tau_rise)
    return (1.0 / tau_rise - 1.0 / tau) / (math.exp(-t_peak / tau) - math.exp(-t_peak / tau_rise))


def population_layout(params: LIFParams) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Population names, start offsets (global index of their first neuron) and sizes in declaration order."""
    import numpy as np  # here: loading the schema does not need numpy

    names = list(params.populations)
    sizes = np.array([params.populations[n].size for n in names], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    return names, starts, sizes
