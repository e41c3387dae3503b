"""Results of simulation-based calibration (`python -m analysis.validate`): per check, what was fitted
and how the fits went; per checked quantity, the uniformity test of its PIT values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.results import Result, internal


@dataclass(frozen=True)
class CalibrationCheck(Result):
    """One check: the config and model it refits, its settings, and the health of its fits. Fits that fail
    the convergence checks are kept in the ranks (dropping them would bias the ranks), only counted."""

    name: str
    kind: str
    """"model" (the config's hierarchical model), "two_step" (the target arm's robust MAP route) or
    "graded" (the sequential model of the graded outcomes)."""
    config: str
    model: str
    simulations: int
    seed: int
    chains: int
    draws: int
    tune: int
    ranks: int
    unconverged: int
    """Fits that failed the convergence checks."""
    divergent: int
    """Fits with at least one divergent transition."""


@dataclass(frozen=True)
class UniformityTest(Result):
    """ArviZ's PIT uniformity test (`pot_c`) of one quantity of one check, and whether the PIT ECDF stays
    inside the simultaneous band; `calibrated`: p ≥ `threshold`, the family-wise level over every test
    (Bonferroni)."""

    check: str
    quantity: str
    simulations: int
    p_value: float
    threshold: float
    inside_band: bool
    calibrated: bool


@dataclass(frozen=True)
class Calibration(Result):
    checks: dict[str, CalibrationCheck]
    tests: tuple[UniformityTest, ...]
    """In check order; within a check, population quantities before report-level ones."""
    alpha: float
    """Family-wise level of the uniformity tests."""
    band_prob: float
    calibrated: bool
    pit: Any = internal()
    """pandas DataFrame, one row per simulation: check, simulation, seed, divergences, converged and the
    PIT of each checked quantity (empty where a check does not have that quantity)."""

    def quantities(self, check: str) -> list[str]:
        return [test.quantity for test in self.tests if test.check == check]
