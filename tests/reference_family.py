"""A family whose schema has one of every shape the parameter reference walks (no simulation).

Registered as ``ref_test`` by tests/unit/test_reference.py: quantities with and without defaults and
signs, bounds, literal choices, a nested model, a mapping of models, a list of models, a tagged union, an
untagged union of a quantity and models, a validator's rule stated for the reference, fields without a
description.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from neurodyn.families.base import Family, StrictModel
from neurodyn.quantities import PositiveTime, Voltage

NAME = "ref_test"
TARGET = "tests.reference_family:RefFamily"


class Cell(StrictModel):
    size: int = Field(ge=1, description="number of cells")
    tau: PositiveTime = Field(0.02, description="time constant")


class Low(StrictModel):
    low: tuple[Voltage, Voltage]


class Link(StrictModel):
    kind: Literal["fast", "slow"] = "fast"
    delay: PositiveTime | None = None


class Sine(StrictModel):
    shape: Literal["sine"] = Field("sine", description="the waveform")
    frequency: float = Field(10.0, gt=0, description="cycles per second")
    phase: float = 0.0


class Square(StrictModel):
    shape: Literal["square"]
    duty: Annotated[float, Field(gt=0, lt=1)] = 0.5
    phase: float = 0.0


class RefParams(StrictModel):
    cells: dict[str, Cell] = Field(description="named groups")
    links: list[Link] = []
    start: Voltage | Low | None = None
    wave: Annotated[Sine | Square, Field(discriminator="shape")] = Sine()
    gains: list[Annotated[float, Field(ge=0)]] = [1.0, 2.0]
    mode: Literal["a", "b"] | list[Literal["a", "b"]] = "a"
    scale: float = Field(1.0, description="a factor", json_schema_extra={"constraint": "a power of two"})


class RefRecord(StrictModel):
    every: PositiveTime = Field(1e-3, description="sampling interval")


class RefFamily(Family):
    name = NAME
    description = "a schema to document"
    Params = RefParams
    Record = RefRecord

    def simulate(self, built, progress):  # pragma: no cover - never run
        raise NotImplementedError
