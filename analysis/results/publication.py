"""Results of the publication-bias analyses: fixed scenarios, the tipping-point curve over the selection
strength ω, and the answer with ω integrated out under a prior."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.results import Estimate, Result, internal


@dataclass(frozen=True)
class Scenario(Result):
    """The pooled estimates if reports in the mechanism's scope with a non-responder were published with
    relative probability `weight`."""

    variant: str
    mechanism: str
    weight: float
    pooled: Estimate
    predictive: Estimate
    shift: float
    """Pooled mean under this scenario minus the unadjusted pooled mean."""


@dataclass(frozen=True)
class TippingPoint(Result):
    """How strong selection would have to be for an estimand to cross a threshold: the ω at which it does
    (None when it does not within [omega_min, 1]), as "N times less likely to be published" (1/ω), and the
    same in plain terms: how many unpublished single-patient failures would move the unadjusted answer
    there."""

    quantity: str
    """"mean" (the pooled mean) or "lower" (its 95% lower bound)."""
    threshold: float
    reached: bool
    omega: float | None
    times: float | None
    failures: int | None
    """Unpublished single-patient reports of no response that would bring the unadjusted estimand to the
    threshold (None when more than `MAX_FAILURES` would be needed)."""


@dataclass(frozen=True)
class Averaged(Result):
    """The answer with the selection strength ω uncertain: ω given a prior and integrated out."""

    prior: str
    """"log_uniform" on [omega_min, 1], or "uniform" on (0, 1)."""
    pooled: Estimate
    predictive: Estimate
    omega_prior: Estimate
    omega_posterior: Estimate
    p_strong_prior: float
    """P(ω < 0.1) under the prior: selection ten times or more against reports with a non-responder."""
    p_strong_posterior: float
    density: dict[str, list[float]]
    """The prior and posterior density of log ω on a grid of ω (for the figure)."""
    exact: Any = internal()
    """The ω-averaged posterior on the grid (`analysis.engine.quadrature.Exact`)."""


@dataclass(frozen=True)
class Publication(Result):
    """The bias analyses of the primary model (its family and prior) for all-responder selection."""

    mechanism: str
    omega_min: float
    curve: dict[str, list[float]]
    """ω (decreasing from 1), and the pooled mean and its 95% bounds at each ω (the tipping-point curve)."""
    scenarios: tuple[Scenario, ...]
    tipping: tuple[TippingPoint, ...]
    averaged: Averaged
    averaged_sensitivity: Averaged
    """The same under the other ω prior."""
    nonresponder_reports: int
    nonresponder_min_n: int | None
    size_dependent: str
    """Whether the data could tell selection that depends on report size from selection that does not:
    "not identifiable" (reports with a non-responder at too few sizes) or "identifiable, not modelled"."""
    numerical_error: float | None
    grids: Any = internal()
