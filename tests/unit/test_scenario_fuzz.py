"""Property-based: random mutations of a valid scenario never produce a traceback."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodyn import registry
from neurodyn.errors import ScenarioError, UserError
from neurodyn.scenario import check_extent, from_dict, parse_yaml

CUBA = Path(__file__).resolve().parents[1] / "data" / "cuba_issue.yaml"

# ----------------------------------------------------------------------------- property-based

_BASE = yaml.safe_load(CUBA.read_text())
_BASE["run"]["duration"] = "10 ms"

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["5 mV", "20 ms", "-1 s", "0.1 nS", "1e400 ms", "nan", "x Hz"]),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


_ALL_PATHS = [p for p in _paths(_BASE) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_ALL_PATHS), _values, st.booleans()), min_size=1, max_size=3))
def test_random_mutations_never_traceback(mutations):
    """Any mutation of a valid scenario either validates or raises a one-line UserError."""
    doc = copy.deepcopy(_BASE)
    for path, value, delete in mutations:
        node = doc
        try:
            for part in path[:-1]:
                node = node[part]
            if delete and isinstance(node, dict):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        s = from_dict(doc)
        registry.get(s.family).check(s)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc)


# A soup of YAML tokens: flow and block collections, anchors, aliases (also to undefined or enclosing
# anchors), merge keys, non-finite numbers, tags. Repeated tokens make deep nesting and alias chains likely.
_YAML_TOKENS = st.sampled_from(
    [
        "[",
        "]",
        "{",
        "}",
        "a: ",
        "b: ",
        "<<: ",
        "- ",
        ", ",
        "\n",
        "\n  ",
        "&x ",
        "&y ",
        "*x",
        "*y",
        "1",
        ".nan",
        "-.inf",
        "'s'",
        "!!binary ",
        "!!python/object ",
        "? ",
        "|\n  t",
    ]  # fmt: skip
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_YAML_TOKENS, max_size=400), st.integers(1, 40))
def test_random_yaml_parses_or_is_refused_in_one_line(tokens, repeat):
    """Any text either parses within the limits or is refused with one line naming the input."""
    text = "".join(tokens[: len(tokens) // 2] * repeat + tokens[len(tokens) // 2 :])
    try:
        doc = parse_yaml(text, "t.yaml")
    except ScenarioError as exc:
        assert str(exc).startswith("t.yaml = '<yaml>': ") and "\n" not in str(exc)
        return
    try:
        check_extent(doc)
        from_dict({"name": "x", "family": "sync_learners", "params": {"loss": doc}})
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc)
