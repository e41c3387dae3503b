"""Results of the small-study and cumulative analyses: the meta-regression on report-level covariates,
what else differs between the reports that carry the size signal and the others, and the cumulative
meta-analysis by publication year."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.results import Estimate, Result, internal


@dataclass(frozen=True)
class Slope(Result):
    """One covariate's slope per natural unit (log-odds of the report mean), and P(slope < 0)."""

    label: str
    unit: str
    slope: Estimate
    p_negative: float
    without_most_influential: dict[str, Any] | None
    """P(slope < 0) without the report that moves it most (its id and the value): how fragile the sign is."""
    p_negative_mcse: float | None = None
    """The Monte Carlo standard error of `p_negative` when it comes from draws (None: exact)."""


@dataclass(frozen=True)
class Prediction(Result):
    """The mean response of a report with one covariate at a value (the others at their average)."""

    covariate: str
    label: str
    n: int | None
    value: float
    estimate: Estimate
    extrapolation: bool
    """Outside the range of the data (a report size larger or smaller than any pooled report)."""


@dataclass(frozen=True)
class Confounders(Result):
    """What else differs between the reports with a non-responder (which carry the size signal) and the
    all-responder reports: how the counts were read, the designs, the highest dose reached."""

    groups: dict[str, int]
    secondary: dict[str, int]
    secondary_reports: tuple[str, ...]
    designs: dict[str, dict[str, int]]
    highest_dose: dict[str, float | None]


@dataclass(frozen=True)
class MetaRegression(Result):
    method: str
    slopes: dict[str, Slope]
    predictions: tuple[Prediction, ...]
    observed_sizes: tuple[int, int]
    curve: dict[str, list[float]] | None
    """For a size covariate: report sizes and the mean with its 95% band (for the figure; ECDF of the grid)."""
    confounders: Confounders | None
    pooled: Estimate
    """A report at the average of the covariates."""
    numerical_error: float | None
    failures: tuple[str, ...] = ()
    """Why its numbers should not be trusted (an importance-sampled fit whose weights fail
    `estimates.importance_check`); empty when they can be."""
    reports: dict[str, Any] = internal()


@dataclass(frozen=True)
class CumulativeStep(Result):
    year: int
    reports: int
    patients: int
    responders: int
    added: tuple[str, ...]
    pooled: Estimate
    predictive: Estimate


@dataclass(frozen=True)
class Cumulative(Result):
    steps: tuple[CumulativeStep, ...]
    first_seen: dict[str, Any] | None
    """{"moved": {report: year}, "steps": [...]}: the analysis with reports of uncertain year at the year they
    were first seen."""
    note: str | None
