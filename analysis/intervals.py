"""Posterior summaries of draws and exact intervals for raw proportions (95%, as every output reports)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats

CI_PROB = 0.95


def describe(draws: xr.DataArray | np.ndarray) -> dict:
    """Mean, median, sd and the equal-tailed 95% interval of draws (all sample dimensions pooled)."""
    values = np.asarray(draws).ravel()
    lo, hi = np.quantile(values, [(1 - CI_PROB) / 2, (1 + CI_PROB) / 2])
    return {
        "mean": rounded(values.mean()),
        "median": rounded(np.median(values)),
        "sd": rounded(values.std(ddof=1)),
        "ci95": [rounded(lo), rounded(hi)],
    }


def clopper_pearson(y: int, n: int) -> tuple[float, float]:
    """Exact 95% interval for a binomial proportion."""
    alpha = 1 - CI_PROB
    lo = 0.0 if y == 0 else stats.beta.ppf(alpha / 2, y, n - y + 1)
    hi = 1.0 if y == n else stats.beta.ppf(1 - alpha / 2, y + 1, n - y)
    return float(lo), float(hi)


def rounded(x, digits: int = 6) -> float:
    """Six decimals: far below Monte Carlo error, and stable text for byte-identical summaries."""
    return round(float(x), digits)
