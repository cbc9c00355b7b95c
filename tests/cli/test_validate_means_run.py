"""Through the real command line: what `validate` passes, `run` and `sweep` do not refuse, and the other way.

(The full list of inputs is checked in-process in tests/unit/test_validity.py; these few go through a fresh
interpreter, as a user would run them.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_validity import BAD


@pytest.mark.parametrize("case", ["rate_bin zero", "repeated seed", "complete graph of 100000 neurons"])
def test_validate_and_run_refuse_alike(case: str, tmp_path: Path, cli, user_error) -> None:
    text, needles = BAD[case]
    path = tmp_path / "s.yaml"
    path.write_text(text)
    user_error(cli("validate", path), *needles)
    is_sweep = "sweep:" in text
    out = tmp_path / ("out" if is_sweep else "out.h5")
    command = ["sweep", path, "-j", "1"] if is_sweep else ["run", path]
    user_error(cli(*command, "--output", out), *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]  # nothing written, no partial file
