"""Predictive-check statistics and their tail probabilities on a case small enough to count by hand."""

import numpy as np
import xarray as xr

from analysis.checks import predictive_check


def test_statistics_and_tail_probabilities():
    n = np.array([3, 1, 14])
    observed = np.array([3, 1, 8])  # two all-responder reports, none without a responder, 12 responders
    replicated = xr.DataArray(
        np.array([[[3, 1, 8], [0, 0, 14], [2, 1, 5], [3, 0, 0]]]), dims=("chain", "draw", "report")
    )
    checks = predictive_check(replicated, observed, n)
    assert checks["reports_all_responded"]["observed"] == 2
    # replicated all-responder counts: 2, 1, 1, 1
    assert checks["reports_all_responded"]["p_at_least_observed"] == 0.25
    assert checks["reports_all_responded"]["p_at_most_observed"] == 1.0
    # replicated no-responder counts: 0, 2, 0, 2
    assert checks["reports_none_responded"]["p_at_least_observed"] == 1.0
    assert checks["reports_none_responded"]["p_at_most_observed"] == 0.5
    # replicated totals: 12, 14, 8, 3
    assert checks["total_responders"]["observed"] == 12
    assert checks["total_responders"]["p_at_least_observed"] == 0.5
    assert checks["total_responders"]["predictive"]["mean"] == 9.25
