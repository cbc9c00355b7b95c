"""Coupling graphs of the ``sync_learners`` family: topology specs, networkx construction, Laplacians.

A topology is named by a short alias (``complete``, ``ring``, ``star``, ``path``, ``grid``, ``torus``,
``small_world``, ``random_regular``, ``erdos_renyi``, ``barabasi_albert``) or by *any* networkx generator
function (``watts_strogatz_graph``, ``circulant_graph``, ...) with its keyword arguments, or by an explicit
edge list ``[[i, j], [i, j, weight], ...]``. The learner count ``n`` is passed to the generator as its ``n``
argument when it has one and the scenario does not set it; the built graph must have exactly ``n`` nodes.

Every problem (unknown generator, unknown or mistyped argument, wrong node count) becomes a one-line
:class:`~neurodyn.errors.ScenarioError` that names the field.

A module of its own beside :mod:`.build`: turning a topology spec into a graph and its Laplacian spectrum
is independent of the learners (no loss, noise or time step appears here), the schema asks it which
generator names exist, and its tests check graphs alone. :mod:`.build` builds every graph of a run once
with :func:`build_graph`; a :class:`Graph` computes its spectrum, eigenbasis and components on first use
and keeps them, so the checks, the simulation and the stored result share one decomposition.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import scipy.sparse as sp

from neurodyn.errors import ScenarioError, did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from neurodyn.families.sync_learners.params import Topology

#: alias -> (networkx generator, default args); ``n`` is filled in by :func:`build_graph`
ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "complete": ("complete_graph", {}),
    "ring": ("cycle_graph", {}),
    "cycle": ("cycle_graph", {}),
    "star": ("star_graph", {}),  # star_graph(n) has n + 1 nodes: called with n - 1
    "path": ("path_graph", {}),
    "grid": ("grid_2d_graph", {}),  # rows x (n / rows), rows = largest divisor <= sqrt(n)
    "torus": ("grid_2d_graph", {"periodic": True}),
    "small_world": ("connected_watts_strogatz_graph", {"k": 4, "p": 0.1}),
    "random_regular": ("random_regular_graph", {"d": 3}),
    "erdos_renyi": ("erdos_renyi_graph", {"p": 0.3}),
    "barabasi_albert": ("barabasi_albert_graph", {"m": 2}),
}
#: arguments a scenario may never pass (Python objects, not parameters)
_FORBIDDEN_ARGS = {"create_using", "backend", "backend_kwargs", "initial_graph", "G"}


@cache
def generator_names() -> tuple[str, ...]:
    """Names of networkx graph generators a scenario may use (functions building a graph from numbers)."""
    out = []
    for name in dir(nx.generators):
        fn = getattr(nx.generators, name)
        if not (name.endswith("_graph") and callable(fn)) or name.startswith(("is_", "to_")):
            continue
        try:
            params = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):  # pragma: no cover - builtins without signature
            continue
        if params and params[0] in ("G", "data", "H", "g"):
            continue  # converters and operators, not generators
        out.append(name)
    return tuple(sorted(out))


def all_names() -> list[str]:
    """Aliases and networkx generator names, for did-you-mean suggestions."""
    return list(ALIASES) + list(generator_names())


@dataclass
class Graph:
    """A built coupling graph; its spectral quantities are computed on first use and kept.

    Attributes
    ----------
    label : str
        Coordinate label of this topology in the Dataset.
    n : int
        Number of nodes (learners).
    adjacency : scipy.sparse.csr_matrix
        Weighted adjacency ``A`` (symmetric, sorted indices).
    complete_weight : float
        If the graph is complete with one uniform weight ``w`` this is ``w`` (coupling via the mean,
        ``O(n d)``); otherwise NaN and the kernel uses the sparse adjacency.
    """

    label: str
    n: int
    adjacency: sp.csr_matrix
    complete_weight: float

    @property
    def laplacian(self) -> sp.csr_matrix:
        """Weighted graph Laplacian ``D - A``."""
        deg = np.asarray(self.adjacency.sum(axis=1)).ravel()
        return (sp.diags(deg) - self.adjacency).tocsr()

    @property
    def degree(self) -> np.ndarray:
        """Weighted degrees."""
        return np.asarray(self.adjacency.sum(axis=1)).ravel()

    @property
    def n_edges(self) -> int:
        """Number of undirected edges."""
        return int(self.adjacency.nnz // 2)

    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(indptr, indices, weights)`` of the adjacency, as int64/int64/float64 arrays for the kernels."""
        a = self.adjacency
        return a.indptr.astype(np.int64), a.indices.astype(np.int64), a.data.astype(np.float64)

    @cached_property
    def spectrum(self) -> np.ndarray:
        """Laplacian eigenvalues in ascending order (dense ``eigvalsh``; the first is 0 up to rounding)."""
        lam = np.linalg.eigvalsh(self.laplacian.toarray())
        lam[0] = 0.0  # exact: the constant vector is always in the kernel of D - A
        return np.clip(lam, 0.0, None)

    @cached_property
    def eigenbasis(self) -> tuple[np.ndarray, np.ndarray]:
        """Laplacian eigenvalues and an orthonormal eigenbasis whose first vector is ``1/sqrt(n)``.

        For a disconnected graph the eigenvalue 0 is degenerate and ``eigh`` may mix the constant vector
        with the other components' indicator vectors. Shifting the constant direction to eigenvalue -1
        (``L - 11^T/n``; the constant vector is an eigenvector of every Laplacian) separates it, so the
        centroid is always mode 0.
        """
        n = self.n
        lap = self.laplacian.toarray() - np.full((n, n), 1.0 / n)
        lam, u = np.linalg.eigh(lap)
        lam[0] = 0.0
        u[:, 0] = 1.0 / math.sqrt(n)
        return np.clip(lam, 0.0, None), u

    @cached_property
    def components(self) -> int:
        """Number of connected components."""
        return int(sp.csgraph.connected_components(self.adjacency, directed=False)[0])


# --------------------------------------------------------------------------- building


def _grid_rows(n: int) -> int:
    rows = int(math.isqrt(n))
    while n % rows:
        rows -= 1
    return rows


def _check_args(fn_name: str, fn: Any, args: dict[str, Any], path: str) -> None:
    """Refuse unknown argument names and values whose type cannot match the generator's defaults."""
    sig = inspect.signature(fn)
    names = [p for p in sig.parameters if p not in _FORBIDDEN_ARGS and p != "backend_kwargs"]
    for key, value in args.items():
        if key in _FORBIDDEN_ARGS or key not in sig.parameters:
            raise ScenarioError(
                f"{path}.args.{key}",
                value,
                f"{fn_name} has no argument {key!r}{did_you_mean(key, names)}; its arguments: {', '.join(names)}",
            )
        if not isinstance(value, int | float | str | list | type(None)) or isinstance(value, dict):
            raise ScenarioError(f"{path}.args.{key}", value, "expected a number, string, list or null")
        default = sig.parameters[key].default
        numeric_default = isinstance(default, int | float) and not isinstance(default, bool)
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ScenarioError(f"{path}.args.{key}", value, f"{fn_name} expects true or false here")
        if numeric_default and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ScenarioError(f"{path}.args.{key}", value, f"{fn_name} expects a number here (default {default!r})")


def build_graph(spec: Topology, n: int, seed: int, path: str) -> Graph:
    """Build the graph of a topology spec for ``n`` learners.

    Parameters
    ----------
    spec : Topology
        The validated topology (see :mod:`.params`).
    n : int
        Number of learners (nodes).
    seed : int
        Seed for random generators (used when the spec does not give ``seed``) and random weights.
    path : str
        Field path for error messages, e.g. ``params.topology.1``.

    Raises
    ------
    ScenarioError
        Unknown generator, bad argument, wrong node count, self loops or non-positive weights.
    """
    rng = np.random.default_rng(seed)
    if spec.edges is not None:
        g = nx.Graph()
        g.add_nodes_from(range(n))
        for e, edge in enumerate(spec.edges):
            i, j = int(edge[0]), int(edge[1])
            if not (0 <= i < n and 0 <= j < n):
                raise ScenarioError(f"{path}.edges.{e}", list(edge), f"node indices must be in 0..{n - 1} (n = {n})")
            if i == j:
                raise ScenarioError(f"{path}.edges.{e}", list(edge), "self loops do not couple anything")
            g.add_edge(i, j, weight=float(edge[2]) if len(edge) == 3 else 1.0)
    else:
        g = _from_generator(spec, n, seed, path)
    if g.is_directed() or g.is_multigraph():
        g = nx.Graph(g.to_undirected())
    g.remove_edges_from(list(nx.selfloop_edges(g)))
    g = (
        nx.convert_node_labels_to_integers(g, ordering="sorted")
        if _sortable(g)
        else nx.convert_node_labels_to_integers(g)
    )
    if g.number_of_nodes() != n:
        raise ScenarioError(
            f"{path}",
            spec.label_or_name,
            f"{spec.generator_name} built {g.number_of_nodes()} nodes but params.n = {n}; "
            "give arguments that build n nodes, or set n to match",
        )
    if spec.weights is not None:
        lo, hi = spec.weights
        for _, _, data in g.edges(data=True):
            data["weight"] = float(rng.uniform(lo, hi))
    adj = nx.to_scipy_sparse_array(g, nodelist=range(n), weight="weight", format="csr", dtype=float)
    adj = sp.csr_matrix(adj) * spec.weight
    adj.sort_indices()
    if adj.nnz and not np.all(adj.data > 0):
        raise ScenarioError(f"{path}", spec.label_or_name, "edge weights must be positive")
    m = g.number_of_edges()
    complete = m == n * (n - 1) // 2 and n > 1
    w = float(adj.data[0]) if complete else math.nan
    if complete and not np.all(adj.data == w):
        w = math.nan
    return Graph(label=spec.label_or_name, n=n, adjacency=adj, complete_weight=w)


def _sortable(g: nx.Graph) -> bool:
    try:
        sorted(g.nodes)
    except TypeError:
        return False
    return True


def _from_generator(spec: Topology, n: int, seed: int, path: str) -> nx.Graph:
    name = spec.generator
    args = dict(spec.args)
    if name in ALIASES:
        fn_name, defaults = ALIASES[name]
        args = {**defaults, **args}
        if name == "star":
            args.setdefault("n", n - 1)
        elif name in ("grid", "torus"):
            rows = args.pop("rows", None)
            rows = _grid_rows(n) if rows is None else rows
            if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1 or n % rows:
                raise ScenarioError(f"{path}.args.rows", rows, f"an integer number of rows dividing n = {n}")
            args.setdefault("m", rows)
            args.setdefault("n", n // rows)
    else:
        fn_name = name
    fn = getattr(nx, fn_name, None)
    if fn_name not in generator_names() or fn is None:
        raise ScenarioError(
            f"{path}.generator",
            name,
            f"unknown topology{did_you_mean(name, all_names())}; "
            f"use an alias ({', '.join(ALIASES)}), a networkx generator such as "
            "watts_strogatz_graph, or edges: [[i, j], ...]",
        )
    _check_args(fn_name, fn, args, path)
    params = inspect.signature(fn).parameters
    if "n" in params and "n" not in args:
        args["n"] = n
    if "seed" in params and "seed" not in args:
        args["seed"] = int(seed)
    missing = [
        p.name
        for p in params.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in args
    ]
    if missing:
        raise ScenarioError(f"{path}.args", spec.args, f"{fn_name} needs argument(s) {', '.join(missing)}")
    try:
        g = fn(**args)
    except (TypeError, ValueError, nx.NetworkXError, ZeroDivisionError, IndexError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ScenarioError(f"{path}.args", spec.args, f"{fn_name} refused these arguments: {msg}") from None
    if not isinstance(g, nx.Graph):  # pragma: no cover - all listed generators return graphs
        raise ScenarioError(f"{path}.generator", name, "did not return a graph")
    return g
