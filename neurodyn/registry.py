"""The one registry of model families.

Built-in families are listed by module path and imported lazily, so ``neurodyn list`` and scenario
validation stay fast. Third-party packages add families the way xarray backends are added: an entry point
in the ``neurodyn.families`` group pointing at a :class:`~neurodyn.families.base.Family` subclass.
Plugins and tests can also call :func:`register` at run time, or list families in the environment
variable ``NEURODYN_FAMILIES`` (``name=module:Class`` items separated by ``;``), which worker processes
inherit.
"""

from __future__ import annotations

import importlib
import os
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from neurodyn.errors import ScenarioError, did_you_mean

if TYPE_CHECKING:  # the families (xarray, pydantic, Numba) load only when one is asked for
    from neurodyn.families.base import Family

_BUILTIN: dict[str, str] = {
    "lif_network": "neurodyn.families.lif_network:LIFNetwork",
    "ultralif_network": "neurodyn.families.ultralif_network:UltraLIFNetwork",
    "cortical_field": "neurodyn.families.cortical_field:CorticalField",
    "sync_learners": "neurodyn.families.sync_learners:SyncLearners",
    "eqprop": "neurodyn.families.eqprop:EqProp",
    "ltc_cfc": "neurodyn.families.ltc_cfc:LTCCfC",
    "curl_descent": "neurodyn.families.curl_descent:CurlDescent",
}
#: families added with :func:`register` (name -> "module:Class")
_REGISTERED: dict[str, str] = {}
ENV_VAR = "NEURODYN_FAMILIES"


def _load(target: str) -> type[Family]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@cache
def _entry_point_targets() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="neurodyn.families")}


def _env_targets() -> dict[str, str]:
    out: dict[str, str] = {}
    for item in os.environ.get(ENV_VAR, "").split(";"):
        name, sep, target = item.partition("=")
        if sep and name.strip() and ":" in target:
            out[name.strip()] = target.strip()
    return out


def register(name: str, target: str) -> None:
    """Add (or replace) a family at run time.

    Parameters
    ----------
    name : str
        The name scenarios use in ``family:``.
    target : str
        Import path ``"package.module:ClassName"`` of a :class:`~neurodyn.families.base.Family`
        subclass. A string rather than a class, so it can be sent to worker processes (see
        :func:`target`), which import it themselves.
    """
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"target must look like 'package.module:ClassName', got {target!r}")
    _REGISTERED[name] = target
    get.cache_clear()


def target(name: str) -> str | None:
    """Import path ``"module:Class"`` of the family registered as ``name``, or None."""
    return _REGISTERED.get(name) or _env_targets().get(name) or _BUILTIN.get(name) or _entry_point_targets().get(name)


def builtin_names() -> list[str]:
    """The families that come with neurodyn (those documented in ``docs/``)."""
    return list(_BUILTIN)


def names() -> list[str]:
    """All registered family names, built-in first."""
    extra = {*_entry_point_targets(), *_env_targets(), *_REGISTERED} - set(_BUILTIN)
    return list(_BUILTIN) + sorted(extra)


@cache
def get(name: str, path: str = "family") -> Family:
    """Return the (singleton) family instance registered as ``name``.

    Raises
    ------
    ScenarioError
        If no family has that name.
    """
    found = target(name)
    if found is None:
        raise ScenarioError(path, name, f"unknown family{did_you_mean(name, names())}; allowed: {', '.join(names())}")
    return _load(found)()
