"""One protocol for every built-in family: validate → run → info → compare → plot, and self-describing files.

As scipy runs every integration method against one exact solution, every family registered in
:mod:`neurodyn.registry` goes through the same command-line path with its smallest shipped scenario,
made tiny by the overrides of :mod:`tests.hostile.tiny`. A new family without an entry in
:data:`PROTOCOL` fails here, so none arrives without passing the protocol.
"""

from __future__ import annotations

import warnings

import pytest
import yaml

from neurodyn import open_run, registry
from neurodyn import plot as plot_figures
from neurodyn.cli import main
from tests.figures import assert_slide_figure, assert_slide_png
from tests.hostile.tiny import set_dotted, tiny_scenario

#: family -> the shipped scenario (stem under scenarios/) that costs least with its tiny overrides
PROTOCOL = {
    "lif_network": "cuba",
    "ultralif_network": "ultralif_bounds",
    "cortical_field": "field_dispersion",
    "sync_learners": "sync_double_well",
    "eqprop": "eqprop_gradient_theorem",
    "ltc_cfc": "cfc_vs_ltc",
    "curl_descent": "curl_stability",
}

#: overrides on top of the tiny ones: a lif_network run shorter than its rate panel's 50 ms smoothing
#: window (the window is capped at the trace's length)
LONGER = {"lif_network": {"run.duration": "30 ms"}}

#: families whose figures are not drawn in the slide style yet (their plots module is being restructured)
NOT_SLIDE_STYLE: set[str] = set()

BUILTIN = [name for name in registry.names() if registry.target(name).startswith("neurodyn.families.")]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def neurodyn(capsys, *args) -> str:
    """Run ``neurodyn ARGS`` in this process; assert exit 0 and nothing on stderr; return stdout."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 0, (args, code, err)
    assert err == "", (args, err)
    return out


def matplotlib_close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_every_builtin_family_has_a_protocol_scenario():
    assert sorted(PROTOCOL) == sorted(BUILTIN)


@pytest.mark.parametrize("family", BUILTIN)
def test_protocol(family, repo, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    doc = tiny_scenario(repo / "scenarios" / f"{PROTOCOL[family]}.yaml")
    assert doc["family"] == family and "sweep" not in doc
    for key, value in LONGER.get(family, {}).items():
        set_dotted(doc, key, value)
    scenario = tmp_path / f"{PROTOCOL[family]}.yaml"
    scenario.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = tmp_path / "r.h5"

    assert family in neurodyn(capsys, "validate", scenario)
    neurodyn(capsys, "run", scenario, "--output", out, "--quiet")
    assert str(out.name) in neurodyn(capsys, "info", out)
    neurodyn(capsys, "compare", out)
    neurodyn(capsys, "plot", out, "--out", tmp_path / "fig")

    figures = sorted((tmp_path / "fig").glob("*.png"))
    assert figures and all(png.read_bytes()[:8] == PNG_MAGIC for png in figures)
    ds = open_run(out)
    assert ds.attrs["family"] == family
    assert ds.data_vars
    for name, var in ds.variables.items():
        for attr in ("units", "long_name"):
            assert isinstance(var.attrs.get(attr), str) and var.attrs[attr].strip(), (family, name, attr)

    if family in NOT_SLIDE_STYLE:
        return
    for png in figures:
        assert_slide_png(png)
    # the figures for slides: drawn without a warning, slide-sized, nothing cut off, no repeated legend entry
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figs = plot_figures(ds)
        assert sorted(f"r_{f.get_label()}.png" for f in figs) == [p.name for p in figures]
        for fig in figs:
            assert_slide_figure(fig)
            matplotlib_close(fig)
