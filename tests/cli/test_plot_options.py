"""``neurodyn plot --format --window`` and ``neurodyn.plot(format=, window=)``: the files, the time axes, the errors."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

import neurodyn
from neurodyn.errors import ScenarioError
from neurodyn.plotting import parse_window


@pytest.fixture(scope="module")
def run(tmp_path_factory, repo, cli):
    """A 0.6 s quickstart run (longer than the 0.5 s default window)."""
    out = tmp_path_factory.mktemp("plot") / "q.h5"
    proc = cli(
        "run", repo / "scenarios" / "quickstart.yaml", "--set", "run.duration=0.6 s", "--output", out, "--quiet"
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize(("fmt", "magic"), [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_format_writes_exactly_that_file(run, cli, tmp_path, fmt, magic):
    proc = cli("plot", run, "--out", tmp_path, "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"q_overview.{fmt}"]
    assert proc.stdout.split() == [str(tmp_path / f"q_overview.{fmt}")]
    assert (tmp_path / f"q_overview.{fmt}").read_bytes()[: len(magic)] == magic


def test_window_sets_every_time_axis(run, cli, tmp_path):
    ds = neurodyn.open_run(run)
    (fig,) = neurodyn.plot(ds, window="200ms:400ms")
    assert [ax.get_xlim() for ax in fig.axes] == [pytest.approx((0.2, 0.4))] * len(fig.axes)
    assert "200 ms to 400 ms of 600 ms" in fig.axes[0].get_title(loc="left")
    plt.close(fig)
    # the default: the last 0.5 s of a longer run, said in the title
    (fig,) = neurodyn.plot(ds)
    assert [ax.get_xlim() for ax in fig.axes] == [pytest.approx((0.1, 0.6))] * len(fig.axes)
    assert "100 ms to 600 ms of 600 ms" in fig.axes[0].get_title(loc="left")
    plt.close(fig)
    # an open end is the run's end
    (fig,) = neurodyn.plot(ds, window="0.3 s:")
    assert fig.axes[0].get_xlim() == pytest.approx((0.3, 0.6))
    plt.close(fig)
    proc = cli("plot", run, "--out", tmp_path, "--window", "0s:0.6s", "--format", "svg")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q_overview.svg"]


def test_raster_keeps_the_population_ratio(run):
    (fig,) = neurodyn.plot(neurodyn.open_run(run))
    ax = fig.axes[0]
    # 810 neurons, at most 200 rows: every 5th neuron of each population (10, 400, 400 -> 2, 80, 80 rows)
    assert "every 5th neuron (regular 2/10, noisy 80/400, poisson 80/400)" in ax.get_title(loc="left")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["regular", "noisy", "poisson"]
    assert ax.get_ylim() == pytest.approx((161.5, -0.5))
    plt.close(fig)


@pytest.mark.parametrize("fmt", ["jpg", "PNG2", ""])
def test_bad_format_is_one_line(run, cli, user_error, tmp_path, fmt):
    out = tmp_path / "figs"
    user_error(cli("plot", run, "--out", out, "--format", fmt), "--format", "one of png, svg, pdf")
    assert not out.exists()


@pytest.mark.parametrize("window", ["1s", "2s:1s", "1s:1s", "abc:1s", "1V:2V", "1s:2s:3s", "1s-2s", "0.1:0.2"])
def test_bad_window_is_one_line(run, cli, user_error, tmp_path, window):
    out = tmp_path / "figs"
    user_error(cli("plot", run, "--out", out, "--window", window), "--window", "START:STOP", "200ms:400ms")
    assert not out.exists()


def test_api_checks_its_options(run):
    ds = neurodyn.open_run(run)
    with pytest.raises(ScenarioError, match="one of png, svg, pdf"):
        neurodyn.plot(ds, format="tiff")
    with pytest.raises(ScenarioError, match="START < STOP"):
        neurodyn.plot(ds, window=("1 s", "0.5 s"))


@pytest.mark.parametrize(
    ("text", "window"),
    [("0.5s:1s", (0.5, 1.0)), ("200ms:400ms", (0.2, 0.4)), ("0:1s", (0.0, 1.0)), (("50 ms", "1 s"), (0.05, 1.0))],
)
def test_parse_window(text, window):
    assert parse_window(text) == pytest.approx(window)
