"""A family that stores the numbers it is given as simulated and predicted values (no simulation).

Registered as ``verdict_test`` by the compare tests: ``params.simulated`` becomes the variable ``x`` (one
element per item, in ``params.units``), ``params.predicted`` its ``x_theory`` (``kind: estimate``) or
``x_bound`` (``kind: upper_bound``), so every verdict and every size of number can be produced exactly.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from neurodyn.families.base import Family, StrictModel, var_attrs

NAME = "verdict_test"
TARGET = "tests.verdict_family:VerdictFamily"
ENV = {"NEURODYN_FAMILIES": f"{NAME}={TARGET}"}


class VerdictParams(StrictModel):
    simulated: list[float] = [1.0]
    predicted: list[float] = [1.0]
    kind: Literal["estimate", "upper_bound"] = "estimate"
    units: str = "1"


class VerdictFamily(Family):
    name = NAME
    description = "stores given numbers as simulation and theory"
    Params = VerdictParams
    needs_time = False

    def simulate(self, built, progress):
        p = built.params
        return xr.Dataset({"x": (("item",), np.array(p.simulated), var_attrs(p.units, "given value"))})

    def theory(self, built, ds):
        p = built.params
        name = "x_theory" if p.kind == "estimate" else "x_bound"
        attrs = var_attrs(p.units, "given prediction", source="given")
        return xr.Dataset({name: (("item",), np.array(p.predicted), attrs)})
