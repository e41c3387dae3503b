"""The conventional comparators: crude and common-effect pooling, and the ML binomial-normal GLMM against
metafor's published results, against a brute-force likelihood, and at its boundaries."""

import math

import numpy as np
import pytest
from scipy import optimize, special, stats

from exact_posteriors import AS_N, AS_R
from models.comparators import common_effect, comparators, crude, glmm_ml

# Stijnen, Hamza and Özdemir (2010), control arms of metafor's dat.nielweise2007.
NIELWEISE_Y = np.array([3, 3, 9, 7, 6, 4, 3, 2, 19, 2, 7, 1, 5, 11, 0, 1, 3, 1])
NIELWEISE_N = np.array([117, 35, 195, 136, 157, 139, 177, 39, 103, 122, 64, 58, 175, 180, 105, 262, 362, 69])
# The shipped HHD low-dose naltrexone counts (mostly small, nearly all-responder reports).
HHD_Y = np.array([3, 3, 3, 1, 1, 1, 3, 7, 1, 2, 3, 8])
HHD_N = np.array([3, 3, 3, 1, 1, 1, 3, 8, 1, 2, 3, 14])

# metafor prints 4 decimals: half a unit in the last digit is 5e-5. On top, 1e-5 for the optimisers: at
# metafor's own optimum (bobyqa, lme4 1.1-31) our log-likelihood is lower by ~4e-10 and its estimates
# differ from ours by at most 8.5e-6 (τ², Stijnen data). The quadrature is the same (adaptive
# Gauss-Hermite with nAGQ = 7 nodes, our default; our log-likelihood equals glmer's deviance/−2 up to a
# constant to 1e-9), so no allowance for it: with 30 nodes τ² on the Stijnen data moves by 1.5e-4, outside
# this tolerance, i.e. the published figures are nAGQ = 7 figures.
PRINTED_4DP = 5e-5 + 1e-5

DATA = {
    "nielweise": (NIELWEISE_Y, NIELWEISE_N),
    "AS": (AS_R, AS_N),
    "HHD": (HHD_Y, HHD_N),
    "homogeneous": (np.array([5, 10, 15]), np.array([20, 40, 60])),
    "all responders": (np.array([3, 1, 2]), np.array([3, 1, 2])),
    "no responders": (np.array([0, 0]), np.array([12, 5])),
}


# --- crude and common effect ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(DATA))
def test_crude_is_totals_with_the_clopper_pearson_interval(name):
    """The exact interval in its closed form: Beta quantiles, with the bound at 0 or 1 when no patient or
    every patient responded."""
    y, n = DATA[name]
    result = crude(y, n)
    total_y, total_n = int(y.sum()), int(n.sum())
    assert (result["y"], result["n"]) == (total_y, total_n)
    assert result["proportion"] == pytest.approx(total_y / total_n, abs=1e-15)
    lo = 0.0 if total_y == 0 else stats.beta.ppf(0.025, total_y, total_n - total_y + 1)
    hi = 1.0 if total_y == total_n else stats.beta.ppf(0.975, total_y + 1, total_n - total_y)
    assert result["ci95"] == pytest.approx([lo, hi], abs=1e-12)


@pytest.mark.parametrize("name", ["nielweise", "AS", "HHD", "homogeneous"])
def test_common_effect_is_the_crude_proportion_with_a_logit_wald_interval(name):
    y, n = DATA[name]
    result = common_effect(y, n)
    assert result["proportion"] == pytest.approx(crude(y, n)["proportion"], abs=1e-15)
    assert result["note"] == ""
    # Intercept-only logistic regression fitted from scratch: MLE and observed information.
    negloglik = lambda b: -np.sum(y * special.log_expit(b) + (n - y) * special.log_expit(-b))
    b_hat = optimize.minimize_scalar(negloglik, bracket=(-1, 1), tol=1e-12).x
    p = special.expit(b_hat)
    se = 1 / math.sqrt(np.sum(n) * p * (1 - p))
    assert result["mu_logit"] == pytest.approx(b_hat, abs=1e-6)
    assert result["se_mu_logit"] == pytest.approx(se, rel=1e-6)
    assert result["ci95"] == pytest.approx(list(special.expit(b_hat + np.array([-1, 1]) * 1.959964 * se)), abs=1e-6)


@pytest.mark.parametrize("name, proportion", [("all responders", 1.0), ("no responders", 0.0)])
def test_common_effect_at_the_boundary_gives_the_exact_interval_and_a_note(name, proportion):
    y, n = DATA[name]
    result = common_effect(y, n)
    assert result["proportion"] == proportion
    assert result["ci95"] == crude(y, n)["ci95"]
    assert "boundary" in result["note"] and "Clopper-Pearson" in result["note"]


# --- the GLMM against metafor ------------------------------------------------------------------------------


def test_glmm_reproduces_metafor_on_stijnen_control_arms():
    """metafor 3.8 rma.glmm(measure = "PLO"): μ̂ = −3.4964 (SE 0.2570), τ² = 0.8124, 0.0294 (0.0180 to 0.0478)."""
    result = glmm_ml(NIELWEISE_Y, NIELWEISE_N)
    assert result["converged"] and result["note"] == ""
    assert result["mu_logit"] == pytest.approx(-3.4964, abs=PRINTED_4DP)
    assert result["se_mu_logit"] == pytest.approx(0.2570, abs=PRINTED_4DP)
    assert result["tau2"] == pytest.approx(0.8124, abs=PRINTED_4DP)
    assert result["median_report"] == pytest.approx(0.0294, abs=PRINTED_4DP)
    assert result["ci95"] == pytest.approx([0.0180, 0.0478], abs=PRINTED_4DP)


def test_glmm_reproduces_metafor_on_as_placebo_arms():
    """metafor 3.8: μ̂ = −1.1108 (SE 0.1491), τ² = 0.0786, 0.2477 (0.1973 to 0.3060), PI 0.1502 to 0.3802."""
    result = glmm_ml(AS_R, AS_N)
    assert result["converged"] and result["note"] == ""
    assert result["mu_logit"] == pytest.approx(-1.1108, abs=PRINTED_4DP)
    assert result["se_mu_logit"] == pytest.approx(0.1491, abs=PRINTED_4DP)
    assert result["tau2"] == pytest.approx(0.0786, abs=PRINTED_4DP)
    assert result["median_report"] == pytest.approx(0.2477, abs=PRINTED_4DP)
    assert result["ci95"] == pytest.approx([0.1973, 0.3060], abs=PRINTED_4DP)
    assert result["prediction_interval"] == pytest.approx([0.1502, 0.3802], abs=PRINTED_4DP)
    # E[θ] exceeds the median report's θ: expit is convex below 1/2.
    assert result["population_mean_at_mle"] > result["median_report"]


def test_glmm_reproduces_metafor_on_hhd_counts():
    """metafor 3.8-1 (lme4 1.1-31) on these counts, no warning, printed to 8 digits: μ̂ = 3.00413540,
    SE 1.40977774, τ² = 2.08616440, CI 0.559965 to 0.996881, PI 0.278541 to 0.999052. The likelihood is
    flat here, so the two optimisers agree less closely (1.3e-5 in τ²; our log-likelihood is the higher):
    tolerance 1e-4. The SE is the one that needs the joint (μ, τ) information: at fixed τ̂ it is 0.81."""
    result = glmm_ml(HHD_Y, HHD_N)
    assert result["converged"] and result["note"] == ""
    assert result["mu_logit"] == pytest.approx(3.00413540, abs=1e-4)
    assert result["se_mu_logit"] == pytest.approx(1.40977774, abs=1e-4)
    assert result["tau2"] == pytest.approx(2.08616440, abs=1e-4)
    assert result["ci95"] == pytest.approx([0.559965, 0.996881], abs=1e-4)
    assert result["prediction_interval"] == pytest.approx([0.278541, 0.999052], abs=1e-4)


# --- the GLMM against a brute-force likelihood -------------------------------------------------------------

_Z_GRID = np.linspace(-12, 12, 4801)  # trapezoid rule on ℝ: exponentially accurate for these smooth integrands


def _brute_loglik(mu, tau, y, n):
    eta = mu + tau * _Z_GRID
    log_f = (y[:, None] * special.log_expit(eta) + (n - y)[:, None] * special.log_expit(-eta)
             + stats.norm.logpdf(_Z_GRID))
    return float(np.sum(special.logsumexp(log_f, axis=1) + math.log(_Z_GRID[1] - _Z_GRID[0])))


@pytest.mark.parametrize("name", ["nielweise", "AS"])
def test_glmm_with_many_nodes_is_the_exact_ml_fit_and_its_se_is_the_joint_information(name):
    """With 30 nodes the quadrature is exact for practical purposes: the fit must then be the maximum of
    the likelihood integrated by brute force, and its SE the μ entry of the inverse joint information."""
    y, n = DATA[name]
    result = glmm_ml(y, n, nodes=30)
    fit = optimize.minimize(lambda p: -_brute_loglik(p[0], p[1], y, n), [math.log(y.sum() / (n - y).sum()), 0.5],
                            method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-12, "maxiter": 4000})
    mu, tau = fit.x
    assert result["mu_logit"] == pytest.approx(mu, abs=1e-5)
    assert result["tau2"] == pytest.approx(tau**2, abs=1e-5)
    h = 1e-4
    f = lambda a, b: _brute_loglik(a, b, y, n)
    info = -np.array([
        [(f(mu + h, tau) - 2 * f(mu, tau) + f(mu - h, tau)) / h**2,
         (f(mu + h, tau + h) - f(mu + h, tau - h) - f(mu - h, tau + h) + f(mu - h, tau - h)) / (4 * h**2)],
        [0.0, (f(mu, tau + h) - 2 * f(mu, tau) + f(mu, tau - h)) / h**2],
    ])
    info[1, 0] = info[0, 1]
    assert result["se_mu_logit"] == pytest.approx(math.sqrt(np.linalg.inv(info)[0, 0]), rel=1e-4)
    dz = _Z_GRID[1] - _Z_GRID[0]
    mean = float(np.sum(special.expit(mu + tau * _Z_GRID) * stats.norm.pdf(_Z_GRID)) * dz)
    assert result["population_mean_at_mle"] == pytest.approx(mean, abs=1e-5)


# --- the GLMM at its boundaries -----------------------------------------------------------------------------


@pytest.mark.parametrize("y, n", [([5, 10, 15], [20, 40, 60]), ([5, 10, 16], [20, 40, 60]), ([7], [8])])
def test_glmm_reports_tau2_at_its_boundary_with_a_note(y, n):
    """Reports no more variable than binomial sampling (or a single report): τ̂² = 0, and the fit is the
    common-effect one. (metafor agrees on [5, 10, 16]: μ̂ = −1.05465, SE 0.20855, τ² = 0; it refuses
    the exactly proportional [5, 10, 15] ("Response is constant") and a single report.)"""
    result = glmm_ml(y, n)
    common = common_effect(y, n)
    assert result["converged"]
    assert result["tau2"] == 0.0
    assert "boundary" in result["note"]
    assert result["mu_logit"] == pytest.approx(common["mu_logit"], abs=1e-12)
    assert result["se_mu_logit"] == pytest.approx(common["se_mu_logit"], abs=1e-12)
    assert result["ci95"] == pytest.approx(common["ci95"], abs=1e-12)
    assert result["prediction_interval"] == pytest.approx(result["ci95"], abs=1e-12)


@pytest.mark.parametrize("name, limit", [("all responders", 1.0), ("no responders", 0.0)])
def test_glmm_without_a_finite_mle_says_so_instead_of_raising(name, limit):
    y, n = DATA[name]
    result = glmm_ml(y, n)
    assert not result["converged"]
    assert "no finite maximum-likelihood estimate" in result["note"]
    assert result["median_report"] == limit
    assert all(math.isnan(v) for v in result["ci95"])


def test_glmm_with_only_all_or_none_reports_flags_the_divergent_tau():
    """All-responder and no-responder reports together: the likelihood rises without bound in τ (metafor
    returns τ² ≈ 19623 with SE 10 here, without a warning); no fit is claimed."""
    result = glmm_ml([0, 3], [3, 3])
    assert not result["converged"]
    assert "τ̂² = ∞" in result["note"]


def test_comparators_bundles_the_three():
    y, n = DATA["AS"]
    result = comparators(y, n)
    assert set(result) == {"crude", "common_effect", "glmm_ml"}
    assert result["crude"] == crude(y, n)
    assert result["common_effect"] == common_effect(y, n)
    assert set(result["glmm_ml"]) == {"mu_logit", "se_mu_logit", "tau2", "median_report", "ci95",
                                      "prediction_interval", "population_mean_at_mle", "converged", "note"}


@pytest.mark.parametrize("y, n", [([1, 2], [3]), ([4], [3]), ([-1], [3]), ([1], [0]), ([], [])])
def test_malformed_counts_raise(y, n):
    with pytest.raises(ValueError):
        crude(y, n)
