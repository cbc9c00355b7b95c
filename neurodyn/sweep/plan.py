"""A sweep's plan: the points of a ``sweep:`` section, validated once, and the dimensions they span.

:func:`plan_sweep` expands a scenario's ``grid`` and ``zip`` into points, each checked by its family
and carrying its validated scenario; :func:`load_plan` reads the plan back from the ``sweep.json`` a
sweep folder holds. Nothing here runs or writes anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neurodyn import registry
from neurodyn.errors import ScenarioError, UserError
from neurodyn.scenario import RunConfig, Scenario, descend_type, parse_yaml

MANIFEST = "sweep.json"


@dataclass
class SweepDim:
    """One dimension of the combined Dataset: a grid path, or all zipped paths together."""

    name: str
    paths: list[str]
    #: path -> resolved (SI) coordinate values along this dimension
    coords: dict[str, list[Any]]
    #: path -> coordinate variable name (the first path's is ``name``)
    coord_names: dict[str, str]
    units: dict[str, str]

    @property
    def size(self) -> int:
        return len(self.coords[self.paths[0]])


@dataclass
class SweepPoint:
    """One run of the sweep."""

    index: tuple[int, ...]
    id: str
    values: dict[str, Any]  #: dotted path -> value as written in the scenario
    yaml: str = ""  #: resolved scenario of this point (what its file must hold to be reused); see resolved_yaml
    scenario: Scenario | None = field(default=None, repr=False)  #: the validated point, when planned here

    def resolved_yaml(self) -> str:
        """:attr:`yaml`, rendered from :attr:`scenario` on first use (only reused points need it)."""
        if not self.yaml and self.scenario is not None:
            self.yaml = self.scenario.resolved_yaml()
        return self.yaml


@dataclass
class SweepPlan:
    """Everything decided before a point runs: where, which points, which dimensions.

    The sweep's scenario as a whole is known by what the folder records of it (its name, family,
    description and resolved YAML): a plan read back from ``sweep.json`` has nothing more, and a plan
    made here needs nothing more (each point carries its own validated :class:`Scenario`).
    """

    name: str
    family: str
    #: the sweep's scenario as run, units resolved (:meth:`Scenario.resolved_yaml`)
    scenario_yaml: str
    description: str
    root: Path
    dims: list[SweepDim]
    points: list[SweepPoint]

    @property
    def combined(self) -> Path:
        return self.root / f"{self.name}.h5"

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(d.size for d in self.dims)

    def point_path(self, point: SweepPoint) -> Path:
        return self.root / "points" / f"{point.id}.h5"

    def failed_path(self, point: SweepPoint) -> Path:
        return self.root / "failed" / f"{point.id}.json"

    def manifest(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "scenario": self.scenario_yaml,
            "dims": [
                {"name": d.name, "paths": d.paths, "coords": d.coords, "coord_names": d.coord_names, "units": d.units}
                for d in self.dims
            ],
            "points": [{"index": list(p.index), "id": p.id, "values": p.values} for p in self.points],
        }


def sweep_root(scenario: Scenario, output: str | os.PathLike | None = None) -> Path:
    """The sweep's directory: ``output``, else the scenario's ``output:``, else ``outputs/<name>``."""
    root = Path(output) if output is not None else scenario.output or Path("outputs") / scenario.name
    if root.suffix in (".h5", ".nc"):
        raise UserError(
            f"output {root}: a sweep writes a directory (points/, failed/, {scenario.name}.h5); pass --output DIR"
        )
    return root.absolute()


def plan_sweep(scenario: Scenario, output: str | os.PathLike | None = None) -> SweepPlan:
    """Expand the sweep of ``scenario`` into points and dimensions; nothing is written.

    This is the one place a sweep's points are validated: each point's scenario is built from its values
    and passed through the family's complete check (the same :meth:`Family.check` a single run makes),
    once, so ``neurodyn validate`` and the sweep driver refuse exactly what a point's run would refuse,
    before anything runs.

    Raises
    ------
    UserError
        No ``sweep:`` section, a swept list with repeated values (the coordinate would be ambiguous), or
        a point that its run would refuse (the message names the point's values).
    """
    spec = scenario.sweep
    if spec is None:
        raise UserError(f"scenario '{scenario.name}' has no sweep: section; use 'neurodyn run'")
    root = sweep_root(scenario, output)
    groups = [[p] for p in spec.grid] + ([list(spec.zip)] if spec.zip else [])
    raw_lists = {**spec.grid, **spec.zip}
    points_values = spec.points()
    family = registry.get(scenario.family)
    scenarios = []
    for values in points_values:
        try:
            sc = scenario.with_values(values)
            family.check(sc)
        except UserError as exc:
            raise _at_point(exc, values) from None
        scenarios.append(sc)
    models = {"params": type(scenario.params), "run": RunConfig, "record": type(scenario.record)}

    # Points vary grid paths slowest-first, zip innermost: the same order as the dimensions.
    shape = tuple(len(raw_lists[g[0]]) for g in groups)
    indices = [tuple(int(i) for i in np.unravel_index(k, shape)) for k in range(len(points_values))]
    # Resolved coordinate values, read back from the validated scenarios ("0.5 mV" -> 0.0005).
    resolved: dict[str, list[Any]] = {p: [None] * len(raw_lists[p]) for p in raw_lists}
    for index, sc in zip(indices, scenarios):
        for g, i in zip(groups, index):
            for p in g:
                resolved[p][i] = _coord_value(_lookup(sc, p), raw_lists[p][i])
    names = _dim_names([g[0] for g in groups] + [p for g in groups for p in g[1:]])
    dims = []
    for g in groups:
        coords = {p: resolved[p] for p in g}
        lead = coords[g[0]]
        if len({_key(v) for v in lead}) != len(lead):
            kind = "zip" if g[0] in spec.zip else "grid"
            raise UserError(
                f"sweep.{kind}.{g[0]}: repeated values {raw_lists[g[0]]}; each value must "
                f"appear once (it labels a coordinate)"
            )
        dims.append(
            SweepDim(
                name=names[g[0]],
                paths=g,
                coords=coords,
                coord_names={p: names[p] for p in g},
                units={p: _units(models, p, raw_lists[p], coords[p]) for p in g},
            )
        )

    points = []
    ids: set[str] = set()
    for index, values, sc in zip(indices, points_values, scenarios):
        labels = [(names[d.paths[0]], values[d.paths[0]]) for d in dims]
        pid = _point_id(labels, values, ids)
        ids.add(pid)
        points.append(SweepPoint(index=index, id=pid, values=values, scenario=sc))
    return SweepPlan(
        name=scenario.name,
        family=scenario.family,
        scenario_yaml=scenario.resolved_yaml(),
        description=scenario.description,
        root=root,
        dims=dims,
        points=points,
    )


def _at_point(exc: UserError, values: dict[str, Any]) -> UserError:
    """The same refusal, naming the sweep point it belongs to."""
    where = ", ".join(f"{k}={_fmt(v)}" for k, v in values.items())
    if isinstance(exc, ScenarioError):
        return ScenarioError(exc.path, exc.value, f"{exc.allowed} (sweep point {where})")
    try:
        return type(exc)(f"{exc} (sweep point {where})")
    except TypeError:  # a subclass with another signature: keep it as it is
        return exc


def _lookup(sc: Scenario, path: str) -> Any:
    parts = path.split(".")
    node: Any = {"params": sc.params, "run": sc.run, "record": sc.record}[parts[0]]
    for part in parts[1:]:
        if isinstance(node, dict):
            node = node[part]
        elif isinstance(node, list | tuple):
            node = node[int(part)]
        else:
            node = getattr(node, part)
    return node


def _coord_value(value: Any, raw: Any) -> Any:
    """A coordinate value: numbers and strings as they are, anything else as its YAML-ish JSON text."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | str):
        return value
    if value is None:
        return "none"
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.dumps(value if value is not None else raw, sort_keys=True, default=str)


def _key(v: Any) -> Any:
    return ("f", float(v)) if isinstance(v, int | float) else ("s", str(v))


def _dim_names(paths: list[str]) -> dict[str, str]:
    """Last path component, lengthened with earlier components (joined by ``_``) until unique."""
    depth = dict.fromkeys(paths, 1)
    while True:
        names = {p: "_".join(p.split(".")[-depth[p] :]) for p in paths}
        taken = list(names.values())
        clash = {p for p in paths if taken.count(names[p]) > 1 and depth[p] < len(p.split("."))}
        if not clash:
            return names
        for p in clash:
            depth[p] += 1


def _units(models: dict[str, Any], path: str, raw: list[Any], coords: list[Any]) -> str:
    """Units of a swept value: from a quantity field type, a unit in the written value, or '1'."""
    from neurodyn import quantities

    parts = path.split(".")
    tp: Any = models[parts[0]]
    meta: list[Any] = []
    for part in parts[1:]:
        fields = getattr(tp, "model_fields", None) if isinstance(tp, type) else None
        if fields and part in fields:
            meta, tp = list(fields[part].metadata), fields[part].annotation
        else:
            meta, tp = [], descend_type(tp, int(part) if part.isdigit() else part)
        if tp is None:
            break
    for dim, symbol in quantities.SI_UNIT.items():
        q = getattr(quantities, dim.capitalize(), None)
        if q is not None and meta and getattr(q, "__metadata__", (None,))[0] is meta[0]:
            return symbol
    for value in raw:
        if isinstance(value, str):
            m = quantities.QUANTITY_RE.match(value)
            if m and m.group(2) in quantities.UNITS:
                return quantities.SI_UNIT[quantities.UNITS[m.group(2)][0]]
    return "1" if all(isinstance(c, int | float) for c in coords) else ""


def _point_id(labels: list[tuple[str, Any]], values: dict[str, Any], taken: set[str]) -> str:
    """A readable file name from the values as written, such as ``we=0.5mV_seed=2``.

    A hash of the values is added when needed to stay unique (or short).
    """
    slug = "_".join(f"{n}={_fmt(v)}" for n, v in labels)
    slug = re.sub(r"[^A-Za-z0-9.=+_-]", "-", slug)
    if slug and len(slug) <= 120 and slug not in taken:
        return slug
    digest = hashlib.sha1(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{slug[:100]}-{digest}" if slug else digest


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        text = repr(v)
        return text if len(text) <= 12 else f"{v:.10g}"
    if isinstance(v, str):
        return "".join(v.split())
    return json.dumps(v, sort_keys=True, default=str) if isinstance(v, dict | list) else str(v)


def is_manifest(path: Path) -> bool:
    """Whether ``path`` is a sweep's marker: a ``sweep.json`` of the shape :meth:`SweepPlan.manifest` writes."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("name"), str)
        and isinstance(doc.get("family"), str)
        and isinstance(doc.get("scenario"), str)
        and isinstance(doc.get("dims"), list)
        and isinstance(doc.get("points"), list)
        and all(isinstance(p, dict) and isinstance(p.get("id"), str) for p in doc["points"])
    )


def load_plan(root: str | os.PathLike) -> SweepPlan:
    """Rebuild the plan of a sweep directory from its ``sweep.json``.

    Raises
    ------
    UserError
        One line naming ``sweep.json`` when it is missing, not JSON, or not a plan neurodyn wrote
        (a missing key, a value of the wrong type, point indices outside the dimensions).
    """
    root = Path(root).absolute()
    path = root / MANIFEST
    if not path.is_file():
        raise UserError(f"{root} is not a neurodyn sweep directory (no {MANIFEST})")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else f"not JSON: {exc}"
        raise UserError(f"{path}: not a readable sweep plan ({reason})") from None
    try:
        return _plan_from_manifest(doc, root)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        if len(what) > 200:  # the reason quotes values of the file, which may be anything
            what = what[:197] + "..."
        raise UserError(f"{path}: not a sweep plan neurodyn wrote ({what})") from None


def _file_name(text: Any) -> bool:
    """Whether ``text`` can name a file inside the sweep folder (no separators, not ``.`` or ``..``)."""
    return (
        isinstance(text, str) and re.fullmatch(r"[A-Za-z0-9_.=+\-]{1,200}", text) is not None and text.strip(".") != ""
    )


def _plan_from_manifest(doc: Any, root: Path) -> SweepPlan:
    """The plan in a parsed ``sweep.json`` (:meth:`SweepPlan.manifest`); raises on any deviation."""

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ValueError(what)

    need(isinstance(doc, dict), f"the document is a JSON {type(doc).__name__}, not an object")
    for key, kind in (("name", str), ("family", str), ("scenario", str), ("dims", list), ("points", list)):
        need(isinstance(doc[key], kind), f"{key!r} is not a JSON {kind.__name__.replace('str', 'string')}")
    need(_file_name(doc["name"]), f"name {doc['name']!r} is not a file name")
    need(registry.target(doc["family"]) is not None, f"family {doc['family']!r} is not installed here")
    try:
        stored = parse_yaml(doc["scenario"], "scenario")
    except ScenarioError:
        stored = None
    need(isinstance(stored, dict), "'scenario' does not hold a scenario's YAML mapping")
    dims = []
    for d in doc["dims"]:
        need(isinstance(d, dict), "an entry of 'dims' is not an object")
        dim = SweepDim(
            name=d["name"], paths=d["paths"], coords=d["coords"], coord_names=d["coord_names"], units=d["units"]
        )
        need(
            isinstance(dim.name, str) and isinstance(dim.paths, list) and dim.paths, f"dimension {dim.name!r}: no paths"
        )
        for attr in ("coords", "coord_names", "units"):
            table = getattr(dim, attr)
            need(isinstance(table, dict), f"dimension {dim.name!r}: {attr!r} is not an object")
            need(all(p in table for p in dim.paths), f"dimension {dim.name!r}: {attr!r} lacks a swept path")
        need(
            all(
                isinstance(dim.coords[p], list) and len(dim.coords[p]) == len(dim.coords[dim.paths[0]])
                for p in dim.paths
            ),
            f"dimension {dim.name!r}: coordinate lists of different lengths",
        )
        dims.append(dim)
    shape = tuple(d.size for d in dims)
    points = []
    for p in doc["points"]:
        need(isinstance(p, dict), "an entry of 'points' is not an object")
        index = tuple(p["index"])
        need(
            len(index) == len(shape) and all(isinstance(i, int) and 0 <= i < n for i, n in zip(index, shape)),
            f"point {p.get('id')!r}: index {list(index)} outside the sweep's shape {list(shape)}",
        )
        need(_file_name(p["id"]), f"point id {p['id']!r} is not a file name")
        need(isinstance(p["values"], dict), f"point {p['id']!r}: 'values' is not an object")
        points.append(SweepPoint(index=index, id=p["id"], values=p["values"], yaml=""))
    return SweepPlan(
        name=doc["name"],
        family=doc["family"],
        scenario_yaml=doc["scenario"],
        description=str(stored.get("description", "") or ""),
        root=root,
        dims=dims,
        points=points,
    )


def is_sweep(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a sweep directory or a combined sweep file."""
    path = Path(path)
    if path.is_dir():
        return (path / MANIFEST).is_file()
    if path.is_file() and (path.parent / MANIFEST).is_file():
        try:
            doc = json.loads((path.parent / MANIFEST).read_text())
        except (OSError, UnicodeDecodeError, ValueError):
            return False
        return isinstance(doc, dict) and doc.get("name") == path.stem
    return False
