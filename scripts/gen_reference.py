"""Regenerate docs/reference/: one page per built-in family, generated from the scenario models.

Usage: ``python scripts/gen_reference.py`` from the repository root. ``tests/unit/test_reference.py``
fails when a checked-in page differs from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neurodyn.reference import write_pages  # noqa: E402

if __name__ == "__main__":
    for path in write_pages(ROOT / "docs" / "reference"):
        print(path.relative_to(ROOT))
