"""curl_descent through the command line: bad input is one line and exit code 2, before anything runs."""

from __future__ import annotations

import pytest
import yaml

BASE = {"name": "c", "family": "curl_descent", "params": {"experiment": "stability"}, "run": {"seed": 1}}


@pytest.mark.parametrize(
    ("params", "needles"),
    [
        ({"activation": "tanh"}, ["params.activation", "derived for the linear network"]),
        ({"stability": {"alpha": [0.1, 1.5]}}, ["params.stability.alpha.1", "less than or equal to 1"]),
        ({"flow": {"dt": 5.0, "duration": 1.0}}, ["params.flow.dt", "at most flow.duration"]),
        (
            {"experiment": "saddle_escape", "training": {"samples": [5, 50], "batch": 10}},
            ["params.training.batch", "smallest P = 5"],
        ),
        ({"experiment": "chain", "chain": {"r2": [1.0, 1.0]}}, ["params.chain.r2", "without repeated values"]),
        ({"hidden": 200, "inputs": 30}, ["params.hidden", "finite-difference Jacobian"]),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, params, needles, cli, user_error):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**BASE, "params": {**BASE["params"], **params}}))
    user_error(cli("validate", path), *needles)
