"""The parameter reference: every key of a family's scenario, read from the schemas themselves.

A scenario is described by pydantic models: the top level (:class:`~neurodyn.scenario.ScenarioDocument`,
with :class:`~neurodyn.scenario.RunConfig` and :class:`~neurodyn.scenario.SweepSpec`) and the family's
``Params`` and ``Record``. :func:`field_docs` walks them (nested models, mappings of models such as
``params.populations.<name>``, lists of models such as ``params.synapses.<i>``, unions and tagged variants)
and gives one :class:`FieldDoc` per dotted path, with

* the **type**, a quantity's dimension (``time``, ``voltage``, ...) in place of ``float``;
* the **unit** of a quantity, the SI unit it is resolved to (from :mod:`neurodyn.quantities`);
* the **default** (``required`` when there is none);
* the **constraint**: bounds given with ``Field(gt=...)`` and friends, the sign of the quantity types
  (:data:`~neurodyn.quantities.PositiveTime`, ...), literal choices, lengths, a pattern, and what a
  validator enforces when its field says so in ``Field(json_schema_extra={"constraint": "..."})``;
* the **description**, the field's ``Field(description=...)``, written once, in the model.

``neurodyn schema FAMILY [--markdown]`` prints it; ``docs/reference/<family>.md`` is its Markdown
(:func:`write_pages` writes them all; a test keeps them current).
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from neurodyn import quantities, registry
from neurodyn.scenario import ScenarioDocument

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: the command that regenerates ``docs/reference/`` (named by the test that keeps it current)
REGENERATE = "python scripts/gen_reference.py"
#: how deep models may nest before the walk stops (real schemas nest fewer than ten levels)
_MAX_DEPTH = 20


@dataclass(frozen=True)
class FieldDoc:
    """One key of a scenario: where it is, what it takes, what it means."""

    path: str  #: dotted path as ``--set`` and ``sweep:`` take it; ``<name>`` a key you choose, ``<i>`` an index
    type: str  #: ``int``, ``float``, ``str``, ``bool``, a dimension (``time``), ``mapping``, ``list[...]``, ...
    unit: str  #: SI unit of a quantity ("" otherwise)
    default: str  #: the default as written in a scenario, or ``required``
    constraint: str  #: what a value must satisfy beyond its type ("" if nothing)
    description: str  #: the field's ``description`` ("" when the model gives none)
    variant: str = ""  #: for a member of a tagged union: which tag values the row belongs to (``kind: poisson``)


def field_docs(family: str) -> list[FieldDoc]:
    """Every key of a ``family`` scenario, top level included, in the order the models declare them.

    Raises
    ------
    ScenarioError
        If no family of that name is registered (the message lists the families).
    """
    fam = registry.get(family)
    rows: list[FieldDoc] = []
    for name, info in ScenarioDocument.model_fields.items():
        if name in ("params", "record"):
            model = fam.Params if name == "params" else fam.Record
            rows.append(_row(name, info.annotation, info, type_text="mapping"))
            _walk_model(model, name, rows, "", 0)
            continue
        _walk(name, info.annotation, info, rows, "", 0)
    return [_specialise(r, fam) for r in rows]


def _specialise(row: FieldDoc, fam: Any) -> FieldDoc:
    """What the top level says differently for this family: its name, backends and required times."""
    if row.path == "family":
        return _replace(row, constraint=f"{fam.name} (this page)")
    if row.path == "run.backend":
        return _replace(row, constraint="one of: " + ", ".join(fam.backends))
    if row.path in ("run.duration", "run.dt") and fam.needs_time:
        return _replace(row, type=row.type.removesuffix(" | null"), default="required")
    return row


def _replace(row: FieldDoc, **changes: str) -> FieldDoc:
    return FieldDoc(**{**asdict(row), **changes})


def schema_reference(family: str) -> pd.DataFrame:
    """The parameter reference of a family as a table, one row per key of its scenarios.

    Parameters
    ----------
    family : str
        A registered family (``neurodyn list`` shows them).

    Returns
    -------
    pandas.DataFrame
        Columns ``path``, ``type``, ``unit``, ``default``, ``constraint``, ``description`` and
        ``variant`` (see :class:`FieldDoc`), as ``neurodyn schema FAMILY`` prints them.

    Raises
    ------
    ScenarioError
        If no family of that name is registered.

    Examples
    --------
    >>> import neurodyn
    >>> ref = neurodyn.schema_reference("lif_network")
    >>> ref.set_index("path").loc["run.dt", ["type", "unit", "default", "constraint"]].tolist()
    ['time', 's', 'required', '> 0; <= duration']
    """
    import pandas as pd

    return pd.DataFrame([asdict(r) for r in field_docs(family)], columns=[f.name for f in fields(FieldDoc)])


# --------------------------------------------------------------------------- walking the models


def _walk(path: str, tp: Any, info: FieldInfo | None, rows: list[FieldDoc], variant: str, depth: int) -> None:
    """The row of ``path`` (a value of type ``tp``), then the rows of the models inside it."""
    rows.append(_row(path, tp, info, variant=variant))
    for suffix, model_group in _inner_models(tp):
        sub = path + suffix
        if len(model_group) == 1:
            _walk_model(model_group[0], sub, rows, variant, depth + 1)
        else:
            _walk_variants(model_group, sub, rows, variant, depth + 1)


def _walk_model(model: type[BaseModel], path: str, rows: list[FieldDoc], variant: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    for name, info in model.model_fields.items():
        _walk(f"{path}.{name}", info.annotation, info, rows, variant, depth)


def _walk_variants(models: list[type[BaseModel]], path: str, rows: list[FieldDoc], variant: str, depth: int) -> None:
    """The members of a union of models at ``path``: a tagged union's tag once, then each member's keys.

    Rows equal in every column but the variant are listed once, naming every variant they belong to.
    """
    tag = _tag_field(models)
    collected: list[FieldDoc] = []
    if tag is not None:
        choices = [v for m in models for v in typing.get_args(_strip(m.model_fields[tag].annotation))]
        infos = [m.model_fields[tag] for m in models]
        defaults = [_default_text(i, "") for i in infos if not i.is_required()]
        rows.append(
            FieldDoc(
                path=f"{path}.{tag}",
                type="str",
                unit="",
                default=defaults[0] if defaults else "required",
                constraint="one of: " + ", ".join(map(str, choices)),
                description=next((i.description for i in infos if i.description), ""),
                variant=variant,
            )
        )
    for model in models:
        label = f"{tag}: {_strip(model.model_fields[tag].annotation).__args__[0]}" if tag else ""
        sub: list[FieldDoc] = []
        for name, info in model.model_fields.items():
            if name != tag:
                _walk(f"{path}.{name}", info.annotation, info, sub, label, depth)
        collected += sub
    merged: dict[tuple, FieldDoc] = {}
    for row in collected:
        key = (row.path, row.type, row.unit, row.default, row.constraint, row.description)
        if key in merged:
            old = merged[key]
            merged[key] = _replace(old, variant=f"{old.variant}, {row.variant.split(': ', 1)[-1]}")
        else:
            merged[key] = row
    for row in merged.values():
        outer = f"{variant}; " if variant else ""
        rows.append(_replace(row, variant=(outer + row.variant) if row.variant else variant))


def _tag_field(models: list[type[BaseModel]]) -> str | None:
    """The field every model of a union has as a one-value ``Literal`` (the discriminator), if any."""
    common = set.intersection(*(set(m.model_fields) for m in models))
    for name in models[0].model_fields:
        if name in common and all(
            typing.get_origin(_strip(m.model_fields[name].annotation)) is typing.Literal
            and len(typing.get_args(_strip(m.model_fields[name].annotation))) == 1
            for m in models
        ):
            return name
    return None


def _strip(tp: Any) -> Any:
    """``tp`` without ``Annotated`` wrappers."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _members(tp: Any) -> list[Any]:
    """The members of a union (``Annotated`` kept on each), or ``[tp]``."""
    base = _strip(tp)
    if typing.get_origin(base) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(base) for m in _members(a)]
    return [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _inner_models(tp: Any) -> list[tuple[str, list[type[BaseModel]]]]:
    """Where models sit inside ``tp``: ``("", [models])`` for the value itself, ``(".<i>", ...)`` for list
    items, ``(".<name>", ...)`` for mapping values; several models at one place form a union."""
    found: dict[str, list[type[BaseModel]]] = {}
    for member in _members(tp):
        base = _strip(member)
        origin, args = typing.get_origin(base), typing.get_args(base)
        if _is_model(base):
            found.setdefault("", []).append(base)
        elif origin in (list, set, frozenset) or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
            for suffix, models in _inner_models(args[0]) if args else []:
                found.setdefault(".<i>" + suffix, []).extend(models)
        elif origin is dict and len(args) == 2:
            for suffix, models in _inner_models(args[1]):
                found.setdefault(".<name>" + suffix, []).extend(models)
    return [(k, list(dict.fromkeys(v))) for k, v in found.items()]


# --------------------------------------------------------------------------- one row


def _row(path: str, tp: Any, info: FieldInfo | None, variant: str = "", type_text: str | None = None) -> FieldDoc:
    meta = list(info.metadata) if info is not None else []
    unit = ", ".join(dict.fromkeys(_units(tp, meta)))
    constraints = list(dict.fromkeys(c for c in _constraints(tp, meta, info) if c))
    for c in list(constraints):  # a rule for the value and for each item of its list form, said once
        if f"items {c}" in constraints:
            constraints.remove(f"items {c}")
            constraints[constraints.index(c)] = f"{c} (each, for a list)"
    return FieldDoc(
        path=path,
        type=type_text or _type_text(tp, meta),
        unit=unit,
        default=_default_text(info, unit) if info is not None else "",
        constraint="; ".join(constraints),
        description=" ".join((info.description or "").split()) if info is not None else "",
        variant=variant,
    )


def _annotated(tp: Any, meta: list[Any]) -> tuple[Any, list[Any]]:
    """The bare type and all metadata of ``tp`` (``Annotated`` layers and ``FieldInfo`` objects opened)."""
    meta = list(meta)
    while typing.get_origin(tp) is typing.Annotated:
        meta += list(tp.__metadata__)
        tp = typing.get_args(tp)[0]
    opened: list[Any] = []
    for m in meta:
        opened += list(m.metadata) if isinstance(m, FieldInfo) else [m]
    return tp, opened


def _type_text(tp: Any, meta: list[Any] | None = None, inner: bool = False) -> str:
    base, meta = _annotated(tp, meta or [])
    dim = quantities.dimension_of(meta)
    if dim is not None:
        return dim
    origin, args = typing.get_origin(base), typing.get_args(base)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(dict.fromkeys(_type_text(a, inner=True) for a in args))
    if origin is typing.Literal:
        if inner and len(args) == 1:  # a single word beside other types ('all') is clearest as itself
            return f"'{args[0]}'" if isinstance(args[0], str) else json.dumps(args[0])
        return type(args[0]).__name__ if len({type(a) for a in args}) == 1 else "literal"  # choices: constraint
    if origin in (list, set, frozenset) or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        return f"list[{_type_text(args[0], inner=True)}]" if args else "list"
    if origin is tuple:
        return "[" + ", ".join(_type_text(a, inner=True) for a in args) + "]"
    if origin is dict:
        return f"dict[{_type_text(args[0], inner=True)}, {_type_text(args[1], inner=True)}]" if args else "dict"
    if base is Any:
        return "any"
    if base is type(None):
        return "null"
    if _is_model(base):
        return "mapping"
    return getattr(base, "__name__", str(base))


def _units(tp: Any, meta: list[Any]) -> list[str]:
    """SI units of the quantities in ``tp`` (a union, a list or tuple of quantities)."""
    base, meta = _annotated(tp, meta)
    dim = quantities.dimension_of(meta)
    if dim is not None:
        return [quantities.SI_UNITS[dim]]
    if _is_model(base) or typing.get_origin(base) is dict:
        return []  # the unit of what is inside is on the rows below
    return [u for a in typing.get_args(base) if a is not Ellipsis for u in _units(a, [])]


def _bound_text(m: Any) -> str | None:
    for cls, attr, sign in (
        (annotated_types.Gt, "gt", ">"),
        (annotated_types.Ge, "ge", ">="),
        (annotated_types.Lt, "lt", "<"),
        (annotated_types.Le, "le", "<="),
    ):
        if isinstance(m, cls):
            return f"{sign} {_plain(getattr(m, attr))}"
    if isinstance(m, annotated_types.MinLen):
        return f"at least {m.min_length} items"
    if isinstance(m, annotated_types.MaxLen):
        return f"at most {m.max_length} items"
    if isinstance(m, annotated_types.MultipleOf):
        return f"multiple of {_plain(m.multiple_of)}"
    pattern = getattr(m, "pattern", None)
    if isinstance(pattern, str):
        return f"matches {pattern}"
    return quantities.constraint_of([m])


def _constraints(
    tp: Any, meta: list[Any], info: FieldInfo | None, where: str = "", in_union: bool = False
) -> list[str]:
    """What a value of ``tp`` must satisfy: bounds, signs, choices, lengths (``items`` for list items)."""
    base, meta = _annotated(tp, meta)
    out = [f"{where}{t}" for t in (_bound_text(m) for m in meta) if t]
    extra = info.json_schema_extra if info is not None else None
    if isinstance(extra, dict) and isinstance(extra.get("constraint"), str):
        out.append(extra["constraint"])
    origin, args = typing.get_origin(base), typing.get_args(base)
    if origin is typing.Literal:
        if len(args) > 1 or not in_union:  # a single choice beside other types is shown in the type
            out.append(f"{where}one of: " + ", ".join(map(str, args)))
    elif origin in (typing.Union, types.UnionType):
        for a in args:
            out += _constraints(a, [], None, where, in_union=True)
    elif origin in (list, set, frozenset) and args:
        out += _constraints(args[0], [], None, "items ")
    elif origin is tuple and args:
        items = args[:1] if args[-1] is Ellipsis else args
        out += [c for a in items for c in _constraints(a, [], None, "items ")]
    return out


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _default_text(info: FieldInfo, unit: str) -> str:
    """The default as one would write it in a scenario; quantities with their unit (``1 ms``)."""
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return ""  # the defaults of its fields are on the rows below
    return _value_text(value, unit if "," not in unit else "")


def _value_text(value: Any, unit: str) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if unit and unit != "1" and math.isfinite(value):
            return quantities.format_quantity(value, unit, digits=6)
        return _plain(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value_text(v, unit) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value_text(v, '')}" for k, v in value.items()) + "}"
    if isinstance(value, BaseModel):
        return _value_text(value.model_dump(mode="json", exclude_defaults=True), "")
    return str(value)


# --------------------------------------------------------------------------- text and Markdown

_COLUMNS = ("path", "type", "unit", "default", "constraint", "description")


def _cells(row: FieldDoc) -> list[str]:
    path = f"{row.path} [{row.variant}]" if row.variant else row.path
    return [path, row.type, row.unit, row.default, row.constraint, row.description]


def text(family: str) -> str:
    """The reference as an aligned plain-text table (what ``neurodyn schema FAMILY`` prints)."""
    body = [_cells(r) for r in field_docs(family)]
    widths = [max(len(h), *(len(c[i]) for c in body)) for i, h in enumerate(_COLUMNS)]
    widths[-1] = 0  # the description ends the line; it is not padded
    lines = [_join(_COLUMNS, widths), _join(["-" * w if w else "-" * 11 for w in widths], widths)]
    lines += [_join(c, widths) for c in body]
    return "\n".join(lines)


def _join(cells: Any, widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()


def markdown(family: str) -> str:
    """The reference as a Markdown page: ``docs/reference/<family>.md``."""
    fam = registry.get(family)
    rows = field_docs(family)
    head = [
        f"# `{family}` scenario reference",
        "",
        f"Every key a scenario of the `{family}` family may have, generated from the models that validate it"
        + (f" ({fam.description})" if fam.description else "")
        + f". Regenerate with `{REGENERATE}` (or print one family with `neurodyn schema {family}`);"
        " do not edit by hand.",
        "",
        "* **path**: the dotted path that `--set` and `sweep:` take; `<name>` stands for a key you choose (a"
        " population's name), `<i>` for a list index (0, 1, ...); `[kind: x]` marks a key that exists only"
        " for that choice.",
        "* **type**: a dimension (`time`, `voltage`, ...) is a quantity written with its unit, such as"
        " `'20 ms'`; `mapping` has the keys listed below it.",
        "* **unit**: the SI unit a quantity is resolved to, and stored in.",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "---|" * len(_COLUMNS),
    ]
    body = []
    for r in rows:
        cells = _cells(r)
        # outside code, "<name>" would be read as an HTML tag and vanish
        cells = [f"`{cells[0]}`"] + [c.replace("<", "&lt;") for c in cells[1:]]
        body.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(head + body) + "\n"


def index_markdown() -> str:
    """``docs/reference/index.md``: the reference page of every built-in family."""
    lines = [
        "# Scenario reference",
        "",
        "One page per family lists every key of its scenarios (the top level, `run:`, `record:`, `sweep:` and"
        " the family's `params:`) with its type, unit, default, constraint and meaning, generated from the"
        f" models that validate scenarios. Regenerate with `{REGENERATE}`; print one in the terminal with"
        " `neurodyn schema FAMILY` (`--markdown` for this format).",
        "",
    ]
    for name in registry.builtin_names():
        fam = registry.get(name)
        lines.append(f"* [`{name}`]({name}.md): {fam.description}".rstrip(": "))
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """File name -> content of every page of ``docs/reference/`` (built-in families and the index)."""
    out = {f"{name}.md": markdown(name) for name in registry.builtin_names()}
    out["index.md"] = index_markdown()
    return out


def write_pages(folder: str | Path) -> list[Path]:
    """Write :func:`pages` into ``folder`` (created if needed); return the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in pages().items():
        path = folder / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
