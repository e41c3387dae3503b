"""Planning maths for the next study: decision rules, operating characteristics and assurance against
published numbers (Lee & Liu 2008; RBesT's oc1S tests of Neuenschwander et al. 2011; closed-form ELIR
effective sample sizes), brute-force loops, numerical integration and seeded simulation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from models.mixtures import BetaMixture
from models.design import (
    Criterion,
    InterimBoundary,
    NormalMixture,
    assurance,
    critical_count,
    decisions,
    discounted_design_prior,
    ess_elir_logit,
    fit_normal_mixture,
    interim_boundaries,
    mean_precision_mixture,
    operating_characteristics,
    operating_characteristics_normal,
    predictive_probability,
    prob_greater,
    success_region_normal,
    withdrawal_assurance,
    withdrawal_power,
)

SIMULATED_STUDIES = 200_000
TOLERANCE_SE = 4.0

ROBUST_PRIOR = BetaMixture([0.8, 0.2], [8.0, 1.0], [2.0, 1.0])
DUAL_CRITERIA = [Criterion(0.5, 0.95), Criterion(0.7, 0.5)]


def direct_decisions(prior: BetaMixture, n: int, criteria) -> np.ndarray:
    """Success for each y by one conjugate update at a time (BetaMixture.posterior)."""
    out = []
    for y in range(n + 1):
        posterior = prior.posterior(y, n)
        holds = [
            (float(posterior.cdf(c.threshold)) if c.lower else posterior.prob_above(c.threshold)) > c.probability
            for c in criteria
        ]
        out.append(all(holds))
    return np.array(out)


def assert_within_se(estimate: float, exact: float, draws: int) -> None:
    se = np.sqrt(max(exact * (1 - exact), 1e-12) / draws)
    assert abs(estimate - exact) < TOLERANCE_SE * se, (estimate, exact, se)


# --- Lee & Liu (2008) predictive-probability monitoring -------------------------------------------------


def test_lee_liu_2008_table1_predictive_probability():
    pp = predictive_probability(16, 23, 40, BetaMixture.single(0.6, 0.4), p0=0.6, theta_t=0.9)
    assert round(pp, 4) == 0.5656


@pytest.mark.parametrize("x, n, n_max", [(16, 23, 40), (3, 10, 25), (0, 5, 12), (12, 12, 12)])
def test_predictive_probability_equals_direct_sum(x, n, n_max):
    prior, p0, theta_t = ROBUST_PRIOR, 0.55, 0.85
    pmf = prior.posterior(x, n).predictive_pmf(n_max - n)
    success = [prior.posterior(x + y, n_max).prob_above(p0) > theta_t for y in range(n_max - n + 1)]
    assert predictive_probability(x, n, n_max, prior, p0, theta_t) == pytest.approx(float(pmf @ success), abs=1e-12)


def test_interim_boundaries_bracket_the_predictive_probability():
    prior, n_max, p0, theta_t, theta_l, theta_u = BetaMixture.single(0.6, 0.4), 40, 0.6, 0.9, 0.1, 0.95
    looks = [10, 20, 30, 35]
    boundaries = interim_boundaries(looks, n_max, prior, p0, theta_t, theta_l, theta_u)
    assert [b.n for b in boundaries] == looks
    for b in boundaries:
        pp = [predictive_probability(x, b.n, n_max, prior, p0, theta_t) for x in range(b.n + 1)]
        assert b.futility is not None and b.efficacy is not None
        assert pp[b.futility] < theta_l <= pp[b.futility + 1]
        assert pp[b.efficacy] > theta_u >= pp[b.efficacy - 1]


def test_interim_boundaries_without_efficacy_stop():
    boundaries = interim_boundaries([20], 40, BetaMixture.single(0.6, 0.4), 0.6, 0.9, 0.05, 1.0)
    assert boundaries[0].efficacy is None and isinstance(boundaries[0], InterimBoundary)


# --- normal endpoint: RBesT tests/testthat/test-oc1S.R (Neuenschwander et al. 2011) -----------------------

SIGMA, THETA_NI, ALPHA = 2.0, 0.4, 0.05
RBEST_EPS = 1e-2  # the tolerance of the RBesT test itself
NI_CRITERION = Criterion(THETA_NI, 1 - ALPHA, lower=True)
RBEST_PRIORS = [(None, None), (0.0, 100.0)]  # flat; RBesT's mixnorm(c(1, 0, 100))


@pytest.mark.parametrize("prior_mean, prior_sd", RBEST_PRIORS)
@pytest.mark.parametrize("n, power", [(155, 0.80), (233, 0.92), (77, 0.55)])
def test_rbest_oc1s_non_inferiority_power_and_type_one_error(n, power, prior_mean, prior_sd):
    success = operating_characteristics_normal(n, SIGMA, NI_CRITERION, [0.0, THETA_NI], prior_mean, prior_sd)
    assert abs(success[0] - power) < RBEST_EPS
    assert round(float(success[1]), 3) == ALPHA


def test_rbest_oc1s_critical_mean():
    c1 = THETA_NI - stats.norm.ppf(1 - ALPHA) * SIGMA / np.sqrt(155)
    region = success_region_normal(155, SIGMA, NI_CRITERION)
    assert region.lower == -np.inf and region.upper == pytest.approx(c1, abs=1e-12)


@pytest.mark.parametrize("n, at_theta_c, at_theta_ni", [(155, 0.50, 0.05), (233, 0.50, 0.02), (78, 0.32, 0.05)])
def test_rbest_oc1s_double_criterion(n, at_theta_c, at_theta_ni):
    theta_c = THETA_NI - stats.norm.ppf(1 - ALPHA) * SIGMA / np.sqrt(155)
    criteria = [NI_CRITERION, Criterion(theta_c, 0.5, lower=True)]
    success = operating_characteristics_normal(n, SIGMA, criteria, [theta_c, THETA_NI], 0.0, 100.0)
    assert np.all(np.abs(success - [at_theta_c, at_theta_ni]) < RBEST_EPS)


def test_normal_oc_with_informative_prior_matches_simulation():
    n, prior_mean, prior_sd, theta = 20, 0.3, 0.5, 0.45
    criteria = [Criterion(0.0, 0.9), Criterion(0.2, 0.5)]
    exact = float(operating_characteristics_normal(n, SIGMA, criteria, theta, prior_mean, prior_sd))
    rng = np.random.default_rng(1)
    means = rng.normal(theta, SIGMA / np.sqrt(n), SIMULATED_STUDIES)
    precision = 1 / prior_sd**2 + n / SIGMA**2
    post_mean, post_sd = (prior_mean / prior_sd**2 + n * means / SIGMA**2) / precision, precision**-0.5
    success = np.all([stats.norm.sf(c.threshold, post_mean, post_sd) > c.probability for c in criteria], axis=0)
    assert_within_se(success.mean(), exact, SIMULATED_STUDIES)


# --- binomial decision rules -----------------------------------------------------------------------------

CRITERIA_CASES = [
    (BetaMixture.single(1.0, 1.0), 30, [Criterion(0.4, 0.95)]),
    (ROBUST_PRIOR, 25, DUAL_CRITERIA),
    (BetaMixture([0.5, 0.5], [0.5, 20.0], [0.5, 4.0]), 40, [Criterion(0.6, 0.9), Criterion(0.75, 0.5)]),
    (ROBUST_PRIOR, 25, [Criterion(0.6, 0.9, lower=True)]),
    (BetaMixture.single(0.5, 0.5), 50, [Criterion(0.3, 0.975, lower=True), Criterion(0.2, 0.5, lower=True)]),
]


@pytest.mark.parametrize("prior, n, criteria", CRITERIA_CASES)
def test_critical_count_matches_direct_loop(prior, n, criteria):
    direct = direct_decisions(prior, n, criteria)
    hits = np.flatnonzero(direct)
    lower = criteria[0].lower
    boundary = critical_count(prior, n, criteria)
    assert boundary == (hits[-1] if lower else hits[0])
    tail = np.arange(n + 1) <= boundary if lower else np.arange(n + 1) >= boundary
    assert np.array_equal(direct, tail)
    assert np.array_equal(decisions(prior, n, criteria), direct)


def test_lower_tail_critical_count_mirrors_upper_tail():
    a, b, n = 2.5, 0.7, 33
    upper = critical_count(BetaMixture.single(b, a), n, Criterion(1 - 0.35, 0.9))
    lower = critical_count(BetaMixture.single(a, b), n, Criterion(0.35, 0.9, lower=True))
    assert lower == n - upper


def test_no_successful_count_gives_none_and_zero_probabilities():
    prior, n, criteria = BetaMixture.single(1.0, 1.0), 3, [Criterion(0.99, 0.999)]
    assert critical_count(prior, n, criteria) is None
    assert np.all(operating_characteristics(prior, n, criteria, [0.5, 0.999]) == 0.0)
    assert assurance(prior, n, criteria, BetaMixture.single(50.0, 1.0)) == 0.0


def test_mixed_tails_are_refused():
    with pytest.raises(ValueError, match="upper-tail or all lower-tail"):
        critical_count(ROBUST_PRIOR, 20, [Criterion(0.3, 0.9), Criterion(0.9, 0.9, lower=True)])


@pytest.mark.parametrize("prior, n, criteria", [CRITERIA_CASES[1], CRITERIA_CASES[3]])
def test_operating_characteristics_match_simulation(prior, n, criteria):
    theta = np.array([0.45, 0.65, 0.8])
    exact = operating_characteristics(prior, n, criteria, theta)
    success_by_count = direct_decisions(prior, n, criteria)
    rng = np.random.default_rng(1)
    for t, p in zip(theta, exact):
        simulated = success_by_count[rng.binomial(n, t, SIMULATED_STUDIES)].mean()
        assert_within_se(simulated, float(p), SIMULATED_STUDIES)


@settings(max_examples=40, deadline=None)
@given(
    a=st.floats(0.2, 20.0),
    b=st.floats(0.2, 20.0),
    n=st.integers(1, 60),
    threshold=st.floats(0.05, 0.95),
    probability=st.floats(0.5, 0.99),
)
def test_operating_characteristics_monotone_in_theta(a, b, n, threshold, probability):
    prior, theta = BetaMixture.single(a, b), np.linspace(0.0, 1.0, 101)
    upper = operating_characteristics(prior, n, Criterion(threshold, probability), theta)
    lower = operating_characteristics(prior, n, Criterion(threshold, probability, lower=True), theta)
    assert np.all(np.diff(upper) >= -1e-12)
    assert np.all(np.diff(lower) <= 1e-12)


# --- assurance -----------------------------------------------------------------------------------------


def grid_design_prior(points: int, seed: int) -> BetaMixture:
    """A predictive distribution of θ on a grid of (μ_g, κ_g) with unequal weights: thousands of
    components, precisions from about 1 to 10^4."""
    rng = np.random.default_rng(seed)
    mu = special.expit(rng.normal(1.9, 0.8, points))
    kappa = np.exp(rng.uniform(0.0, 9.0, points))
    return mean_precision_mixture(rng.gamma(2.0, 1.0, points), mu, kappa)


def test_assurance_matches_monte_carlo_over_design_prior():
    prior, n, criteria = ROBUST_PRIOR, 25, DUAL_CRITERIA
    design = grid_design_prior(3000, seed=7)
    exact = assurance(prior, n, criteria, design)
    rng = np.random.default_rng(1)
    component = rng.choice(design.weights.size, SIMULATED_STUDIES, p=design.weights)
    theta = rng.beta(design.a[component], design.b[component])
    power = operating_characteristics(prior, n, criteria, theta)
    se = power.std() / np.sqrt(power.size)
    assert abs(power.mean() - exact) < TOLERANCE_SE * se


def test_assurance_equals_predictive_pmf_sum():
    prior, n, criteria = ROBUST_PRIOR, 25, DUAL_CRITERIA
    design = grid_design_prior(3000, seed=3)
    boundary = critical_count(prior, n, criteria)
    direct = float(design.predictive_pmf(n)[boundary:].sum())
    assert assurance(prior, n, criteria, design) == pytest.approx(direct, rel=1e-10)


def test_assurance_over_many_counts_and_components():
    """Over 700 successful counts times 3000 components: the predictive is evaluated in blocks."""
    prior, n, criteria = ROBUST_PRIOR, 800, [Criterion(0.05, 0.9)]
    design = grid_design_prior(3000, seed=3)
    boundary = critical_count(prior, n, criteria)
    assert n + 1 - boundary > 700
    direct = float(design.predictive_pmf(n)[boundary:].sum())
    assert assurance(prior, n, criteria, design) == pytest.approx(direct, rel=1e-10)


def test_assurance_of_a_nearly_certain_design_prior_is_the_power():
    prior, n, criteria, theta = BetaMixture.single(1.0, 1.0), 400, [Criterion(0.25, 0.975)], 0.3
    design = BetaMixture.single(theta * 1e8, (1 - theta) * 1e8)
    power = float(operating_characteristics(prior, n, criteria, theta))
    assert 0.5 < power < 0.99
    assert assurance(prior, n, criteria, design) == pytest.approx(power, abs=1e-4)


# --- effective sample size on the logit scale --------------------------------------------------------------


def closed_form_ess(m: float, s: float) -> float:
    return (2 + np.exp(-m + s**2 / 2) + np.exp(m + s**2 / 2)) / s**2


@pytest.mark.parametrize("m, s, published", [(0.0, 2 / np.sqrt(10), 11.107), (2.0, 0.2, 241.91)])
def test_ess_elir_logit_single_component(m, s, published):
    ess = ess_elir_logit([1.0], [m], [s])
    assert ess == pytest.approx(closed_form_ess(m, s), rel=1e-9)
    assert ess == pytest.approx(published, abs=0.5 * 10 ** -(len(str(published).split(".")[1])))


@pytest.mark.parametrize("m, s", [(-3.0, 0.05), (1.0, 1.5), (4.0, 2.5)])
def test_ess_elir_logit_closed_form_across_scales(m, s):
    assert NormalMixture([1.0], [m], [s]).ess_elir_logit() == pytest.approx(closed_form_ess(m, s), rel=1e-9)


def test_ess_elir_logit_two_components_against_finite_differences():
    w, m, s = np.array([0.6, 0.4]), np.array([0.5, 2.5]), np.array([0.8, 0.4])
    h = 1e-3
    eta = np.arange(-25.0, 25.0 + h / 2, h)
    log_p = np.log(np.sum(w * stats.norm.pdf(eta[:, None], m, s), axis=1))
    curvature = -(log_p[2:] - 2 * log_p[1:-1] + log_p[:-2]) / h**2
    inner = eta[1:-1]
    integrand = np.exp(log_p[1:-1]) * curvature * (2 + np.exp(inner) + np.exp(-inner))
    brute = integrate.trapezoid(integrand, inner)
    assert np.any(curvature < 0)  # the bimodal prior is not log-concave everywhere
    assert ess_elir_logit(w, m, s) == pytest.approx(brute, rel=1e-6)


def test_normal_mixture_moments_and_cdf():
    mixture = NormalMixture([0.3, 0.7], [-1.0, 2.0], [0.5, 1.5])
    x = np.linspace(-12, 14, 200_001)
    pdf = mixture.pdf(x)
    assert integrate.trapezoid(pdf, x) == pytest.approx(1.0, abs=1e-10)
    assert mixture.mean() == pytest.approx(integrate.trapezoid(x * pdf, x), abs=1e-9)
    assert mixture.var() == pytest.approx(integrate.trapezoid((x - mixture.mean()) ** 2 * pdf, x), abs=1e-8)
    assert float(mixture.cdf(0.5)) == pytest.approx(integrate.quad(mixture.pdf, -np.inf, 0.5)[0], abs=1e-10)


def test_fit_normal_mixture_recovers_two_components():
    rng = np.random.default_rng(1)
    draws = np.concatenate([rng.normal(0.5, 0.6, 6000), rng.normal(3.0, 1.2, 4000)])
    fit = fit_normal_mixture(draws)
    assert fit.weights.size == 2
    assert np.allclose(fit.weights, [0.6, 0.4], atol=0.03)
    assert np.allclose(fit.means, [0.5, 3.0], atol=0.1)
    assert np.allclose(fit.sds, [0.6, 1.2], atol=0.1)
    again = fit_normal_mixture(draws)
    assert np.array_equal(fit.means, again.means) and np.array_equal(fit.sds, again.sds)


def test_fit_normal_mixture_puts_a_pile_at_the_boundary_in_a_floored_component():
    rng = np.random.default_rng(1)
    theta = np.clip(rng.beta(4.0, 0.1, 8000), 1e-6, 1 - 1e-6)  # about 30% of the draws piled at the clip
    pile = float(np.mean(theta == 1 - 1e-6))
    draws = special.logit(theta)
    fit = fit_normal_mixture(draws, min_sd=0.05)
    assert np.all(np.isfinite(fit.means)) and np.all(fit.sds >= 0.05)
    assert fit.weights.sum() == pytest.approx(1.0)
    assert fit.means[-1] == pytest.approx(special.logit(1 - 1e-6), abs=0.01) and fit.sds[-1] == 0.05
    assert fit.weights[-1] == pytest.approx(pile, abs=0.01)
    assert float(fit.cdf(np.median(draws))) == pytest.approx(0.5, abs=0.02)
    assert np.isfinite(fit.ess_elir_logit())


def test_fit_normal_mixture_gives_no_component_to_a_lone_outlier():
    rng = np.random.default_rng(1)
    fit = fit_normal_mixture(np.append(rng.normal(0.0, 1.0, 4000), 40.0))
    assert np.all(fit.weights * 4001 >= 2.0)
    assert fit.means.max() < 5.0


def test_fit_normal_mixture_refuses_infinite_logits():
    with pytest.raises(ValueError, match="finite"):
        fit_normal_mixture(special.logit(np.array([0.2, 0.5, 1.0])))


# --- randomised withdrawal -----------------------------------------------------------------------------------


def quad_prob_greater(a1, b1, a2, b2) -> float:
    """∫ f_X F_Y over (0, 1) by adaptive quadrature (special functions directly, for speed)."""
    log_norm = special.betaln(a1, b1)

    def integrand(x: float) -> float:
        log_pdf = special.xlogy(a1 - 1, x) + special.xlog1py(b1 - 1, -x) - log_norm
        return np.exp(log_pdf) * special.betainc(a2, b2, x)

    value, _ = integrate.quad(integrand, 0, 1, epsabs=1e-14, epsrel=1e-12, limit=200)
    return value


@pytest.mark.parametrize("a1, b1, a2, b2", [
    (3.0, 5.0, 2.0, 6.0),  # whole-number b2: exact series
    (4.0, 2.5, 1.5, 3.7),  # whole-number a1 only: mirrored series
    (0.5, 10.5, 3.5, 0.5),  # neither: logit-scale integration
    (12.5, 3.5, 8.5, 7.5),
    (1.0, 40.0, 30.0, 11.0),
])
def test_prob_greater_against_numerical_integration(a1, b1, a2, b2):
    p = float(prob_greater(a1, b1, a2, b2))
    assert p == pytest.approx(quad_prob_greater(a1, b1, a2, b2), abs=1e-10)
    assert p + float(prob_greater(a2, b2, a1, b1)) == pytest.approx(1.0, abs=1e-10)


def test_prob_greater_is_vectorised():
    a1, b1 = np.array([[2.0], [5.0]]), np.array([[3.0], [1.5]])
    a2, b2 = np.array([1.5, 4.0, 0.7]), np.array([2.5, 2.0, 0.9])
    grid = prob_greater(a1, b1, a2, b2)
    assert grid.shape == (2, 3)
    for i, j in np.ndindex(grid.shape):
        assert grid[i, j] == pytest.approx(quad_prob_greater(a1[i, 0], b1[i, 0], a2[j], b2[j]), abs=1e-10)


@pytest.mark.parametrize("n, p_stop, p_continue, prior", [(12, 0.6, 0.2, (1.0, 1.0)), (8, 0.7, 0.25, (0.5, 0.5))])
def test_withdrawal_power_matches_simulation(n, p_stop, p_continue, prior):
    probability = 0.9
    exact = withdrawal_power(n, p_stop, p_continue, probability, prior)
    a, b = prior
    success = np.array([[quad_prob_greater(a + i, b + n - i, a + j, b + n - j) > probability
                         for j in range(n + 1)] for i in range(n + 1)])
    rng = np.random.default_rng(1)
    y_stop = rng.binomial(n, p_stop, SIMULATED_STUDIES)
    y_continue = rng.binomial(n, p_continue, SIMULATED_STUDIES)
    assert_within_se(success[y_stop, y_continue].mean(), exact, SIMULATED_STUDIES)


def test_withdrawal_assurance_matches_monte_carlo():
    n, probability = 10, 0.9
    design_stop, design_continue = discounted_design_prior(4, 5, 0.5), BetaMixture([0.5, 0.5], [2.0, 1.0], [8.0, 3.0])
    exact = withdrawal_assurance(n, design_stop, design_continue, probability)
    rng = np.random.default_rng(1)
    draws = 2000
    p_stop = rng.beta(design_stop.a[0], design_stop.b[0], draws)
    component = rng.choice(2, draws, p=design_continue.weights)
    p_continue = rng.beta(design_continue.a[component], design_continue.b[component])
    power = np.array([withdrawal_power(n, s, c, probability) for s, c in zip(p_stop, p_continue)])
    assert abs(power.mean() - exact) < TOLERANCE_SE * power.std() / np.sqrt(draws)


def test_discounted_design_prior():
    prior = discounted_design_prior(events=3, patients=4, power=0.5)
    assert (prior.a[0], prior.b[0]) == (2.5, 1.5)
    flat = discounted_design_prior(events=3, patients=4, power=0.0)
    assert (flat.a[0], flat.b[0]) == (1.0, 1.0)
    with pytest.raises(ValueError):
        discounted_design_prior(events=5, patients=4, power=0.5)


def test_predictive_pmf_of_near_point_mass_components_is_the_binomial():
    """A gridded design prior holds components with κ up to 1e12 (u → 0): their beta-binomial must be the
    binomial, not a cancellation of log-gamma differences (which once gave assurances of exactly 1)."""
    from scipy import stats

    from models.design import _log_predictive_pmf

    mixture = BetaMixture(np.array([1.0]), np.array([0.6e12]), np.array([0.4e12]))
    pmf = np.exp(_log_predictive_pmf(mixture, 40, np.arange(41)))
    np.testing.assert_allclose(pmf, stats.binom.pmf(np.arange(41), 40, 0.6), rtol=1e-6, atol=1e-12)
