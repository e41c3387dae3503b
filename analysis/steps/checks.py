"""Prior and posterior predictive checks, and leave-one-report-out cross-validation.

Case-report evidence is dominated by all-or-none reports and threatened most by selective publication of
small all-responder reports, so the checks count reports in which every patient responded and reports
with no responder, the total number of responders, the rank correlation between report size and observed
proportion, and the proportion in the largest report. Each is compared with its predictive distribution
before the data (prior predictive), for the same reports (posterior predictive, same θ_i) and for new
reports of the same sizes (mixed predictive, fresh θ), the last being the one that tests the population
distribution of θ. Only the informative tail is reported: the probability, under the replication, of a
value at least as far out as the observed one on the side where it lies (for a statistic observed at its
minimum, P(T_rep ≤ T_obs); the other tail is 1 by construction). A statistic that is undefined for the
observed data (no spread) says so instead of reporting a probability.

Where the model's posterior (or prior) is a grid, the predictive distributions of the counts, the total and
the largest report's proportion are exact (`models.predictive`: each report's predictive pmf at every node,
Poisson-binomial counts and convolved totals mixed over the nodes), and the rank correlation comes from a
fixed quasi-Monte Carlo replication of the same mixture: the same numbers at every seed. From draws (a
model without a grid; the same-report replication, which needs each report's θ_i), the tail probability
carries its Monte Carlo standard error.
"""

from __future__ import annotations

import arviz_stats
import numpy as np
import xarray as xr
from scipy import stats

from analysis.results import CheckStatistic, Estimate
from analysis.steps.estimates import LOWER, UPPER, of_draws
from models import predictive

PARETO_K_UNRELIABLE = 0.7
"""Above this Pareto k the importance-sampling LOO estimate of a report is unreliable."""


def _spearman(y, n):
    """Rank correlation of n_i and y_i / n_i per replication (NaN when either has no spread)."""
    proportion = y / n
    ranks_p = stats.rankdata(proportion, axis=-1)
    ranks_n = stats.rankdata(n, axis=-1)  # the sizes: the same in every replication
    ranks_p = ranks_p - ranks_p.mean(axis=-1, keepdims=True)
    ranks_n = ranks_n - ranks_n.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ranks_p * ranks_n).sum(-1) / np.sqrt((ranks_p**2).sum(-1) * (ranks_n**2).sum(-1))


STATISTICS = {
    "reports_all_responded": (lambda y, n: (y == n).sum(axis=-1), "reports in which every patient responded"),
    "reports_none_responded": (lambda y, n: (y == 0).sum(axis=-1), "reports in which no patient responded"),
    "total_responders": (lambda y, n: y.sum(axis=-1), "total responders"),
    "size_rank_correlation": (_spearman, "rank correlation of report size and observed proportion"),
    "largest_report_proportion": (lambda y, n: y[..., int(np.argmax(n))] / n[int(np.argmax(n))],
                                  "observed proportion in the largest report"),
}


def predictive_check(replicated: np.ndarray, observed: np.ndarray, n: np.ndarray) -> dict[str, CheckStatistic]:
    """Per statistic: the observed value, its predictive distribution, the informative tail (`upper` when
    the observation lies above the predictive median, else `lower`) with its probability and its Monte
    Carlo standard error. `replicated`: (..., report) replicated counts."""
    y_rep = np.asarray(replicated).reshape(-1, observed.size)
    checks = {}
    for name, (statistic, label) in STATISTICS.items():
        t_obs = float(statistic(observed, n))
        t_rep = statistic(y_rep, n)
        defined = np.isfinite(t_rep)
        checks[name] = _tail(label, t_obs, t_rep[defined], int((~defined).sum()))
    return checks


def exact_predictive_check(weights: np.ndarray, pmfs: list[np.ndarray], observed: np.ndarray,
                           n: np.ndarray) -> dict[str, CheckStatistic]:
    """`predictive_check` from each report's predictive pmf (nodes, n_i + 1) at the nodes of a grid with
    normalised `weights`: exact distributions where the statistic has one, a fixed quasi-Monte Carlo
    replication of the same mixture for the rank correlation."""
    largest = int(np.argmax(n))
    all_responded = np.stack([pmf[:, n[i]] for i, pmf in enumerate(pmfs)], axis=1)  # (nodes, reports)
    none_responded = np.stack([pmf[:, 0] for pmf in pmfs], axis=1)
    exact = {
        "reports_all_responded": (np.arange(len(pmfs) + 1), predictive.count_pmf(all_responded)),
        "reports_none_responded": (np.arange(len(pmfs) + 1), predictive.count_pmf(none_responded)),
        "total_responders": (np.arange(int(np.sum(n)) + 1), predictive.sum_pmf(pmfs)),
        "largest_report_proportion": (np.arange(n[largest] + 1) / n[largest], pmfs[largest]),
    }
    replicated = None
    checks = {}
    for name, (statistic, label) in STATISTICS.items():
        t_obs = float(statistic(observed, n))
        if name in exact:
            support, node_pmf = exact[name]
            checks[name] = _exact_tail(label, t_obs, support, weights @ node_pmf)
            continue
        if replicated is None:
            replicated = predictive.replicate(weights, pmfs)
        t_rep = statistic(replicated, n)
        defined = np.isfinite(t_rep)
        checks[name] = _tail(label, t_obs, t_rep[defined], int((~defined).sum()))
    return checks


def _exact_tail(label: str, t_obs: float, support: np.ndarray, pmf: np.ndarray) -> CheckStatistic:
    """A statistic with a known discrete predictive distribution: its summary (quantiles by the inverse
    CDF, so a count's interval ends are counts) and the informative tail's exact probability."""
    pmf = pmf / pmf.sum()
    at_least, at_most = float(pmf[support >= t_obs - 1e-9].sum()), float(pmf[support <= t_obs + 1e-9].sum())
    side, p_tail = _informative_tail(at_least, at_most)
    cdf = np.cumsum(pmf)
    lo, median, hi = (float(support[min(int(np.searchsorted(cdf, q - 1e-12)), support.size - 1)])
                      for q in (LOWER, 0.5, UPPER))
    mean = float(pmf @ support)
    summary = Estimate(mean, median, float(np.sqrt(pmf @ (support - mean) ** 2)), lo, hi, "exact", 0.0)
    return CheckStatistic(label, t_obs, summary, side, p_tail, None, 0, "")


def _tail(label: str, t_obs: float, t_rep: np.ndarray, undefined: int) -> CheckStatistic:
    if not np.isfinite(t_obs) or t_rep.size == 0:
        return CheckStatistic(label, None, None, None, None, None, undefined,
                              "not defined for these data (no spread in report sizes or proportions)")
    side, p_tail = _informative_tail(float(np.mean(t_rep >= t_obs)), float(np.mean(t_rep <= t_obs)))
    return CheckStatistic(label, t_obs, of_draws(t_rep), side, p_tail,
                          float(np.sqrt(p_tail * (1 - p_tail) / t_rep.size)), undefined, "")


def _informative_tail(at_least: float, at_most: float) -> tuple[str, float]:
    """The tail the observed value lies in (the smaller of P(T ≥ obs) and P(T ≤ obs)) and its probability."""
    return ("upper", at_least) if at_least <= at_most else ("lower", at_most)


def replication_count(draws: int, reports: int, budget: int = 20_000_000) -> int:
    """Replicated data sets per draw for the checks: up to 8 (their tail probabilities' Monte Carlo error
    comes mostly from replicating the counts, which costs little next to the draws), within a memory budget
    of counts for large data sets."""
    return int(max(1, min(8, budget // max(draws * reports, 1))))


# --- leave-one-report-out ---------------------------------------------------------------------------------


def loo_data(idata: xr.DataTree) -> xr.DataTree:
    """What PSIS-LOO and LOO-PIT need, on the integrated likelihood: log p(y_i | population) and, as its
    predictive, counts for new reports of the same sizes (fresh θ), the leave-one-report-out question."""
    return xr.DataTree.from_dict(
        {
            "posterior": idata["posterior"].to_dataset()[["pooled"]],
            "log_likelihood": idata["log_likelihood"].to_dataset(),
            "posterior_predictive": xr.Dataset({"y": idata["posterior_predictive"]["y_new_reports"]}),
            "observed_data": idata["observed_data"].to_dataset(),
        }
    )


def psis_loo(idata: xr.DataTree):
    """ArviZ's PSIS-LOO on the integrated likelihood."""
    return arviz_stats.loo(loo_data(idata), pointwise=True)


def complete_pooling_loo(y, n, prior: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Exact leave-one-out log predictive densities of complete pooling (every report shares one θ ~
    Beta(prior)): y_i | y_−i is beta-binomial with the other reports' counts added to the prior."""
    y, n = np.asarray(y), np.asarray(n)
    a = prior[0] + y.sum() - y
    b = prior[1] + (n - y).sum() - (n - y)
    return stats.betabinom.logpmf(y, n, a, b)


def comparison(pointwise: np.ndarray, complete_pooling: np.ndarray) -> dict[str, float]:
    difference = pointwise - complete_pooling
    size = pointwise.size
    return {"elpd_loo": float(complete_pooling.sum()), "difference": float(difference.sum()),
            "difference_se": float(np.sqrt(size * np.var(difference)))}


def exact_loo_term(log_marginal: np.ndarray) -> float:
    """log p(y_i | y_−i) from draws of a refit without report i: log mean_s p(y_i | population_s)."""
    from scipy import special

    values = np.asarray(log_marginal).ravel()
    return float(special.logsumexp(values) - np.log(values.size))


def randomised_loo_pit(idata: xr.DataTree, elpd, rng: np.random.Generator) -> np.ndarray:
    """LOO-PIT of each report's count, randomised within the count's probability mass (a discrete count's
    mid-PIT is not uniform even under the true model), from the PSIS weights."""
    pit = arviz_stats.loo_pit(loo_data(idata), log_weights=xr.Dataset({"y": elpd.log_weights}),
                              pareto_k=xr.Dataset({"y": elpd.pareto_k}), random_state=rng)
    return np.asarray(pit["y"].values, dtype=float)
