"""The naloxone arm: exact conjugate algebra, ESS, conflict, the mixture fit, the AS reference MAP prior,
and agreement of the two routes where they are the same model."""

import json

import arviz as az
import numpy as np
import pytest
from scipy import integrate, stats

from analysis import fit
from analysis.borrowing import run_borrowing, target_arm
from analysis.report.summary import borrowing_block
from analysis.config import CONFIG_DIR, load_config
from analysis.data import BinomialData, load_evidence, select_counts
from analysis.pipeline import run_analysis
from exact_posteriors import AS_N, AS_R
from models.borrowing import (
    BetaMixture,
    box_conflict_p,
    ess_elir,
    ess_moment,
    fit_beta_mixture,
    ks_distance,
    robustify,
)

# --- conjugate algebra -------------------------------------------------------------------------------


@pytest.mark.parametrize("a, b, y, n", [(2.0, 5.0, 2, 2), (0.5, 0.5, 0, 3), (8.0, 1.5, 5, 5), (1.0, 1.0, 3, 7)])
def test_single_beta_prior_updates_to_the_exact_conjugate_posterior(a, b, y, n):
    posterior = BetaMixture.single(a, b).posterior(y, n)
    exact = stats.beta(a + y, b + n - y)
    assert posterior.mean() == pytest.approx(exact.mean(), abs=1e-12)
    assert posterior.var() == pytest.approx(exact.var(), abs=1e-12)
    for q in (0.025, 0.5, 0.975):
        assert posterior.quantile(q) == pytest.approx(exact.ppf(q), abs=1e-9)
    assert posterior.prob_above(0.6) == pytest.approx(exact.sf(0.6), abs=1e-12)


def test_mixture_update_matches_numerical_integration():
    prior = BetaMixture([0.5, 0.3, 0.2], [9.0, 2.0, 1.0], [2.0, 6.0, 1.0])
    y, n = 1, 4
    likelihood = lambda t: stats.binom.pmf(y, n, t)  # noqa: E731
    evidence = integrate.quad(lambda t: prior.pdf(t) * likelihood(t), 0, 1)[0]
    exact_mean = integrate.quad(lambda t: t * prior.pdf(t) * likelihood(t), 0, 1)[0] / evidence
    exact_cdf = integrate.quad(lambda t: prior.pdf(t) * likelihood(t), 0, 0.3)[0] / evidence
    posterior = prior.posterior(y, n)
    assert posterior.weights.sum() == pytest.approx(1.0)
    assert posterior.mean() == pytest.approx(exact_mean, abs=1e-9)
    assert float(posterior.cdf(0.3)) == pytest.approx(exact_cdf, abs=1e-9)


def test_robustify():
    mix = BetaMixture([0.7, 0.3], [10.0, 3.0], [2.0, 3.0])
    robust = robustify(mix, 0.2)
    np.testing.assert_allclose(robust.weights, [0.56, 0.24, 0.2])
    assert robust.a[-1] == robust.b[-1] == 1.0
    assert robustify(mix, 0.0) is mix
    assert robustify(mix, 1.0).components() == [(1.0, 1.0, 1.0)]


# --- effective sample size and conflict -------------------------------------------------------------


@pytest.mark.parametrize("a, b", [(3.0, 7.0), (20.0, 4.0), (1.5, 1.5), (200.0, 50.0)])
def test_elir_and_moment_ess_of_a_single_beta_are_a_plus_b(a, b):
    beta = BetaMixture.single(a, b)
    assert ess_elir(beta) == pytest.approx(a + b, rel=1e-6)
    assert ess_moment(beta.mean(), beta.var()) == pytest.approx(a + b, rel=1e-12)


def test_elir_refuses_components_below_one():
    with pytest.raises(ValueError, match="undefined"):
        ess_elir(BetaMixture.single(0.5, 3.0))


def test_robustifying_lowers_the_ess():
    mix = BetaMixture.single(30.0, 10.0)
    assert ess_elir(robustify(mix, 0.2)) < ess_elir(mix)


def test_box_conflict_p_value():
    # A flat prior predicts every count equally: nothing can conflict with it.
    assert box_conflict_p(BetaMixture.single(1, 1), 0, 5) == pytest.approx(1.0)
    # A prior near 0.9 against 0 of 5: P(Y = 0) is the least likely outcome.
    prior = BetaMixture.single(45.0, 5.0)
    assert box_conflict_p(prior, 0, 5) == pytest.approx(stats.betabinom.pmf(0, 5, 45, 5), rel=1e-9)
    assert box_conflict_p(prior, 5, 5) == pytest.approx(1.0)


def test_em_recovers_a_known_mixture():
    rng = np.random.default_rng(11)
    first = rng.random(8000) < 0.6
    draws = np.where(first, rng.beta(20, 5, 8000), rng.beta(2, 3, 8000))
    result = fit_beta_mixture(draws)
    assert len(result.mixture.weights) == 2
    (w1, a1, b1), (w2, a2, b2) = sorted(result.mixture.components(), key=lambda c: c[1])
    assert w2 == pytest.approx(0.6, abs=0.03) and a2 == pytest.approx(20, rel=0.15) and b2 == pytest.approx(5, rel=0.15)
    # The fit is as close to the draws as the true mixture is (KS of a sample of 8000 is about 0.01).
    truth = BetaMixture([0.4, 0.6], [2, 20], [3, 5])
    assert result.ks_distance <= ks_distance(truth, draws) + 0.002


# --- the public AS reference: MAP prior and its ESS -------------------------------------------------


def _as_map_draws(model_cache, tau_scale):
    # 4 × 10 000 draws: the ELIR of an AIC-chosen mixture fitted to 4 × 2 500 draws varied from 35.5 to
    # 40.2 over seven seeds (the number of components flips between 3 and 4); with 4 × 10 000 draws it
    # stays within 36.3 to 37.9 (four seeds), so the test measures the method, not a lucky seed.
    config = load_config(model={"family": "logit_normal", "logit_normal": {"tau_scale": tau_scale}},
                         sampling={"draws": 10_000})
    data = BinomialData(tuple(f"as{i + 1}" for i in range(8)), AS_N, AS_R, "asas20", "placebo")
    return run_analysis(config, data, model_cache).idata["posterior"]["theta_new"].values.ravel()


@pytest.mark.parametrize("tau_scale, map_ess, robust_ess", [(1.0, 37, 26), (0.5, 46, None)])
def test_as_map_prior_ess_reproduces_rbest(model_cache, tau_scale, map_ess, robust_ess):
    """validation.md: ELIR ESS about 37 (robust 0.8/0.2: about 26); with τ ~ HalfNormal(0.5) about 46.
    The ELIR depends on the mixture approximation; RBesT's figures agree with the exact ones 'to a few
    units on ESS', and we hold ours to 3."""
    fit_result = fit_beta_mixture(_as_map_draws(model_cache, tau_scale), constrain_gt1=True)
    assert fit_result.ks_distance < 0.01
    assert abs(ess_elir(fit_result.mixture) - map_ess) <= 3
    if robust_ess is not None:
        assert abs(ess_elir(robustify(fit_result.mixture, 0.2)) - robust_ess) <= 3


# --- the two routes on the real data ----------------------------------------------------------------


@pytest.fixture(scope="module")
def hhd_borrowing(model_cache):
    config = load_config()
    table = load_evidence(config.data.resolved_path())
    data = select_counts(table, "any_response", "naltrexone")
    primary = run_analysis(config, data, model_cache)
    return config, primary, run_borrowing(config, primary, target_arm(config, table), model_cache)


def test_routes_agree_under_full_exchangeability(hhd_borrowing):
    """At w = 0 both routes are the MAP prior updated by 2 of 2. Three estimates of that one posterior:
    the joint model (MCMC), the two-step mixture, and the exact two-step posterior by importance
    weighting of the MAP draws (no mixture). The joint model must match the exact two-step answer
    within Monte Carlo error; the mixture must match it within its approximation error (0.01)."""
    config, primary, result = hhd_borrowing
    y, n = result.target.y, result.target.n
    draws = result.map_draws
    weights = draws**y * (1 - draws) ** (n - y)
    weights = weights / weights.sum()
    is_mean = float(weights @ draws)
    # Self-normalised IS error, inflated by the MAP draws' autocorrelation (N / ESS).
    theta_new = primary.idata["posterior"]["theta_new"]
    inflation = draws.size / float(az.ess(theta_new, method="bulk"))
    is_mcse = float(np.sqrt(np.sum(weights**2 * (draws - is_mean) ** 2) * inflation))

    theta_joint = result.joint_fits[0.0].idata["posterior"]["theta_target"]
    joint_mean, joint_mcse = float(theta_joint.mean()), float(az.mcse(theta_joint, method="mean"))
    assert abs(joint_mean - is_mean) <= 4 * np.hypot(joint_mcse, is_mcse)

    two_step = robustify(result.map_fit.mixture, 0.0).posterior(y, n)
    assert abs(two_step.mean() - is_mean) <= 0.01
    order = np.argsort(draws)
    cdf = np.cumsum(weights[order])
    for q in (0.025, 0.5, 0.975):
        assert abs(two_step.quantile(q) - float(np.interp(q, cdf, draws[order]))) <= 0.01


def test_routes_agree_at_the_configured_weight(hhd_borrowing):
    config, _, result = hhd_borrowing
    theta_joint = result.joint.idata["posterior"]["theta_target"]
    mcse = float(az.mcse(theta_joint, method="mean"))
    assert result.weight == config.borrowing.robust_weight == 0.2
    assert abs(result.posterior.mean() - float(theta_joint.mean())) <= 4 * mcse + 0.01
    # Posterior weight of the vague component = 1 − posterior probability of exchangeability.
    p_exchangeable = float(result.joint.idata["posterior"]["p_exchangeable"].mean())
    assert abs(result.posterior.weights[-1] - (1 - p_exchangeable)) <= 0.01


def test_summary_block_has_the_documented_fields(hhd_borrowing):
    config, primary, result = hhd_borrowing
    block = borrowing_block(result, config, primary)
    assert {"route", "robust_weight", "map_prior_ess", "posterior_robust_weight", "mean", "median", "ci95",
            "p_above", "conflict_p", "joint"} <= block.keys()
    assert {"mean", "median", "ci95"} <= block["joint"].keys()
    assert set(block["p_above"]) == {"0.5", "0.7", "0.8", "0.9"}
    assert [row["weight"] for row in block["sweep"]] == [0.0, 0.1, 0.2, 0.5, 1.0]
    assert block["conflict"] is False  # 2 of 2 responders is what the naltrexone reports predict
    # ... but with 2 patients the check cannot fire at all: its smallest possible p-value is the chance of
    # 0 of 2 (the MAP prior's P(0, 1, 2 of 2) are about 0.04, 0.18, 0.78 by the referee's exact computation).
    possible = block["conflict_possible_p"]
    assert len(possible) == 3 and possible[2] == 1.0 and block["conflict_min_p"] == min(possible)
    assert block["conflict_has_power"] is (min(possible) < config.borrowing.conflict_alpha)
    # One quantity, one number: the MAP prior is θ for a new report, summarised the same way.
    from analysis.intervals import describe_predictive
    from models import FAMILIES
    assert block["map_prior"]["ci95"] == describe_predictive(FAMILIES["beta_binomial"], primary.idata["posterior"])["ci95"]
    assert block["unborrowed"]["mean"] == pytest.approx(0.75, abs=1e-9)
    # This MAP prior piles up at θ = 1: the ELIR is withheld with its reason, the moment ESS is given.
    draws = result.map_draws
    assert block["map_prior_ess"]["elir"] is None and "not reported" in block["map_prior_ess"]["note"]
    assert block["map_prior_ess"]["moment"] == pytest.approx(draws.mean() * (1 - draws.mean()) / draws.var() - 1, abs=1e-5)
    assert block["robust_prior_ess"]["moment"] < block["map_prior_ess"]["moment"]
    # The sweep is monotone: less borrowing, a posterior closer to the flat-prior answer Beta(3, 1).
    means = [row["two_step"]["mean"] for row in block["sweep"]]
    assert means == sorted(means, reverse=True) and means[-1] == pytest.approx(0.75, abs=1e-9)


# --- any counts, any target drug, or none ------------------------------------------------------------


def _write_csv(tmp_path, rows):
    path = tmp_path / "evidence.csv"
    text = "report_id,drug,n_treated,n_any_response\n" + "\n".join(rows) + "\n"
    path.write_text(text)
    return path


def _run(tmp_path, model_cache, csv, *extra):
    out = tmp_path / "out"
    code = fit.main(["--data", str(csv), "--out", str(out), "--no-sensitivity", *extra], cache=model_cache)
    return code, json.loads((out / "summary.json").read_text())


NALTREXONE_ROWS = ["A,naltrexone,3,3", "B,naltrexone,1,1", "C,naltrexone,8,7", "D,naltrexone,14,8", "E,naltrexone,2,2"]


@pytest.mark.parametrize("y, n, conflict", [(0, 6, True), (4, 4, False)])
def test_arm_works_for_all_or_none_counts(tmp_path, model_cache, y, n, conflict):
    csv = _write_csv(tmp_path, NALTREXONE_ROWS + [f"T,naloxone,{n},{y}"])
    code, summary = _run(tmp_path, model_cache, csv)
    assert code == fit.EXIT_OK
    arm = summary["naloxone"]
    assert (arm["y"], arm["n"]) == (y, n)
    assert arm["conflict"] is conflict
    assert 0 <= arm["ci95"][0] < arm["median"] < arm["ci95"][1] <= 1
    assert arm["conflict_has_power"]  # with 4 or 6 patients the check can reach 0.05
    if conflict:
        # In conflict the robust component takes over: its posterior weight rises far above 0.2.
        assert arm["posterior_robust_weight"] > 0.5 and arm["mean"] < 0.5


def test_arm_is_skipped_with_a_note_when_the_data_have_no_target_rows(tmp_path, model_cache):
    code, summary = _run(tmp_path, model_cache, _write_csv(tmp_path, NALTREXONE_ROWS))
    assert code == fit.EXIT_OK
    assert "no included report of drug 'naloxone'" in summary["naloxone"]["skipped"]


def test_any_drug_can_be_the_target(tmp_path, model_cache):
    config = tmp_path / "nalmefene.toml"
    config.write_text(
        f'extends = "{CONFIG_DIR / "default.toml"}"\n[data]\nknown_drugs = ["naltrexone", "nalmefene"]\n'
        '[borrowing]\ntarget_drug = "nalmefene"\nweight_sweep = [0.0, 1.0]\n'
    )
    csv = _write_csv(tmp_path, NALTREXONE_ROWS + ["M1,nalmefene,3,2", "M2,nalmefene,2,1"])
    code, summary = _run(tmp_path, model_cache, csv, "--config", str(config))
    assert code == fit.EXIT_OK
    arm = summary["nalmefene"]
    assert summary["borrowing_target"] == "nalmefene"
    assert (arm["y"], arm["n"], arm["reports"]) == (3, 5, ["M1", "M2"])
