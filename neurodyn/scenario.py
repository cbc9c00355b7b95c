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
"""

from __future__ import annotations

import copy
import itertools
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError, field_validator, model_validator

from neurodyn import registry
from neurodyn.errors import FieldIssue, ScenarioError, did_you_mean
from neurodyn.families.base import StrictModel
from neurodyn.quantities import Time

TOP_LEVEL_KEYS = ("name", "family", "model", "description", "params", "run", "record", "sweep", "output")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
REPO_ROOT = Path(__file__).resolve().parents[1]


class RunConfig(StrictModel):
    """How to run: time span, step, seed, backend."""

    duration: Time | None = None
    dt: Time | None = None
    seed: int = 0
    backend: str = "numba"
    #: Python regains control every ``chunk`` of simulated time (progress, NaN checks); default: auto
    chunk: Time | None = None
    #: Numba threads for kernels that use prange (default: all cores)
    threads: int | None = None
    #: training families: number of epochs (overrides the family default)
    epochs: int | None = None

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
        """Number of time steps, ``round(duration / dt)``."""
        assert self.duration is not None and self.dt is not None
        return int(round(self.duration / self.dt))


class SweepSpec(StrictModel):
    """``grid`` (Cartesian product) and/or ``zip`` (lock-step) over dotted paths."""

    grid: dict[str, list[Any]] = {}
    zip: dict[str, list[Any]] = {}

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


@dataclass
class Scenario:
    """A parsed, validated, unit-resolved description of one run (or of a sweep)."""

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

    def resolved_yaml(self) -> str:
        """The scenario as run, with units resolved to SI floats, as YAML text."""
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
        return yaml.safe_dump(doc, sort_keys=False)

    def with_values(self, values: dict[str, Any]) -> Scenario:
        """A copy with dotted-path overrides applied and everything re-validated."""
        raw = copy.deepcopy(self.raw)
        raw.pop("sweep", None)
        for path, value in values.items():
            set_path(raw, path, value)
        return from_dict(raw, source=self.source, preset_applied=True)


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", exclude_none=True)
    return obj


# --------------------------------------------------------------------------- loading


def load_scenario(path: str | os.PathLike, overrides: list[str] | None = None) -> Scenario:
    """Read, merge and validate a scenario file.

    Parameters
    ----------
    path : path-like
        The YAML scenario.
    overrides : list of str, optional
        ``"dotted.path=value"`` strings (value parsed as YAML), applied after the preset merge.

    Raises
    ------
    ScenarioError
        On any problem, with the field path, the value and what is allowed.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ScenarioError("scenario", str(path), "file not found") from None
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as exc:
        raise ScenarioError("scenario", str(path), f"cannot read it ({type(exc).__name__})") from None
    doc = parse_yaml(text, str(path))
    pairs = []
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ScenarioError("--set", item, "expected dotted.path=value, e.g. run.seed=2")
        pairs.append((key.strip(), parse_yaml(value, f"--set {key}") if value.strip() else None))
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


def parse_yaml(text: str, where: str) -> Any:
    """Safe-load YAML; a syntax error becomes a one-line ScenarioError."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(where, "<yaml>", f"malformed YAML{loc}: {problem}") from None


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
    params = doc.get("params") or {}
    if not isinstance(params, dict):
        raise ScenarioError("params", params, "expected a mapping of parameter names to values")
    model = doc.get("model")
    if model is not None:
        if not isinstance(model, str):
            raise ScenarioError("model", model, "a preset name from models/")
        preset_path = find_model(model, source)
        preset = parse_yaml(preset_path.read_text(), str(preset_path))
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


def from_dict(doc: Any, source: Path | None = None, preset_applied: bool = False) -> Scenario:
    """Validate a scenario document (already YAML-parsed)."""
    if not isinstance(doc, dict):
        raise ScenarioError("scenario", doc, "expected a mapping with keys " + ", ".join(TOP_LEVEL_KEYS))
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
    run = _validate(RunConfig, doc.get("run") or {}, "run")
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
    record = _validate(family.Record, doc.get("record") or {}, "record")
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
        # Validate every point now, so a bad path or value is refused before anything runs.
        models = {"params": family.Params, "run": RunConfig, "record": family.Record}
        for path in [*sweep.grid, *sweep.zip]:
            _check_sweep_path(doc, path, models)
        for point in sweep.points():
            scenario.with_values(point)
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
    # Prefer the most specific error; union types report one per branch.
    err = max(errors, key=lambda e: (e["type"] != "union_tag_invalid", len(e["loc"])))
    loc = [p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]
    path = ".".join([prefix, *map(str, loc)]) if loc else prefix
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        hint = did_you_mean(str(loc[-1]), allowed) if loc else ""
        return ScenarioError(path, value, f"unknown key{hint}; allowed: {', '.join(allowed)}")
    if err["type"] == "missing":
        return ScenarioError(path, None, "required")
    issue = (err.get("ctx") or {}).get("error")
    if isinstance(issue, FieldIssue):
        return ScenarioError(".".join(filter(None, [path, issue.subpath])), issue.value, issue.allowed)
    msg = err["msg"]
    for pre in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(pre)
    return ScenarioError(path, value, msg)


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
