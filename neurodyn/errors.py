"""User-facing errors.

Every problem a user can fix (a bad scenario, an existing output, a run that would not fit in memory)
is raised as a :class:`UserError`. The CLI prints its one-line message and exits with code 2; nothing
else in the package prints tracebacks for them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""

    exit_code = 2


class ScenarioError(UserError):
    """A scenario field has a bad value.

    Parameters
    ----------
    path : str
        Dotted field path, e.g. ``params.populations.exc.tau_m``.
    value : object
        The offending value as written by the user.
    allowed : str
        What would have been accepted.
    """

    def __init__(self, path: str, value: object, allowed: str):
        self.path = path
        self.value = value
        self.allowed = allowed
        shown = _short_repr(value)
        where = f"{path} = {shown}" if path else shown
        super().__init__(f"{where}: {allowed}")


class OutputExistsError(UserError):
    """The result file exists and ``--force`` was not given."""


class ResourceError(UserError):
    """The run would not fit in memory (refused before anything is allocated)."""


class SimulationError(RuntimeError):
    """The simulation became invalid (NaN, instability) while running."""

    exit_code = 3


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class FieldIssue(ValueError):
    """Raised inside a pydantic model validator to point at a sub-field.

    The scenario loader turns it into a :class:`ScenarioError` whose path is the model's path plus
    ``subpath`` and whose value is ``value`` (instead of the whole model's input).
    """

    def __init__(self, subpath: str, value: object, allowed: str):
        self.subpath = subpath
        self.value = value
        self.allowed = allowed
        super().__init__(allowed)
