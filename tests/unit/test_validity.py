"""`validate` refuses exactly what `run` (or `sweep`) would refuse, before anything is allocated or run.

Each bad input is run through the command line in-process: ``validate`` and ``run``/``sweep`` must both exit
with code 2 and print one line naming the field, and ``run`` must leave no file behind. Each good input
must pass both. The inputs are tiny, so a run that was wrongly let through finishes quickly.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from neurodyn.cli import main
from neurodyn.errors import ResourceError, ScenarioError
from neurodyn.resources import MEMORY_FRACTION, available_bytes, format_bytes, memory_shortfall
from neurodyn.scenario import MAX_SWEEP_POINTS, from_dict


@pytest.fixture(autouse=True)
def _sixteen_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every estimate is compared with 16 GiB of available memory, whatever this machine has."""
    import neurodyn.resources

    monkeypatch.setattr(neurodyn.resources, "_read_available", lambda: 16 * 2**30)
    monkeypatch.setattr(neurodyn.resources, "_cache", [])


POP = "{size: %d, tau_m: 20 ms, v_rest: -70 mV, v_reset: -70 mV, v_threshold: -50 mV, v_init: -60 mV}"


def lif(
    sizes: tuple[int, int] = (20, 10),
    connect: str = "{p: 0.1}",
    delay: str = "1 ms",
    record: str = "{v: {every: 1 ms, indices: [0, 1]}}",
    sweep: str | None = None,
) -> str:
    """A tiny two-population lif_network scenario (20 ms) as YAML text."""
    text = (
        "name: tiny\nfamily: lif_network\nparams:\n  populations:\n"
        f"    a: {POP % sizes[0]}\n    b: {POP % sizes[1]}\n"
        f"  synapses:\n    - {{source: a, target: b, connect: {connect}, weight: 1 mV, tau: 5 ms, delay: {delay}}}\n"
        "  inputs:\n    - {kind: constant, target: [a, b], drive: 25 mV}\n"
        f"run: {{duration: 20 ms, dt: 0.1 ms, seed: 1}}\nrecord: {record}\n"
    )
    return text + (f"sweep: {sweep}\n" if sweep else "")


def field(lattice: str = "{nx: 16, ny: 16, h: 1 mm}", sources: str = "[]", record: str = "{}") -> str:
    """A tiny cortical_field scenario as YAML text."""
    return (
        "name: field\nfamily: cortical_field\n"
        f"params: {{lattice: {lattice}, kappa: 100.0, omega0: 10.0, sources: {sources}}}\n"
        f"run: {{duration: 5 ms, dt: 0.5 ms, seed: 1}}\nrecord: {record}\n"
    )


def sync(params: str) -> str:
    """A tiny sync_learners scenario as YAML text."""
    return f"name: sync\nfamily: sync_learners\nparams: {params}\nrun: {{duration: 0.1 s, dt: 10 ms, seed: 1}}\n"


BAD = {
    "rate_bin zero": (lif(record="{rate_bin: 0}"), ["record.rate_bin", "positive"]),
    "rate_bin negative": (lif(record="{rate_bin: -1 ms}"), ["record.rate_bin", "positive"]),
    "analysis_start negative": (lif(record="{analysis_start: -5 ms}"), ["record.analysis_start", ">= 0"]),
    "analysis_start after the run": (
        lif(record="{analysis_start: 30 ms}"),
        ["record.analysis_start", "before the end of the run"],
    ),
    "v.every negative": (lif(record="{v: {every: -1 ms}}"), ["record.v.every", "positive"]),
    "v.every zero": (lif(record="{v: {every: 0 ms}}"), ["record.v.every", "positive"]),
    "v.every below dt": (lif(record="{v: {every: 0.01 ms}}"), ["record.v.every", "at least run.dt"]),
    "repeated seed": (lif(sweep="{grid: {run.seed: [1, 1]}}"), ["sweep.grid.run.seed = 1", "repeated values"]),
    "graph between unequal sizes": (
        lif(connect="{graph: watts_strogatz_graph, args: {k: 4, p: 0.1}}"),
        ["params.synapses.0.connect.graph", "equal population sizes"],
    ),
    "graph, sizes made unequal by a sweep": (
        lif(
            sizes=(20, 20),
            connect="{graph: watts_strogatz_graph, args: {k: 4, p: 0.1}}",
            sweep="{grid: {params.populations.b.size: [20, 30]}}",
        ),
        ["params.synapses.0.connect.graph", "equal population sizes", "params.populations.b.size=30"],
    ),
    "unknown graph argument": (
        lif(sizes=(20, 20), connect="{graph: watts_strogatz_graph, args: {k: 4, p: 0.1, kk: 3}}"),
        ["params.synapses.0.connect.args.kk", "no argument 'kk'"],
    ),
    "graph arguments impossible for the size": (
        lif(sizes=(20, 20), connect="{graph: watts_strogatz_graph, args: {k: 40, p: 0.1}}"),
        ["params.synapses.0.connect.args", "k>n"],
    ),
    "v recording of every neuron for 1e5 s": (
        lif(sizes=(20000, 20000), record="{v: {indices: all}}").replace("duration: 20 ms", "duration: 100000 s"),
        ["record.v: v recording too large", "GiB", "available"],
    ),
    "rate_bin of 1e-15 s": (lif(record="{rate_bin: 1e-15 s}"), ["record.rate_bin = 1e-15 s", "too many bins"]),
    "poisson rate too high for brian2": (
        lif()
        .replace(
            "{kind: constant, target: [a, b], drive: 25 mV}",
            "{kind: poisson, target: a, rate: 20 kHz, weight: 1 mV, tau: 5 ms}",
        )
        .replace("seed: 1}", "seed: 1, backend: 'brian2:numpy'}"),
        ["params.inputs.0.rate", "rate * dt must be <= 1"],
    ),
    "probe beyond a swept size": (
        lif(record="{v: {indices: [25]}}", sweep="{grid: {params.populations.a.size: [20, 10]}}"),
        ["record.v.indices = 25", "< 20", "params.populations.a.size=10"],
    ),
    "in_degree above a swept size": (
        lif(connect="{in_degree: 15}", sweep="{grid: {params.populations.a.size: [20, 10]}}"),
        ["params.synapses.0.connect.in_degree = 15", "at most 10"],
    ),
    "complete graph of 100000 neurons": (
        lif(sizes=(100_000, 100_000), connect="{graph: complete_graph}"),
        ["network too large", "1e+10 synapses", "GiB", "available"],
    ),
    "delay of 1e6 s": (lif(delay="1000000 s"), ["params.synapses.0.delay", "ring buffer", "shorter delay"]),
    "sweep of 1000 x 1000 points": (
        lif(sweep=f"{{grid: {{run.seed: {list(range(1000))}, params.populations.a.size: {list(range(1, 1001))}}}}}"),
        ["sweep = 1000000", "1000 x 1000", f"at most {MAX_SWEEP_POINTS}"],
    ),
    "source outside the lattice": (
        field(sources="[{kind: point, x: 40 mm, y: 5 mm, amplitude: 1.0}]"),
        ["params.sources.0.x", "0 <= x <= 0.015 m"],
    ),
    "snapshots.every negative": (field(record="{snapshots: {every: -1 ms}}"), ["record.snapshots.every", "positive"]),
    "snapshots.every below dt": (
        field(record="{snapshots: {every: 0.1 ms}}"),
        ["record.snapshots.every", "at least one step"],
    ),
    "lattice of 65536 x 65536": (
        field(lattice="{nx: 65536, ny: 65536, h: 1 mm}"),
        ["params.lattice", "65536 x 65536 sites", "GiB", "available"],
    ),
    "sync_learners d 1e9": (sync("{n: 4, d: 1000000000, trials: 2}"), ["params.d = 1000000000", "GiB", "available"]),
    "sync_learners record.every negative": (
        sync("{n: 4, trials: 2}") + "record: {every: -1 ms}\n",
        ["record.every", "positive"],
    ),
}

GOOD = {
    "tiny network": lif(),
    "graph between equal sizes": lif(sizes=(20, 20), connect="{graph: watts_strogatz_graph, args: {k: 4, p: 0.1}}"),
    "graph with a seed argument": lif(sizes=(20, 20), connect="{graph: random_regular_graph, args: {d: 3, seed: 5}}"),
    "source on the lattice": field(sources="[{kind: point, x: 15 mm, y: 0 mm, amplitude: 1.0}]"),
    "sweep of sizes": lif(record="{v: {indices: [5]}}", sweep="{grid: {params.populations.a.size: [20, 10]}}"),
}


def _cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, list[str]]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err.strip().splitlines()


def _commands(path: Path, out: Path, is_sweep: bool) -> tuple[list[str], list[str]]:
    validate = ["validate", str(path)]
    run = (
        ["sweep", str(path), "-j", "1", "-q", "-o", str(out)] if is_sweep else ["run", str(path), "-q", "-o", str(out)]
    )
    return validate, run


@pytest.mark.parametrize("case", list(BAD))
def test_validate_and_run_refuse_with_one_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text, needles = BAD[case]
    path = tmp_path / "s.yaml"
    path.write_text(text)
    out = tmp_path / ("out" if "sweep:" in text else "out.h5")
    for argv in _commands(path, out, "sweep:" in text):
        code, err = _cli(capsys, *argv)
        assert code == 2, (argv[0], err)
        assert len(err) == 1, err
        for needle in needles:
            assert needle in err[0], (argv[0], needle, err[0])
    assert not out.exists() and not list(tmp_path.glob("out*"))


@pytest.mark.parametrize("case", list(GOOD))
def test_validate_and_run_accept(case: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = GOOD[case]
    path = tmp_path / "s.yaml"
    path.write_text(text)
    out = tmp_path / ("out" if "sweep:" in text else "out.h5")
    for argv in _commands(path, out, "sweep:" in text):
        code, err = _cli(capsys, *argv)
        assert (code, err) == (0, []), argv
    assert out.exists()


def test_a_sweep_point_is_checked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from neurodyn import registry

    fam = registry.get("lif_network")
    calls: list[int] = []
    original = type(fam).check
    monkeypatch.setattr(type(fam), "check", lambda self, sc: calls.append(sc.run.seed) or original(self, sc))
    path = tmp_path / "s.yaml"
    path.write_text(lif(sweep="{grid: {run.seed: [1, 2, 3]}}"))
    assert _cli(capsys, "validate", path) == (0, [])
    assert calls == [1, 2, 3]


def test_unknown_graph_argument_is_refused_by_the_schema() -> None:
    doc = {
        "name": "x",
        "family": "lif_network",
        "params": {
            "populations": {"a": {"size": 10, "tau_m": "20 ms", "v_rest": 0, "v_reset": 0, "v_threshold": "10 mV"}},
            "synapses": [
                {
                    "source": "a",
                    "target": "a",
                    "connect": {"graph": "complete_graph", "args": {"backend_kwargs": 1}},
                    "weight": "1 mV",
                    "tau": "5 ms",
                }
            ],
        },
        "run": {"duration": "1 ms", "dt": "0.1 ms"},
    }
    with pytest.raises(ScenarioError) as info:
        from_dict(doc)
    assert info.value.path == "params.synapses.0.connect.args.backend_kwargs"


def test_graph_estimates_scale_with_the_rule() -> None:
    from neurodyn.families.lif_network.build import graph_synapses

    n = 1000.0
    assert graph_synapses("complete_graph", {}, n) == n * (n - 1)
    assert graph_synapses("watts_strogatz_graph", {"k": 10, "p": 0.1}, n) == 10 * n
    assert graph_synapses("random_regular_graph", {"d": 3}, n) == 3 * n
    assert graph_synapses("gnp_random_graph", {"p": 0.5}, n) == 0.5 * n * (n - 1)
    # a generator without a formula gets the safe bound: every ordered pair
    assert graph_synapses("hypercube_graph", {}, n) == n * n
    assert graph_synapses("watts_strogatz_graph", {}, n) == n * n  # arguments missing: the bound


def test_memory_shortfall_states_the_estimate_and_the_available_memory() -> None:
    have = available_bytes()
    assert have == 16 * 2**30
    assert memory_shortfall(0.5 * MEMORY_FRACTION * have, "x") is None
    text = memory_shortfall(4.0 * have, "synapses 2e10 x 4 B")
    assert text is not None
    assert text.startswith(f"run would need {format_bytes(4.0 * have)} (synapses 2e10 x 4 B), this machine has ")
    assert re.search(r"has [0-9.]+ [GMK]i?B available", text)
    assert format_bytes(3 * 2**30) == "3 GiB" and format_bytes(1536 * 2**20) == "1.5 GiB"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ("{experiment: train, layers: [64, 2000000, 10]}", "params.layers"),
        ("{experiment: bptt_match, rho: tanh, layers: [4, 3000, 3000, 2], bptt: {steps: 100000}}", "params.layers"),
    ],
)
def test_eqprop_sizes_refused_before_allocating(params: str, needle: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(f"name: e\nfamily: eqprop\nparams: {params}\n")
    code, err = _cli(capsys, "validate", path)
    assert code == 2 and len(err) == 1 and needle in err[0] and "available" in err[0], err


def test_ultralif_sizes_refused_before_allocating(tmp_path: Path, capsys) -> None:
    path = tmp_path / "u.yaml"
    path.write_text("name: u\nfamily: ultralif_network\nparams: {hidden: [100000], batch_size: 1000, T: 100}\n")
    code, err = _cli(capsys, "validate", path)
    assert code == 2 and len(err) == 1 and "GiB" in err[0] and "available" in err[0], err


def test_resource_error_is_a_user_error() -> None:
    assert issubclass(ResourceError, Exception) and ResourceError.exit_code == 2


HOSTILE = Path(__file__).resolve().parents[1] / "data" / "hostile"


@pytest.mark.parametrize(
    "name, needles",
    [
        ("huge_wave_speed.yaml", ["params.continuum.c = 1e+300", "overflows"]),
        ("repeated_dispersion_modes.yaml", ["params.analysis.dispersion_modes.2 = [1, 0]", "repeats"]),
        ("huge_initial_amplitude.yaml", ["params.initial.amplitude = 1e+300", "at most 1e+100"]),
    ],
)
def test_mutations_found_by_the_hostile_suite_are_refused_by_validate(name, needles, capsys, tmp_path):
    """Reproducers of the hostile-input suite: refused by validate, one line naming the field."""
    assert main(["validate", str(HOSTILE / name)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(n in err for n in needles), err


def test_a_temperature_below_every_measurable_input_runs_cleanly(capsys, tmp_path):
    """``bounds.eps: [1e-300]``: every input is beyond where the Lemma 5.1 ratio is computable, where it is
    1.0 in float64; the run ends with exit 0 and nothing on stderr."""
    out = tmp_path / "r.h5"
    assert main(["run", str(HOSTILE / "tiny_temperature.yaml"), "-o", str(out), "-q"]) == 0
    assert capsys.readouterr().err == ""
    from neurodyn.families.ultralif_network.engine import sigmoid_ratio_max

    assert sigmoid_ratio_max(np.array([0.5, -2.0]), 1e-300) == 1.0
    assert sigmoid_ratio_max(np.array([0.0]), 1e-300) == 0.0


def test_a_gradient_theorem_whose_relaxation_never_moves_stops_with_one_line(capsys, tmp_path):
    """``theorem.tol: 1e300`` stops every relaxation at once: the finite-difference gradient is zero and
    the relative errors would be 0/0. The run stops with exit 3 and one line naming the field."""
    out = tmp_path / "r.h5"
    assert main(["run", str(HOSTILE / "relaxation_tolerance_too_loose.yaml"), "-o", str(out), "-q"]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "params.theorem.tol = 1e+300" in err, err
    assert not out.exists()


def test_an_uncoupled_noise_driven_lattice_runs_without_the_continuum_law(capsys, tmp_path):
    """``kappa: 0``: no spatial coupling, no continuum; the equipartition law (which divides by kappa) is
    not stored, the exact lattice sum is, and the run ends with exit 0 and nothing on stderr."""
    out = tmp_path / "r.h5"
    assert main(["run", str(HOSTILE / "uncoupled_noise_spectrum.yaml"), "-o", str(out), "-q"]) == 0
    assert capsys.readouterr().err == ""
    from neurodyn.storage import open_run

    ds = open_run(out)
    assert "local_psd_lattice_sum" in ds and "local_psd_equipartition" not in ds


def test_a_mass_matrix_with_complex_eigenvalues_runs_without_dispersion_branches(capsys, tmp_path):
    """An E-I mass matrix whose eigenvalues are complex has no real dispersion branch: the theory stores
    NaN there, silently, and the run ends with exit 0 and nothing on stderr."""
    out = tmp_path / "r.h5"
    assert main(["run", str(HOSTILE / "complex_mass_matrix.yaml"), "-o", str(out), "-q"]) == 0
    assert capsys.readouterr().err == ""
    from neurodyn.storage import open_run

    assert np.isnan(open_run(out)["dispersion_omega_theory"].values).all()
