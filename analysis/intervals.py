"""Posterior summaries of draws and exact intervals for raw proportions (95%, as every output reports)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import optimize

from models.comparators import CI_PROB, clopper_pearson  # noqa: F401  (one definition of each)


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


def rounded(x, digits: int = 6) -> float:
    """Six decimals: far below Monte Carlo error, and stable text for byte-identical summaries."""
    return round(float(x), digits)


def describe_distribution(cdf, mean: float, second_moment: float, guesses=None) -> dict:
    """The same summary as `describe`, of a distribution on [0, 1] given by its CDF and first two moments
    rather than by draws: quantiles by root-finding on the CDF (to 1e-9), so none carries the Monte Carlo
    error of an empirical quantile. `guesses`: draws whose empirical quantiles start the search (fewer
    CDF evaluations; a bracket that misses the root extends to the end of [0, 1] it lies towards)."""
    def quantile(q: float) -> float:
        lower, upper = 0.0, 1.0
        if guesses is not None:
            near = float(np.quantile(guesses, q))
            low, high = max(near - 0.01, 0.0), min(near + 0.01, 1.0)
            if float(cdf(high)) < q:
                lower = high
            elif float(cdf(low)) > q:
                upper = low
            else:
                lower, upper = low, high
        return float(optimize.brentq(lambda x: float(cdf(x)) - q, lower, upper, xtol=1e-9))

    median, lo, hi = (quantile(q) for q in (0.5, (1 - CI_PROB) / 2, (1 + CI_PROB) / 2))
    return {
        "mean": rounded(mean),
        "median": rounded(median),
        "sd": rounded(np.sqrt(max(second_moment - mean**2, 0.0))),
        "ci95": [rounded(lo), rounded(hi)],
    }


def describe_predictive(family, posterior) -> dict:
    """θ for a new report, Rao-Blackwellised: the average over posterior draws of the family's exact
    conditional distribution (Beta(μκ, (1 − μ)κ), or logit-normal), summarised by its CDF and moments."""
    guesses = posterior["theta_new"].values.ravel() if "theta_new" in posterior else None
    return describe_distribution(*family.new_theta_distribution(posterior), guesses=guesses)


def describe_quantiles(draws) -> dict:
    """Median and equal-tailed 95% interval only: for a quantity whose mean may not exist (its sample
    mean and sd would drift with the seed and the number of draws)."""
    values = np.asarray(draws).ravel()
    lo, median, hi = np.quantile(values, [(1 - CI_PROB) / 2, 0.5, (1 + CI_PROB) / 2])
    return {"median": rounded(median), "ci95": [rounded(lo), rounded(hi)]}


def describe_weighted(draws, log_weights) -> dict:
    """`describe` of importance-weighted draws (self-normalised), with the weights' effective sample size."""
    values = np.asarray(draws).ravel()
    weights = np.exp(np.asarray(log_weights).ravel() - np.max(log_weights))
    weights /= weights.sum()
    order = np.argsort(values)
    cdf = np.cumsum(weights[order]) - weights[order] / 2

    def quantile(q: float) -> float:
        return float(np.interp(q, cdf, values[order]))

    mean = float(weights @ values)
    return {
        "mean": rounded(mean),
        "median": rounded(quantile(0.5)),
        "sd": rounded(np.sqrt(weights @ (values - mean) ** 2)),
        "ci95": [rounded(quantile((1 - CI_PROB) / 2)), rounded(quantile((1 + CI_PROB) / 2))],
        "weights_ess": rounded(1 / np.sum(weights**2), 1),
    }
