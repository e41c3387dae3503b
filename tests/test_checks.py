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


def _enumerated(weights, pmfs, observed, n):
    """Every statistic's exact predictive pmf by listing every joint outcome of the reports at every node."""
    from analysis.steps.checks import STATISTICS

    outcomes = np.array(np.meshgrid(*[np.arange(size + 1) for size in n], indexing="ij")).reshape(len(n), -1).T
    mass = np.zeros(outcomes.shape[0])
    for w, *node in zip(weights, *pmfs):
        mass += w * np.prod([row[outcomes[:, i]] for i, row in enumerate(node)], axis=0)
    return {name: (statistic(outcomes, n), mass) for name, (statistic, _) in STATISTICS.items()}, outcomes


def test_exact_checks_equal_the_enumeration_of_every_joint_outcome():
    """Three reports (sizes 1, 2, 3) with made-up per-node pmfs at four nodes: the exact check's mean, sd,
    interval and tail probability of each count statistic equal those of a full enumeration of the 48 joint
    outcomes; the rank correlation (quasi-Monte Carlo) agrees within its stated error and is the same on a
    second call."""
    from analysis.steps.checks import exact_predictive_check

    rng = np.random.default_rng(5)
    n = np.array([1, 2, 3])
    observed = np.array([1, 2, 1])
    weights = rng.dirichlet(np.ones(4))
    pmfs = [rng.dirichlet(np.ones(size + 1), size=4) for size in n]
    checks = exact_predictive_check(weights, pmfs, observed, n)
    assert checks == exact_predictive_check(weights, pmfs, observed, n)
    enumerated, _ = _enumerated(weights, pmfs, observed, n)
    for name, check in checks.items():
        values, mass = enumerated[name]
        defined = np.isfinite(values)
        values, mass = values[defined], mass[defined] / mass[defined].sum()
        t_obs = check.observed
        expected_tail = mass[values >= t_obs - 1e-9].sum() if check.tail == "upper" else mass[values <= t_obs + 1e-9].sum()
        mean = mass @ values
        if name == "size_rank_correlation":
            assert check.predictive.method == "draws"
            assert abs(check.p_tail - expected_tail) < 4 * check.p_tail_mcse
            assert abs(check.predictive.mean - mean) < 4 * check.predictive.mcse["mean"]
            continue
        assert check.predictive.method == "exact" and check.p_tail_mcse is None
        assert check.p_tail == pytest.approx(expected_tail, abs=1e-12)
        other_tail = mass[values <= t_obs + 1e-9].sum() if check.tail == "upper" else mass[values >= t_obs - 1e-9].sum()
        assert check.p_tail <= other_tail + 1e-12  # the informative (smaller) tail
        assert check.predictive.mean == pytest.approx(mean, abs=1e-12)
        assert check.predictive.sd == pytest.approx(np.sqrt(mass @ (values - mean) ** 2), abs=1e-12)
        order = np.argsort(values, kind="stable")
        cdf = np.cumsum(mass[order])
        for q, bound in ((0.025, check.predictive.lo), (0.5, check.predictive.median), (0.975, check.predictive.hi)):
            assert bound == values[order][np.searchsorted(cdf, q - 1e-12)]


def test_the_replication_draws_each_report_from_its_mixture_pmf():
    """Quasi-Monte Carlo replication from a mixture over nodes: each report's count frequencies match its
    mixture pmf to within four binomial standard errors, and the rule is fixed (the same counts twice)."""
    from models import predictive

    rng = np.random.default_rng(11)
    weights = rng.dirichlet(np.ones(6))
    pmfs = [rng.dirichlet(np.ones(size + 1), size=6) for size in (1, 4, 9)]
    counts = predictive.replicate(weights, pmfs, size_log2=14)
    assert np.array_equal(counts, predictive.replicate(weights, pmfs, size_log2=14))
    for i, pmf in enumerate(pmfs):
        expected = weights @ pmf
        frequency = np.bincount(counts[:, i], minlength=pmf.shape[1]) / counts.shape[0]
        assert np.all(np.abs(frequency - expected) < 4 * np.sqrt(expected * (1 - expected) / counts.shape[0]) + 1e-12)


def test_poisson_binomial_and_sum_pmfs_are_exact():
    from models import predictive

    rng = np.random.default_rng(3)
    p = rng.uniform(size=(2, 5))
    pmf = predictive.count_pmf(p)
    outcomes = np.array(np.meshgrid(*[[0, 1]] * 5, indexing="ij")).reshape(5, -1).T
    for node in range(2):
        mass = np.prod(np.where(outcomes == 1, p[node], 1 - p[node]), axis=1)
        assert pmf[node] == pytest.approx(np.bincount(outcomes.sum(axis=1), weights=mass, minlength=6), abs=1e-15)
    parts = [rng.dirichlet(np.ones(k), size=2) for k in (2, 4, 3)]
    total = predictive.sum_pmf(parts)
    for node in range(2):
        expected = np.convolve(np.convolve(parts[0][node], parts[1][node]), parts[2][node])
        assert total[node] == pytest.approx(expected, abs=1e-15)


def test_the_exact_checks_of_a_run_agree_with_its_own_draws(primary_run):
    """The default run's exact new-report and prior checks against the same checks computed from the run's
    NUTS and prior draws (one replicated data set per draw, kept in posterior.nc): every tail probability and
    predictive mean within four Monte Carlo standard errors (a wrong pmf or node weight moves them by far
    more: the largest report's tail alone is 0.08)."""
    import json

    _, out = primary_run
    exact = json.loads((out / "summary.json").read_text())["predictive_checks"]
    tree = xr.open_datatree(out / "posterior.nc")
    observed, n = tree["observed_data"]["y"].values, tree["constant_data"]["n"].values
    for name, replicated in (("posterior_new_reports", tree["posterior_predictive"]["y_new_reports"]),
                             ("prior", tree["prior_predictive"]["y"])):
        drawn = predictive_check(replicated.transpose(..., "report").values, observed, n)
        for stat, check in drawn.items():
            mine = exact[name][stat]
            assert mine["tail"] == check.tail, (name, stat)
            assert abs(mine["p_tail"] - check.p_tail) < 4 * check.p_tail_mcse + 1e-3, (name, stat)
            draws = replicated.size // n.size
            assert abs(mine["predictive"]["mean"] - check.predictive.mean) < 4 * check.predictive.sd / np.sqrt(draws) + 1e-3, (name, stat)
