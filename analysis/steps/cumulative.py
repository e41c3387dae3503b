"""Cumulative meta-analysis: the pooled and new-report estimates after each publication year (as
`metafor::cumul`), exactly on a grid at every step; and again with reports whose year is uncertain moved to
the year they were first seen. A meta-regression's covariates are left out: the early steps hold too few
reports to estimate a slope."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.engine.programs import ModelCache
from analysis.inputs.bundle import Inputs
from analysis.inputs.evidence import BinomialData
from analysis.engine.seeds import Seeds
from analysis.results.bias import Cumulative, CumulativeStep
from analysis.steps.primary import draws_population, model_reports, nuts, population
from models.families import FAMILIES

TOLERANCE = 1e-4
"""Grid tolerance of a cumulative step (printed to two decimals)."""


def analyse(inputs: Inputs, cache: ModelCache) -> Cumulative | None:
    """None when a pooled report has no year."""
    config, data = inputs.config, inputs.data
    note = None
    if config.model.covariates:
        config = config.model_copy(update={"model": config.model.model_copy(update={"covariates": ()})})
        note = "without the covariates (the early steps hold too few reports to estimate their slopes)"
    years = _years(data)
    if years is None:
        return None
    steps = _steps(config, data, years, cache)
    moved = {rid: year for rid, year in config.cumulative.first_seen.items() if rid in data.report_ids}
    alternative = None
    if moved:
        shifted = years.copy()
        for rid, year in moved.items():
            shifted[data.report_ids.index(rid)] = year
        alternative = {"moved": moved, "steps": _steps(config, data, shifted, cache)}
    return Cumulative(steps, alternative, note)


def _years(data: BinomialData) -> np.ndarray | None:
    year = pd.to_numeric(data.rows["year"], errors="coerce") if data.rows is not None and "year" in data.rows else None
    if year is None or year.isna().any():
        return None
    return year.astype(int).to_numpy().copy()


def _steps(config, data: BinomialData, years: np.ndarray, cache: ModelCache) -> tuple[CumulativeStep, ...]:
    steps = []
    for year in sorted(set(years.tolist())):
        keep = years <= year
        subset = data.subset(keep)
        reports = model_reports(config, subset)
        estimates = population(cache, config, reports, TOLERANCE)
        if estimates is None:  # too many parameters for the grid: the step samples
            estimates = draws_population(FAMILIES[config.model.family], nuts(cache, config, reports, subset,
                                                               Seeds(config.sampling.seed), checks_too=False).posterior)
        steps.append(CumulativeStep(int(year), int(keep.sum()), int(subset.n.sum()), int(subset.y.sum()),
                                    tuple(r for r, y in zip(data.report_ids, years) if y == year),
                                    estimates.pooled, estimates.predictive))
    return tuple(steps)
