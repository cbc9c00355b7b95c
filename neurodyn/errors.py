"""User-facing errors.

Every problem a user can fix (a bad scenario, an existing output, a run that would not fit in memory)
is raised as a :class:`UserError`. The CLI prints its one-line message and exits with code 2; nothing
else in the package prints tracebacks for them.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Iterator


def _is_model(value: object) -> bool:
    """Whether ``value`` is a pydantic model, without importing pydantic (``import neurodyn`` stays light)."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(value, pydantic.BaseModel)


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
    """``repr(value)`` cut to ``limit`` characters, built without ever forming the full repr.

    A scenario value can be huge (a list of a million numbers), deep (thousands of nested lists) or
    self-referencing (a YAML alias inside its own anchor); the full ``repr`` of such a value costs
    unbounded time and memory or never ends. Containers are therefore walked iteratively with an explicit
    stack, and the walk stops as soon as ``limit`` characters have been produced.
    """
    text = _bounded_repr(value, limit + 1)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_OPEN_CLOSE = {list: ("[", "]"), tuple: ("(", ")"), set: ("{", "}"), frozenset: ("frozenset({", "})")}


def _bounded_repr(value: object, budget: int) -> str:
    """The first ``budget`` (or slightly more) characters of ``repr(value)`` for plain data.

    Lists, tuples, sets and dicts are expanded lazily; strings, numbers and other objects are shown by
    :func:`_scalar_repr`, which never builds more than about ``budget`` characters either.
    """
    out: list[str] = []
    size = 0
    # The stack holds either text still to emit or an iterator over a container's remaining items.
    stack: list[object] = [value]
    while stack and size < budget:
        item = stack.pop()
        if isinstance(item, _Pending):
            try:
                nxt = next(item.items)
            except StopIteration:
                piece = item.close
            else:
                stack.append(item)
                if item.sep is not None:
                    key, val = nxt
                    stack.append(val)
                    stack.append(_Text(item.sep))
                    stack.append(_Text(key) if item.sep == "=" else key)
                else:
                    stack.append(nxt)
                if item.started:
                    stack.append(_Text(", "))
                item.started = True
                continue
        elif isinstance(item, _Text):
            piece = item.text
        elif isinstance(item, dict):
            stack.append(_Pending(iter(item.items()), "}", sep=": "))
            piece = "{"
        elif _is_model(item):
            # pydantic's own repr would show every field in full
            stack.append(_Pending(iter(dict(item).items()), ")", sep="="))
            piece = f"{type(item).__name__}("
        elif isinstance(item, set | frozenset) and not item:
            piece = f"{type(item).__name__}()"
        elif type(item) in _OPEN_CLOSE:
            opening, closing = _OPEN_CLOSE[type(item)]
            if isinstance(item, tuple) and len(item) == 1:
                closing = ",)"
            stack.append(_Pending(iter(item), closing))  # type: ignore[call-overload]
            piece = opening
        else:
            piece = _scalar_repr(item, budget - size)
        out.append(piece)
        size += len(piece)
    return "".join(out)


class _Text:
    """Literal text on the :func:`_bounded_repr` stack (as opposed to a value to show)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


class _Pending:
    """A container being shown by :func:`_bounded_repr`: its remaining items and its closing bracket."""

    __slots__ = ("items", "close", "sep", "started")

    def __init__(self, items: Iterator[object], close: str, sep: str | None = None):
        self.items = items
        self.close = close
        #: None: plain items; ": " (dict) or "=" (model fields): ``(key, value)`` pairs
        self.sep = sep
        self.started = False


def _scalar_repr(value: object, budget: int) -> str:
    """``repr`` of a non-container, cut near ``budget`` characters without building a huge text."""
    if isinstance(value, str | bytes):
        text = repr(value[: budget + 1])
        return text if len(value) <= budget + 1 else text[:-1]
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * budget:
        return f"<integer of {value.bit_length()} bits>"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the user's real error
        text = f"<{type(value).__name__}>"
    return text[: budget + 1]


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
