"""Hostile scenario input: size, expansion and nesting limits, NaN and infinity, and which field is blamed.

Every case is refused with one line naming the file or field and the limit or rule; none may run out of
memory, recurse without bound or print a traceback.
"""

from __future__ import annotations

import math
import resource
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from neurodyn import registry
from neurodyn.errors import ScenarioError, _short_repr
from neurodyn.scenario import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_YAML_BYTES,
    REPO_ROOT,
    RunConfig,
    _validate,
    from_dict,
    load_scenario,
    parse_yaml,
)

DATA = Path(__file__).resolve().parents[1] / "data"
CUBA = DATA / "cuba_issue.yaml"
SCENARIOS = REPO_ROOT / "scenarios"
SYNC = SCENARIOS / "sync_ou_topologies.yaml"
NODES_RULE = f"a scenario may expand to at most {MAX_NODES:,} values (aliases count at every use)"
DEPTH_RULE = f"a scenario may nest at most {MAX_DEPTH} levels"


def _laughs(indent: str, levels: int = 9) -> list[str]:
    """Lines of a billion-laughs mapping: level i lists level i - 1 ten times (10**levels strings)."""
    lines = [f"{indent}a0: &a0 [{', '.join(['lol'] * 10)}]"]
    lines += [f"{indent}a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return lines


def _run_limited(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``neurodyn ARGS`` with 2 GB of address space and 60 s: a broken cap ends in MemoryError or timeout."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg", "NUMBA_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "neurodyn.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
        env=env,
    )


# ----------------------------------------------------------------------------- alias bombs (item 5)


def test_alias_bomb_under_params_is_refused_while_composing(tmp_path, user_error):
    f = tmp_path / "bomb.yaml"
    f.write_text("\n".join(["name: bomb", "family: sync_learners", "params:", *_laughs("  ")]) + "\n")
    proc = _run_limited("validate", str(f), cwd=tmp_path)
    user_error(proc, f"{f} = '<yaml>': more than {MAX_NODES:,} values at line 9, column 47; {NODES_RULE}")


def test_alias_bomb_under_graph_args_is_refused(tmp_path, user_error):
    lines = [
        "name: bomb",
        "family: lif_network",
        "x: &x",
        *_laughs("  "),
        "params:",
        "  populations: {a: {size: 10, tau_m: 20 ms, v_rest: 0 mV, v_reset: 0 mV, v_threshold: 10 mV}}",
        "  synapses:",
        "    - {source: a, target: a, kind: current, weight: 1 mV, tau: 5 ms,",
        "       connect: {graph: watts_strogatz_graph, args: {k: 2, p: *x}}}",
        "run: {duration: 10 ms, dt: 0.1 ms}",
    ]
    f = tmp_path / "bomb.yaml"
    f.write_text("\n".join(lines) + "\n")
    for command in ("validate", "run"):
        proc = _run_limited(command, str(f), cwd=tmp_path)
        user_error(proc, f"{f} = '<yaml>': more than {MAX_NODES:,} values at line ", NODES_RULE)
    assert not list(tmp_path.glob("**/*.h5"))


def test_alias_bomb_in_a_set_value_and_in_a_preset(tmp_path):
    bomb = "{" + ", ".join(line.strip() for line in _laughs("")) + "}"
    with pytest.raises(ScenarioError, match=r"^--set params\.k = '<yaml>': more than 1,000,000 values at line 1"):
        load_scenario(SYNC, [f"params.k={bomb}"])
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "bomb.yaml").write_text("\n".join(["params:", *_laughs("  ")]) + "\n")
    scen = tmp_path / "s.yaml"
    scen.write_text(CUBA.read_text().replace("family: lif_network", "family: lif_network\nmodel: bomb"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(scen)
    assert str(info.value).startswith(f"{tmp_path / 'models' / 'bomb.yaml'} = '<yaml>': more than 1,000,000 values")


def test_an_alias_inside_its_own_anchor_is_refused():
    with pytest.raises(ScenarioError) as info:
        parse_yaml("a: &a {b: [1, *a]}", "x.yaml")
    assert str(info.value) == (
        "x.yaml = '<yaml>': an alias refers to a node that contains it at line 1, column 15; "
        "a scenario must be a finite tree"
    )


def test_expansion_just_below_the_limit_is_accepted():
    # 10 + 100 + 1000 + ... : six levels of the bomb expand to 1,111,111 strings (plus keys): refused at
    # seven, accepted at five (111,111 strings); what counts is the expansion, not the text.
    doc = parse_yaml("\n".join(_laughs("", levels=5)), "x.yaml")
    assert len(doc["a4"]) == 10 and len(doc["a4"][0][0][0][0]) == 10
    with pytest.raises(ScenarioError, match="more than 1,000,000 values"):
        parse_yaml("\n".join(_laughs("", levels=6)), "x.yaml")


# ----------------------------------------------------------------------------- nesting (item 7) and size


@pytest.mark.parametrize("command", ["validate", "run", "sweep"])
def test_500_nested_brackets_are_one_line(tmp_path, user_error, command):
    """Every command that reads a scenario (run and sweep first peek at it for a pool to start early)."""
    f = tmp_path / "deep.yaml"
    f.write_text("name: deep\nfamily: lif_network\nparams: " + "[" * 500 + "]" * 500 + "\n")
    proc = _run_limited(command, str(f), cwd=tmp_path)
    user_error(proc, f"{f} = '<yaml>': nested deeper than {MAX_DEPTH} levels at line 3, column 108; {DEPTH_RULE}")
    assert list(tmp_path.iterdir()) == [f]


@pytest.mark.parametrize("opening", ["[", "{a: ", "- "])
def test_nesting_limit_is_exact(opening):
    def nested(levels: int) -> str:
        if opening == "- ":
            return "\n".join("  " * i + "- " for i in range(levels - 1)) + "\n" + "  " * (levels - 1) + "- 1"
        return opening * levels + "1" + ("]" if opening == "[" else "}") * levels

    # the top-level collection is one level; the scalar inside the innermost is one more
    parse_yaml(nested(MAX_DEPTH - 1), "x.yaml")
    with pytest.raises(ScenarioError, match=f"nested deeper than {MAX_DEPTH} levels"):
        parse_yaml(nested(MAX_DEPTH), "x.yaml")


def test_aliases_cannot_stack_nesting_beyond_the_limit():
    lines = ["a0: &a0 " + "[" * 40 + "]" * 40]
    lines += [f"a{i}: &a{i} " + "[" * 40 + f"*a{i - 1}" + "]" * 40 for i in range(1, 4)]
    with pytest.raises(ScenarioError, match=f"nested deeper than {MAX_DEPTH} levels once aliases are expanded"):
        parse_yaml("\n".join(lines), "x.yaml")


def test_a_file_over_1_mib_is_refused_unread(tmp_path, user_error):
    f = tmp_path / "big.yaml"
    f.write_bytes(CUBA.read_bytes() + b"# " + b"x" * (2 << 20) + b"\n")
    size = f.stat().st_size
    user_error(
        _run_limited("validate", str(f), cwd=tmp_path),
        f"{f} = '<yaml>': file of {size:,} bytes; a scenario file may have at most {MAX_YAML_BYTES:,} bytes (1 MiB)",
    )
    with pytest.raises(ScenarioError, match=r"^--set run\.seed = '<yaml>': text of 1,048,577 characters"):
        load_scenario(CUBA, ["run.seed=" + "1" * (MAX_YAML_BYTES + 1)])


def test_documents_from_python_are_walked_without_recursion():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    base = yaml.safe_load(CUBA.read_text())
    with pytest.raises(ScenarioError, match=f"^params = .*: nested deeper than {MAX_DEPTH} levels; {DEPTH_RULE}$"):
        from_dict({**base, "params": {"populations": deep}})
    loop: dict = {}
    loop["x"] = loop
    with pytest.raises(ScenarioError, match=f"^params = .*: nested deeper than {MAX_DEPTH} levels"):
        from_dict({**base, "params": loop})
    wide = list(range(MAX_NODES))
    with pytest.raises(ScenarioError) as info:
        from_dict({**base, "record": {"v": {"indices": wide}}})
    shown = "{'v': {'indices': [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ..."
    assert str(info.value) == f"record = {shown}: more than {MAX_NODES:,} values; {NODES_RULE}"


# ----------------------------------------------------------------------------- bounded repr


def test_short_repr_is_bounded_for_huge_deep_and_self_referencing_values():
    loop: list = [1]
    loop.append(loop)
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    bomb: list = ["lol"] * 10
    for _ in range(30):  # 10**31 strings if expanded
        bomb = [bomb] * 10
    assert _short_repr(loop) == "[1, " * 14 + "[..."
    assert _short_repr(deep) == "[" * 57 + "..."
    assert _short_repr(bomb) == "[" * 31 + "'lol', 'lol', 'lol', 'lol'..."
    assert _short_repr("x" * 10**8) == "'" + "x" * 56 + "..."
    assert _short_repr(10**100_000) == "<integer of 332193 bits>"
    for plain in ([1, 2.5, "a", None, True, (1,), (), set(), {3}], {"a": {"b": [1]}}, RunConfig(seed=3)):
        assert _short_repr(plain) == repr(plain)[:57] + ("..." if len(repr(plain)) > 60 else "")


# ----------------------------------------------------------------------------- NaN and infinity (item 8)


@pytest.mark.parametrize(
    ("scenario", "override", "message"),
    [
        (SYNC, "params.loss.center=.nan", "params.loss.center = nan: must be a finite number"),
        (SYNC, "params.loss.center=[0, .nan]", "params.loss.center.1 = nan: must be a finite number"),
        (SYNC, "params.init_offset=.nan", "params.init_offset = nan: must be a finite number"),
        (SYNC, "params.init_spread=.inf", "params.init_spread = inf: must be a finite number"),
        (SYNC, "params.k=[.inf]", "params.k.0 = inf: must be a finite number"),
        (SYNC, "params.sigma=.inf", "params.sigma = inf: must be a finite number"),
        (SYNC, "params.loss.hessian=.inf", "params.loss.hessian = inf: must be a finite number"),
        (SYNC, "params.loss.hessian=[[1, 0], [0, -.inf]]", "params.loss.hessian.1.1 = -inf: must be a finite number"),
        (
            SYNC,
            "params.topology=[{edges: [[0, 1, .inf]]}]",
            "params.topology.0.edges.0.2 = inf: must be a finite number",
        ),
        (
            SYNC,
            "params.topology=[{generator: ring, weights: [1, .inf]}]",
            "params.topology.0.weights.1 = inf: must be a finite number",
        ),
        (
            SYNC,
            "params.topology=[{generator: ring, weight: .inf}]",
            "params.topology.0.weight = inf: must be a finite number",
        ),
        (
            SYNC,
            "params.topology=[{generator: connected_watts_strogatz_graph, args: {k: 4, p: .nan}}]",
            "params.topology.0.args.p = nan: must be a finite number",
        ),
        (SYNC, "params.burn_in=1e400 ms", "params.burn_in = '1e400 ms': must be a finite number"),
        (
            SCENARIOS / "field_dispersion.yaml",
            "params.kappa=.inf",
            "params.kappa = inf: must be a finite number",
        ),
        (
            SCENARIOS / "field_dispersion.yaml",
            "params.omega0=.inf",
            "params.omega0 = inf: must be a finite number",
        ),
        (
            SCENARIOS / "ultralif_bounds.yaml",
            "params.bounds.input_low=.nan",
            "params.bounds.input_low = nan: must be a finite number",
        ),
        (
            CUBA,
            "params.synapses.0.connect={graph: watts_strogatz_graph, args: {k: 4, p: .inf}}",
            "params.synapses.0.connect.args.p = inf: must be a finite number",
        ),
        (CUBA, "params.synapses.0.weight=.nan", "params.synapses.0.weight = nan: must be a finite number"),
        (CUBA, "run.duration=.inf", "run.duration = inf: must be a finite number"),
    ],
)
def test_nonfinite_values_are_refused_naming_the_field(scenario, override, message):
    with pytest.raises(ScenarioError) as info:
        load_scenario(scenario, [override])
    assert str(info.value) == message


def test_nonfinite_hessian_via_the_cli_prints_one_line_and_no_warning(repo, user_error):
    proc = subprocess.run(
        [
            sys.executable,
            "-W",
            "default",
            "-m",
            "neurodyn.cli",
            "validate",
            str(SYNC),
            "--set",
            "params.loss.hessian=.inf",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"},
    )
    user_error(proc)
    assert proc.stderr == "neurodyn: error: params.loss.hessian = inf: must be a finite number\n"


def _models() -> dict[str, type[BaseModel]]:
    """Every pydantic model a scenario reaches: each family's Params and Record, RunConfig, and all nested."""
    todo: list[type[BaseModel]] = [RunConfig]
    for name in registry.names():
        family = registry.get(name)
        todo += [family.Params, family.Record]
    found: dict[str, type[BaseModel]] = {}
    while todo:
        model = todo.pop()
        if f"{model.__module__}.{model.__qualname__}" in found:
            continue
        found[f"{model.__module__}.{model.__qualname__}"] = model
        for info in model.model_fields.values():
            stack = [info.annotation]
            while stack:
                tp = stack.pop()
                if isinstance(tp, type) and issubclass(tp, BaseModel):
                    todo.append(tp)
                stack.extend(a for a in typing.get_args(tp) if not isinstance(a, str | int | float))
    return found


def _nonfinite_inputs(tp: typing.Any) -> list[typing.Any]:
    """Inputs for a field of type ``tp`` that hold a NaN or infinity where the type takes a number."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _nonfinite_inputs(args[0])
    if tp is float or tp is typing.Any:
        return [math.nan, math.inf, -math.inf]
    if origin in (typing.Union, __import__("types").UnionType):
        return [x for a in args for x in _nonfinite_inputs(a)]
    if origin is list:
        return [[x] for x in _nonfinite_inputs(args[0])]
    if origin is dict:
        return [{"key": x} for x in _nonfinite_inputs(args[1])]
    if origin is tuple:
        return [[x] * len(args) for x in _nonfinite_inputs(args[0])] if len(set(args)) == 1 else []
    return []


def test_every_float_field_of_every_family_refuses_nan_and_infinity():
    models = _models()
    # the built-in families at least (a test family registered by another test may live elsewhere)
    builtin = {f"neurodyn.families.{n}" for n in registry.names() if registry.target(n).startswith("neurodyn.")}
    assert builtin <= {k.rsplit(".", 2)[0] for k in models}
    checked = 0
    for qualname, model in models.items():
        for field, info in model.model_fields.items():
            for value in _nonfinite_inputs(info.annotation):
                with pytest.raises(ScenarioError) as err:
                    _validate(model, {field: value}, "x")
                msg = str(err.value)
                assert msg.startswith(f"x.{field}") and msg.endswith(": must be a finite number"), (qualname, msg)
                checked += 1
    assert checked > 150  # every family contributes dozens of float fields


# ----------------------------------------------------------------------------- the field that is wrong (item 11)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "params.populations.exc.v_init={uniform: [-50 mV, -70 mV]}",
            "params.populations.exc.v_init.uniform = [-0.05, -0.07]: "
            "the bounds are reversed: [low, high] needs low <= high",
        ),
        (
            "params.populations.exc.v_init={normal: [-50 mV, -7 mV]}",
            "params.populations.exc.v_init.normal = [-0.05, -0.007]: [mean, std] needs std >= 0",
        ),
        (
            "params.populations.exc.v_init={unifrm: [-60 mV, -50 mV]}",
            "params.populations.exc.v_init.unifrm = ['-60 mV', '-50 mV']: unknown key (did you mean 'uniform'?); "
            "allowed: uniform",
        ),
        (
            "params.populations.exc.v_init={uniform: [-60 mV, x]}",
            "params.populations.exc.v_init.uniform.1 = 'x': cannot read this as a number with a unit; "
            "expected a voltage such as '-65 mV'",
        ),
    ],
)
def test_union_errors_blame_the_member_the_input_meant(override, message):
    with pytest.raises(ScenarioError) as info:
        load_scenario(CUBA, [override])
    assert str(info.value) == message


def test_tagged_union_labels_are_not_part_of_the_path():
    with pytest.raises(ScenarioError) as info:
        load_scenario(SYNC, ["params.loss={kind: logcosh, scale: -1}"])
    assert str(info.value).startswith("params.loss.scale = -1: must be positive")


def test_list_shows_hostile_scenario_files_as_unreadable(tmp_path):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "deep.yaml").write_text("description: " + "[" * 500 + "]" * 500 + "\n")
    (tmp_path / "scenarios" / "bomb.yaml").write_text("\n".join(["description:", *_laughs("  ")]) + "\n")
    proc = _run_limited("list", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    assert [ln.split() for ln in lines if ln.split()[0] in ("bomb", "deep")] == [
        ["bomb", "(unreadable)"],
        ["deep", "(unreadable)"],
    ]


@pytest.mark.parametrize("section", ["params", "run", "record"])
@pytest.mark.parametrize("raw", [[], 0, False, ""])
def test_a_section_that_is_no_mapping_is_refused_naming_it(section, raw):
    """A section written as ``[]``, ``0``, ``false`` or ``''`` is refused; ``null`` means the defaults."""
    doc = {"name": "t", "family": "eqprop", section: raw}
    with pytest.raises(ScenarioError) as err:
        from_dict(doc)
    assert (
        str(err.value) == f"{section} = {raw!r}: expected a mapping of {section} fields (leave it out for the defaults)"
    )
    from_dict({"name": "t", "family": "eqprop", section: None})  # null: the defaults


@pytest.mark.parametrize("value", [2**63, -(2**63) - 5, 2**64, 1.9e19])
def test_integers_beyond_int64_are_refused_in_every_model(value):
    """Kernels use 64-bit integers: an integer that does not fit is refused, naming the field."""
    doc = {"name": "t", "family": "sync_learners", "params": {"n": [4, value]}}
    with pytest.raises(ScenarioError) as err:
        from_dict(doc)
    assert str(err.value).startswith("params.n")
    doc = {"name": "t", "family": "eqprop", "params": {"layers": [64, value, 10]}}
    with pytest.raises(ScenarioError, match=r"^params\.layers"):
        from_dict(doc)
