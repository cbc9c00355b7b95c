"""Regenerate the quick-start output shown in README.md from a fresh run of scenarios/quickstart.yaml.

The README holds the block between ``<!-- generated: quickstart ... -->`` and ``<!-- end generated:
quickstart -->``: what ``neurodyn compare`` prints for the quick-start run. This script runs the scenario
and the comparison with the command line (in a temporary folder, nothing else is written) and replaces the
block. ``tests/cli/test_readme_quickstart.py`` runs the same and fails when the README differs.

Usage: ``python scripts/gen_quickstart.py`` from the repository root.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BEGIN = "<!-- generated: quickstart (python scripts/gen_quickstart.py) -->"
END = "<!-- end generated: quickstart -->"
#: the block, markers included
BLOCK_RE = re.compile(re.escape(BEGIN) + r"\n.*?" + re.escape(END), re.DOTALL)
#: the path the README's commands use for the result
SHOWN_PATH = "outputs/quickstart.h5"


def _neurodyn(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "neurodyn.cli", *args], cwd=ROOT, capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"neurodyn {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def block() -> str:
    """The README block for the quick-start run as the current code produces it, markers included."""
    with tempfile.TemporaryDirectory() as tmp:
        result = str(Path(tmp) / "quickstart.h5")
        _neurodyn("run", "scenarios/quickstart.yaml", "--output", result, "--quiet")
        table = _neurodyn("compare", result).replace(result, SHOWN_PATH)
    return f"{BEGIN}\n```\n$ neurodyn compare {SHOWN_PATH}\n{table}```\n{END}"


def current(text: str) -> str:
    """The block as ``text`` (the README) holds it."""
    found = BLOCK_RE.search(text)
    if found is None:
        raise ValueError(f"README.md has no block between {BEGIN!r} and {END!r}")
    return found.group(0)


if __name__ == "__main__":
    text = README.read_text(encoding="utf-8")
    current(text)  # the markers must be there
    README.write_text(BLOCK_RE.sub(lambda _: block(), text), encoding="utf-8")
    print(f"updated {README.relative_to(ROOT)}")
