"""Prior and posterior predictive checks on the statistics that matter for this evidence.

Case-report evidence is dominated by all-or-none reports, so the checks count reports in which every
patient responded and reports with no responder, beside the total number of responders. Each is
compared with its predictive distribution: before the data (prior predictive), for the same reports
(posterior predictive, same θ_i) and for new reports of the same sizes (mixed predictive, fresh θ),
the last being the one that tests the population distribution of θ.
"""

from __future__ import annotations

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
