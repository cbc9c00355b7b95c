"""The one registry of model families.

Built-in families are listed by module path and imported lazily, so ``neurodyn list`` and scenario
validation stay fast. Third-party packages add families the way xarray backends are added: an entry point
in the ``neurodyn.families`` group pointing at a :class:`~neurodyn.families.base.Family` subclass.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from neurodyn.errors import ScenarioError, did_you_mean
from neurodyn.families.base import Family

_BUILTIN: dict[str, str] = {
    "lif_network": "neurodyn.families.lif_network:LIFNetwork",
    "ultralif_network": "neurodyn.families.ultralif_network:UltraLIFNetwork",
    "cortical_field": "neurodyn.families.cortical_field:CorticalField",
    "sync_learners": "neurodyn.families.sync_learners:SyncLearners",
    "eqprop": "neurodyn.families.eqprop:EqProp",
}


def _load(target: str) -> type[Family]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@cache
def _entry_point_targets() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="neurodyn.families")}


def names() -> list[str]:
    """All registered family names, built-in first."""
    extra = [n for n in _entry_point_targets() if n not in _BUILTIN]
    return list(_BUILTIN) + sorted(extra)


@cache
def get(name: str, path: str = "family") -> Family:
    """Return the (singleton) family instance registered as ``name``.

    Raises
    ------
    ScenarioError
        If no family has that name.
    """
    target = _BUILTIN.get(name) or _entry_point_targets().get(name)
    if target is None:
        raise ScenarioError(path, name, f"unknown family{did_you_mean(name, names())}; "
                            f"allowed: {', '.join(names())}")
    return _load(target)()
