"""Progress reporting on stderr.

A bar appears only when stderr is a terminal, ``--quiet`` was not given, and the task has run for more
than :data:`DELAY` seconds (tqdm's ``delay``), so short runs and piped output stay clean.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

# Plain tqdm, not tqdm.auto: the bar only ever goes to stderr (a terminal, or when asked for), and
# tqdm.auto's notebook flavour warns in every Jupyter kernel that lacks ipywidgets.
from tqdm import tqdm

DELAY = 2.0


class Progress:
    """Factory of progress bars; a disabled instance yields no-op updaters.

    Parameters
    ----------
    enabled : bool, optional
        Force on/off; default: on when stderr is a terminal.
    """

    def __init__(self, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    @contextmanager
    def task(self, total: float, desc: str, unit: str = "step") -> Iterator[_Bar]:
        """Context manager yielding a bar with ``.update(n)`` and ``.set(**postfix)``."""
        if not self.enabled:
            yield _Bar(None)
            return
        bar = tqdm(
            total=total,
            desc=desc,
            unit=unit,
            unit_scale=True,
            delay=DELAY,
            file=sys.stderr,
            dynamic_ncols=True,
            leave=False,
        )
        try:
            yield _Bar(bar)
        finally:
            bar.close()


class _Bar:
    def __init__(self, bar: tqdm | None):
        self._bar = bar

    @property
    def visible(self) -> bool:
        """Whether updates reach a real bar (worth computing expensive postfix text for)."""
        return self._bar is not None

    def update(self, n: float = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def set(self, **postfix: object) -> None:
        if self._bar is not None:
            self._bar.set_postfix(postfix, refresh=False)


QUIET = Progress(enabled=False)
