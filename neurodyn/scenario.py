"""Scenario files: load, merge presets, apply overrides, validate, expand sweeps.

A scenario is YAML (safe loader only; nothing is evaluated)::

    name: cuba
    family: lif_network
    model: cuba                # optional preset models/cuba.yaml, merged *under* params
    params: {...}              # validated by the family's Params model
    run: {duration: 1 s, dt: 0.1 ms, seed: 1, backend: numba}
    record: {...}              # validated by the family's Record model
    sweep: {grid: {params.x: [...]}}   # optional

Every problem is reported as a :class:`~neurodyn.errors.ScenarioError` naming the field path, the value
and what is allowed.

Every dimensioned value carries its unit (``tau_m: 20 ms``); a plain number there is refused with a
suggested unit, except 0 (see :mod:`neurodyn.quantities`). Plain numbers stay fine for dimensionless
fields (sizes, probabilities, seeds).
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from neurodyn import registry
from neurodyn.errors import FieldIssue, ScenarioError, UserError, did_you_mean
from neurodyn.quantities import Time, stored_text
from neurodyn.schema import StrictModel
from neurodyn.stepping import steps

_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Largest scenario or preset file (and ``--set`` value) read. Real ones are a few kilobytes.
MAX_YAML_BYTES = 1 << 20
#: Most values (mapping keys, values and list items, each alias counted at every use) one scenario may
#: expand to; a large explicit edge list has a few hundred thousand. Beyond it, copying and validating
#: the document would take unbounded time and memory (a YAML alias bomb expands to billions).
MAX_NODES = 1_000_000
#: Deepest nesting of mappings and lists; real scenarios nest fewer than ten levels. The limit keeps every
#: recursive walk of a document (composition, copies, merges) far from the interpreter's recursion limit.
MAX_DEPTH = 100


class RunConfig(StrictModel):
    """How to run: time span, step, seed, backend."""

    duration: Time | None = Field(
        None,
        description="simulated time span (required by families that step in time)",
        json_schema_extra={"constraint": "> 0"},
    )
    dt: Time | None = Field(
        None,
        description="time step (required by families that step in time); at most duration",
        json_schema_extra={"constraint": "> 0; <= duration"},
    )
    seed: int = Field(
        0,
        description="seed of every random stream of the run: the same seed gives bit-identical results",
        json_schema_extra={"constraint": ">= 0; < 2**63"},
    )
    backend: str = Field("numba", description="simulator that runs the scenario")
    chunk: Time | None = Field(
        None,
        description="simulated time between the moments Python regains control (progress, NaN checks); "
        "default: sized automatically",
        json_schema_extra={"constraint": "> 0"},
    )
    threads: int | None = Field(
        None,
        description="Numba threads for the kernels that run in parallel; default: all cores",
        json_schema_extra={"constraint": ">= 1"},
    )
    epochs: int | None = Field(
        None,
        description="training families: number of training epochs (replaces the family's default)",
        json_schema_extra={"constraint": ">= 1"},
    )

    @field_validator("duration", "dt", "chunk")
    @classmethod
    def _positive(cls, v: float | None) -> float | None:
        if v is not None and not v > 0:
            raise ValueError("must be a positive time such as '0.1 ms'")
        return v

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int) -> int:
        if not 0 <= v < 2**63:
            raise ValueError("must be an integer in [0, 2**63)")
        return v

    @field_validator("threads", "epochs")
    @classmethod
    def _count(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError("must be a positive integer")
        return v

    @model_validator(mode="after")
    def _dt_below_duration(self) -> RunConfig:
        if self.duration is not None and self.dt is not None and self.dt > self.duration:
            raise ValueError(f"dt ({self.dt:g} s) must not exceed duration ({self.duration:g} s)")
        return self

    @property
    def n_steps(self) -> int:
        """Number of time steps (:func:`neurodyn.stepping.steps` of ``duration`` and ``dt``)."""
        assert self.duration is not None and self.dt is not None
        return steps(self.duration, self.dt)


#: most points one sweep may have: each is validated and checked by the family before anything runs
MAX_SWEEP_POINTS = 20_000


def _value_key(v: Any) -> Any:
    """A hashable identity of a swept value as written (``1`` and ``1.0`` are the same value)."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return ("number", float(v))
    return ("text", yaml.safe_dump(v, sort_keys=True) if isinstance(v, dict | list) else repr(v))


class SweepSpec(StrictModel):
    """``grid`` (Cartesian product) and/or ``zip`` (lock-step) over dotted paths."""

    grid: dict[str, list[Any]] = Field(
        {},
        description="dotted path -> list of values; every combination of the lists is a point "
        "(e.g. params.inputs.0.mu: [12 mV, 15 mV])",
    )
    zip: dict[str, list[Any]] = Field(
        {}, description="dotted path -> list of values; the lists advance together (equal lengths)"
    )

    @model_validator(mode="after")
    def _size_and_distinct(self) -> SweepSpec:
        # Checked on the values as written, before a single point is expanded: the plan's size, and
        # repeated values, which would make two identical points (the value labels the coordinate).
        lists = [*self.grid.values(), *([next(iter(self.zip.values()))] if self.zip else [])]
        n_points = math.prod(len(v) for v in lists) if lists else 0
        if n_points > MAX_SWEEP_POINTS:
            shape = " x ".join(str(len(v)) for v in lists)
            raise FieldIssue(
                "",
                n_points,
                f"a sweep of {shape} = {n_points} points; at most {MAX_SWEEP_POINTS} points per sweep "
                "(each is checked before anything runs): split it into several sweeps",
            )
        leads = [("grid", k, v) for k, v in self.grid.items()]
        leads += [("zip", k, v) for k, v in list(self.zip.items())[:1]]
        for kind, key, values in leads:
            seen = set()
            for value in values:
                ident = _value_key(value)
                if ident in seen:
                    raise FieldIssue(
                        f"{kind}.{key}",
                        value,
                        "repeated values would make duplicate points; each value must appear once in the list "
                        "(it labels a coordinate)",
                    )
                seen.add(ident)
        return self

    @model_validator(mode="after")
    def _check(self) -> SweepSpec:
        if not self.grid and not self.zip:
            raise ValueError("needs a non-empty 'grid' or 'zip' mapping of dotted path -> list of values")
        for kind in ("grid", "zip"):
            for key, values in getattr(self, kind).items():
                if not values:
                    raise ValueError(f"{kind}.{key}: empty list of values")
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            raise ValueError(f"zip lists have unequal lengths {sorted(lengths)}; they must be equal")
        dup = set(self.grid) & set(self.zip)
        if dup:
            raise ValueError(f"path {sorted(dup)[0]!r} is in both grid and zip")
        return self

    def points(self) -> list[dict[str, Any]]:
        """All sweep points as ``{dotted path: value}``, grid varying slowest-first, zip innermost."""
        grid_items = list(self.grid.items())
        grid = [
            dict(zip([k for k, _ in grid_items], combo)) for combo in itertools.product(*[v for _, v in grid_items])
        ]
        zipped = [dict(zip(self.zip, combo)) for combo in zip(*self.zip.values())] if self.zip else [{}]
        return [{**g, **z} for g in grid for z in zipped]


class ScenarioDocument(StrictModel):
    """The top level of a scenario file: each key, its type and what it means.

    The parameter reference (:mod:`neurodyn.reference`) lists these keys, with the family's ``Params``
    and ``Record`` models in place of ``params`` and ``record``; :data:`TOP_LEVEL_KEYS` are its fields.
    :func:`from_dict` checks the keys itself (its messages name the scenario file's paths), with the same
    rules.
    """

    name: str = Field(
        description="name of the run: the result goes to outputs/<name>.h5 (a sweep's to outputs/<name>/)",
        json_schema_extra={"constraint": "letters, digits, '_', '-', '.'"},
    )
    family: str = Field(description="the model family that runs the scenario (`neurodyn list` shows them)")
    model: str | None = Field(
        None, description="preset models/<model>.yaml merged under params (what params gives wins)"
    )
    description: str = Field("", description="what the scenario shows, in a sentence; stored as the result's title")
    params: dict[str, Any] = Field({}, description="the family's parameters")
    run: RunConfig = Field(default_factory=RunConfig, description="how to run: time span, step, seed, backend")
    record: dict[str, Any] = Field({}, description="what the run records")
    sweep: SweepSpec | None = Field(
        None, description="run the scenario once per point of a grid (or zip) of values: `neurodyn sweep`"
    )
    output: str | None = Field(
        None,
        description="result file (a sweep: its folder), a relative path inside the working directory; "
        "default outputs/<name>.h5; --output overrides it",
    )


#: the keys a scenario file may have, in the order they are documented
TOP_LEVEL_KEYS = tuple(ScenarioDocument.model_fields)


@dataclass
class Scenario:
    """A parsed, validated, unit-resolved description of one run (or of a sweep).

    Build one with :meth:`from_dict` (a mapping of the same shape as the YAML file) or :meth:`from_yaml`
    (a scenario file); derive variants with :meth:`with_values`. Calling the constructor directly is
    possible only with already validated parts (the family's ``Params`` and ``Record`` models and a
    :class:`RunConfig`); anything else is refused with a :class:`~neurodyn.errors.ScenarioError`.

    Examples
    --------
    >>> import neurodyn
    >>> s = neurodyn.Scenario.from_dict({
    ...     "name": "one", "family": "lif_network",
    ...     "params": {"populations": {"a": {"size": 10, "tau_m": "20 ms", "v_rest": "-70 mV",
    ...                                      "v_reset": "-70 mV", "v_threshold": "-50 mV"}},
    ...                "inputs": [{"kind": "constant", "target": "a", "drive": "25 mV"}]},
    ...     "run": {"duration": "0.2 s", "dt": "0.1 ms"}})
    >>> s.params.populations["a"].tau_m
    0.02
    >>> s.with_values({"run.seed": 3}).run.seed
    3
    """

    name: str
    family: str
    params: Any
    run: RunConfig
    record: Any
    description: str = ""
    model: str | None = None
    sweep: SweepSpec | None = None
    output: Path | None = None
    source: Path | None = None
    #: the merged, override-applied document before validation (YAML-able)
    raw: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A Scenario is the validated form of a document: parts that bypassed validation (a plain dict as
        # params, say) would only fail deep inside the family, so they are refused here.
        hint = "build scenarios with neurodyn.Scenario.from_dict(...) or neurodyn.Scenario.from_yaml(...)"
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ScenarioError("name", self.name, "a name made of letters, digits, '_', '-', '.'")
        if not isinstance(self.family, str):
            raise ScenarioError("family", self.family, "a family name; allowed: " + ", ".join(registry.names()))
        family = registry.get(self.family)
        for key, model in (("params", family.Params), ("run", RunConfig), ("record", family.Record)):
            if not isinstance(getattr(self, key), model):
                raise ScenarioError(key, getattr(self, key), f"a validated {model.__name__} model; {hint}")
        if self.sweep is not None and not isinstance(self.sweep, SweepSpec):
            raise ScenarioError("sweep", self.sweep, f"a validated SweepSpec model; {hint}")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], values: Mapping[str, Any] | None = None) -> Scenario:
        """Validate a scenario given as a mapping of the same shape as the YAML file.

        Parameters
        ----------
        doc : mapping
            ``name``, ``family``, ``params``, ``run``, ``record`` and optionally ``model`` (a preset from
            ``models/`` in the working directory or the installation, merged under ``params``),
            ``description``, ``sweep``. Dimensioned values are strings with units (``"20 ms"``); a
            plain number is accepted only for dimensionless fields and for 0.
        values : mapping, optional
            Dotted-path overrides applied after the preset (``{"run.seed": 2}``), as ``--set`` does.

        Returns
        -------
        Scenario

        Raises
        ------
        ScenarioError
            On any problem, naming the field path, the value and what is allowed.

        Examples
        --------
        >>> import neurodyn
        >>> s = neurodyn.Scenario.from_dict({"name": "cuba", "family": "lif_network", "model": "cuba",
        ...                                  "run": {"duration": "0.1 s", "dt": "0.1 ms"}},
        ...                                 values={"params.populations.exc.size": 80})
        >>> s.params.populations["exc"].size
        80
        """
        if not isinstance(doc, Mapping):
            raise ScenarioError("scenario", doc, "expected a mapping with keys " + ", ".join(TOP_LEVEL_KEYS))
        check_extent(doc)  # before the copy: a document built in Python has no YAML limits
        return _assemble(copy.deepcopy(dict(doc)), None, _pairs(values))

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, values: Mapping[str, Any] | None = None) -> Scenario:
        """Read and validate a scenario file (presets are looked up beside it, as the CLI does).

        Parameters
        ----------
        path : path-like
            The YAML scenario.
        values : mapping, optional
            Dotted-path overrides applied after the preset, like the CLI's ``--set``.

        Examples
        --------
        >>> import neurodyn
        >>> neurodyn.Scenario.from_yaml("scenarios/quickstart.yaml", {"run.seed": 7}).run.seed
        7
        """
        return load_scenario(path, values)

    def with_values(self, values: Mapping[str, Any]) -> Scenario:
        """A copy with dotted-path overrides applied and everything re-validated.

        The copy describes a single run: a ``sweep:`` section is dropped.

        Parameters
        ----------
        values : mapping
            ``{"params.populations.exc.size": 1000, "run.seed": 2}``; dimensioned values carry their
            units (``"5 ms"``).

        Examples
        --------
        >>> import neurodyn
        >>> s = neurodyn.Scenario.from_yaml("scenarios/quickstart.yaml")
        >>> s.with_values({"params.populations.noisy.size": 50}).params.populations["noisy"].size
        50
        """
        # the sweep section is left out before copying: copying it for each of a sweep's points would make
        # planning quadratic in the number of points
        raw = copy.deepcopy({k: v for k, v in self.raw.items() if k != "sweep"})
        for path, value in values.items():
            set_path(raw, path, value)
        return from_dict(raw, source=self.source, preset_applied=True)

    def to_yaml(self) -> str:
        """The scenario as YAML text that :meth:`from_yaml` reads back to an equal scenario.

        Every quantity is written as its SI value with the SI unit (``tau_m: 0.02 s``, exact: the SI unit
        scales by 1.0) and the preset is merged into ``params``: the text stored in a result file's
        ``scenario`` attribute.

        Examples
        --------
        >>> import neurodyn
        >>> s = neurodyn.Scenario.from_yaml("scenarios/quickstart.yaml")
        >>> print(s.to_yaml().splitlines()[0])
        name: quickstart
        """
        return self.resolved_yaml()

    def resolved_yaml(self) -> str:
        """The scenario as run, as YAML text: quantities in SI units, each with its symbol (``0.02 s``)."""
        return yaml.safe_dump(self.resolved_doc(), sort_keys=False)

    def resolved_doc(self) -> dict[str, Any]:
        """The scenario as run, as a mapping of plain data (what :meth:`resolved_yaml` writes)."""
        doc = {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "params": _to_plain(self.params),
            "run": _to_plain(self.run),
            "record": _to_plain(self.record),
        }
        if self.model:
            doc["model"] = self.model
        if self.sweep:
            doc["sweep"] = _to_plain(self.sweep)
        return doc


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        # JSON mode writes each quantity as text with its SI unit (neurodyn.quantities' serializers)
        return obj.model_dump(mode="json", exclude_none=True)
    return obj


def from_stored(text: str, where: str = "scenario attribute") -> Scenario:
    """The scenario of a result file or sweep plan, from the resolved YAML text it stores.

    The text has its preset merged into ``params`` already, so it is validated as it stands (it reads
    back where the preset file is not around). Files written before units were required store SI numbers
    without units; they are read as SI here (:func:`neurodyn.quantities.stored_text`), and the returned
    scenario's document (what :meth:`Scenario.with_values` starts from) is rewritten with units, so
    derived scenarios are validated under the rule for user input like any other.

    Parameters
    ----------
    text : str
        The stored YAML (``ds.attrs["scenario"]``).
    where : str
        What to name in messages.

    Raises
    ------
    ScenarioError
        If the text is not a scenario this version can validate.
    """
    doc = parse_yaml(text, where)
    with stored_text():
        scenario = from_dict(doc, preset_applied=True)
    scenario.raw = scenario.resolved_doc()
    return scenario


def same_stored_scenario(stored: str | None, resolved: str) -> bool:
    """Whether the scenario text a result file stores describes the scenario whose resolved YAML is ``resolved``.

    Equal texts are the same scenario. Otherwise the stored text is read (:func:`from_stored`) and
    written again by this version: a file of an earlier version, whose text has SI numbers without
    units or lacks fields added since with their defaults, is the same scenario if it resolves to the
    same text. Text that does not load describes no scenario of this version.
    """
    if stored is None:
        return False
    if stored == resolved:
        return True
    try:
        return from_stored(stored, "stored scenario").resolved_yaml() == resolved
    except UserError:
        return False


# --------------------------------------------------------------------------- loading


def load_scenario(
    path: str | os.PathLike | Mapping[str, Any], overrides: list[str] | Mapping[str, Any] | None = None
) -> Scenario:
    """Read, merge and validate a scenario file (or a mapping of the same shape).

    Parameters
    ----------
    path : path-like or mapping
        The YAML scenario, or the document itself (as :meth:`Scenario.from_dict`).
    overrides : list of str or mapping, optional
        ``"dotted.path=value"`` strings (value parsed as YAML) or a ``{dotted.path: value}`` mapping,
        applied after the preset merge.

    Raises
    ------
    ScenarioError
        On any problem, with the field path, the value and what is allowed.
    """
    if isinstance(path, Mapping):
        check_extent(path)  # before the copy: a document built in Python has no YAML limits
        return _assemble(copy.deepcopy(dict(path)), None, _pairs(overrides))
    path = Path(path)
    doc = read_yaml_file(path)
    return _assemble(doc, path, _pairs(overrides))


def _pairs(overrides: list[str] | Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    """Overrides as ``(dotted path, value)`` pairs: ``"path=value"`` strings have their value parsed as YAML."""
    if isinstance(overrides, Mapping):
        pairs = []
        for key, value in overrides.items():
            if not isinstance(key, str) or not key.strip():
                raise ScenarioError("set", key, "a dotted path such as 'run.seed'")
            pairs.append((key.strip(), value))
        return pairs
    pairs = []
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ScenarioError("--set", item, "expected dotted.path=value, e.g. run.seed=2")
        pairs.append((key.strip(), parse_yaml(value, f"--set {key}") if value.strip() else None))
    return pairs


def _assemble(doc: Any, path: Path | None, pairs: list[tuple[str, Any]]) -> Scenario:
    """Merge the preset, apply the overrides, validate: the one path from a document to a Scenario."""
    if not isinstance(doc, dict):
        return from_dict(doc, source=path)
    # A preset is merged first, so overrides can reach into what it provides (params.synapses.0.weight).
    for key, value in pairs:
        if key == "model":
            doc["model"] = value
    doc = apply_preset(doc, path)
    for key, value in pairs:
        if key != "model":
            set_path(doc, key, value)
    return from_dict(doc, source=path, preset_applied=True)


def read_yaml_file(path: Path, what: str = "scenario") -> Any:
    """Read and parse a YAML file (a scenario or a preset) within the :data:`MAX_YAML_BYTES` limit.

    Raises
    ------
    ScenarioError
        If the file is missing, unreadable, larger than the limit, or not acceptable to :func:`parse_yaml`.
    """
    try:
        with open(path, "rb") as f:
            # read one byte past the limit: enough to know it is exceeded, never the whole of a huge file
            data = f.read(MAX_YAML_BYTES + 1)
        if len(data) > MAX_YAML_BYTES:
            size = os.path.getsize(path)
            raise ScenarioError(
                str(path),
                "<yaml>",
                f"file of {size:,} bytes; a {what} file may have at most {MAX_YAML_BYTES:,} bytes (1 MiB)",
            )
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ScenarioError(what, str(path), "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(what, str(path), f"cannot read it ({type(exc).__name__})") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, where: str) -> Any:
    """Safe-load YAML within the limits on size, nesting and expansion; any problem is a one-line error.

    Every YAML text a scenario is made of (the scenario file, its ``model:`` preset, each ``--set``
    value) comes through here, so the limits :data:`MAX_YAML_BYTES`, :data:`MAX_NODES` (values after
    alias expansion) and :data:`MAX_DEPTH` (nesting) hold for all of them. Nodes are counted while the
    document is composed, before any Python object is built, so an alias bomb is refused after composing
    a few hundred nodes and a deeply nested document never reaches the interpreter's recursion limit.

    Parameters
    ----------
    text : str
        The YAML text.
    where : str
        What to name in messages (the file, or ``--set <path>``).

    Raises
    ------
    ScenarioError
        On malformed YAML or a document beyond one of the limits.
    """
    if len(text) > MAX_YAML_BYTES:
        raise ScenarioError(
            where, "<yaml>", f"text of {len(text):,} characters; at most {MAX_YAML_BYTES:,} (1 MiB) are allowed"
        )
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _LimitExceeded as exc:
        raise ScenarioError(where, "<yaml>", f"{exc.problem}{_at(exc.mark)}; {exc.limit}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(where, "<yaml>", f"malformed YAML{_at(mark)}: {problem}") from None
    finally:
        if hasattr(loader, "dispose"):
            loader.dispose()


def _at(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


class _LimitExceeded(Exception):
    """A YAML document goes beyond :data:`MAX_NODES` or :data:`MAX_DEPTH` (raised while composing)."""

    def __init__(self, problem: str, mark: Any, limit: str):
        super().__init__(problem)
        self.problem = problem
        self.mark = mark
        self.limit = limit


_NODES_LIMIT = f"a scenario may expand to at most {MAX_NODES:,} values (aliases count at every use)"
_DEPTH_LIMIT = f"a scenario may nest at most {MAX_DEPTH} levels"


try:  # libyaml's parser when PyYAML has it (several times faster), else PyYAML's own; both iterative
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


class _BoundedLoader(Composer, _Parser, SafeConstructor, Resolver):
    """The safe loader, counting what the document would expand to while composing it.

    Composition builds a graph in which every alias is a second reference to the anchored node, so the
    graph stays small while its expansion (what deep copies, validation and ``repr`` walk) can be
    exponential. Each composed node records its expanded size and height; an alias adds those of its
    anchor, so both totals are known exactly, at the cost of one dictionary entry per node, before a
    single Python object is constructed. The parser and scanner are iterative; only composition recurses,
    and it stops at :data:`MAX_DEPTH` levels, far below the interpreter's recursion limit.
    """

    def __init__(self, stream: str):
        # PyYAML's Composer (Python, so compose_node can be extended) over the parser's events
        _Parser.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._nodes = 0
        #: children's heights of the nodes being composed (innermost last)
        self._open: list[int] = []
        #: id(node) -> (expanded size, height), for nodes composed completely
        self._extent: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            extent = self._extent.get(id(node))
            if extent is None:  # the anchor is still open: the alias sits inside the node it names
                raise _LimitExceeded(
                    "an alias refers to a node that contains it", mark, "a scenario must be a finite tree"
                )
            size, height = extent
        else:
            if len(self._open) >= MAX_DEPTH:
                raise _LimitExceeded(f"nested deeper than {MAX_DEPTH} levels", mark, _DEPTH_LIMIT)
            start = self._nodes
            self._count(1, mark)
            self._open.append(0)
            node = super().compose_node(parent, index)
            height = 1 + self._open.pop()
            size = self._nodes - start
            self._extent[id(node)] = (size, height)
            size = 0  # already counted, child by child
        if len(self._open) + height > MAX_DEPTH:
            raise _LimitExceeded(f"nested deeper than {MAX_DEPTH} levels once aliases are expanded", mark, _DEPTH_LIMIT)
        self._count(size, mark)
        if self._open:
            self._open[-1] = max(self._open[-1], height)
        return node

    def _count(self, n: int, mark: Any) -> None:
        self._nodes += n
        if self._nodes > MAX_NODES:
            raise _LimitExceeded(f"more than {MAX_NODES:,} values", mark, _NODES_LIMIT)


def check_extent(doc: Any, where: str = "") -> None:
    """Refuse a document (from YAML or built in Python) beyond :data:`MAX_NODES` or :data:`MAX_DEPTH`.

    The walk is iterative and stops at the limit, so it is cheap for any input, including a very deep or
    self-referencing structure. Values reached twice (shared references) count twice, as they do for
    everything that later walks the document.

    Parameters
    ----------
    doc : object
        The document: mappings, lists and tuples of plain values.
    where : str
        Path prefix for messages (empty: the document is the whole scenario).

    Raises
    ------
    ScenarioError
        Naming the top-level entry that goes beyond a limit.
    """
    count = 0
    # (value, depth, the top-level entry it belongs to: its key and value, for the message)
    stack: list[tuple[Any, int, tuple[str, Any]]] = [(doc, 0, (where, doc))]
    while stack:
        node, depth, top = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ScenarioError(top[0] or "scenario", top[1], f"more than {MAX_NODES:,} values; {_NODES_LIMIT}")
        if depth > MAX_DEPTH:
            raise ScenarioError(top[0] or "scenario", top[1], f"nested deeper than {MAX_DEPTH} levels; {_DEPTH_LIMIT}")
        if isinstance(node, dict):
            for key, value in node.items():
                stack.append((value, depth + 1, top if top[0] else (str(key), value)))
        elif isinstance(node, list | tuple):
            stack.extend((value, depth + 1, top) for value in node)


def find_model(name: str, source: Path | None) -> Path:
    """Locate preset ``models/<name>.yaml`` next to the scenario, in the cwd, or in the repository."""
    if not _NAME_RE.match(name):
        raise ScenarioError("model", name, "a preset name made of letters, digits, '_', '-', '.'")
    dirs: list[Path] = []
    if os.environ.get("NEURODYN_MODELS"):
        dirs.append(Path(os.environ["NEURODYN_MODELS"]))
    if source is not None:
        dirs += [source.parent.parent / "models", source.parent / "models"]
    dirs += [Path.cwd() / "models", REPO_ROOT / "models"]
    for d in dirs:
        if (d / f"{name}.yaml").is_file():
            return d / f"{name}.yaml"
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml")})
    raise ScenarioError(
        "model",
        name,
        f"no preset models/{name}.yaml{did_you_mean(name, known)}; available: {', '.join(known) or 'none'}",
    )


def deep_merge(base: dict, over: dict) -> dict:
    """``over`` merged onto ``base`` recursively (dicts merge, everything else replaces)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def apply_preset(doc: dict, source: Path | None) -> dict:
    """A copy of ``doc`` whose ``params`` have the ``model:`` preset merged under them."""
    doc = copy.deepcopy(doc)
    params = _section(doc, "params")
    if not isinstance(params, dict):
        raise ScenarioError("params", params, "expected a mapping of parameter names to values")
    model = doc.get("model")
    if model is not None:
        if not isinstance(model, str):
            raise ScenarioError("model", model, "a preset name from models/")
        preset_path = find_model(model, source)
        preset = read_yaml_file(preset_path, "preset")
        if not isinstance(preset, dict):
            raise ScenarioError(f"models/{model}.yaml", preset, "expected a mapping of parameters")
        preset = preset.get("params", preset)
        if not isinstance(preset, dict):
            raise ScenarioError(f"models/{model}.yaml", preset, "expected a mapping of parameters")
        params = deep_merge(preset, params)
    doc["params"] = params
    return doc


def _scenario_output(value: Any) -> Path | None:
    """A scenario's own ``output:``: a relative path that stays inside the directory the command runs from.

    A scenario file may come from someone else, so its ``output:`` must not reach anywhere else: no
    absolute path, no ``..`` leading out, no symlink (existing now) leading out. ``--output`` on the
    command line and ``output=`` in Python are the user's own choice and may go anywhere.
    """
    if value is None or value == "":
        return None
    allowed = (
        "a relative path inside the directory the command runs from, e.g. outputs/run.h5 "
        "(--output on the command line may go anywhere)"
    )
    if not isinstance(value, str):
        raise ScenarioError("output", value, allowed)
    try:
        path = Path(value)
        here = Path.cwd().resolve()
        # resolve() follows the symlinks that exist now, so a link that leads out is caught too
        inside = not path.is_absolute() and (here / path).resolve().is_relative_to(here)
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop
        inside = False
    if not inside:
        raise ScenarioError("output", value, allowed)
    return path


def _section(doc: dict, key: str) -> dict:
    """The mapping under ``key`` (``params``, ``run``, ``record``); absent or empty (``null``) means defaults.

    Anything else that is not a mapping (``[]``, ``0``, ``false``, ``''``) is refused: read as "all
    defaults" it would silently run something other than what was written.
    """
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ScenarioError(key, value, f"expected a mapping of {key} fields (leave it out for the defaults)")
    return value


def from_dict(doc: Any, source: Path | None = None, preset_applied: bool = False) -> Scenario:
    """Validate a scenario document (already YAML-parsed)."""
    if not isinstance(doc, dict):
        raise ScenarioError("scenario", doc, "expected a mapping with keys " + ", ".join(TOP_LEVEL_KEYS))
    # First, before any recursive copy or validation: a document built in Python has no YAML limits.
    check_extent(doc)
    for key in doc:
        if key not in TOP_LEVEL_KEYS:
            raise ScenarioError(
                str(key),
                doc[key],
                f"unknown key{did_you_mean(str(key), TOP_LEVEL_KEYS)}; allowed: {', '.join(TOP_LEVEL_KEYS)}",
            )
    for key in ("name", "family"):
        if key not in doc or doc[key] is None:
            raise ScenarioError(key, None, "required")
    name = doc["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ScenarioError("name", name, "a name made of letters, digits, '_', '-', '.'")
    fam_name = doc["family"]
    if not isinstance(fam_name, str):
        raise ScenarioError("family", fam_name, "a family name; allowed: " + ", ".join(registry.names()))
    family = registry.get(fam_name)

    doc = copy.deepcopy(doc) if preset_applied else apply_preset(doc, source)
    params = doc["params"]
    model = doc.get("model")

    p = _validate(family.Params, params, "params")
    run = _validate(RunConfig, _section(doc, "run"), "run")
    if run.backend not in family.backends:
        raise ScenarioError(
            "run.backend",
            run.backend,
            f"not available for {fam_name}{did_you_mean(run.backend, family.backends)}; "
            f"allowed: {', '.join(family.backends)}",
        )
    if family.needs_time:
        for key in ("duration", "dt"):
            if getattr(run, key) is None:
                raise ScenarioError(f"run.{key}", None, "required for this family (e.g. duration: 1 s, dt: 0.1 ms)")
    record = _validate(family.Record, _section(doc, "record"), "record")
    sweep = _validate(SweepSpec, doc["sweep"], "sweep") if doc.get("sweep") is not None else None
    output = _scenario_output(doc.get("output"))
    description = doc.get("description") or ""
    if not isinstance(description, str):
        raise ScenarioError("description", description, "a string")
    scenario = Scenario(
        name=name,
        family=fam_name,
        params=p,
        run=run,
        record=record,
        description=description,
        model=model,
        sweep=sweep,
        output=output,
        source=source,
        raw=doc,
    )
    if sweep is not None:
        # A bad path is refused here; every point's values are validated and checked by the family once,
        # in neurodyn.sweep.plan_sweep, which `validate` and the sweep driver both call before anything runs.
        models = {"params": family.Params, "run": RunConfig, "record": family.Record}
        for path in [*sweep.grid, *sweep.zip]:
            _check_sweep_path(doc, path, models)
    return scenario


def _check_sweep_path(doc: dict, path: str, models: dict[str, Any]) -> None:
    """Refuse a swept path that names no existing field.

    Setting an unknown path would otherwise *create* it: a typo under a mapping-valued field (a new
    population ``exci`` instead of ``exc``) could silently validate. So every component must exist in
    the scenario document or be a field of the schema (a field left at its default).
    """
    where = f"sweep.{path}"
    parts = path.split(".")
    head = parts[0]
    if head not in models:
        raise ScenarioError(where, path, "paths start with params., run. or record.")
    if len(parts) < 2 or "" in parts:
        raise ScenarioError(where, path, f"name a field under {head}, e.g. {head}.<field>")
    node: Any = doc.get(head)
    tp: Any = models[head]
    for i, part in enumerate(parts[1:], start=1):
        known: list[str] = []
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ScenarioError(
                    where,
                    path,
                    f"{'.'.join(parts[:i])} is a list of {len(node)} items; use an index 0..{len(node) - 1}",
                )
            node, tp = node[int(part)], _descend(tp, int(part)) if tp is not None else None
            continue
        if isinstance(node, dict):
            known += [str(k) for k in node]
        fields = _model_fields(tp) if tp is not None else None
        known += [f for f in fields or [] if f not in known]
        if part not in known:
            hint = did_you_mean(part, known)
            allowed = f"; known: {', '.join(known)}" if known else ""
            raise ScenarioError(where, path, f"no field {part!r} under {'.'.join(parts[:i])}{hint}{allowed}")
        node = node.get(part) if isinstance(node, dict) else None
        tp = _descend(tp, part) if tp is not None else None


# --------------------------------------------------------------------------- dotted paths


def _split(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for part in path.split("."):
        if part == "":
            raise ScenarioError(path, path, "empty component in dotted path")
        parts.append(int(part) if part.isdigit() else part)
    return parts


def set_path(doc: dict, path: str, value: Any) -> None:
    """Set ``doc[a][b][0][c] = value`` for ``path = "a.b.0.c"``, creating mappings as needed."""
    parts = _split(path)
    node: Any = doc
    for i, part in enumerate(parts[:-1]):
        where = ".".join(map(str, parts[: i + 1]))
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ScenarioError(where, part, "no such list item")
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise ScenarioError(where, node, "cannot descend into a non-mapping")
            node = node.setdefault(part, {})
            if node is None:
                node = {}
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ScenarioError(path, last, "no such list item")
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ScenarioError(path, node, "cannot set a key on a non-mapping")


# --------------------------------------------------------------------------- pydantic errors


def _validate(model: type[BaseModel], data: Any, prefix: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _to_scenario_error(exc, model, prefix, data) from None


def _to_scenario_error(exc: ValidationError, model: type[BaseModel], prefix: str, data: Any) -> ScenarioError:
    errors = exc.errors(include_url=False)
    cleaned = [_clean_loc(model, e["loc"]) for e in errors]
    # One error is shown: the one that best describes what the user meant. A union type reports one error
    # per member; a member whose errors are only mismatches of shape (a missing or unknown key, a list
    # where a number belongs) is not what the user wrote, so any other error wins (for
    # v_init: {uniform: [-50 mV, -70 mV]}, the reversed bounds, not the missing 'normal' key of the other
    # member). Among equals, the deepest error is the most specific, and an unknown key (which names what
    # the user wrote) is preferred to a missing one.
    best = max(
        range(len(errors)),
        key=lambda i: (
            not _is_mismatch(errors[i]["type"]),
            len(cleaned[i][0]),
            errors[i]["type"] == "extra_forbidden",
            errors[i]["type"] != "missing",
        ),
    )
    err = errors[best]
    loc, parents = cleaned[best]
    path = ".".join([prefix, *map(str, loc)]) if loc else prefix
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        parent = parents[-1] if parents else None
        allowed = (_model_fields(parent) if parent is not None else None) or _allowed_keys(model, loc[:-1])
        hint = did_you_mean(str(loc[-1]), allowed) if loc else ""
        return ScenarioError(path, value, f"unknown key{hint}; allowed: {', '.join(allowed)}")
    if err["type"] == "missing":
        return ScenarioError(path, None, "required")
    if err["type"] == "finite_number":
        return ScenarioError(path, value, "must be a finite number")
    issue = (err.get("ctx") or {}).get("error")
    if isinstance(issue, FieldIssue):
        return ScenarioError(".".join(filter(None, [path, issue.subpath])), issue.value, issue.allowed)
    msg = err["msg"]
    for pre in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(pre)
    return ScenarioError(path, value, msg)


#: pydantic error types that say the input has another shape than the type (not a bad value of it)
_SHAPE_ERRORS = {"missing", "extra_forbidden", "union_tag_invalid", "union_tag_not_found"}


def _is_mismatch(err_type: str) -> bool:
    """Whether a pydantic error says the input does not have the type's shape at all."""
    return err_type in _SHAPE_ERRORS or err_type.endswith(("_type", "_parsing"))


def _clean_loc(model: Any, loc: tuple) -> tuple[list, list]:
    """A pydantic error location as the user's field path, and the type each component was looked up in.

    pydantic inserts a label for the member of a union type it tried (``'quadratic'`` for a tagged
    union, ``'float'``, ``'list[float]'``, ``'function-after[_order(), UniformInit]'`` otherwise); the
    user wrote no such key. Following the model's annotations tells which components are such labels:
    exactly those met at a union type. The label also names the member, so the walk continues in it.
    """
    parts: list = []
    parents: list = []
    tp: Any = model
    for part in loc:
        members = [m for m in _unwrap(tp) if m is not type(None)] if tp is not None else []
        if len(members) > 1:
            tp = _member_for_label(members, str(part))
            continue
        if tp is None and isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue  # a union label below a type the walk could not follow
        parts.append(part)
        parents.append(tp)
        tp = _descend(tp, part) if tp is not None else None
    return parts, parents


def _member_for_label(members: list[Any], label: str) -> Any:
    """The union member pydantic labels ``label``, or None if it cannot be told."""
    while label.startswith("function-"):  # 'function-before[check(), float]' -> 'float'
        match = re.match(r"function-[a-z]+\[.*?\(\), (.*)\]$", label)
        if not match:
            return None
        label = match.group(1)
    for m in members:
        if isinstance(m, type) and issubclass(m, BaseModel):
            if label == m.__name__:
                return m
            # a tagged union: the label is the value of the member's Literal tag field
            for info in m.model_fields.values():
                if typing.get_origin(info.annotation) is typing.Literal and label in typing.get_args(info.annotation):
                    return m
        elif _type_label(m) == label:
            return m
    return None


def _type_label(tp: Any) -> str | None:
    """pydantic's label for a plain type: ``float``, ``list[float]``, ``tuple[float, float]``."""
    if typing.get_origin(tp) is typing.Annotated:
        return _type_label(typing.get_args(tp)[0])
    origin = typing.get_origin(tp)
    if origin in (list, tuple, dict, set):
        labels = [_type_label(a) for a in typing.get_args(tp)]
        return None if None in labels else f"{origin.__name__}[{', '.join(labels)}]"  # type: ignore[arg-type]
    return tp.__name__ if isinstance(tp, type) else None


def _allowed_keys(model: Any, loc: list) -> list[str]:
    """Field names of the model found by following ``loc`` through nested types."""
    tp: Any = model
    for part in loc:
        tp = _descend(tp, part)
        if tp is None:
            return []
    fields = _model_fields(tp)
    return fields or []


def _unwrap(tp: Any) -> list[Any]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [u for a in typing.get_args(tp) for u in _unwrap(a)]
    return [tp]


def _model_fields(tp: Any) -> list[str] | None:
    for t in _unwrap(tp):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return list(t.model_fields)
    return None


def _descend(tp: Any, part: Any) -> Any:
    for t in _unwrap(tp):
        if isinstance(t, type) and issubclass(t, BaseModel):
            if isinstance(part, str) and part in t.model_fields:
                return t.model_fields[part].annotation
            continue
        origin = typing.get_origin(t)
        args = typing.get_args(t)
        if origin is dict and args:
            return args[1]
        if origin in (list, tuple) and args:
            return args[0]
    return None


#: the annotation of field or item ``part`` of the type ``tp`` (a model field, a dict value, a list item),
#: None when ``tp`` has no such part: how a dotted path's type is followed outside this module
descend_type = _descend
