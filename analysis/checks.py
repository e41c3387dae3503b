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
"""

from __future__ import annotations

import arviz as az
import numpy as np
import xarray as xr
from scipy import special, stats

from analysis.intervals import describe


def _spearman(y, n):
    """Rank correlation of n_i and y_i / n_i per replication (NaN when either has no spread)."""
    proportion = y / n
    ranks_p = stats.rankdata(proportion, axis=-1)
    ranks_n = stats.rankdata(np.broadcast_to(n, proportion.shape), axis=-1)
    ranks_p = ranks_p - ranks_p.mean(axis=-1, keepdims=True)
    ranks_n = ranks_n - ranks_n.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ranks_p * ranks_n).sum(-1) / np.sqrt((ranks_p**2).sum(-1) * (ranks_n**2).sum(-1))


PARETO_K_UNRELIABLE = 0.7
"""Above this Pareto k the importance-sampling LOO estimate of a report is unreliable: it is refitted exactly."""

STATISTICS = {
    "reports_all_responded": (lambda y, n: (y == n).sum(axis=-1), "reports in which every patient responded"),
    "reports_none_responded": (lambda y, n: (y == 0).sum(axis=-1), "reports in which no patient responded"),
    "total_responders": (lambda y, n: y.sum(axis=-1), "total responders"),
    "size_rank_correlation": (_spearman, "rank correlation of report size and observed proportion"),
    "largest_report_proportion": (lambda y, n: y[..., int(np.argmax(n))] / n[int(np.argmax(n))],
                                  "observed proportion in the largest report"),
}


def predictive_check(replicated: xr.DataArray, observed: np.ndarray, n: np.ndarray) -> dict:
    """Per statistic: the observed value, its predictive distribution, the informative tail (`upper` when
    the observation lies above the predictive median, else `lower`) with its probability
    P(T_rep ≥ T_obs) or P(T_rep ≤ T_obs), and whether that tail can fall below 0.05 at all."""
    y_rep = replicated.transpose(..., "report").values.reshape(-1, observed.size)
    checks = {}
    for name, (statistic, label) in STATISTICS.items():
        t_obs = float(statistic(observed, n))
        t_rep = statistic(y_rep, n)
        defined = np.isfinite(t_rep)
        checks[name] = _tail(label, t_obs, t_rep[defined], int((~defined).sum()))
    return checks


def _tail(label: str, t_obs: float, t_rep: np.ndarray, undefined: int) -> dict:
    if not np.isfinite(t_obs) or t_rep.size == 0:
        return {"label": label, "observed": None, "predictive": None, "tail": None, "p_tail": None,
                "undefined_replications": undefined,
                "note": "not defined for these data (no spread in report sizes or proportions)"}
    upper = np.mean(t_rep >= t_obs) <= np.mean(t_rep <= t_obs)
    p_tail = float(np.mean(t_rep >= t_obs) if upper else np.mean(t_rep <= t_obs))
    return {
        "label": label,
        "observed": round(t_obs, 6),
        "predictive": describe(t_rep),
        "tail": "upper" if upper else "lower",
        "p_tail": round(p_tail, 4),
        "undefined_replications": undefined,
        "note": "",
    }


def all_predictive_checks(idata: xr.DataTree) -> dict:
    observed = idata["observed_data"]["y"].values
    n = idata["constant_data"]["n"].values
    return {
        "prior": predictive_check(idata["prior_predictive"]["y"], observed, n),
        "posterior_same_reports": predictive_check(idata["posterior_predictive"]["y"], observed, n),
        "posterior_new_reports": predictive_check(idata["posterior_predictive"]["y_new_reports"], observed, n),
    }


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
    """ArviZ's PSIS-LOO on the integrated likelihood, computed once for the summary and the figures."""
    return az.loo(loo_data(idata), pointwise=True)


def loo_summary(elpd, exact: dict[str, float], complete_pooling: np.ndarray) -> dict:
    """elpd_loo with the reports of Pareto k > 0.7 replaced by exact refits (`exact`: report → log p(y_i |
    y_−i)), and the comparison with complete pooling (one common θ, exact leave-one-out in closed form)."""
    k = elpd.pareto_k
    reports = [str(r) for r in k["report"].values]
    pointwise = elpd.elpd_i.values.copy()
    for i, rid in enumerate(reports):
        if rid in exact:
            pointwise[i] = exact[rid]
    difference = pointwise - complete_pooling
    size = len(reports)
    return {
        "elpd_loo": round(float(pointwise.sum()), 4),
        "se": round(float(np.sqrt(size * np.var(pointwise))), 4),
        "elpd_psis": round(float(elpd.elpd), 4),
        "p_loo": round(float(elpd.p), 4),
        "pareto_k": {r: round(float(v), 4) for r, v in zip(reports, k.values)},
        "pareto_k_max": round(float(k.max()), 4),
        "pareto_k_max_report": reports[int(np.argmax(k.values))],
        "reports_k_above_0.7": int((k.values > PARETO_K_UNRELIABLE).sum()),
        "refitted": sorted(exact),
        "pointwise": {r: round(float(v), 4) for r, v in zip(reports, pointwise)},
        "complete_pooling": {
            "elpd_loo": round(float(complete_pooling.sum()), 4),
            "difference": round(float(difference.sum()), 4),
            "difference_se": round(float(np.sqrt(size * np.var(difference))), 4),
        },
    }


def exact_loo_term(log_marginal: np.ndarray) -> float:
    """log p(y_i | y_−i) from the draws of a refit without report i: log mean_s p(y_i | population_s)."""
    values = np.asarray(log_marginal).ravel()
    return float(special.logsumexp(values) - np.log(values.size))


def complete_pooling_loo(y, n, prior: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Exact leave-one-out log predictive densities of complete pooling (every report shares one θ ~
    Beta(prior)): y_i | y_−i is beta-binomial with the other reports' counts added to the prior."""
    y, n = np.asarray(y), np.asarray(n)
    a = prior[0] + y.sum() - y
    b = prior[1] + (n - y).sum() - (n - y)
    return stats.betabinom.logpmf(y, n, a, b)


def randomised_loo_pit(idata: xr.DataTree, elpd, rng: np.random.Generator) -> np.ndarray:
    """LOO-PIT of each report's count, randomised within the count's probability mass (a discrete count's
    mid-PIT is not uniform even under the true model), from the PSIS weights."""
    from arviz_stats import loo_pit

    pit = loo_pit(loo_data(idata), log_weights=xr.Dataset({"y": elpd.log_weights}),
                  pareto_k=xr.Dataset({"y": elpd.pareto_k}), random_state=rng)
    return np.asarray(pit["y"].values, dtype=float)
