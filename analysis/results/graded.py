"""Results of the graded outcomes (any, marked, complete, sustained response), one sequential model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.results import Convergence, Estimate, Result, internal, to_plain

OUTCOME_KEYS = ("any", "marked", "complete", "sustained")
"""`summary.json`'s fixed names of the outcomes (the data's `any_response` is `any` there)."""


@dataclass(frozen=True)
class OutcomeCheck(Result):
    """Observed responders against the count the model predicts for the same reports."""

    observed: int
    predicted: Estimate
    p_at_most_observed: float
    p_at_least_observed: float


@dataclass(frozen=True)
class GradedOutcome(Result):
    pooled: Estimate
    predictive: Estimate
    reports: int
    """Reports that graded this outcome."""
    patients: int
    responders: int
    check: OutcomeCheck | None
    """None in a sensitivity variant's model (`analysis.steps.graded.analyse` without detail)."""


@dataclass(frozen=True)
class Missingness(Result):
    """How the pooled probability of each outcome moves if an ungraded stage went worse than the graded
    ones: a pattern-mixture shift δ of the ungraded stages' log-odds, from 0 (missing at random) to ∞ (no
    patient of an ungraded report reached that stage)."""

    delta: tuple[float | None, ...]
    """δ values, None for ∞ (the worst case)."""
    outcomes: dict[str, tuple[Estimate, ...]]
    ungraded_reports: dict[str, int]
    """Reports that did not grade the stages an outcome needs."""


@dataclass(frozen=True)
class Graded(Result):
    model: str
    missing: str
    assumption: str
    outcomes: dict[str, GradedOutcome]
    reports: dict[str, dict[str, Any]]
    missingness: Missingness | None
    convergence: Convergence | None
    """NUTS's convergence gate (None for a sensitivity variant, which is integrated only)."""
    reports_total: int
    patients_total: int
    integration: dict
    """How the printed numbers were integrated: method, points, replicates, the smallest effective sample size,
    the largest Pareto k̂ of the weights and its limit, and the integration's `failures` (empty when it
    passes)."""
    cross_check: dict | None
    """The largest difference between the NUTS draws' pooled means and the integration's: in which outcome,
    how large, in the draws' Monte Carlo standard errors, of how many draws."""
    idata: Any = internal()
    counts: Any = internal()

    def to_dict(self) -> dict:
        out = {"model": self.model, "missing": self.missing, "assumption": self.assumption,
               **{k: v.to_dict() for k, v in self.outcomes.items()}, "reports": to_plain(self.reports),
               "missingness": to_plain(self.missingness),
               "diagnostics": None if self.convergence is None else self.convergence.to_dict(),
               "reports_total": self.reports_total, "patients_total": self.patients_total,
               "integration": to_plain(self.integration), "cross_check": to_plain(self.cross_check)}
        return out
