"""The parameter reference (neurodyn.reference, `neurodyn schema`, docs/reference/) is read from the models."""

from __future__ import annotations

from pathlib import Path

import pytest

import neurodyn
from neurodyn import reference, registry
from neurodyn.reference import FieldDoc
from neurodyn.scenario import RunConfig, descend_type
from tests import reference_family

ROOT = Path(__file__).resolve().parents[2]

#: families whose fields still lack a ``description=``; the check below is skipped for them (the set
#: empties as each family's models describe their fields)
UNDESCRIBED: set[str] = set()


@pytest.fixture
def ref_family():
    registry.register(reference_family.NAME, reference_family.TARGET)
    yield reference_family.NAME
    registry._REGISTERED.pop(reference_family.NAME, None)
    registry.get.cache_clear()


def _params_and_record(rows: list[FieldDoc]) -> list[FieldDoc]:
    return [r for r in rows if r.path.startswith(("params.", "record."))]


def test_every_shape_of_schema_is_listed_with_type_unit_default_constraint(ref_family):
    rows = _params_and_record(reference.field_docs(ref_family))
    assert rows == [
        FieldDoc("params.cells", "dict[str, mapping]", "", "required", "", "named groups"),
        FieldDoc("params.cells.<name>.size", "int", "", "required", ">= 1", "number of cells"),
        FieldDoc("params.cells.<name>.tau", "time", "s", "20 ms", "> 0", "time constant"),
        FieldDoc("params.links", "list[mapping]", "", "[]", "", ""),
        FieldDoc("params.links.<i>.kind", "str", "", "fast", "one of: fast, slow", ""),
        FieldDoc("params.links.<i>.delay", "time | null", "s", "null", "> 0", ""),
        FieldDoc("params.start", "voltage | mapping | null", "V", "null", "", ""),
        FieldDoc("params.start.low", "[voltage, voltage]", "V", "required", "", ""),
        FieldDoc("params.wave", "mapping", "", "", "", ""),
        FieldDoc("params.wave.shape", "str", "", "sine", "one of: sine, square", "the waveform"),
        FieldDoc("params.wave.frequency", "float", "", "10", "> 0", "cycles per second", "shape: sine"),
        FieldDoc("params.wave.phase", "float", "", "0", "", "", "shape: sine, square"),
        FieldDoc("params.wave.duty", "float", "", "0.5", "> 0; < 1", "", "shape: square"),
        FieldDoc("params.gains", "list[float]", "", "[1, 2]", "items >= 0", ""),
        FieldDoc("params.mode", "str | list[str]", "", "a", "one of: a, b (each, for a list)", ""),
        FieldDoc("params.scale", "float", "", "1", "a power of two", "a factor"),
        FieldDoc("record.every", "time", "s", "1 ms", "> 0", "sampling interval"),
    ]


def test_top_level_run_and_sweep_are_described(ref_family):
    rows = {r.path: r for r in reference.field_docs(ref_family)}
    top = [p for p in rows if not p.startswith(("params.", "record."))]
    assert top == [
        "name",
        "family",
        "model",
        "description",
        "params",
        "run",
        *(f"run.{f}" for f in RunConfig.model_fields),
        "record",
        "sweep",
        "sweep.grid",
        "sweep.zip",
        "output",
    ]
    assert all(rows[p].description for p in top), [p for p in top if not rows[p].description]
    assert rows["run.duration"] == FieldDoc(
        "run.duration", "time", "s", "required", "> 0", "simulated time span (required by families that step in time)"
    )
    assert rows["run.backend"].constraint == "one of: numba"
    assert rows["family"].constraint == "ref_test (this page)"


def test_paths_are_the_ones_set_and_sweep_follow():
    """Every path of every built-in family names a field the loader can follow (as ``--set`` and a sweep
    path do), with ``<name>`` and ``<i>`` standing for a key and an index."""
    for family in registry.builtin_names():
        fam = registry.get(family)
        models = {"params": fam.Params, "run": RunConfig, "record": fam.Record}
        for row in reference.field_docs(family):
            head, *parts = row.path.split(".")
            if head not in models or not parts:
                continue
            tp = models[head]
            for part in parts:
                tp = descend_type(tp, 0 if part == "<i>" else "x" if part == "<name>" else part)
                assert tp is not None, (family, row.path)


@pytest.mark.parametrize("family", registry.builtin_names())
def test_every_field_of_the_family_has_a_description(family):
    if family in UNDESCRIBED:
        pytest.skip(f"{family}: its models do not describe their fields yet (listed in UNDESCRIBED)")
    missing = [r.path for r in _params_and_record(reference.field_docs(family)) if not r.description]
    assert not missing, f"{family}: fields without Field(description=...): {', '.join(missing)}"


def test_python_table_matches_the_rows(ref_family):
    table = neurodyn.schema_reference(ref_family)
    assert list(table.columns) == ["path", "type", "unit", "default", "constraint", "description", "variant"]
    row = table.set_index("path").loc["params.cells.<name>.tau"]
    assert (row["type"], row["unit"], row["default"], row["constraint"]) == ("time", "s", "20 ms", "> 0")
    assert len(table) == len(reference.field_docs(ref_family))


def test_markdown_escapes_what_markdown_would_eat(ref_family):
    page = reference.markdown(ref_family)
    assert page.startswith("# `ref_test` scenario reference\n")
    lines = page.splitlines()
    assert "| `params.start` | voltage \\| mapping \\| null | V | null |  |  |" in lines
    assert "| `params.wave.phase [shape: sine, square]` | float |  | 0 |  |  |" in lines
    name = next(ln for ln in lines if ln.startswith("| `name` |"))
    assert "outputs/&lt;name>.h5" in name


def test_checked_in_reference_pages_are_current():
    folder = ROOT / "docs" / "reference"
    expected = reference.pages()
    assert sorted(p.name for p in folder.glob("*.md")) == sorted(expected)
    for name, content in expected.items():
        assert (folder / name).read_text(encoding="utf-8") == content, (
            f"docs/reference/{name} is out of date with the models; regenerate it with `{reference.REGENERATE}`"
        )


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(reference, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
