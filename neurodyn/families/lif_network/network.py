"""Backend-independent construction of a ``lif_network``: per-neuron parameters, channels, connectivity.

Both backends (Numba engine, Brian2) call :func:`build_network`, so for a given seed they simulate exactly
the same network with the same initial conditions.

RNG streams
-----------
``SeedSequence(run.seed).spawn(3)`` gives three independent streams: connectivity, initial conditions,
dynamics (noise and Poisson input). Changing e.g. the noise never changes the wiring.

Connectivity
------------
Synapse indices are generated inside Numba straight into CSR arrays ordered by presynaptic index
(``indptr`` int64, ``indices`` int32; weights and delays are per projection), so a synapse costs 4 bytes:

* ``p``: for each presynaptic neuron the postsynaptic targets are found by geometric skipping (the gap to
  the next target is Geometric(p)), O(number of synapses) instead of O(n_pre * n_post).
* ``in_degree``: for each postsynaptic neuron, ``k`` distinct sources by Floyd's algorithm (an exact
  uniform k-subset in O(k)); the (post-major) source lists are then transposed to CSR by presynaptic
  index with a counting sort.
* ``one_to_one``: ``i -> i``.
* ``graph``: a networkx generator called with ``n`` = population size (and ``seed`` from the connectivity
  stream when it accepts one); undirected edges connect both ways, directed edges ``u -> v``.

Autapses (``i -> i`` within one population) are excluded unless ``connect.autapses`` is true; for a
graph, self-loops are kept only then.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

from neurodyn.errors import ScenarioError
from neurodyn.families.lif_network.dataset import population_layout
from neurodyn.families.lif_network.kernels import KIND_CONDUCTANCE, KIND_CURRENT
from neurodyn.stepping import steps


@dataclass
class Channel:
    """One synaptic state variable per neuron (every neuron has it; zero where unused)."""

    kind: int  #: 0 = current (state in volts), 1 = conductance (siemens)
    tau: float  #: decay time constant (s)
    reversal: float  #: reversal potential (V); NaN for current channels


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
    indices: np.ndarray  #: int32, local postsynaptic indices
    weight: float  #: V (current channel) or S (conductance channel)
    channel: int  #: index into ``Network.channels``
    delay_steps: int  #: ``steps(delay, dt)`` (:func:`neurodyn.stepping.steps`)

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
    """Everything a backend needs to simulate one scenario (all SI, global neuron indices)."""

    n: int
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
    v0: np.ndarray
    channels: list[Channel] = field(default_factory=list)
    projections: list[Projection] = field(default_factory=list)
    poisson: list[PoissonDrive] = field(default_factory=list)

    @property
    def n_synapses(self) -> int:
        """Total number of synapses."""
        return sum(p.n_synapses for p in self.projections)

    def population_of(self, name: str) -> slice:
        """Global index slice of population ``name``."""
        k = self.names.index(name)
        return slice(int(self.starts[k]), int(self.starts[k] + self.sizes[k]))


def streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for connectivity, initial conditions and dynamics."""
    conn_ss, init_ss, dyn_ss = np.random.SeedSequence(int(seed)).spawn(3)
    return np.random.default_rng(conn_ss), np.random.default_rng(init_ss), np.random.default_rng(dyn_ss)


# --------------------------------------------------------------------------- Numba generators


@numba.njit(cache=True)
def _random_p(
    rng: np.random.Generator, n_pre: int, n_post: int, p: float, skip_diag: bool, capacity: int
) -> tuple[np.ndarray, np.ndarray]:
    """CSR of an Erdos-Renyi projection by geometric skipping; grows its buffer if ``capacity`` is short."""
    indptr = np.zeros(n_pre + 1, dtype=np.int64)
    indices = np.empty(max(capacity, 16), dtype=np.int32)
    nnz = 0
    if p <= 0.0:
        return indptr, indices[:0].copy()
    log_q = math.log1p(-p) if p < 1.0 else -np.inf
    for i in range(n_pre):
        # candidates 0..m-1 (the diagonal removed and the rest shifted when autapses are excluded)
        m = n_post - 1 if (skip_diag and i < n_post) else n_post
        j = -1
        while True:
            if p >= 1.0:
                j += 1
            else:
                u = 1.0 - rng.random()  # in (0, 1]
                j += 1 + int(math.floor(math.log(u) / log_q))
            if j >= m:
                break
            jj = j + 1 if (skip_diag and i < n_post and j >= i) else j
            if nnz == indices.size:
                grown = np.empty(indices.size * 2, dtype=np.int32)
                grown[:nnz] = indices[:nnz]
                indices = grown
            indices[nnz] = jj
            nnz += 1
        indptr[i + 1] = nnz
    if nnz >= 0.9 * indices.size:
        return indptr, indices[:nnz]  # the slack is a few sigma: no copy (it would double the peak)
    return indptr, indices[:nnz].copy()


@numba.njit(cache=True)
def _fixed_in_degree(
    rng: np.random.Generator, n_pre: int, n_post: int, k: int, skip_diag: bool
) -> tuple[np.ndarray, np.ndarray]:
    """CSR (by presynaptic index) where every target has exactly ``k`` distinct sources (Floyd sampling)."""
    sources = np.empty(n_post * k, dtype=np.int32)
    mark = np.zeros(n_pre, dtype=np.bool_)
    for j in range(n_post):
        diag = skip_diag and j < n_pre
        m = n_pre - 1 if diag else n_pre
        base = j * k
        # Floyd: for t = m-k .. m-1 draw r in [0, t]; take t if r is taken already -> uniform k-subset
        for c in range(k):
            t = m - k + c
            r = rng.integers(0, t + 1)
            if mark[r]:
                r = t
            mark[r] = True
            sources[base + c] = r
        for c in range(k):
            r = sources[base + c]
            mark[r] = False
            if diag and r >= j:
                sources[base + c] = r + 1
    # counting-sort transpose: CSR by presynaptic index, targets ascending within a row
    indptr = np.zeros(n_pre + 1, dtype=np.int64)
    for s in range(sources.size):
        indptr[sources[s] + 1] += 1
    for i in range(n_pre):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    indices = np.empty(sources.size, dtype=np.int32)
    for j in range(n_post):
        for c in range(k):
            i = sources[j * k + c]
            indices[fill[i]] = j
            fill[i] += 1
    return indptr, indices


@numba.njit(cache=True)
def _edges_to_csr(pre: np.ndarray, post: np.ndarray, n_pre: int) -> tuple[np.ndarray, np.ndarray]:
    """Counting sort of an edge list into CSR by presynaptic index (stable in the given edge order)."""
    indptr = np.zeros(n_pre + 1, dtype=np.int64)
    for s in range(pre.size):
        indptr[pre[s] + 1] += 1
    for i in range(n_pre):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    indices = np.empty(pre.size, dtype=np.int32)
    for s in range(pre.size):
        indices[fill[pre[s]]] = post[s]
        fill[pre[s]] += 1
    return indptr, indices


def _graph_edges(
    connect: Any,
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


def connect(
    connect: Any, n_pre: int, n_post: int, same: bool, rng: np.random.Generator, path: str = "connect"
) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(indptr, indices)`` by presynaptic index for one projection.

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
    path : str
        Field path for error messages.
    """
    check_rule(connect, n_pre, n_post, same, path)
    skip_diag = same and not connect.autapses
    if connect.p is not None:
        m = n_post - 1 if skip_diag else n_post
        mean = connect.p * n_pre * m
        capacity = int(mean + 6.0 * math.sqrt(mean + 1.0) + 16)
        return _random_p(rng, n_pre, n_post, float(connect.p), skip_diag, capacity)
    if connect.in_degree is not None:
        return _fixed_in_degree(rng, n_pre, n_post, int(connect.in_degree), skip_diag)
    if connect.one_to_one:
        return np.arange(n_pre + 1, dtype=np.int64), np.arange(n_post, dtype=np.int32)
    pre, post = _graph_edges(connect, n_pre, rng, connect.autapses or not same, path)
    return _edges_to_csr(pre, post.astype(np.int32), n_pre)


# --------------------------------------------------------------------------- building


def _channel_index(channels: list[Channel], kind: int, tau: float, reversal: float | None) -> int:
    rev = float("nan") if reversal is None or kind == KIND_CURRENT else float(reversal)
    for c, ch in enumerate(channels):
        if ch.kind == kind and ch.tau == tau and (ch.reversal == rev or (math.isnan(ch.reversal) and math.isnan(rev))):
            return c
    channels.append(Channel(kind, float(tau), rev))
    return len(channels) - 1


def _kind(name: str) -> int:
    return KIND_CURRENT if name == "current" else KIND_CONDUCTANCE


def build_network(scenario: Any) -> Network:
    """Build the network of ``scenario`` (deterministic in ``run.seed``).

    Raises
    ------
    ScenarioError
        When a connection rule cannot be satisfied (e.g. in-degree above the source size).
    """
    params, run = scenario.params, scenario.run
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
    for s_i, syn in enumerate(params.synapses):
        c = _channel_index(channels, _kind(syn.kind), syn.tau, syn.reversal)
        src = index[syn.source]
        for tgt in syn.targets:
            t = index[tgt]
            indptr, indices = connect(
                syn.connect, int(sizes[src]), int(sizes[t]), src == t, conn_rng, path=f"params.synapses.{s_i}.connect"
            )
            projections.append(
                Projection(
                    name=f"{syn.source}->{tgt}",
                    source=syn.source,
                    target=tgt,
                    pre_start=int(starts[src]),
                    post_start=int(starts[t]),
                    n_pre=int(sizes[src]),
                    n_post=int(sizes[t]),
                    indptr=indptr,
                    indices=indices,
                    weight=float(syn.weight),
                    channel=c,
                    delay_steps=steps(syn.delay, dt),
                )
            )

    return Network(
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
    )


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


def _expected_synapses(conn: Any, n_pre: int, n_post: int, same: bool) -> tuple[float, float]:
    """Expected synapse count and peak transient bytes per synapse while generating it."""
    m = n_post - 1 if same and not conn.autapses else n_post
    if conn.p is not None:
        return conn.p * n_pre * m, 4.0
    if conn.in_degree is not None:
        return float(conn.in_degree) * n_post, 8.0  # post-major sources + CSR indices
    if conn.one_to_one:
        return float(n_post), 4.0
    return graph_synapses(conn.graph, conn.args, float(n_pre)), 4.0 + _NX_BYTES_PER_EDGE


def check_rule(connect: Any, n_pre: int, n_post: int, same: bool, path: str) -> None:
    """Refuse a connection rule that cannot be satisfied between populations of these sizes.

    Called by :func:`check_resources` (so ``validate`` and every sweep point refuse it) and by
    :func:`connect` when the network is built.
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


def estimate_parts(scenario: Any) -> dict[str, float]:
    """Peak bytes of a run by component (synapses, transient, delays, state, probe, rate histogram, spikes).

    Counts the CSR arrays (4 bytes per synapse, 8 per presynaptic neuron), the transient buffers while
    generating them or concatenating them for the kernel (whichever is larger), per-neuron state, delay
    ring buffers, the ``v`` probe buffer, the population-rate histogram and a spike buffer.
    """
    params, run = scenario.params, scenario.run
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
            kept += 4.0 * count + 8.0 * (sizes[src] + 1)
            peak_extra = max(peak_extra, (transient - 4.0) * count)
            ring += _ring_bytes(syn, float(sizes[t]), run.dt)
    for inp in params.inputs:
        if inp.kind == "poisson":
            channels.add((inp.synapse, inp.tau, inp.reversal))
    n_proj = sum(len(syn.targets) for syn in params.synapses)
    if n_proj > 1:  # the engine concatenates the projections' indices: old and new arrays coexist
        peak_extra = max(peak_extra, kept)
    probe = 0.0
    if scenario.record.v is not None and run.duration and run.dt:
        n_probe = n if scenario.record.v.indices == "all" else len(scenario.record.v.indices)
        every = steps((scenario.record.v.every or run.dt), run.dt, at_least=1)
        probe = 8.0 * n_probe * (run.n_steps // every + 1)
    n_bins = max(1.0, round(run.n_steps * run.dt / scenario.record.rate_bin)) if run.duration and run.dt else 1.0
    return {
        "synapses": kept,
        "transient": peak_extra,
        "delays": ring,
        "state": 8.0 * n * (16 + 2 * len(channels)),
        "probe": probe,
        "rate histogram": 8.0 * n_bins * len(names) * 2,  # counts, then rates
        "spikes": 12.0 * 1_000_000,  # initial spike buffer; it grows with the run, flushed between chunks
    }


def _ring_bytes(syn: Any, n_post: float, dt: float | None) -> float:
    """Bytes of a projection's delay ring buffer: ``delay / dt + 1`` slots of 8 bytes per target neuron."""
    n = steps(syn.delay, dt) if dt else 0
    return 8.0 * (n + 1) * n_post if n > 0 else 0.0


def estimate_bytes(scenario: Any) -> int:
    """Memory a run needs at its peak, estimated before anything is allocated (sum of :func:`estimate_parts`)."""
    return int(sum(estimate_parts(scenario).values()))


def check_resources(scenario: Any) -> None:
    """Every check a ``lif_network`` run makes, done before anything is allocated.

    Connection rules against the population sizes, the ``v`` probe's interval and indices, each synapse
    group's delay ring buffer, and the whole run's memory estimate.

    Raises
    ------
    ScenarioError
        A rule, delay or probe that cannot be satisfied (naming its field).
    ResourceError
        With the estimate, what it is made of and the available memory.
    """
    from neurodyn.families.lif_network.dataset import probe_indices
    from neurodyn.resources import budget_bytes, format_bytes, require_memory

    params, run = scenario.params, scenario.run
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
    if scenario.record.analysis_start >= run.n_steps * run.dt:
        raise ScenarioError(
            "record.analysis_start",
            f"{scenario.record.analysis_start:g} s",
            f"must be before the end of the run (run.duration = {run.duration:g} s); nothing would be analysed",
        )
    probe = scenario.record.v
    if probe is not None and probe.every is not None and steps(probe.every, run.dt) < 1:
        raise ScenarioError(
            "record.v.every", f"{probe.every:g} s", f"at least run.dt ({run.dt:g} s); omit it to sample every step"
        )
    parts = estimate_parts(scenario)
    need = sum(parts.values())
    detail = ", ".join(f"{k} {format_bytes(v)}" for k, v in parts.items() if v >= 2**20)
    # the message names what dominates the estimate: the network, the delay buffers or the v probe
    what = "params.populations, params.synapses: network too large"
    hint = "reduce population sizes, connection probability or in-degree"
    largest = max(parts, key=parts.__getitem__)
    if largest == "delays":
        what, hint = "params.synapses.*.delay: delay buffers too large", "use shorter delays or a larger run.dt"
    elif largest == "probe":
        what, hint = "record.v: v recording too large", "record fewer neurons or set a longer record.v.every"
    elif largest == "rate histogram":
        what, hint = f"record.rate_bin = {scenario.record.rate_bin:g} s: too many bins", "use a wider bin"
    require_memory(need, f"about {n_syn:.3g} synapses x 4 B, {int(sizes.sum())} neurons; {detail}", what, hint)
    probe_indices(scenario)  # indices beyond the (possibly swept) network size
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
