"""The contract between computation and rendering: frozen dataclasses, and `summary.json` as their dump.

Every step of the synthesis returns one of these; `Synthesis` holds them all, and `Synthesis.to_dict()` is
`summary.json`, the one object the report renders (each number on the page carries its key there). Draws
and grids travel beside the numbers in fields marked `internal` (not serialised): the figures read them,
the page never does.

This module imports numpy, pandas and xarray only, so that rendering, which reads results and nothing
else, never loads the sampler stack.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CI_PROB = 0.95
DECIMALS = 6
"""Decimals kept in `summary.json`: far below Monte Carlo and numerical error, and stable text for
byte-identical summaries."""


def internal(default=None, **kwargs):
    """A field that travels with a result but is not part of `summary.json` (draws, grids, tables)."""
    return field(default=default, metadata={"internal": True}, compare=False, repr=False, **kwargs)


def rounded(x, digits: int = DECIMALS):
    """A float rounded for `summary.json`; None for a missing or non-finite value."""
    if x is None:
        return None
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None


def to_plain(value: Any) -> Any:
    """A result, or anything inside one, as plain JSON values (floats rounded, numpy unwrapped)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_dict"):
            return value.to_dict()
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.metadata.get("internal")}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return rounded(value)
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist())
    return value


class Result:
    """Base of the dataclasses below: `to_dict` dumps every field not marked `internal`."""

    def to_dict(self) -> dict:
        return {f.name: to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                if not f.metadata.get("internal")}


@dataclass(frozen=True)
class Estimate(Result):
    """One posterior (or predictive) quantity: mean, median, sd and the equal-tailed 95% interval.

    `method` says where the numbers come from: "exact" (quadrature or a closed form; `error` is the
    largest numerical error of the checked summaries) or "draws" (Monte Carlo; `mcse` holds the Monte
    Carlo standard errors of the mean, the median and the two bounds, so that the page prints only the
    digits whose unit is at least 10 MCSE). `mean` and `sd` are None for a quantity whose mean does not exist."""

    mean: float | None
    median: float
    sd: float | None
    lo: float
    hi: float
    method: str = "exact"
    error: float | None = None
    mcse: dict[str, float | None] | None = None

    def to_dict(self) -> dict:
        out = {"mean": rounded(self.mean), "median": rounded(self.median), "sd": rounded(self.sd),
               "ci95": [rounded(self.lo), rounded(self.hi)], "method": self.method}
        if self.method == "exact":
            out["error"] = None if self.error is None or not math.isfinite(self.error) else float(f"{self.error:.2g}")
        else:
            out["mcse"] = {k: None if v is None else float(f"{v:.2g}") for k, v in (self.mcse or {}).items()}
        return out

    @property
    def interval(self) -> tuple[float, float]:
        return self.lo, self.hi

    def shifted(self, other: "Estimate") -> float | None:
        return None if self.mean is None or other.mean is None else self.mean - other.mean


@dataclass(frozen=True)
class Proportion(Result):
    """A count out of a total with its exact (Clopper-Pearson) 95% interval."""

    y: int
    n: int
    proportion: float | None
    ci95: tuple[float, float] | None


@dataclass(frozen=True)
class Convergence(Result):
    """The convergence gate of one fit: R-hat, bulk and tail ESS for every parameter and derived quantity,
    divergences and E-BFMI, with the thresholds and the reasons it fails (empty when it passes)."""

    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    bfmi_min: float
    passed: bool
    failures: tuple[str, ...]
    thresholds: dict[str, float]
    table: Any = internal()
    """pandas DataFrame, one row per scalar quantity: ess_bulk, ess_tail, r_hat, MCSE of the median and of
    the 2.5% and 97.5% quantiles, and of the mean and sd where the quantity's mean exists (NaN otherwise)."""


@dataclass(frozen=True)
class CheckStatistic(Result):
    """One predictive-check statistic: observed, its predictive distribution, and the informative tail's
    probability with its Monte Carlo standard error."""

    label: str
    observed: float | None
    predictive: Estimate | None
    tail: str | None
    p_tail: float | None
    p_tail_mcse: float | None
    undefined_replications: int
    note: str



@dataclass(frozen=True)
class ReportEstimate(Result):
    """One report's counts, its raw proportion's exact interval and its posterior θ_i."""

    n: int
    y: int
    year: int | None
    raw_ci95: tuple[float, float]
    theta: Estimate

    def to_dict(self) -> dict:
        return {"n": self.n, "y": self.y, "year": self.year, **self.theta.to_dict(),
                "raw_ci95": to_plain(self.raw_ci95)}


@dataclass(frozen=True)
class CrossCheck(Result):
    """The exact posterior against the NUTS draws of the same model: for each headline quantity the
    difference (NUTS − exact) and its size in Monte Carlo standard errors; the largest of them."""

    differences: dict[str, float]
    in_mcse: dict[str, float]
    largest: str
    largest_difference: float
    largest_in_mcse: float
    draws: int


@dataclass(frozen=True)
class Loo(Result):
    """Leave-one-report-out predictive densities (θ integrated out) and the comparison with complete
    pooling; `method` "exact" (the grid, no refit) or "psis" (importance sampling of draws, with exact
    refits where Pareto k > 0.7)."""

    method: str
    elpd_loo: float
    se: float
    pointwise: dict[str, float]
    complete_pooling: dict[str, float]
    psis: dict[str, Any]
    """PSIS-LOO of the NUTS draws beside the exact values: elpd, p_loo, each report's Pareto k."""


@dataclass(frozen=True)
class Primary(Result):
    """The primary model: the population estimates (exact by quadrature where the model has at most three
    parameters, else from the NUTS draws), the prior's side of them, each report's θ_i, LOO, the NUTS
    cross-check and its convergence gate."""

    method: str
    parameters: int
    pooled: Estimate
    predictive: Estimate
    heterogeneity: dict[str, Estimate]
    hyperparameters: dict[str, Estimate]
    expit_mu: Estimate | None
    prior: dict[str, Estimate]
    reports: dict[str, ReportEstimate]
    loo: Loo
    checks: dict[str, dict[str, CheckStatistic]]
    """Predictive checks: prior, posterior for the same reports, posterior for new reports of the same sizes."""
    cross_check: CrossCheck | None
    convergence: Convergence
    numerical_error: float | None
    grid_nodes: int | None
    weights: dict[str, float] | None
    idata: Any = internal()
    """The NUTS fit as an ArviZ DataTree: posterior (with derived quantities), sample_stats, prior,
    prior_predictive, posterior_predictive, observed_data, constant_data, log_likelihood."""
    exact: Any = internal()
    """The grid posterior (`analysis.engine.quadrature.Exact`), or None."""
    reports_input: Any = internal()
    """The counts as the model saw them (`models.base.Reports`)."""
    psis: Any = internal()
    """ArviZ's ELPDData of the draws (for the Pareto k figure)."""
    loo_pit: Any = internal()
