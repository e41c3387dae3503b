"""Results of the "next report" map: what one more report could change."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.results import Result


@dataclass(frozen=True)
class Update(Result):
    """The estimates after adding `series` reports of `n` patients with `y` responders each (`series` 0:
    the estimates as they stand)."""

    series: int
    n: int
    y: int
    pooled_mean: float
    pooled_ci95: tuple[float, float]
    predictive_lo: float
    """95% lower bound of θ for a further new report."""
    heterogeneity: float
    """Posterior mean of the between-report SD of θ."""
    crude: float
    """All responders over all patients, the new ones included."""
    imprecision: str
    """GRADE imprecision of the pooled mean (`analysis.steps.grade.imprecision`)."""


@dataclass(frozen=True)
class NextReport(Result):
    """For a new report of n = 1…`max_n` patients and y = 0…n responders, the updated estimates (`map`),
    and the reports a sentence needs: the one that lowers the pooled mean most, the smallest that would take
    it below the decision threshold or change GRADE imprecision, and worked examples."""

    max_n: int
    threshold: float
    """The GRADE decision threshold the pooled mean and its interval are judged against."""
    current: Update
    lowest: Update
    highest: Update
    below_threshold: Update | None
    """The smallest report (fewest patients, then most responders) that would bring the pooled mean below
    the threshold; None when none of up to `max_n` patients would."""
    imprecision_change: Update | None
    """The smallest report (fewest patients, then most responders) after which GRADE imprecision would be
    judged differently (e.g. very serious: the interval would cross the threshold); None when none would."""
    examples: tuple[Update, ...]
    map: dict[str, dict[str, list]]
    """{quantity: {n: [value for y = 0…n]}} for pooled_mean, pooled_lo, predictive_lo, heterogeneity, crude
    and imprecision."""
    grid: str
    """"primary" (the primary grid holds every update) or "widened" (a grid on a box that does)."""
    error: float
    """The grid's stated numerical error (`analysis.engine.quadrature`)."""

    def to_dict(self) -> dict:
        return {**super().to_dict(), "error": float(f"{self.error:.2g}")}
