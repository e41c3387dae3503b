"""Predictive-check statistics and their informative tails on a case small enough to count by hand."""

import numpy as np
import xarray as xr

from analysis.checks import predictive_check


def test_statistics_and_their_informative_tails():
    n = np.array([3, 1, 14])
    observed = np.array([3, 1, 8])  # two all-responder reports, none without a responder, 12 responders
    replicated = xr.DataArray(
        np.array([[[3, 1, 8], [0, 0, 14], [2, 1, 5], [3, 0, 0]]]), dims=("chain", "draw", "report")
    )
    checks = predictive_check(replicated, observed, n)
    # replicated all-responder counts: 2, 1, 1, 1: the observed 2 lies in the upper tail
    assert checks["reports_all_responded"]["observed"] == 2
    assert checks["reports_all_responded"]["tail"] == "upper" and checks["reports_all_responded"]["p_tail"] == 0.25
    # replicated no-responder counts: 0, 2, 0, 2: the observed 0 is the minimum, so P(T >= 0) = 1 says
    # nothing; the informative tail is P(T <= 0) = 0.5
    assert checks["reports_none_responded"]["tail"] == "lower" and checks["reports_none_responded"]["p_tail"] == 0.5
    # replicated totals: 12, 14, 8, 3
    assert checks["total_responders"]["observed"] == 12
    assert checks["total_responders"]["p_tail"] == 0.5
    assert checks["total_responders"]["predictive"]["mean"] == 9.25
    # proportion in the largest report (n = 14): observed 8/14; replicated 8/14, 1, 5/14, 0
    largest = checks["largest_report_proportion"]
    # P(T >= obs) = 2/4, P(T <= obs) = 3/4: the smaller tail is the informative one
    assert largest["observed"] == round(8 / 14, 6) and largest["tail"] == "upper" and largest["p_tail"] == 0.5


def test_size_rank_correlation_is_spearmans_rho_and_says_when_it_is_undefined():
    from scipy import stats

    n = np.array([1, 2, 3, 8, 14])
    observed = np.array([1, 2, 3, 7, 8])
    rows = np.array([[1, 2, 3, 7, 8], [1, 1, 3, 8, 14], [0, 0, 0, 0, 0]])  # the last: no spread
    checks = predictive_check(xr.DataArray(rows[None], dims=("chain", "draw", "report")), observed, n)
    rho = checks["size_rank_correlation"]
    assert rho["observed"] == round(stats.spearmanr(n, observed / n).statistic, 6)
    assert rho["undefined_replications"] == 1
    assert rho["predictive"]["mean"] == round(np.mean([stats.spearmanr(n, r / n).statistic for r in rows[:2]]), 6)
    flat = predictive_check(xr.DataArray(np.ones((1, 2, 3), dtype=int), dims=("chain", "draw", "report")),
                            np.ones(3, dtype=int), np.ones(3, dtype=int))
    assert flat["size_rank_correlation"]["p_tail"] is None and flat["size_rank_correlation"]["note"]
