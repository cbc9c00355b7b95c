"""Hostile inputs: every shipped scenario, mutated, through ``validate`` and a tiny ``run``.

Each case is one scenario file. ``neurodyn validate`` must pass it or refuse it; when it passes, the
scenario runs (a sweep serially), in a forked child limited to :data:`~tests.hostile.harness.MEM_LIMIT`
of address space and :data:`~tests.hostile.harness.WALL_LIMIT` seconds. Allowed outcomes of each command:

* exit 0 and nothing on stderr (a run leaves exactly its result under the final name);
* exit 2 and exactly one line, ``neurodyn: error: ...``, naming a field (``params.x = ...``, a dotted
  path) or the scenario file, from ``validate`` only (a scenario that ``validate`` passes is not refused
  by ``run``), with nothing left in the output folder;
* exit 3 of the run with one ``neurodyn: simulation failed:`` line (a sweep: only SimulationError
  points), the documented outcome of a simulation that became invalid.

Anything else fails: a traceback (exit 1), a warning line, a second line, a run killed by a limit.

The mutations are drawn by Hypothesis, derandomized (the same cases in every run; another fixed
sequence with ``NEURODYN_HOSTILE_SEED=<int>``). Per scenario,
``NEURODYN_HOSTILE_EXAMPLES`` cases (default :data:`DEFAULT_EXAMPLES`, sized for the suite's CI budget);
``NEURODYN_HOSTILE_FINDINGS=<file.jsonl>`` records every case there (the scenario of each failing one)
instead of failing the test, to survey a code base with many examples.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.hostile.harness import Verdict, run_case
from tests.hostile.tiny import TINY, tiny_scenario

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(TINY)

#: cases per scenario in CI. Measured on 2 busy cores: 0.14 s per case on average (nine in ten are refused
#: by validate in 0.05-0.4 s; a tiny run takes 0.3-3 s) and 20 s to start and warm up the server, so
#: 43 scenarios x 15 cases take about a minute and a half
DEFAULT_EXAMPLES = 15
EXAMPLES = int(os.environ.get("NEURODYN_HOSTILE_EXAMPLES", DEFAULT_EXAMPLES))
FINDINGS = os.environ.get("NEURODYN_HOSTILE_FINDINGS")
#: another fixed sequence of cases (a survey); unset, the cases are derandomized (the same in every run)
SEED = os.environ.get("NEURODYN_HOSTILE_SEED")

pytestmark = [
    pytest.mark.hostile,
    # fork(), RLIMIT_AS and /proc: a Linux address-space limit is what stops a runaway allocation
    pytest.mark.skipif(sys.platform != "linux", reason="the hostile-input harness needs Linux"),
]

# --------------------------------------------------------------------------- hostile values

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z][\w/^*]*)\s*$")
_UNITS = ("ms", "s", "mV", "Hz", "nS", "mm", "pF", "kg", "rad")
_NAN, _INF = float("nan"), float("inf")


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


#: values put anywhere, whatever was there
GENERIC: list[Any] = [
    None, True, 0, -1, 1e12, 10**9, -(10**9), 2**64, _NAN, _INF, -_INF, 1e-300, "", "abc", "1e400 ms", "1e9 s",
    "5 mV", "-1 ms", "0 ms", "nan ms", "inf Hz", [], {}, [1, 2, 3], {"bogus": 1}, _nested(60),
]  # fmt: skip


def _variants(orig: Any) -> list[Any]:
    """Hostile replacements shaped after the value ``orig`` that was there."""
    if isinstance(orig, bool):
        return [1, "yes", "maybe", None, [orig]]
    if isinstance(orig, int | float):
        x = float(orig)
        out: list[Any] = [-orig, 0, orig * 10**9, 10**9, _NAN, _INF, -_INF, str(orig), [orig], {"value": orig}]
        out += [x + 0.5, f"{orig} ms", 10**12 if isinstance(orig, int) else 1e300]
        return out
    if isinstance(orig, str):
        m = _QUANTITY.match(orig)
        if m:
            x, unit = float(m.group(1)), m.group(2)
            return [
                f"{x * 1e9:g} {unit}", f"{-x:g} {unit}", f"0 {unit}", f"nan {unit}", f"inf {unit}",
                f"-inf {unit}", f"1e400 {unit}", f"1e-400 {unit}", f"{x:g}", x, unit, f"{x:g} {unit} {unit}",
                *[f"{x:g} {u}" for u in _UNITS if u != unit],
            ]  # fmt: skip
        return ["bogus", "", orig.upper(), orig + "x", 1, [orig], "../../../outside.h5", "/tmp/abs.h5"]
    if isinstance(orig, list):
        return [
            [], orig + orig, orig[:1], [orig], dict(enumerate(orig)), orig[0] if orig else 0,
            list(reversed(orig)), orig * 200,
        ]  # fmt: skip
    if isinstance(orig, dict):
        return [[], list(orig.values()), {**orig, "bogus_key": 1}, {}, {f"{k}x": v for k, v in orig.items()}]
    return [0, "x", []]


# --------------------------------------------------------------------------- mutations


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every location in a YAML document, as a tuple of keys and indices (the root is ``()``)."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list) and len(node) <= 20:  # a long list: its items are alike
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _absent_fields(doc: dict, path: tuple) -> dict[str, Any]:
    """Schema fields that the mapping at ``path`` could hold but does not, with their defaults.

    Mutating only what a scenario writes would never reach an optional field left at its default
    (``record.rate_bin``); these are set too.
    """
    from pydantic import BaseModel
    from pydantic_core import PydanticUndefined

    from neurodyn import registry
    from neurodyn.scenario import RunConfig, _descend, _unwrap

    if not path or path[0] not in ("params", "run", "record") or not isinstance(_get(doc, path), dict):
        return {}
    try:
        family = registry.get(doc["family"])
    except Exception:  # noqa: BLE001 - a mutated family: no schema to follow
        return {}
    tp: Any = {"params": family.Params, "run": RunConfig, "record": family.Record}[path[0]]
    for part in path[1:]:
        tp = _descend(tp, part)
        if tp is None:
            return {}
    models = [t for t in _unwrap(tp) if isinstance(t, type) and issubclass(t, BaseModel)]
    if not models:
        return {}
    present = _get(doc, path)
    return {
        name: (None if f.default is PydanticUndefined else f.default)
        for name, f in models[0].model_fields.items()
        if name not in present
    }


def _get(doc: Any, path: tuple) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _key(part: str) -> str | int:
    return int(part) if part.isdigit() else part


#: locations that make a tiny scenario tiny (its overrides and what holds them): deleting one, or
#: emptying its mapping, brings back a family default sized for science (minutes of run time), which
#: is valid and says nothing about hostile input, so those operations leave them alone
_KEEPS_TINY = {
    name: {tuple(map(_key, key.split(".")))[:n] for key in keys for n in range(1, key.count(".") + 2)}
    for name, keys in TINY.items()
}


@st.composite
def mutated(draw: st.DrawFn, name: str) -> tuple[dict, list[str]]:
    """The tiny scenario ``name`` with one to three mutations (mostly one), and a description of each."""
    doc = tiny_scenario(REPO / "scenarios" / f"{name}.yaml")
    done: list[str] = []
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]), label="number of mutations")):
        path = draw(st.sampled_from(_paths(doc)), label="path")
        where = ".".join(map(str, path)) or "<root>"
        parent = _get(doc, path[:-1]) if path else None
        keeps_tiny = path in _KEEPS_TINY[name]
        ops = ["add unknown key"] if not path else ["replace"] * 4 + ([] if keeps_tiny else ["delete"])
        if path and isinstance(parent, dict):
            ops.append("rename key")
        absent = _absent_fields(doc, path)
        if path and isinstance(_get(doc, path), dict):
            ops.append("add unknown key")
            ops += ["set an absent field"] * 3 if absent else []
        op = draw(st.sampled_from(ops), label="operation")
        if op == "replace":
            orig = _get(doc, path)
            pool = draw(st.sampled_from(["shaped", "shaped", "shaped", "generic"]), label="kind of value")
            values = _variants(orig) if pool == "shaped" else GENERIC
            if keeps_tiny and isinstance(orig, dict):
                # the loader reads an empty section as "all defaults" (test_a_section_that_is_no_mapping...)
                values = [v for v in values if isinstance(v, float) or v not in ({}, [], None, 0, "")]
            value = draw(st.sampled_from(values), label="value")
            parent[path[-1]] = copy.deepcopy(value)
            done.append(f"{where}: {_short(orig)} -> {_short(value)}")
        elif op == "delete":
            del parent[path[-1]]
            done.append(f"{where}: deleted")
        elif op == "rename key":
            new = draw(st.sampled_from([f"{path[-1]}x", "bogus", "params.bogus", "run.seed.x"]), label="new key")
            parent[new] = parent.pop(path[-1])
            done.append(f"{where}: renamed to {new}")
        elif op == "set an absent field":
            key = draw(st.sampled_from(sorted(absent)), label="absent field")
            default = absent[key]
            shaped = _variants(default) if isinstance(default, int | float | str | list) else []
            value = draw(st.sampled_from(shaped + GENERIC), label="value")
            _get(doc, path)[key] = copy.deepcopy(value)
            done.append(f"{where}.{key} (absent, default {_short(default)}): set to {_short(value)}")
        else:
            node = _get(doc, path)
            node["bogus_key"] = draw(st.sampled_from([1, "x", None, {"a": 1}]), label="unknown value")
            done.append(f"{where}: unknown key bogus_key added")
    return doc, done


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _record(case: str, verdict: Verdict, text: str) -> None:
    """Append a case to the findings file (survey mode): its outcome, and the scenario if it failed."""
    entry = {
        "case": case,
        "signature": verdict.signature,
        "problems": verdict.problems,
        "codes": verdict.outcome.codes,
        "seconds": verdict.outcome.seconds,
        "yaml": text if verdict.problems else "",
    }
    with open(FINDINGS, "a") as f:
        f.write(json.dumps(entry) + "\n")


# --------------------------------------------------------------------------- the test


@pytest.mark.parametrize("name", SCENARIOS)
@(seed(int(SEED)) if SEED else lambda test: test)
@settings(
    max_examples=EXAMPLES,
    derandomize=SEED is None,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each case costs a run; the mutation is printed
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_mutated_scenario_is_run_or_refused_in_one_line(hostile_server, name, data):
    """A mutated shipped scenario validates and runs, or is refused with one line naming the field."""
    doc, mutations = data.draw(mutated(name), label="mutated scenario")
    text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=120)
    sweep = isinstance(doc.get("sweep"), dict)
    folder = hostile_server.cases / f"{name}-{os.urandom(4).hex()}"
    verdict = run_case(hostile_server, folder, text, sweep)
    shutil.rmtree(folder, ignore_errors=True)
    if FINDINGS:
        _record(f"{name}: " + "; ".join(mutations), verdict, text)
        return
    if verdict.problems:
        pytest.fail(
            f"{name} mutated ({'; '.join(mutations)}):\n" + "\n".join(verdict.problems) + f"\n--- scenario ---\n{text}",
            pytrace=False,
        )


def test_finite_values_have_yaml_spellings():
    """The NaN and infinities above reach the scenario file as YAML's ``.nan``, ``.inf`` and ``-.inf``."""
    text = yaml.safe_dump({"a": [_NAN, _INF, -_INF]})
    assert text == "a:\n- .nan\n- .inf\n- -.inf\n"
    assert all(math.isnan(v) or math.isinf(v) for v in yaml.safe_load(text)["a"])


# --------------------------------------------------------------------------- sections that are no mapping


@pytest.mark.parametrize(
    ("name", "section", "raw"),
    [
        ("quickstart", "record", "[]"),
        ("quickstart", "record", "0"),
        ("sync_ou_topologies", "record", "false"),
        ("eqprop_gradient_theorem", "run", "[]"),
        ("eqprop_gradient_theorem", "params", "''"),
    ],
)
def test_a_section_that_is_no_mapping_is_refused(hostile_server, name, section, raw):
    """``params``, ``run`` and ``record`` written as an empty list, 0, false or '' are refused by validate,
    naming the section: read as "all defaults", they would silently run something else than written."""
    text = _tiny_text(name, **{section: raw})
    folder = hostile_server.cases / f"section-{name}-{section}"
    verdict = run_case(hostile_server, folder, text, sweep=False, run=False)
    shutil.rmtree(folder, ignore_errors=True)
    assert verdict.outcome.codes == [2], (verdict.outcome.codes, verdict.outcome.stderr)
    assert not verdict.problems, verdict.problems
    assert verdict.outcome.stderr[0].startswith(f"neurodyn: error: {section} = "), verdict.outcome.stderr


# --------------------------------------------------------------------------- inputs mutation does not reach


def _tiny_text(name: str = "quickstart", **replace: Any) -> str:
    """The tiny scenario ``name`` as YAML text, with dotted paths set to placeholders ``@KEY@``."""
    from tests.hostile.tiny import set_dotted

    doc = tiny_scenario(REPO / "scenarios" / f"{name}.yaml")
    for path in replace:
        set_dotted(doc, path, f"@{path}@")
    text = yaml.safe_dump(doc, sort_keys=False, width=1000)
    for path, raw in replace.items():
        text = text.replace(f"'@{path}@'", raw)
    return text


def _laughs(levels: int = 9) -> str:
    """A billion-laughs mapping in flow style: ``levels`` anchors, each naming the previous one ten times."""
    parts = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        parts.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]")
    return "{" + ", ".join(parts) + "}"


_BOMB_ARGS = "{k: 2, p: 0.1, bomb: " + _laughs() + "}"
_LATIN1 = _tiny_text().replace("description: ", "description: Caf\u00e9 ", 1)

#: name -> (scenario file bytes or text, is it a sweep)
EXPLICIT: dict[str, tuple[str | bytes, bool]] = {
    "billion laughs under params": (_tiny_text(**{"params.bomb": _laughs()}), False),
    "billion laughs in a networkx connect.args": (
        _tiny_text(
            "cuba",
            **{"params.synapses.0.connect": "{graph: watts_strogatz_graph, args: " + _BOMB_ARGS + "}"},
        ),
        False,
    ),
    "billion laughs as a sweep value list": (
        _tiny_text("lif_siegert_sweep", **{"sweep.grid": "{run.seed: " + _laughs(7) + "}"}),
        True,
    ),
    "500 nested [ under params": (_tiny_text(**{"params.populations.regular.size": "[" * 500 + "]" * 500}), False),
    "500 nested { under record": (_tiny_text(**{"record.v": "{a: " * 500 + "1" + "}" * 500}), False),
    "2 MB of comment": (_tiny_text() + ("# " + "x" * 98 + "\n") * 21_000, False),
    "2 MB description": (_tiny_text(**{"description": "'" + "x" * 2_100_000 + "'"}), False),
    "2 MB list of probe indices": (_tiny_text(**{"record.v.indices": "[" + ", ".join(["1"] * 700_000) + "]"}), False),
    "non-UTF-8 (Latin-1) file": (_LATIN1.encode("latin-1"), False),
    "UTF-16 file": (_tiny_text().encode("utf-16"), False),
    "binary garbage": (bytes(range(256)) * 64, False),
}


@pytest.mark.parametrize("case", sorted(EXPLICIT))
def test_hostile_file_is_run_or_refused_in_one_line(hostile_server, case):
    """Alias bombs, deep nesting, megabyte files and undecodable bytes: run, or refused with one line."""
    text, sweep = EXPLICIT[case]
    assert len(text) < 3_000_000
    folder = hostile_server.cases / re.sub(r"\W+", "_", case)
    verdict = run_case(hostile_server, folder, text, sweep)
    shutil.rmtree(folder, ignore_errors=True)
    if verdict.problems:
        pytest.fail(f"{case}:\n" + "\n".join(verdict.problems), pytrace=False)


def test_two_megabyte_cases_are_two_megabytes():
    """The 'megabyte' cases above have the size their names say (between 2 and 3 MB)."""
    for case in ("2 MB of comment", "2 MB description", "2 MB list of probe indices"):
        assert 2_000_000 <= len(EXPLICIT[case][0]) < 3_000_000, case
