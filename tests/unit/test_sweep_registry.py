"""Families added at run time (plugins, tests, worker processes): registry.register and NEURODYN_FAMILIES."""

from __future__ import annotations

import pytest

from neurodyn import registry
from neurodyn.errors import ScenarioError
from tests import sweep_family as fam


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTERED", {})
    monkeypatch.delenv(registry.ENV_VAR, raising=False)
    registry.get.cache_clear()
    yield
    registry.get.cache_clear()


def test_register_adds_a_family_and_target_names_it():
    with pytest.raises(ScenarioError, match="unknown family"):
        registry.get(fam.NAME)
    registry.register(fam.NAME, fam.TARGET)
    assert registry.target(fam.NAME) == fam.TARGET
    assert fam.NAME in registry.names() and registry.names()[0] == "lif_network"
    assert type(registry.get(fam.NAME)).__name__ == "OUFamily"


def test_register_refuses_a_malformed_target():
    with pytest.raises(ValueError, match="package.module:ClassName"):
        registry.register("x", "tests.sweep_family.OUFamily")


def test_environment_variable_registers_and_ignores_junk(monkeypatch):
    monkeypatch.setenv(registry.ENV_VAR, f"junk; {fam.NAME}={fam.TARGET} ;=nothing;other=no_colon")
    assert registry.target(fam.NAME) == fam.TARGET
    assert registry.target("other") is None and "other" not in registry.names()
    assert registry.get(fam.NAME).name == fam.NAME
