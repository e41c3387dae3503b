"""`Estimate`s from the three kinds of posterior the steps have: a grid (exact), draws (Monte Carlo, with
their MCSE from arviz-stats), and a known distribution (closed form)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from arviz_stats.base import array_stats
from scipy import optimize, stats

from analysis.engine.quadrature import Exact
from analysis.results import CI_PROB, Estimate
from models.comparators import clopper_pearson  # noqa: F401  (one definition, used by the steps through here)

LOWER, UPPER = (1 - CI_PROB) / 2, (1 + CI_PROB) / 2



# --- exact: grids and closed forms ------------------------------------------------------------------


def on_grid(exact: Exact, values: np.ndarray, axis: int | None = None, transform: Callable | None = None,
            heavy: bool = False, decreasing: bool = False) -> Estimate:
    """A quantity given by its values at the grid's nodes. When it is a monotone function of one grid axis
    (`axis`, with `transform` from the axis's coordinate to the quantity; `decreasing` when it falls as the
    coordinate rises) its quantiles come from that axis's marginal (spectrally accurate); otherwise from
    the grid's smoothed CDF of the values. `heavy`: its mean does not exist (mean and sd are None)."""
    grid = exact.grid
    if axis is not None:
        levels = (UPPER, 0.5, LOWER) if decreasing else (LOWER, 0.5, UPPER)
        lo, median, hi = (float(transform(grid.marginal_quantile(axis, q))) for q in levels)
    else:
        lo, median, hi = (float(v) for v in grid.quantile(values, [LOWER, 0.5, UPPER]))
    if heavy:
        return Estimate(None, median, None, lo, hi, "exact", exact.error)
    mean = grid.expectation(values)
    second = grid.expectation(np.asarray(values, dtype=float) ** 2)
    return Estimate(mean, median, float(np.sqrt(max(second - mean**2, 0.0))), lo, hi, "exact", exact.error)


def mixture(exact: Exact, component_cdf: Callable[[dict], Callable[[float], np.ndarray]],
            component_moments: Callable[[dict], tuple[np.ndarray, np.ndarray]],
            component_pdf: Callable[[dict], Callable[[float], np.ndarray]] | None = None) -> Estimate:
    """A quantity whose distribution given the parameters is known (θ of a new report, a report's θ_i, the
    target arm's θ): its posterior is the mixture of those distributions over the grid, summarised from
    its CDF and moments. The functions take the named variables at the support nodes; `component_cdf`
    returns the CDF there as a function of x (so that what does not depend on x is computed once), and
    `component_pdf`, when given, the density: the quantiles are then found by Newton steps from those of
    the Beta distribution with the mixture's mean and variance."""
    support = exact.support_values()
    grid = exact.grid
    first, second = component_moments(support)
    mean, raw_second = grid.expectation(first), grid.expectation(second)
    sd = float(np.sqrt(max(raw_second - mean**2, 0.0)))
    levels = (0.5, LOWER, UPPER)
    pdf = component_pdf(support) if component_pdf is not None else None
    median, lo, hi = grid.mixture_quantile(component_cdf(support), levels, component_pdf=pdf,
                                           start=_beta_quantiles(mean, sd, levels))
    return Estimate(mean, float(median), sd, float(lo), float(hi), "exact", exact.error)


def _beta_quantiles(mean: float, sd: float, levels) -> np.ndarray | None:
    """Quantiles of the Beta distribution with this mean and sd (a start for the mixture's), or None."""
    spread = mean * (1 - mean) / sd**2 - 1 if sd > 0 else -1.0
    if not 0.0 < mean < 1.0 or spread <= 0:
        return None
    return stats.beta.ppf(levels, mean * spread, (1 - mean) * spread)


def increasing_along(exact: Exact, values: np.ndarray, axis: int, position: Callable[[float], np.ndarray]) -> Estimate:
    """A quantity that increases along one grid axis on every line parallel to it (`position(t)`: where it
    equals t on each line): quantiles from the lines' conditional CDFs (`GridPosterior.monotone_quantile`),
    spectrally accurate like a marginal's; mean and sd as `on_grid`."""
    grid = exact.grid
    lo, median, hi = (float(v) for v in grid.monotone_quantile(axis, values, position, [LOWER, 0.5, UPPER]))
    mean = grid.expectation(values)
    second = grid.expectation(np.asarray(values, dtype=float) ** 2)
    return Estimate(mean, median, float(np.sqrt(max(second - mean**2, 0.0))), lo, hi, "exact", exact.error)


def pointwise(cdf: Callable[[dict, float], np.ndarray]) -> Callable[[dict], Callable[[float], np.ndarray]]:
    """A component CDF written as cdf(values, x), in the form `mixture` takes."""
    return lambda values: lambda x: cdf(values, x)


def of_distribution(distribution) -> Estimate:
    """A scipy frozen distribution (a conjugate Beta posterior, a Beta mixture with `mean`/`ppf`)."""
    lo, median, hi = (float(distribution.ppf(q)) for q in (LOWER, 0.5, UPPER))
    return Estimate(float(distribution.mean()), median, float(distribution.std()), lo, hi, "exact", 0.0)


def of_mixture(mixture) -> Estimate:
    """A Beta mixture (`models.mixtures.BetaMixture`): quantiles by root-finding on its CDF."""
    lo, median, hi = (float(mixture.quantile(q)) for q in (LOWER, 0.5, UPPER))
    return Estimate(float(mixture.mean()), median, float(np.sqrt(mixture.var())), lo, hi, "exact", 0.0)


def of_cdf(cdf: Callable[[float], float], mean: float, second_moment: float, bracket=(0.0, 1.0)) -> Estimate:
    """A distribution on an interval given by its CDF and first two moments (quantiles by root-finding)."""
    def quantile(q: float) -> float:
        return float(optimize.brentq(lambda x: cdf(x) - q, *bracket, xtol=1e-12))

    return Estimate(mean, quantile(0.5), float(np.sqrt(max(second_moment - mean**2, 0.0))), quantile(LOWER),
                    quantile(UPPER), "exact", 0.0)


# --- Monte Carlo: draws --------------------------------------------------------------------------------


def of_draws(draws, heavy: bool = False) -> Estimate:
    """Posterior draws (chain, draw) or a flat sample: the summary and its Monte Carlo standard errors (of
    the mean and sd where they exist, of the median and the two bounds always)."""
    values = np.asarray(draws, dtype=float)
    chains = values if values.ndim == 2 else values.reshape(1, -1)
    flat = chains.ravel()
    lo, median, hi = np.quantile(flat, [LOWER, 0.5, UPPER])
    mcse = {name: _mcse(chains, "quantile", q) for name, q in (("lo", LOWER), ("median", 0.5), ("hi", UPPER))}
    if heavy:
        return Estimate(None, float(median), None, float(lo), float(hi), "draws", None, {"mean": None, **mcse})
    mcse["mean"] = _mcse(chains, "mean")
    return Estimate(float(flat.mean()), float(median), float(flat.std(ddof=1)), float(lo), float(hi), "draws",
                    None, mcse)


def _mcse(chains: np.ndarray, method: str, prob: float | None = None) -> float | None:
    if np.ptp(chains) == 0:
        return 0.0
    kwargs = {"prob": prob} if prob is not None else {}
    value = float(array_stats.mcse(chains, method=method, chain_axis=0, draw_axis=1, **kwargs))
    return value if np.isfinite(value) else None


def mixture_over_draws(values: dict, component_cdf, component_moments, draws) -> Estimate:
    """A quantity whose distribution given each draw is known (θ of a new report), Rao-Blackwellised: the
    average over the draws of that distribution, summarised from its CDF and moments; the Monte Carlo
    errors are bounded by those of plain `draws` of the quantity."""
    flat = {k: np.asarray(v).ravel() for k, v in values.items() if np.ndim(v) == 2}
    first, second = (np.mean(m) for m in component_moments(flat))
    cdf = lambda x: float(np.mean(component_cdf(flat, x)))  # noqa: E731
    summary = of_cdf(cdf, float(first), float(second))
    return Estimate(summary.mean, summary.median, summary.sd, summary.lo, summary.hi, "draws", None,
                    of_draws(draws).mcse)


def of_weighted_draws(draws, log_weights) -> Estimate:
    """Importance-weighted draws (self-normalised; PSIS-smoothed weights), e.g. a posterior reweighted by
    another arm's likelihood; the Monte Carlo error is stated by the weights' effective sample size."""
    values = np.asarray(draws, dtype=float).ravel()
    log_w = np.asarray(log_weights, dtype=float).ravel()
    smoothed, _ = array_stats.psislw(log_w[None, :], axis=-1)
    weights = np.exp(np.asarray(smoothed).ravel() - np.max(smoothed))
    weights /= weights.sum()
    order = np.argsort(values)
    cdf = np.cumsum(weights[order]) - weights[order] / 2
    lo, median, hi = (float(np.interp(q, cdf, values[order])) for q in (LOWER, 0.5, UPPER))
    mean = float(weights @ values)
    sd = float(np.sqrt(weights @ (values - mean) ** 2))
    ess = 1 / float(np.sum(weights**2))
    return Estimate(mean, median, sd, lo, hi, "draws", None, {"mean": sd / np.sqrt(ess)})


PARETO_K_MAX = 0.7
"""Largest Pareto k̂ of a replicate's importance weights for a reliable integration (Vehtari et al. 2024:
above 0.7 the weights' tail is too heavy for the estimates to converge at a useful rate)."""


def importance_check(weighted) -> tuple[float, list[str]]:
    """The largest Pareto k̂ of a replicate's importance weights (`models.importance.Weighted`), and why the
    integration should not be trusted (empty when k̂ ≤ `PARETO_K_MAX`)."""
    pareto_k = max(float(array_stats.pareto_khat(w, chain_axis=None, draw_axis=-1, tail="right"))
                   for w in weighted.weights)
    failures = [f"the importance weights' Pareto k̂ is {pareto_k:.2f} (above {PARETO_K_MAX}): the integration "
                "is unreliable"] if not pareto_k <= PARETO_K_MAX else []
    return pareto_k, failures


def of_importance(weighted, values: list[np.ndarray], atoms: int = 1) -> Estimate:
    """Mean, median, sd and 95% bounds of a quantity with values (point × `atoms`) at each replicate's
    importance points (`models.importance.Weighted`; a point's weight shared equally by its atoms), and
    their standard errors: the spread of the replicates' own values over √replicates. The points are
    fixed, so the estimate is the same at every seed; its errors are printed like Monte Carlo ones."""
    from models.importance import weighted_quantiles

    weights = [np.repeat(w / atoms, atoms) for w in weighted.weights]

    def summary(v, w):
        mean = float(w @ v)
        lo, median, hi = weighted_quantiles(v, w, (LOWER, 0.5, UPPER))
        return np.array([mean, median, lo, hi, np.sqrt(max(float(w @ (v * v)) - mean * mean, 0.0))])

    mean, median, lo, hi, sd = summary(np.concatenate(values), np.concatenate(weights) / len(weights))
    spread = np.array([summary(v, w) for v, w in zip(values, weights)]).std(axis=0, ddof=1) / np.sqrt(len(values))
    return Estimate(float(mean), float(median), float(sd), float(lo), float(hi), "importance", None,
                    dict(zip(("mean", "median", "lo", "hi"), (float(e) for e in spread[:4]))))
