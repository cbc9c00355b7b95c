"""The quick-start output the README shows is what the quick-start run produces now."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def _generator():
    spec = importlib.util.spec_from_file_location("gen_quickstart", REPO / "scripts" / "gen_quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_quickstart_block_matches_a_fresh_run():
    gen = _generator()
    shown = gen.current((REPO / "README.md").read_text(encoding="utf-8"))
    assert shown == gen.block(), (
        "README.md's quick-start output differs from what scenarios/quickstart.yaml gives now; "
        "regenerate it with `python scripts/gen_quickstart.py`"
    )
