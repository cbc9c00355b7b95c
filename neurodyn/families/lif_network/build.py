"""Everything a ``lif_network`` run needs, checked and then built once: :func:`check` and :func:`build`.

:func:`build` makes a :class:`LIFBuilt`: the backend-independent :class:`Network` (per-neuron parameters,
synaptic channels, connectivity, delays, Poisson drives, initial potentials, per-population index
ranges) and, from it, the constant tables of the Numba time loop (:class:`~.kernels.NeuronConsts`,
:class:`~.kernels.Synapses`, :class:`~.kernels.Inputs`). Both backends (:mod:`.engine`, and Brian2 in
:mod:`.brian2_backend`) and the theory (:mod:`.theory`, which measures the in-degrees of graph rules on
it) read that one network, so for a given seed they all see exactly the same one. :func:`check` makes
every refusal and the memory estimate from the scenario alone, allocating nothing.

RNG streams
-----------
``SeedSequence(run.seed).spawn(3)`` gives three independent streams: connectivity, initial conditions,
dynamics (noise and Poisson input, as hashes of a key drawn from it and of counters naming step, stream,
neuron and draw, so they do not depend on the thread count; the same for every run of a build, see
:meth:`LIFBuilt.dynamics_rng`). Changing e.g. the noise never changes the wiring.

Connectivity
------------
Synapse indices are generated inside Numba (:mod:`.kernels`) straight into CSR arrays ordered by
presynaptic index (``indptr`` int64, ``indices`` int32; weights and delays are per projection), so a
synapse costs 4 bytes:

* ``p``: for each presynaptic neuron the postsynaptic targets are found by geometric skipping (the gap to
  the next target is Geometric(p)), O(number of synapses) instead of O(n_pre * n_post).
* ``in_degree``: for each postsynaptic neuron, ``k`` distinct sources by Floyd's algorithm (an exact
  uniform k-subset in O(k)). The sources are drawn twice from the same stream state: the first pass
  counts each source's synapses (the row pointers), the second writes every target straight into its
  source's row, so no post-major list of sources is ever held.
* ``one_to_one``: ``i -> i``.
* ``graph``: a networkx generator called with ``n`` = population size (and ``seed`` from the connectivity
  stream when it accepts one); undirected edges connect both ways, directed edges ``u -> v``.

Autapses (``i -> i`` within one population) are excluded unless ``connect.autapses`` is true; for a
graph, self-loops are kept only then. Every projection is drawn straight into its part of one
concatenated array (:class:`SynapseIndices`, then :attr:`Network.indices`, of which each projection keeps
a view), so the synapses are stored once, in the layout the kernel reads, and never copied: the peak
memory of a build is its 4 bytes per synapse plus O(neurons).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from neurodyn.errors import ScenarioError, did_you_mean
from neurodyn.families.base import Built
from neurodyn.families.lif_network import kernels
from neurodyn.families.lif_network.kernels import (
    KIND_CONDUCTANCE,
    KIND_CURRENT,
    KIND_RISE,
    Inputs,
    NeuronConsts,
    Synapses,
)
from neurodyn.families.lif_network.params import peak_normalisation, population_layout, synapse_rise
from neurodyn.families.lif_network.plasticity import plasticity_tables
from neurodyn.stepping import steps

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.lif_network.params import Connect, LIFParams, LIFRecord, Plasticity, Synapse
    from neurodyn.scenario import RunConfig, Scenario


@dataclass
class Channel:
    """One synaptic state variable per neuron (every neuron has it; zero where unused)."""

    kind: int  #: 0 = current (state in volts), 1 = conductance (siemens), 2 = rise variable of another channel
    tau: float  #: decay time constant (s)
    reversal: float  #: reversal potential (V); NaN for current channels
    #: alpha/biexponential channels: rise time constant (s; 0 for exponential channels)
    tau_rise: float = 0.0
    #: a rise variable (kind 2): the channel it feeds (``dx/dt = -x/tau + h``); -1 otherwise
    feeds: int = -1


@dataclass
class Projection:
    """One synapse group from one source population to one target population."""

    name: str
    source: str
    target: str
    pre_start: int
    post_start: int
    n_pre: int
    n_post: int
    indptr: np.ndarray  #: int64, n_pre + 1, CSR by presynaptic (local) index
    indices: np.ndarray  #: int32, local postsynaptic indices (a view of :attr:`Network.indices`)
    weight: float  #: V (current channel) or S (conductance channel)
    channel: int  #: index into ``Network.channels``
    delay_steps: int  #: ``steps(delay, dt)`` (:func:`neurodyn.stepping.steps`)
    #: spike-timing-dependent plasticity of the group (None: static weights), and the group's weight before
    #: the peak normalisation of alpha/biexponential synapses (``weight = weight_peak * scale``)
    plasticity: Plasticity | None = None
    weight_peak: float = 0.0

    @property
    def n_synapses(self) -> int:
        """Number of synapses."""
        return int(self.indices.size)

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Local ``(i_pre, j_post)`` index arrays (for Brian2's ``connect(i=, j=)``)."""
        counts = np.diff(self.indptr)
        i = np.repeat(np.arange(self.n_pre, dtype=np.int32), counts)
        return i, self.indices.astype(np.int32, copy=False)


@dataclass
class PoissonDrive:
    """``n_sources`` independent Poisson trains of ``rate`` into each neuron of ``start..stop-1``."""

    start: int
    stop: int
    rate: float  #: Hz per source
    n_sources: int
    weight: float  #: V or S per source spike
    channel: int


@dataclass
class Network:
    """The network of one scenario, for every backend (all SI, global neuron indices)."""

    n: int
    #: population names in declaration order, their first global index and their sizes
    names: list[str]
    starts: np.ndarray
    sizes: np.ndarray
    tau_m: np.ndarray
    v_rest: np.ndarray
    v_reset: np.ndarray
    v_threshold: np.ndarray
    g_leak: np.ndarray
    drive: np.ndarray
    noise_mu: np.ndarray
    noise_sigma: np.ndarray
    ref_steps: np.ndarray
    #: initial membrane potentials (V)
    v0: np.ndarray
    channels: list[Channel] = field(default_factory=list)
    projections: list[Projection] = field(default_factory=list)
    poisson: list[PoissonDrive] = field(default_factory=list)
    #: every projection's ``indices``, concatenated in projection order (the projections hold views)
    indices: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int32))
    #: adaptation (:class:`~.params.Adaptation`) per neuron: whether the neuron has it, ``a`` (S), ``b`` (A),
    #: ``tau_w`` (s), ``delta_T`` (V) and ``v_T`` (V); zeros (``tau_w`` 1 s) where it has none
    adaptive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    ad_a: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ad_b: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ad_tau_w: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ad_delta_T: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ad_v_T: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_synapses(self) -> int:
        """Total number of synapses."""
        return sum(p.n_synapses for p in self.projections)

    def population_of(self, name: str) -> slice:
        """Global index slice of population ``name``."""
        k = self.names.index(name)
        return slice(int(self.starts[k]), int(self.starts[k] + self.sizes[k]))


@dataclass
class LIFBuilt(Built):
    """A checked ``lif_network`` scenario with its network and the Numba loop's constant tables, built once.

    Nothing here is written by a run: each run starts its own state (:mod:`.engine`) from
    ``network.v0`` and a fresh dynamics stream, so a build can be simulated any number of times.
    """

    network: Network
    neurons: NeuronConsts
    synapses: Synapses
    inputs: Inputs
    #: length of the concatenated delay ring buffers (:class:`~.kernels.State` ``ring``)
    ring_size: int
    #: the sampled state variables and neurons (:func:`state_probes`)
    probes: Probes

    @property
    def params(self) -> LIFParams:
        """The validated network parameters."""
        return self.scenario.params

    @property
    def record(self) -> LIFRecord:
        """What the run records."""
        return self.scenario.record

    @property
    def backend(self) -> str:
        """``numba`` or ``brian2`` (``run.backend`` without a Brian2 code generation target)."""
        return self.scenario.run.backend.partition(":")[0]

    def dynamics_rng(self) -> np.random.Generator:
        """A fresh generator of the dynamics stream, the same for every call: the engine draws from it the key
        of the kernel's counter-based random numbers (noise, Poisson input; :func:`.kernels._counter`)."""
        return streams(self.scenario.run.seed)[2]


def streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for connectivity, initial conditions and dynamics."""
    conn_ss, init_ss, dyn_ss = np.random.SeedSequence(int(seed)).spawn(3)
    return np.random.default_rng(conn_ss), np.random.default_rng(init_ss), np.random.default_rng(dyn_ss)


def probe_indices(record: LIFRecord, n: int) -> np.ndarray:
    """Global indices of the neurons of ``record.v`` (the global-index form), checked against the network size."""
    probe = record.v
    if probe is None:
        return np.zeros(0, dtype=np.int64)
    if probe.indices == "all":
        return np.arange(n, dtype=np.int64)
    idx = np.asarray(probe.indices, dtype=np.int64)
    bad = idx[idx >= n]
    if bad.size:
        raise ScenarioError("record.v.indices", int(bad[0]), f"neuron indices must be < {n} (network size)")
    return idx


@dataclass(frozen=True)
class StateVariable:
    """A state variable a run can sample: ``v`` or one synaptic channel."""

    name: str
    #: -1 for ``v``, -2 for the adaptation current ``w``, else the index into ``Network.channels``
    channel: int
    units: str
    long_name: str
    #: the populations that have this variable (every population has ``v``; a channel only its targets)
    populations: tuple[str, ...]


def state_variables(params: LIFParams) -> dict[str, StateVariable]:
    """The recordable state variables of a network, by name, from its parameters alone.

    ``v``, ``w`` (the adaptation current, in the populations with ``adaptation``), and one variable per
    synaptic channel (channels are shared by every synapse group and Poisson
    input with the same kind, time constant and reversal potential): ``x_<sources>`` for a current channel
    (volts), ``g_<sources>`` for a conductance channel (siemens), ``<sources>`` being the presynaptic
    populations feeding it in declaration order (``input`` for Poisson input), joined by ``_``. Channels that
    would share a name get ``_1``, ``_2``, ... in channel order. The channel numbers are those of
    :func:`build_network` (both walk the inputs, then the synapse groups, through :func:`_channel_index`).
    """
    channels: list[Channel] = []
    sources: dict[int, list[str]] = {}
    targets: dict[int, set[str]] = {}
    for inp in params.inputs:
        if inp.kind == "poisson":
            c = _channel_index(channels, _kind(inp.synapse), inp.tau, inp.reversal)
            sources.setdefault(c, []).append("input")
            targets.setdefault(c, set()).update(inp.targets)
    for syn in params.synapses:
        c = _channel_index(channels, _kind(syn.kind), syn.tau, syn.reversal, synapse_rise(syn))
        c = channels[c].feeds if channels[c].kind == KIND_RISE else c  # named after the channel it drives
        sources.setdefault(c, []).append(syn.source)
        targets.setdefault(c, set()).update(syn.targets)
    order = [*params.populations, "input"]
    names = []
    for c, ch in enumerate(channels):
        if ch.kind == KIND_RISE:  # the rise variable of an alpha/biexponential channel: not recorded
            names.append("")
            continue
        srcs = sorted(set(sources[c]), key=order.index)
        names.append(("x_" if ch.kind == KIND_CURRENT else "g_") + "_".join(srcs))
    taken = {nm: names.count(nm) for nm in names}
    seen: dict[str, int] = {}
    out = {
        "v": StateVariable("v", -1, "V", "membrane potential", tuple(params.populations)),
    }
    adaptive = tuple(nm for nm, pop in params.populations.items() if pop.adaptation is not None)
    if adaptive:
        out["w"] = StateVariable("w", -2, "A", "adaptation current", adaptive)
    for c, (nm, ch) in enumerate(zip(names, channels)):
        if ch.kind == KIND_RISE:
            continue
        if taken[nm] > 1:
            seen[nm] = seen.get(nm, 0) + 1
            nm = f"{nm}_{seen[nm]}"
        feeders = ", ".join(sorted(set(sources[c]), key=order.index))
        shape = "" if ch.tau_rise == 0 else f", rise {ch.tau_rise * 1e3:g} ms"
        if ch.kind == KIND_CURRENT:
            units, what = "V", f"synaptic drive from {feeders} (current synapse, tau {ch.tau * 1e3:g} ms{shape})"
        else:
            units = "S"
            what = (
                f"synaptic conductance from {feeders} (tau {ch.tau * 1e3:g} ms{shape}, reversal "
                f"{ch.reversal * 1e3:g} mV)"
            )
        pops = tuple(p for p in params.populations if p in targets[c])
        out[nm] = StateVariable(nm, c, units, what, pops)
    return out


@dataclass
class Probes:
    """What a run samples: one kernel column per (variable, neuron), laid out on a shared neuron axis.

    The stored result holds each variable over ``(time, neuron)``, ``neuron`` being the union of the sampled
    neurons of every variable (in the order they were first named); a variable is NaN on the neurons it was
    not asked for.
    """

    #: sampled variables in the order they were named
    variables: list[StateVariable]
    #: per kernel column: the variable (position in :attr:`variables`), its channel (-1 for ``v``), the
    #: global neuron index and the position on the neuron axis
    var: np.ndarray
    channel: np.ndarray
    neuron: np.ndarray
    column: np.ndarray
    #: the neuron axis: global indices
    neurons: np.ndarray
    #: sampling interval (steps)
    every: int

    @property
    def size(self) -> int:
        """Number of kernel columns (0: nothing is sampled)."""
        return int(self.var.size)

    def n_samples(self, n_steps: int) -> int:
        """Samples per column over ``n_steps`` steps (at steps 0, every, 2 every, ...)."""
        return (n_steps + self.every - 1) // self.every if self.size else 0

    def stored_bytes(self, n_steps: int) -> float:
        """Bytes of the stored samples: 8 per value of every variable over (time, neuron)."""
        return 8.0 * len(self.variables) * self.neurons.size * self.n_samples(n_steps)


def state_probes(params: LIFParams, record: LIFRecord, dt: float) -> Probes:
    """Resolve ``record.state`` (or the global-index ``record.v``) against the network, refusing what cannot be.

    Raises
    ------
    ScenarioError
        An unknown variable or population, a variable the population does not have, an index beyond the
        population's size, or a sampling interval below one step.
    """
    names, starts, sizes = population_layout(params)
    start = {nm: int(s) for nm, s in zip(names, starts)}
    size = {nm: int(z) for nm, z in zip(names, sizes)}
    known = state_variables(params)
    requests: list[tuple[StateVariable, np.ndarray]] = []
    every_time, every_path = record.every, "record.every"
    if record.v is not None:
        requests.append((known["v"], probe_indices(record, int(sizes.sum()))))
        every_time, every_path = record.v.every, "record.v.every"
    for var_name, selection in (record.state or {}).items():
        var = known.get(var_name)
        if var is None:
            raise ScenarioError(
                f"record.state.{var_name}",
                selection,
                f"no state variable {var_name!r}{did_you_mean(var_name, list(known))}; recordable: {', '.join(known)}",
            )
        glob: list[int] = []
        for pop, idx in selection.items():
            path = f"record.state.{var_name}.{pop}"
            if pop not in size:
                raise ScenarioError(
                    path, idx, f"no population {pop!r}{did_you_mean(pop, names)}; populations: {', '.join(names)}"
                )
            if pop not in var.populations:
                raise ScenarioError(
                    path,
                    idx,
                    f"population {pop} has no {var_name} (it does not receive that channel); "
                    f"{var_name} exists in: {', '.join(var.populations)}",
                )
            local = np.arange(size[pop]) if idx == "all" else np.asarray(idx, dtype=np.int64)
            bad = local[local >= size[pop]]
            if bad.size:
                raise ScenarioError(path, int(bad[0]), f"indices of population {pop} must be < {size[pop]} (its size)")
            glob.extend((start[pop] + local).tolist())
        # each neuron once per variable, in the order named
        requests.append((var, np.array(list(dict.fromkeys(glob)), dtype=np.int64)))
    every = 1
    if every_time is not None:
        if steps(every_time, dt) < 1:
            raise ScenarioError(
                every_path, f"{every_time:g} s", f"at least run.dt ({dt:g} s); omit it to sample every step"
            )
        every = steps(every_time, dt, at_least=1)
    if record.v is not None:  # the global form keeps its neuron order as given, repeats included
        neurons = requests[0][1]
        columns = [np.arange(neurons.size)]
    else:
        axis: dict[int, int] = {}
        for _, glob_idx in requests:
            for i in glob_idx.tolist():
                axis.setdefault(i, len(axis))
        neurons = np.array(list(axis), dtype=np.int64)
        columns = [np.array([axis[i] for i in g.tolist()], dtype=np.int64) for _, g in requests]
    requests = [(v, g) for v, g in requests if g.size]
    columns = [c for c in columns if c.size]
    return Probes(
        variables=[v for v, _ in requests],
        var=np.concatenate(
            [np.full(g.size, k, dtype=np.int64) for k, (_, g) in enumerate(requests)] or [np.zeros(0, np.int64)]
        ),
        channel=np.concatenate(
            [np.full(g.size, v.channel, dtype=np.int64) for v, g in requests] or [np.zeros(0, np.int64)]
        ),
        neuron=np.concatenate([g for _, g in requests] or [np.zeros(0, np.int64)]),
        column=np.concatenate(columns or [np.zeros(0, np.int64)]),
        neurons=neurons if requests else np.zeros(0, dtype=np.int64),
        every=int(every),
    )


# --------------------------------------------------------------------------- connectivity


def _graph_edges(
    connect: Connect,
    n: int,
    rng: np.random.Generator,
    autapses: bool,
    path: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Directed edge list ``(pre, post)`` of a networkx generator on ``n`` nodes, sorted by (pre, post)."""
    import networkx as nx

    fn = getattr(nx, connect.graph)
    kwargs = dict(connect.args)
    if "seed" in inspect.signature(fn).parameters and "seed" not in kwargs:
        kwargs["seed"] = int(rng.integers(0, 2**31 - 1))
    try:
        g = fn(**kwargs, n=n) if "n" in inspect.signature(fn).parameters else fn(n, **kwargs)
    except Exception as exc:  # networkx raises many types for bad arguments
        raise ScenarioError(f"{path}.args", connect.args, f"{connect.graph}(n={n}) failed: {exc}") from None
    if g.number_of_nodes() != n:
        raise ScenarioError(
            f"{path}.graph", connect.graph, f"made {g.number_of_nodes()} nodes but the population has {n}"
        )
    g = nx.convert_node_labels_to_integers(g, ordering="default")
    edges = np.array(list(g.edges()), dtype=np.int64).reshape(-1, 2)
    if not g.is_directed():
        edges = np.concatenate([edges, edges[edges[:, 0] != edges[:, 1]][:, ::-1]])
    if not autapses:
        edges = edges[edges[:, 0] != edges[:, 1]]
    edges = np.unique(edges, axis=0)  # multigraphs: one synapse per pair
    return edges[:, 0], edges[:, 1]


def _p_capacity(mean: float) -> int:
    """Room for an Erdos-Renyi projection of ``mean`` expected synapses: six standard deviations more."""
    return int(mean + 6.0 * math.sqrt(mean + 1.0) + 16)


def planned_synapses(connect: Connect, n_pre: int, n_post: int, same: bool) -> int:
    """Entries a projection's indices are given before it is drawn: exact for ``in_degree`` and
    ``one_to_one``, six standard deviations above the mean for ``p``, 0 for a graph (its edges come first)."""
    if connect.p is not None:
        m = n_post - 1 if same and not connect.autapses else n_post
        return _p_capacity(connect.p * n_pre * m)
    if connect.in_degree is not None:
        return int(connect.in_degree) * n_post
    if connect.one_to_one:
        return n_post
    return 0


class SynapseIndices:
    """The synapses' postsynaptic indices of every projection, in one int32 array filled in place.

    Every projection's rule writes straight into the free tail of the array (:meth:`tail`), so the
    synapses are never held twice: the array is allocated once with the room of all projections
    (:func:`planned_synapses`), grows only when a rule needs more than planned (a graph rule, or an
    Erdos-Renyi count beyond six standard deviations), and :meth:`finish` trims the unused room in place.
    """

    def __init__(self, capacity: int) -> None:
        self.array = np.empty(max(int(capacity), 0), dtype=np.int32)
        self.size = 0

    def reserve(self, need: int) -> None:
        """Make room for ``need`` more entries (a copy into a larger array when there is not enough)."""
        if self.size + need > self.array.size:
            grown = np.empty(self.size + need, dtype=np.int32)
            grown[: self.size] = self.array[: self.size]
            self.array = grown

    def tail(self) -> np.ndarray:
        """The free room (a view; filled by a rule, then claimed by :meth:`claim`)."""
        return self.array[self.size :]

    def claim(self, count: int) -> tuple[int, int]:
        """The next ``count`` entries (already written through :meth:`tail`) as ``(start, stop)``."""
        start = self.size
        self.size += count
        return start, self.size

    def finish(self) -> np.ndarray:
        """The filled array, its unused room released without a copy (views must not exist yet)."""
        if self.size < self.array.size:
            self.array.resize(self.size, refcheck=False)
        return self.array


def connect_into(
    connect: Connect,
    n_pre: int,
    n_post: int,
    same: bool,
    rng: np.random.Generator,
    out: SynapseIndices,
    path: str = "connect",
) -> tuple[np.ndarray, tuple[int, int]]:
    """Draw one projection into ``out``: its CSR row pointers by presynaptic index and its ``(start, stop)``.

    Parameters
    ----------
    connect : Connect
        The validated rule.
    n_pre, n_post : int
        Population sizes.
    same : bool
        Source and target are the same population (autapses are then excluded unless allowed).
    rng : numpy.random.Generator
        The connectivity stream.
    out : SynapseIndices
        Where the indices go.
    path : str
        Field path for error messages.
    """
    check_rule(connect, n_pre, n_post, same, path)
    skip_diag = same and not connect.autapses
    if connect.p is not None:
        room = planned_synapses(connect, n_pre, n_post, same)
        while True:
            out.reserve(room)
            state = rng.bit_generator.state
            indptr, nnz = kernels.random_p_csr(rng, n_pre, n_post, float(connect.p), skip_diag, out.tail())
            if nnz >= 0:
                return indptr, out.claim(nnz)
            rng.bit_generator.state = state  # more synapses than planned: the same draws into more room
            room *= 2
    if connect.in_degree is not None:
        k = int(connect.in_degree)
        out.reserve(k * n_post)
        counter = np.random.Generator(type(rng.bit_generator)())
        counter.bit_generator.state = rng.bit_generator.state
        indptr = kernels.fixed_in_degree_csr(counter, rng, n_pre, n_post, k, skip_diag, out.tail())
        return indptr, out.claim(k * n_post)
    if connect.one_to_one:
        out.reserve(n_post)
        out.tail()[:n_post] = np.arange(n_post, dtype=np.int32)
        return np.arange(n_pre + 1, dtype=np.int64), out.claim(n_post)
    pre, post = _graph_edges(connect, n_pre, rng, connect.autapses or not same, path)
    indptr, indices = kernels.edges_to_csr(pre, post.astype(np.int32), n_pre)
    out.reserve(indices.size)
    out.tail()[: indices.size] = indices
    return indptr, out.claim(indices.size)


def connect(
    connect: Connect, n_pre: int, n_post: int, same: bool, rng: np.random.Generator, path: str = "connect"
) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(indptr, indices)`` by presynaptic index for one projection on its own (:func:`connect_into`)."""
    out = SynapseIndices(planned_synapses(connect, n_pre, n_post, same))
    indptr, _ = connect_into(connect, n_pre, n_post, same, rng, out, path)
    return indptr, out.finish()


# --------------------------------------------------------------------------- building


def _channel_index(
    channels: list[Channel], kind: int, tau: float, reversal: float | None, tau_rise: float = 0.0
) -> int:
    """The channel spikes of this kind are delivered to, appended if new.

    An alpha/biexponential channel (``tau_rise > 0``) is two rows: the channel ``x`` (or ``g``) and, right
    after it, its rise variable ``h`` (kind :data:`~.kernels.KIND_RISE`), which receives the spikes: the
    rise row's index is returned.
    """
    rev = float("nan") if reversal is None or kind == KIND_CURRENT else float(reversal)
    for c, ch in enumerate(channels):
        if (
            ch.kind == kind
            and ch.tau == tau
            and ch.tau_rise == tau_rise
            and (ch.reversal == rev or (math.isnan(ch.reversal) and math.isnan(rev)))
        ):
            return c + 1 if tau_rise > 0 else c
    channels.append(Channel(kind, float(tau), rev, float(tau_rise)))
    if tau_rise > 0:
        channels.append(Channel(KIND_RISE, float(tau_rise), float("nan"), 0.0, feeds=len(channels) - 1))
    return len(channels) - 1


def _kind(name: str) -> int:
    return KIND_CURRENT if name == "current" else KIND_CONDUCTANCE


def build(scenario: Scenario) -> LIFBuilt:
    """Build the network of a checked scenario and the constant tables of the Numba time loop.

    Raises
    ------
    ScenarioError
        When a connection rule cannot be satisfied (e.g. in-degree above the source size).
    """
    params: LIFParams = scenario.params
    dt = float(scenario.run.dt)
    net = build_network(params, scenario.run)
    synapses, ring_size = synapse_tables(net)
    if any(p.plasticity is not None for p in net.projections):
        synapses = plasticity_tables(net, dt, synapses)
    return LIFBuilt(
        scenario,
        network=net,
        neurons=adaptation_consts(net, dt, shaped_consts(net, dt, neuron_consts(net, dt))),
        synapses=synapses,
        inputs=input_tables(net, dt),
        ring_size=ring_size,
        probes=state_probes(params, scenario.record, dt),
    )


def build_network(params: LIFParams, run: RunConfig) -> Network:
    """Build the network of ``params`` (deterministic in ``run.seed``; ``run.dt`` sets delays in steps).

    Raises
    ------
    ScenarioError
        When a connection rule cannot be satisfied (e.g. in-degree above the source size).
    """
    dt = float(run.dt)
    names, starts, sizes = population_layout(params)
    n = int(sizes.sum())
    conn_rng, init_rng, _ = streams(run.seed)

    def per_neuron(attr: str) -> np.ndarray:
        return np.concatenate([np.full(s, float(getattr(params.populations[nm], attr))) for nm, s in zip(names, sizes)])

    tau_m, v_rest, v_reset = per_neuron("tau_m"), per_neuron("v_rest"), per_neuron("v_reset")
    v_threshold, g_leak = per_neuron("v_threshold"), per_neuron("g_leak")
    t_ref = per_neuron("t_ref")
    # a refractory period longer than the run acts like one of the run's length: capped there, so that any
    # finite t_ref converts to steps without overflowing int64
    ref_steps = np.rint(np.minimum(t_ref / dt, run.n_steps + 1)).astype(np.int64)

    v0 = v_rest.copy()
    for nm, start, size in zip(names, starts, sizes):
        init = params.populations[nm].v_init
        sl = slice(int(start), int(start + size))
        if init is None:
            continue
        if isinstance(init, float | int):
            v0[sl] = float(init)
        elif hasattr(init, "uniform"):
            v0[sl] = init_rng.uniform(init.uniform[0], init.uniform[1], size)
        else:
            v0[sl] = init_rng.normal(init.normal[0], init.normal[1], size)

    index = {nm: k for k, nm in enumerate(names)}
    drive = np.zeros(n)
    noise_mu = np.zeros(n)
    noise_var = np.zeros(n)
    channels: list[Channel] = []
    poisson: list[PoissonDrive] = []
    for inp in params.inputs:
        for tgt in inp.targets:
            k = index[tgt]
            sl = slice(int(starts[k]), int(starts[k] + sizes[k]))
            if inp.kind == "constant":
                drive[sl] += inp.drive if inp.drive is not None else inp.current / g_leak[sl]
            elif inp.kind == "noise":
                noise_mu[sl] += inp.mu
                noise_var[sl] += inp.sigma**2  # independent noises add in variance
            else:
                c = _channel_index(channels, _kind(inp.synapse), inp.tau, inp.reversal)
                poisson.append(
                    PoissonDrive(sl.start, sl.stop, float(inp.rate), int(inp.n_sources), float(inp.weight), c)
                )

    projections: list[Projection] = []
    pairs = [
        (s_i, syn, index[syn.source], index[tgt]) for s_i, syn in enumerate(params.synapses) for tgt in syn.targets
    ]
    out = SynapseIndices(
        sum(planned_synapses(syn.connect, int(sizes[src]), int(sizes[t]), src == t) for _, syn, src, t in pairs)
    )
    spans = []
    for s_i, syn, src, t in pairs:
        rise = synapse_rise(syn)
        c = _channel_index(channels, _kind(syn.kind), syn.tau, syn.reversal, rise)
        # alpha/biexponential: spikes go to the rise variable, scaled so that the channel peaks at weight
        scale = peak_normalisation(float(syn.tau), rise) if rise > 0 else 1.0
        indptr, span = connect_into(
            syn.connect,
            int(sizes[src]),
            int(sizes[t]),
            src == t,
            conn_rng,
            out,
            path=f"params.synapses.{s_i}.connect",
        )
        spans.append(span)
        projections.append(
            Projection(
                name=f"{syn.source}->{names[t]}",
                source=syn.source,
                target=names[t],
                pre_start=int(starts[src]),
                post_start=int(starts[t]),
                n_pre=int(sizes[src]),
                n_post=int(sizes[t]),
                indptr=indptr,
                indices=np.empty(0, dtype=np.int32),  # a view of the final array, set below
                weight=float(syn.weight) * scale,
                channel=c,
                delay_steps=steps(syn.delay, dt),
                plasticity=syn.plasticity,
                weight_peak=float(syn.weight),
            )
        )
    indices = out.finish()
    for p, (start, stop) in zip(projections, spans):
        p.indices = indices[start:stop]

    adaptation = adaptation_arrays(params)
    return Network(
        **adaptation,
        n=n,
        names=names,
        starts=starts,
        sizes=sizes,
        tau_m=tau_m,
        v_rest=v_rest,
        v_reset=v_reset,
        v_threshold=v_threshold,
        g_leak=g_leak,
        drive=drive,
        noise_mu=noise_mu,
        noise_sigma=np.sqrt(noise_var),
        ref_steps=ref_steps,
        v0=v0,
        channels=channels,
        projections=projections,
        poisson=poisson,
        indices=indices,
    )


def adaptation_arrays(params: LIFParams) -> dict[str, np.ndarray]:
    """Per-neuron adaptation parameters (the :class:`Network` fields ``adaptive``, ``ad_*``)."""
    names, _, sizes = population_layout(params)
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("adaptive", "ad_a", "ad_b", "ad_tau_w", "ad_delta_T", "ad_v_T")
    }
    for nm, size in zip(names, sizes):
        ad = params.populations[nm].adaptation
        vals = (
            (False, 0.0, 0.0, 1.0, 0.0, 0.0)
            if ad is None
            else (True, ad.a, ad.b, ad.tau_w, ad.delta_T, ad.v_T if ad.v_T is not None else 0.0)
        )
        for key, val in zip(cols, vals):
            cols[key].append(np.full(int(size), val))
    return {k: np.concatenate(v).astype(bool if k == "adaptive" else np.float64) for k, v in cols.items()}


# --------------------------------------------------------------------------- the time loop's constant tables


def neuron_consts(net: Network, dt: float) -> NeuronConsts:
    """Per-group propagators and constants, and per-channel constants, of ``net`` at step ``dt``.

    Groups are maximal runs of neurons sharing every constant, never straddling a population; a group's
    channels are those its population receives through a projection or a Poisson drive.
    """
    n = net.n
    n_ch = len(net.channels)
    ch_kind = np.array([ch.kind for ch in net.channels], dtype=np.int64)

    # which channels each neuron receives (per population: every input targets whole populations)
    receives = np.zeros((len(net.names), max(n_ch, 1)), dtype=bool)
    for p in net.projections:
        receives[net.names.index(p.target), p.channel] = True
    for d in net.poisson:
        receives[np.searchsorted(net.starts, d.start, side="right") - 1, d.channel] = True

    v_inf = net.v_rest + net.drive + net.noise_mu
    # exact OU increment of tau_m dv = ... + sigma sqrt(tau_m) dW over one step: std sigma sqrt((1-d^2)/2)
    noise_std = net.noise_sigma * np.sqrt(-np.expm1(-2.0 * dt / net.tau_m) / 2.0)
    per_neuron = (net.ref_steps, v_inf, net.tau_m, net.v_threshold, noise_std, net.g_leak)
    cuts = set(int(c) for c in net.starts) | {n}
    for arr in per_neuron:
        cuts |= set((np.flatnonzero(np.diff(arr) != 0) + 1).tolist())
    bounds = np.array(sorted(cuts), dtype=np.int64)
    g_start, g_stop = bounds[:-1], bounds[1:]
    pop = np.searchsorted(net.starts, g_start, side="right") - 1
    g_nch = np.zeros(g_start.size, dtype=np.int64)
    g_ch = np.zeros((g_start.size, max(n_ch, 1)), dtype=np.int64)
    g_kern = np.zeros((g_start.size, max(n_ch, 1)))
    g_cond = np.zeros(g_start.size, dtype=np.bool_)
    for g, (s0, p_) in enumerate(zip(g_start, pop)):
        chans = np.flatnonzero(receives[p_, :n_ch])
        g_nch[g] = chans.size
        g_ch[g, : chans.size] = chans
        g_cond[g] = bool(np.any(ch_kind[chans] == KIND_CONDUCTANCE))
        for k, c in enumerate(chans):
            g_kern[g, k] = current_kernel(dt, net.tau_m[s0], net.channels[c].tau)
    tau_g = net.tau_m[g_start]
    return NeuronConsts(
        v_reset=net.v_reset.astype(np.float64),
        g_start=g_start,
        g_stop=g_stop,
        g_ref=net.ref_steps[g_start].astype(np.int64),
        g_vinf=v_inf[g_start],
        g_decay=np.exp(-dt / tau_g),
        g_thr=net.v_threshold[g_start],
        g_noise=noise_std[g_start],
        g_dt_tau=dt / tau_g,
        g_inv_gl=1.0 / net.g_leak[g_start],
        g_cond=g_cond,
        g_nch=g_nch,
        g_ch=g_ch,
        g_kern=g_kern,
        ch_kind=ch_kind,
        ch_decay=np.array([np.exp(-dt / ch.tau) for ch in net.channels], dtype=np.float64),
        ch_rev=np.array([ch.reversal if ch.kind == KIND_CONDUCTANCE else 0.0 for ch in net.channels]),
    )


def shaped_consts(net: Network, dt: float, consts: NeuronConsts) -> NeuronConsts:
    """``consts`` with the alpha/biexponential channels' tables (``g_shaped``, ``ch_feed``, ``ch_feed_k``).

    A group receiving a rise variable ``h`` (spikes are delivered there) also integrates the channel ``x`` it
    feeds: that row is added to the group's channel list, ``g_cond`` is recomputed over the full list, and
    the exact one-step responses of ``v`` are ``K_x`` (:func:`current_kernel`) and ``K_h``, the (v, h) entry of
    ``exp(dt [[-1/tau_m, 1/tau_m, 0], [0, -1/tau, 1], [0, 0, -1/tau_rise]])``.
    """
    from scipy.linalg import expm

    chans_all = net.channels
    n_groups = consts.g_start.size
    ch_feed = np.array([ch.feeds for ch in chans_all], dtype=np.int64)
    ch_feed_k = np.zeros(len(chans_all))
    for c, ch in enumerate(chans_all):
        if ch.feeds >= 0:
            tau = chans_all[ch.feeds].tau
            ch_feed_k[c] = tau * float(current_kernel(dt, np.array([tau]), ch.tau)[0])
    g_shaped = np.zeros(n_groups, dtype=np.bool_)
    if not np.any(ch_feed >= 0):
        return consts._replace(g_shaped=g_shaped, ch_feed=ch_feed, ch_feed_k=ch_feed_k)
    g_nch, g_ch, g_kern, g_cond = (
        consts.g_nch.copy(),
        consts.g_ch.copy(),
        consts.g_kern.copy(),
        consts.g_cond.copy(),
    )
    for g, s0 in enumerate(consts.g_start):
        chans = [int(c) for c in consts.g_ch[g, : consts.g_nch[g]]]
        if not any(ch_feed[c] >= 0 for c in chans):
            continue
        g_shaped[g] = True
        chans = sorted(set(chans) | {int(ch_feed[c]) for c in chans if ch_feed[c] >= 0})
        g_nch[g] = len(chans)
        g_ch[g, : len(chans)] = chans
        g_cond[g] = any(chans_all[c].kind == KIND_CONDUCTANCE for c in chans)
        tau_m = float(net.tau_m[s0])
        for k, c in enumerate(chans):
            ch = chans_all[c]
            if ch.feeds < 0:
                g_kern[g, k] = float(current_kernel(dt, np.array([tau_m]), ch.tau)[0])
            else:
                tau = chans_all[ch.feeds].tau
                mat = np.array([[-1.0 / tau_m, 1.0 / tau_m, 0.0], [0.0, -1.0 / tau, 1.0], [0.0, 0.0, -1.0 / ch.tau]])
                g_kern[g, k] = expm(mat * dt)[0, 2]
    return consts._replace(
        g_nch=g_nch,
        g_ch=g_ch,
        g_kern=g_kern,
        g_cond=g_cond,
        g_shaped=g_shaped,
        ch_feed=ch_feed,
        ch_feed_k=ch_feed_k,
    )


def adaptation_consts(net: Network, dt: float, consts: NeuronConsts) -> NeuronConsts:
    """``consts`` with the adaptive groups' tables (``g_adapt``, ``g_ad``, ``g_akern``) filled in.

    With ``omega = w / g_leak`` (volts, so the matrix is well scaled) the linear part of ``(u = v - v_rest,
    omega)`` is ``A = [[-1/tau_m, -1/tau_m], [(a/g_L)/tau_w, -1/tau_w]]``; ``P = exp(A dt)``, and the exact
    responses to a unit constant input ``Q`` and to a unit input decaying with ``tau_c`` ``K_c`` are the
    last column of the exponential of the augmented matrix ``[[A, e], [0, -1/tau_c]] dt`` (``e = (1/tau_m,
    0)``; Van Loan 1978), which stays exact when ``-1/tau_c`` is an eigenvalue of ``A``.
    """
    from scipy.linalg import expm

    n_groups = consts.g_start.size
    n_ch = consts.g_ch.shape[1]
    g_adapt = np.zeros(n_groups, dtype=np.bool_)
    g_ad = np.zeros((n_groups, 13))
    g_akern = np.zeros((n_groups, n_ch, 2))
    for g, s0 in enumerate(consts.g_start):
        if not net.adaptive.size or not net.adaptive[s0]:
            continue
        g_adapt[g] = True
        tau_m, g_l, tau_w, a = net.tau_m[s0], net.g_leak[s0], net.ad_tau_w[s0], net.ad_a[s0]
        mat = np.array([[-1.0 / tau_m, -1.0 / tau_m], [a / g_l / tau_w, -1.0 / tau_w]])
        to_w = np.array([1.0, g_l])  # (u, omega) -> (u, w)

        def response(rate: float, mat: np.ndarray = mat, tau_m: float = tau_m, to_w: np.ndarray = to_w) -> np.ndarray:
            aug = np.zeros((3, 3))
            aug[:2, :2] = mat
            aug[0, 2] = 1.0 / tau_m
            aug[2, 2] = -rate
            return expm(aug * dt)[:2, 2] * to_w

        prop = expm(mat * dt)
        q = response(0.0)
        g_ad[g] = (
            prop[0, 0],
            prop[0, 1] / g_l,
            prop[1, 0] * g_l,
            prop[1, 1],
            q[0],
            q[1],
            net.ad_delta_T[s0],
            net.ad_v_T[s0],
            math.exp(-dt / tau_w),
            a,
            net.ad_b[s0],
            dt / tau_w,
            net.v_rest[s0],
        )
        for k in range(int(consts.g_nch[g])):
            ch = net.channels[int(consts.g_ch[g, k])]
            if ch.feeds < 0:
                g_akern[g, k] = response(1.0 / ch.tau)
            else:
                # a rise variable h: its response through the channel it feeds, (u, omega, x, h) augmented
                aug = np.zeros((4, 4))
                aug[:2, :2] = mat
                aug[0, 2] = 1.0 / tau_m
                aug[2, 2] = -1.0 / net.channels[ch.feeds].tau
                aug[2, 3] = 1.0
                aug[3, 3] = -1.0 / ch.tau
                g_akern[g, k] = expm(aug * dt)[:2, 3] * to_w
    return consts._replace(g_adapt=g_adapt, g_ad=g_ad, g_akern=g_akern, g_special=g_adapt | consts.g_shaped)


def _column(items: list, attr: str, dtype: Any) -> np.ndarray:
    return np.array([getattr(it, attr) for it in items], dtype=dtype)


def synapse_tables(net: Network) -> tuple[Synapses, int]:
    """The projections of ``net`` as the kernel reads them, and the length of their delay ring buffers.

    The row pointers are concatenated (``n_pre + 1`` per projection); the column indices are
    :attr:`Network.indices` itself, not a copy.
    """
    projs = net.projections
    indptr = np.empty(sum(p.indptr.size for p in projs), dtype=np.int64)
    pr_indptr_off = np.zeros(len(projs), dtype=np.int64)
    pr_indices_off = np.zeros(len(projs), dtype=np.int64)
    pr_ring_off = np.zeros(len(projs), dtype=np.int64)
    a = b = r = 0
    for k, p in enumerate(projs):
        pr_indptr_off[k], pr_indices_off[k] = a, b
        indptr[a : a + p.indptr.size] = p.indptr
        a += p.indptr.size
        b += p.indices.size
        if p.delay_steps > 0:
            pr_ring_off[k] = r
            r += (p.delay_steps + 1) * p.n_post
    tables = Synapses(
        pr_pre_start=_column(projs, "pre_start", np.int64),
        pr_n_pre=_column(projs, "n_pre", np.int64),
        pr_post_start=_column(projs, "post_start", np.int64),
        pr_n_post=_column(projs, "n_post", np.int64),
        pr_weight=_column(projs, "weight", np.float64),
        pr_channel=_column(projs, "channel", np.int64),
        pr_delay=_column(projs, "delay_steps", np.int64),
        pr_indptr_off=pr_indptr_off,
        pr_indices_off=pr_indices_off,
        pr_ring_off=pr_ring_off,
        indptr=indptr,
        indices=net.indices,
    )
    return tables, r


def input_tables(net: Network, dt: float) -> Inputs:
    """The Poisson drives of ``net`` as the kernel reads them, with their count CDFs tabulated."""
    cdfs = [poisson_cdf_table(d.rate * d.n_sources * dt) for d in net.poisson]
    return Inputs(
        po_start=_column(net.poisson, "start", np.int64),
        po_stop=_column(net.poisson, "stop", np.int64),
        po_lam=np.array([d.rate * d.n_sources * dt for d in net.poisson], dtype=np.float64),
        po_weight=_column(net.poisson, "weight", np.float64),
        po_channel=_column(net.poisson, "channel", np.int64),
        po_cdf_off=np.concatenate([[0], np.cumsum([c.size for c in cdfs])]).astype(np.int64),
        po_cdf=np.concatenate([np.zeros(0), *cdfs]),
    )


#: Poisson counts with a mean up to this are drawn by table lookup (faster than Generator.poisson)
POISSON_TABLE_MAX_MEAN = 30.0


def poisson_cdf_table(lam: float) -> np.ndarray:
    """CDF of Poisson(lam) at 0, 1, ... until it exceeds ``1 - 1e-16`` (empty if ``lam`` is too large).

    A uniform ``u`` maps to the count ``#{k : cdf[k] < u}``: exact inverse-transform sampling, except
    that the tail beyond the table (probability < 1e-16) is folded into its last entry.
    """
    if not 0.0 < lam <= POISSON_TABLE_MAX_MEAN:
        return np.zeros(0)
    # pmf by the recurrence p_k = p_{k-1} lam / k (e^{-30} does not underflow); past the mode the terms
    # shrink at least geometrically, so stopping at a term below 1e-17 leaves a tail below ~1e-16
    pmf = math.exp(-lam)
    cdf = [pmf]
    k = 0
    while k < lam or pmf > 1e-17:
        k += 1
        pmf *= lam / k
        cdf.append(cdf[-1] + pmf)
    out = np.array(cdf)
    out[-1] = 1.0
    return out


def current_kernel(dt: float, tau_m: np.ndarray, tau_c: float) -> np.ndarray:
    """Exact one-step response of ``v`` to a unit exponential current, ``K = (1/tau_m) int_0^dt ...``.

    ``K = (dt/tau_m) exp(-dt/tau_m) * expm1(a dt) / (a dt)`` with ``a = 1/tau_m - 1/tau_c``; this equals
    ``tau_c/(tau_c - tau_m) (exp(-dt/tau_c) - exp(-dt/tau_m))`` and tends to ``(dt/tau_m) exp(-dt/tau_m)``
    as ``tau_c -> tau_m`` without the cancellation of the difference form. For ``|a dt| >= 1`` the
    difference form is used instead (no cancellation there, and ``expm1`` would overflow for
    ``dt >> tau_m``).
    """
    tau_m = np.asarray(tau_m, dtype=np.float64)
    a_dt = dt * (1.0 / tau_m - 1.0 / tau_c)
    near = np.abs(a_dt) < 1.0
    # |a dt| < 1: expm1 form (no cancellation as tau_c -> tau_m); otherwise the difference form, which
    # is then well conditioned and does not overflow when dt >> tau_m
    safe = np.where(near & (a_dt != 0.0), a_dt, 1.0)
    ratio = np.where(a_dt == 0.0, 1.0, np.expm1(safe) / safe)
    k_near = dt / tau_m * np.exp(-dt / tau_m) * ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        k_far = tau_c / (tau_c - tau_m) * (np.exp(-dt / tau_c) - np.exp(-dt / tau_m))
    return np.where(near, k_near, k_far)


# --------------------------------------------------------------------------- checks and memory

#: networkx keeps a graph as dicts of dicts: roughly this many bytes per (directed) edge
_NX_BYTES_PER_EDGE = 500
#: graph rules up to this many synapses are built once by the check (their arguments are checked by networkx)
GRAPH_TRIAL_SYNAPSES = 200_000


def _num(args: dict[str, Any], key: str) -> float:
    value = args[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(key)
    return float(value)


#: directed synapses (both directions of an undirected edge) a networkx generator makes on ``n`` nodes
_GRAPH_SYNAPSES = {
    "complete_graph": lambda n, a: n * (n - 1),
    "watts_strogatz_graph": lambda n, a: n * _num(a, "k"),
    "connected_watts_strogatz_graph": lambda n, a: n * _num(a, "k"),
    "newman_watts_strogatz_graph": lambda n, a: n * _num(a, "k") * (1.0 + _num(a, "p")),
    "random_regular_graph": lambda n, a: n * _num(a, "d"),
    "barabasi_albert_graph": lambda n, a: 2.0 * n * _num(a, "m"),
    "gnp_random_graph": lambda n, a: _num(a, "p") * n * (n - 1),
    "erdos_renyi_graph": lambda n, a: _num(a, "p") * n * (n - 1),
    "fast_gnp_random_graph": lambda n, a: _num(a, "p") * n * (n - 1),
    "binomial_graph": lambda n, a: _num(a, "p") * n * (n - 1),
    "gnm_random_graph": lambda n, a: 2.0 * _num(a, "m"),
    "dense_gnm_random_graph": lambda n, a: 2.0 * _num(a, "m"),
    "cycle_graph": lambda n, a: 2.0 * n,
    "path_graph": lambda n, a: 2.0 * n,
    "star_graph": lambda n, a: 2.0 * n,
    "empty_graph": lambda n, a: 0.0,
}


def graph_synapses(graph: str, args: dict[str, Any], n: float) -> float:
    """Expected synapse count of a networkx rule on ``n`` neurons.

    Known generators have a formula in their arguments; any other generator gets the safe upper bound
    ``n^2`` (every ordered pair, self-loops included: duplicate edges are merged into one synapse).
    """
    bound = n * n
    formula = _GRAPH_SYNAPSES.get(graph)
    if formula is None:
        return bound
    try:
        return min(max(float(formula(n, args)), 0.0), bound)
    except (KeyError, TypeError):
        return bound


def _expected_synapses(conn: Connect, n_pre: float, n_post: float, same: bool) -> tuple[float, float]:
    """Expected synapse count of a rule, and the peak bytes drawing it needs beyond its kept arrays.

    Rules write straight into the concatenated index array (:class:`SynapseIndices`): ``p`` reserves six
    standard deviations of room (released afterwards), ``in_degree`` holds a fill pointer and a mark per
    source, and a graph holds networkx's graph and its edge list before its indices are copied in.
    """
    m = n_post - 1 if same and not conn.autapses else n_post
    if conn.p is not None:
        mean = conn.p * n_pre * m
        return mean, 4.0 * (_p_capacity(mean) - mean)
    if conn.in_degree is not None:
        return float(conn.in_degree) * n_post, 9.0 * n_pre + 8.0 * conn.in_degree
    if conn.one_to_one:
        return float(n_post), 0.0
    count = graph_synapses(conn.graph, conn.args, float(n_pre))
    return count, (_NX_BYTES_PER_EDGE + 4.0) * count


def check_rule(connect: Connect, n_pre: int, n_post: int, same: bool, path: str) -> None:
    """Refuse a connection rule that cannot be satisfied between populations of these sizes.

    Called by :func:`check` (so ``validate`` and every sweep point refuse it) and by :func:`connect` when
    the network is built.
    """
    if connect.in_degree is not None:
        avail = n_pre - 1 if same and not connect.autapses else n_pre
        if connect.in_degree > avail:
            raise ScenarioError(f"{path}.in_degree", connect.in_degree, f"at most {avail} (distinct sources available)")
    elif connect.one_to_one and n_pre != n_post:
        raise ScenarioError(
            f"{path}.one_to_one", True, f"needs equal population sizes (source {n_pre}, target {n_post})"
        )
    elif connect.graph is not None and n_pre != n_post:
        raise ScenarioError(
            f"{path}.graph", connect.graph, f"needs equal population sizes (source {n_pre}, target {n_post})"
        )


def estimate_parts(params: LIFParams, run: RunConfig, record: LIFRecord) -> dict[str, float]:
    """Peak bytes of a run by component (synapses, transient, delays, state, probe, rate histogram, spikes).

    Counts the CSR arrays (4 bytes per synapse, 16 per presynaptic neuron; 52 more per plastic synapse), the
    largest transient buffer while drawing them (:func:`_expected_synapses`; the synapses are drawn in place,
    never copied), per-neuron state, delay ring buffers (and the spike history of plasticity with trace
    delays), the sampled state variables (exact), the
    population-rate histogram and the spikes (the buffer, or the spikes expected from the predicted rates if
    that is more: a run held in memory keeps them).
    """
    names, starts, sizes = population_layout(params)
    n = float(sizes.sum())
    index = {nm: k for k, nm in enumerate(names)}
    kept = 0.0
    peak_extra = 0.0
    ring = 0.0
    channels = set()
    for syn in params.synapses:
        channels.add((syn.kind, syn.tau, syn.reversal))
        src = index[syn.source]
        for tgt in syn.targets:
            t = index[tgt]
            count, transient = _expected_synapses(syn.connect, float(sizes[src]), float(sizes[t]), src == t)
            # the indices, and the row pointers twice (the projection's and the kernel's concatenated table)
            kept += 4.0 * count + 16.0 * (sizes[src] + 1)
            if syn.plasticity is not None:
                # a weight (8), the incoming index (position 8, source 4) and its sort (8) per synapse, and the
                # final weights with their indices (24); the traces are per neuron
                kept += 52.0 * count
            # a graph's indices are copied into a grown array: the synapses drawn so far are then held twice
            grow = kept if syn.connect.graph is not None else 0.0
            peak_extra = max(peak_extra, transient + grow)
            ring += _ring_bytes(syn, float(sizes[t]), run.dt)
    # plasticity with trace delays keeps every neuron's spikes of the last (longest delay + 1) steps
    trace_delays = [
        steps(max(s.plasticity.delay_pre, s.plasticity.delay_post), run.dt) if run.dt else 0
        for s in params.synapses
        if s.plasticity is not None
    ]
    if trace_delays and max(trace_delays) > 0:
        ring += 8.0 * (max(trace_delays) + 1) * n
    for inp in params.inputs:
        if inp.kind == "poisson":
            channels.add((inp.synapse, inp.tau, inp.reversal))
    probe = 0.0
    spikes = 0.0
    if run.duration and run.dt:
        probe = state_probes(params, record, run.dt).stored_bytes(run.n_steps)
        expected = expected_spikes(params, run)
        if record.spikes and expected is not None:
            spikes = expected * SPIKE_BYTES
    n_bins = max(1.0, round(run.n_steps * run.dt / record.rate_bin)) if run.duration and run.dt else 1.0
    return {
        "synapses": kept,
        "transient": peak_extra,
        "delays": ring,
        "state": 8.0 * n * (16 + 2 * len(channels)),
        "probe": probe,
        "rate histogram": 8.0 * n_bins * len(names) * 2,  # counts, then rates
        # the spike buffer (drained between chunks: 12 bytes for each of max(2^18, 4 n) spikes), or the spikes
        # kept by a run held in memory
        "spikes": max(12.0 * max(2.0**18, 4.0 * n), spikes),
    }


def _ring_bytes(syn: Synapse, n_post: float, dt: float | None) -> float:
    """Bytes of a projection's delay ring buffer: ``delay / dt + 1`` slots of 8 bytes per target neuron."""
    n = steps(syn.delay, dt) if dt else 0
    return 8.0 * (n + 1) * n_post if n > 0 else 0.0


def estimate_bytes(params: LIFParams, run: RunConfig, record: LIFRecord) -> int:
    """Memory a run needs at its peak, estimated before anything is allocated (sum of :func:`estimate_parts`)."""
    return int(sum(estimate_parts(params, run, record).values()))


def check(scenario: Scenario) -> None:
    """Every check a ``lif_network`` run makes, done before anything is allocated.

    Connection rules against the population sizes, the sampled state variables (names, populations,
    indices, interval; :func:`state_probes`), each synapse
    group's delay ring buffer, and the whole run's memory estimate.

    Raises
    ------
    ScenarioError
        A rule, delay or probe that cannot be satisfied (naming its field).
    ResourceError
        With the estimate, what it is made of and the available memory.
    """
    from neurodyn.resources import budget_bytes, format_bytes, require_memory

    params: LIFParams = scenario.params
    record: LIFRecord = scenario.record
    run = scenario.run
    names, _, sizes = population_layout(params)
    index = {nm: k for k, nm in enumerate(names)}
    budget = budget_bytes()
    n_syn = 0.0
    for s_i, syn in enumerate(params.synapses):
        src = index[syn.source]
        n_post = 0.0
        for tgt in syn.targets:
            t = index[tgt]
            check_rule(syn.connect, int(sizes[src]), int(sizes[t]), src == t, f"params.synapses.{s_i}.connect")
            n_syn += _expected_synapses(syn.connect, float(sizes[src]), float(sizes[t]), src == t)[0]
            n_post += float(sizes[t])
        ring = _ring_bytes(syn, n_post, run.dt)
        if ring > budget:
            slots = steps(syn.delay, run.dt) + 1
            raise ScenarioError(
                f"params.synapses.{s_i}.delay",
                f"{syn.delay:g} s",
                f"its ring buffer of {slots:.3g} steps x {n_post:.0f} neurons x 8 B would need {format_bytes(ring)}, "
                f"more than the {format_bytes(budget)} a run may use; use a shorter delay or a larger run.dt",
            )
    if record.analysis_start >= run.n_steps * run.dt:
        raise ScenarioError(
            "record.analysis_start",
            f"{record.analysis_start:g} s",
            f"must be before the end of the run (run.duration = {run.duration:g} s); nothing would be analysed",
        )
    state_probes(params, record, run.dt)  # variables, populations, indices, interval
    parts = estimate_parts(params, run, record)
    need = sum(parts.values())
    detail = ", ".join(f"{k} {format_bytes(v)}" for k, v in parts.items() if v >= 2**20)
    # the message names what dominates the estimate: the network, the delay buffers or the v probe
    what = "params.populations, params.synapses: network too large"
    hint = "reduce population sizes, connection probability or in-degree"
    largest = max(parts, key=parts.__getitem__)
    if largest == "delays":
        what, hint = "params.synapses.*.delay: delay buffers too large", "use shorter delays or a larger run.dt"
    elif largest == "probe":
        field = "record.v: v" if record.v is not None else "record.state: state"
        what, hint = f"{field} recording too large", "record fewer neurons or variables, or sample less often"
    elif largest == "spikes":
        what, hint = (
            "record.spikes: spike recording too large",
            "record: {spikes: false}, a shorter run, or fewer neurons",
        )
    elif largest == "rate histogram":
        what, hint = f"record.rate_bin = {record.rate_bin:g} s: too many bins", "use a wider bin"
    require_memory(need, f"about {n_syn:.3g} synapses x 4 B, {int(sizes.sum())} neurons; {detail}", what, hint)
    # networkx checks a generator's arguments against n only when called (k > n, n * d odd, ...): call it
    # once here, on the real size, so validate refuses what the build would. Only small graphs are tried:
    # a large one would cost the build's time twice.
    for s_i, syn in enumerate(params.synapses):
        src = index[syn.source]
        if syn.connect.graph is None:
            continue
        for tgt in syn.targets:
            n_pre, same = int(sizes[src]), src == index[tgt]
            if graph_synapses(syn.connect.graph, syn.connect.args, n_pre) <= GRAPH_TRIAL_SYNAPSES:
                _graph_edges(
                    syn.connect,
                    n_pre,
                    np.random.default_rng(0),
                    syn.connect.autapses or not same,
                    f"params.synapses.{s_i}.connect",
                )


#: bytes stored per spike: time (8), global index (4), population (2)
SPIKE_BYTES = 14


def expected_spikes(params: LIFParams, run: RunConfig) -> float | None:
    """Spikes expected over the run from the predicted rates (:mod:`.theory`), or None without a prediction."""
    from neurodyn.families.lif_network.theory import self_consistent_rates

    try:
        names, nu, _ = self_consistent_rates(params, float(run.dt))
    except (ArithmeticError, ValueError):  # no prediction rather than a failed check
        return None
    if not np.all(np.isfinite(nu)):
        return None
    sizes = np.array([params.populations[nm].size for nm in names], dtype=np.float64)
    return float(np.sum(np.asarray(nu) * sizes) * run.n_steps * run.dt)


def max_spikes(params: LIFParams, run: RunConfig) -> float:
    """At most this many spikes: every neuron firing once per refractory period (and at most once a step)."""
    duration = run.n_steps * run.dt
    total = 0.0
    for pop in params.populations.values():
        per_neuron = min(run.n_steps, math.floor(duration / pop.t_ref) + 1) if pop.t_ref > 0 else run.n_steps
        total += pop.size * per_neuron
    return float(total)


def recording_estimate(scenario: Scenario) -> str:
    """One line for ``neurodyn validate``: the size of what the run records (spikes and sampled state)."""
    from neurodyn.resources import format_bytes

    params, record, run = scenario.params, scenario.record, scenario.run
    probes = state_probes(params, record, run.dt)
    state = probes.stored_bytes(run.n_steps)
    parts = []
    total = state
    about = "about"
    if record.spikes:
        expected = expected_spikes(params, run)
        if expected is not None:
            total += expected * SPIKE_BYTES
            parts.append(
                f"spikes ~{format_bytes(expected * SPIKE_BYTES)} ({expected:.3g} expected from the predicted rates)"
            )
        else:
            bound = max_spikes(params, run)
            total += bound * SPIKE_BYTES
            about = "at most"
            parts.append(
                f"spikes at most {format_bytes(bound * SPIKE_BYTES)} (no rate prediction: {bound:.3g} spikes if "
                "every neuron fired once per refractory period)"
            )
    if probes.size:
        names = ", ".join(v.name for v in probes.variables)
        n_samples = probes.n_samples(run.n_steps)
        n_neurons = f"{probes.neurons.size} neuron" + ("s" if probes.neurons.size != 1 else "")
        parts.append(f"state {format_bytes(state)} ({names} x {n_neurons} x {n_samples} samples)")
    return f"recording: {about} {format_bytes(total)}" + (f" ({'; '.join(parts)})" if parts else " (nothing recorded)")
