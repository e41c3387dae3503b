"""Predictive-check statistics and their informative tails on a case small enough to count by hand, and the
exact leave-one-out densities of complete pooling."""

import numpy as np
import pytest
import xarray as xr
from scipy import integrate, stats

from analysis.steps.checks import complete_pooling_loo, predictive_check


def test_statistics_and_their_informative_tails():
    n = np.array([3, 1, 14])
    observed = np.array([3, 1, 8])  # two all-responder reports, none without a responder, 12 responders
    replicated = xr.DataArray(
        np.array([[[3, 1, 8], [0, 0, 14], [2, 1, 5], [3, 0, 0]]]), dims=("chain", "draw", "report")
    )
    checks = predictive_check(replicated, observed, n)
    # replicated all-responder counts: 2, 1, 1, 1: the observed 2 lies in the upper tail
    all_responded = checks["reports_all_responded"]
    assert all_responded.observed == 2
    assert all_responded.tail == "upper" and all_responded.p_tail == 0.25
    assert all_responded.p_tail_mcse == pytest.approx(np.sqrt(0.25 * 0.75 / 4), abs=1e-15)
    # replicated no-responder counts: 0, 2, 0, 2: the observed 0 is the minimum, so P(T >= 0) = 1 says
    # nothing; the informative tail is P(T <= 0) = 0.5
    none_responded = checks["reports_none_responded"]
    assert none_responded.tail == "lower" and none_responded.p_tail == 0.5
    # replicated totals: 12, 14, 8, 3
    total = checks["total_responders"]
    assert total.observed == 12 and total.p_tail == 0.5
    assert total.predictive.mean == 9.25
    # proportion in the largest report (n = 14): observed 8/14; replicated 8/14, 1, 5/14, 0
    largest = checks["largest_report_proportion"]
    # P(T >= obs) = 2/4, P(T <= obs) = 3/4: the smaller tail is the informative one
    assert largest.observed == pytest.approx(8 / 14, abs=1e-15)
    assert largest.tail == "upper" and largest.p_tail == 0.5


def test_size_rank_correlation_is_spearmans_rho_and_says_when_it_is_undefined():
    n = np.array([1, 2, 3, 8, 14])
    observed = np.array([1, 2, 3, 7, 8])
    rows = np.array([[1, 2, 3, 7, 8], [1, 1, 3, 8, 14], [0, 0, 0, 0, 0]])  # the last: no spread
    checks = predictive_check(xr.DataArray(rows[None], dims=("chain", "draw", "report")), observed, n)
    rho = checks["size_rank_correlation"]
    assert rho.observed == pytest.approx(stats.spearmanr(n, observed / n).statistic, abs=1e-12)
    assert rho.undefined_replications == 1
    assert rho.predictive.mean == pytest.approx(np.mean([stats.spearmanr(n, r / n).statistic for r in rows[:2]]),
                                                abs=1e-12)
    flat = predictive_check(xr.DataArray(np.ones((1, 2, 3), dtype=int), dims=("chain", "draw", "report")),
                            np.ones(3, dtype=int), np.ones(3, dtype=int))
    undefined = flat["size_rank_correlation"]
    assert undefined.p_tail is None and undefined.observed is None and undefined.note


def test_complete_pooling_loo_is_the_beta_binomial_predictive_of_the_other_reports():
    """log p(y_i | y_−i) under one shared θ ~ Beta(1, 1), integrated over θ's posterior from the other
    reports by adaptive quadrature."""
    y, n = np.array([3, 1, 8, 0]), np.array([3, 1, 14, 2])
    ours = complete_pooling_loo(y, n)
    for i in range(y.size):
        a, b = 1 + y.sum() - y[i], 1 + (n - y).sum() - (n[i] - y[i])
        value, _ = integrate.quad(lambda t: stats.binom.pmf(y[i], n[i], t) * stats.beta.pdf(t, a, b), 0, 1,
                                  epsabs=1e-14, epsrel=1e-12)
        assert ours[i] == pytest.approx(np.log(value), abs=1e-9)


def test_the_gate_judges_one_report_per_distinct_row_beyond_its_limit(monkeypatch):
    """Beyond `JUDGED_REPORTS` the gate judges θ of the first report of each distinct row of counts and
    covariates (reports sharing a row have exchangeable θ draws), and every population quantity; up to it,
    every report."""
    from analysis.steps import primary
    from models.base import Reports

    reports = Reports(np.array([1, 1, 2, 0, 1]), np.array([1, 1, 3, 2, 1]), np.array([[0.5], [0.5], [0], [0], [-1]]))
    posterior = xr.Dataset({"theta": (("chain", "draw", "report"), np.zeros((1, 2, 5))),
                            "mu": (("chain", "draw"), np.zeros((1, 2)))}, coords={"report": list("abcde")})
    monkeypatch.setattr(primary, "JUDGED_REPORTS", 4)
    judged = primary._judged(reports)(posterior)
    assert list(judged["report"].values) == ["a", "c", "d", "e"] and "mu" in judged
    monkeypatch.setattr(primary, "JUDGED_REPORTS", 5)
    assert primary._judged(reports) is None
