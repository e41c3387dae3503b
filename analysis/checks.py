"""Prior and posterior predictive checks on the statistics that matter for this evidence.

Case-report evidence is dominated by all-or-none reports, so the checks count reports in which every
patient responded and reports with no responder, beside the total number of responders. Each is
compared with its predictive distribution: before the data (prior predictive), for the same reports
(posterior predictive, same θ_i) and for new reports of the same sizes (mixed predictive, fresh θ),
the last being the one that tests the population distribution of θ.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import xarray as xr

from analysis.intervals import describe

STATISTICS = {
    "reports_all_responded": lambda y, n: (y == n).sum(axis=-1),
    "reports_none_responded": lambda y, n: (y == 0).sum(axis=-1),
    "total_responders": lambda y, n: y.sum(axis=-1),
}


def predictive_check(replicated: xr.DataArray, observed: np.ndarray, n: np.ndarray) -> dict:
    """Per statistic: the observed value, its predictive distribution and the two tail probabilities
    P(T_rep ≥ T_obs) and P(T_rep ≤ T_obs) (both, since the statistics are discrete)."""
    y_rep = replicated.transpose(..., "report").values
    checks = {}
    for name, statistic in STATISTICS.items():
        t_obs = int(statistic(observed, n))
        t_rep = statistic(y_rep, n).ravel()
        checks[name] = {
            "observed": t_obs,
            "predictive": describe(t_rep),
            "p_at_least_observed": round(float(np.mean(t_rep >= t_obs)), 4),
            "p_at_most_observed": round(float(np.mean(t_rep <= t_obs)), 4),
        }
    return checks


def all_predictive_checks(idata: xr.DataTree) -> dict:
    observed = idata["observed_data"]["y"].values
    n = idata["constant_data"]["n"].values
    return {
        "prior": predictive_check(idata["prior_predictive"]["y"], observed, n),
        "posterior_same_reports": predictive_check(idata["posterior_predictive"]["y"], observed, n),
        "posterior_new_reports": predictive_check(idata["posterior_predictive"]["y_new_reports"], observed, n),
    }


def loo_data(idata: xr.DataTree) -> xr.DataTree:
    """What PSIS-LOO and LOO-PIT need, on the integrated likelihood: log p(y_i | population) and, as its
    predictive, counts for new reports of the same sizes (fresh θ), the leave-one-report-out question."""
    return xr.DataTree.from_dict(
        {
            "posterior": idata["posterior"].to_dataset()[["mu"]],
            "log_likelihood": idata["log_likelihood"].to_dataset(),
            "posterior_predictive": xr.Dataset({"y": idata["posterior_predictive"]["y_new_reports"]}),
            "observed_data": idata["observed_data"].to_dataset(),
        }
    )


def loo_summary(idata: xr.DataTree) -> tuple[dict, object]:
    """PSIS-LOO (elpd, SE, p_loo) and each report's Pareto k; k > 0.7 marks an unreliable estimate."""
    elpd = az.loo(loo_data(idata), pointwise=True)
    k = elpd.pareto_k
    reports = [str(r) for r in k["report"].values]
    summary = {
        "elpd_loo": round(float(elpd.elpd), 4),
        "se": round(float(elpd.se), 4),
        "p_loo": round(float(elpd.p), 4),
        "pareto_k": {r: round(float(v), 4) for r, v in zip(reports, k.values)},
        "pareto_k_max": round(float(k.max()), 4),
        "pareto_k_max_report": reports[int(np.argmax(k.values))],
        "reports_k_above_0.7": int((k.values > 0.7).sum()),
    }
    return summary, elpd
