"""The comparison row: one quantity checked, simulation against theory, with its verdict.

:mod:`neurodyn.compare` builds rows from a Dataset's ``*_theory`` and ``*_bound`` variables; a family adds
its own through :meth:`~neurodyn.families.base.Family.compare_rows`. Both import the type from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: the standard normal quantile of a two-sided 95% confidence interval
Z95 = 1.959963984540054


@dataclass
class Row:
    """One checked quantity."""

    quantity: str
    simulated: float
    predicted: float
    ci: float = math.nan  #: half-width of the 95% confidence interval of ``simulated``
    kind: str = "estimate"  #: "estimate", "upper_bound" or "lower_bound"
    rel_tol: float = 0.05
    source: str = ""
    where: str = ""  #: coordinates of the element (e.g. "population=exc")
    units: str = ""  #: units of ``simulated`` and ``predicted`` (a variable's ``units``; "" when not known)

    @property
    def ratio(self) -> float:
        """simulated / predicted."""
        return self.simulated / self.predicted if self.predicted != 0 else math.nan

    @property
    def verdict(self) -> str:
        """``agree``/``differ`` for estimates, ``holds``/``violated`` for bounds, ``n/a`` if undefined."""
        if not (np.isfinite(self.simulated) and np.isfinite(self.predicted)):
            return "n/a"
        ci = self.ci if np.isfinite(self.ci) else 0.0
        if self.kind == "upper_bound":
            return "holds" if self.simulated <= self.predicted + ci + 1e-12 * abs(self.predicted) else "violated"
        if self.kind == "lower_bound":
            return "holds" if self.simulated >= self.predicted - ci - 1e-12 * abs(self.predicted) else "violated"
        tol = max(ci, self.rel_tol * abs(self.predicted))
        return "agree" if abs(self.simulated - self.predicted) <= tol else "differ"
