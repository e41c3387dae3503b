"""The models reproduce published reference posteriors (shared/references/validation.md).

Three yardsticks: an independent brute-force grid (tests/exact_posteriors.py) reproduces the published
figures at their printed precision; the analysis's own exact posterior (the model's compiled density
integrated on a grid, `analysis.engine.quadrature`) reproduces them too and agrees with the brute-force
grid to that grid's accuracy; and the NUTS draws agree with the exact posterior within 4 Monte Carlo
standard errors of the run itself.
"""

import arviz as az
import numpy as np
import pytest
import xarray as xr
from scipy import stats
from scipy.special import expit

from analysis.engine import quadrature
from analysis.engine.seeds import Seeds
from analysis.inputs.bundle import load_inputs
from analysis.inputs.config import CONFIG_DIR, load_config
from analysis.steps import primary
from exact_posteriors import (
    AS_N,
    AS_R,
    RAT_N,
    RAT_Y,
    as_logit_normal,
    beta_binomial,
    beta_binomial_predictive_quantile,
    logit_normal_predictive_quantile,
    reference_data,
)
from mc import assert_matches
from models.families import FAMILIES, model_spec
from models.priors import BetaBinomialPrior

QUANTILES = (0.025, 0.5, 0.975)


def _exact_and_draws(cache, config, data):
    """The analysis's exact posterior (its grid and population estimates) and the NUTS fit of the same model."""
    family = FAMILIES[config.model.family]
    reports = primary.model_reports(config, data)
    grid = primary.exact(cache, family, model_spec(config.model.family, reports, config.model.prior))
    fitted = primary.nuts(cache, config, reports, data, Seeds(config.sampling.seed), checks_too=False)
    return grid, primary.exact_population(family, grid), fitted


@pytest.fixture(scope="module")
def rat_exact():
    """The brute-force grid over the region BDA3 integrates (log u in (−3.5, 0.5): κ below about 1100)."""
    return beta_binomial(RAT_Y, RAT_N, BetaBinomialPrior(kind="bda3"), logit_mu_range=(-2.8, -0.8), log_u_range=(-3.5, 0.5))


@pytest.fixture(scope="module")
def rat(model_cache):
    config = load_config(model={"beta_binomial": {"kind": "bda3"}})
    return _exact_and_draws(model_cache, config, reference_data(RAT_Y, RAT_N, "rat"))


@pytest.fixture(scope="module")
def as_exact():
    return as_logit_normal(tau_scale=1.0)


# --- the brute-force grid against the published figures ------------------------------------------------


def test_brute_force_rat_posterior_reproduces_bda3(rat_exact):
    """BDA3 5.3: E[α] = 2.40, E[β] = 14.3, α in 1.21-4.64, β in 7.0-27.6, φ 0.144 (0.119-0.172). The means
    of α and β are those of the region BDA3's grid covers: in the model itself they are infinite (the
    prior is flat in u down to u = 0, κ = ∞, where the likelihood stays positive)."""
    published = [
        (rat_exact.mean("alpha"), 2.40, 0.005),
        (rat_exact.mean("beta"), 14.3, 0.05),
        (rat_exact.quantile("alpha", 0.025), 1.21, 0.005),
        (rat_exact.quantile("alpha", 0.975), 4.64, 0.005),
        (rat_exact.quantile("beta", 0.025), 7.0, 0.05),
        (rat_exact.quantile("beta", 0.975), 27.6, 0.06),  # half a unit + the grid's 0.01 on this tail
        (rat_exact.mean("mu"), 0.144, 0.0005),
        (rat_exact.quantile("mu", 0.025), 0.119, 0.0005),
        (rat_exact.quantile("mu", 0.975), 0.172, 0.0005),
    ]
    for ours, theirs, half_unit in published:
        assert abs(ours - theirs) <= half_unit, (ours, theirs)


@pytest.mark.slow
def test_brute_force_as_posterior_reproduces_the_published_figures(as_exact):
    # Published "exact" values; our converged grid (unchanged under refinement to 4 decimals) differs
    # from them by at most 0.0023 (τ's upper limit), so they are held to 0.0025.
    for ours, theirs in _as_published(as_exact.mean("mu"), [as_exact.quantile("mu", q) for q in QUANTILES],
                                      [as_exact.quantile("tau", q) for q in QUANTILES], as_exact.mean("theta_new_mean"),
                                      [logit_normal_predictive_quantile(as_exact, q) for q in QUANTILES]):
        assert abs(ours - theirs) <= 0.0025, (ours, theirs)


def _as_published(mu_mean, mu, tau, new_mean, new):
    return [(mu_mean, -1.104), (mu[0], -1.480), (mu[2], -0.720), (tau[1], 0.351), (tau[0], 0.044), (tau[2], 0.877),
            (new_mean, 0.258), (new[1], 0.248), (new[0], 0.111), (new[2], 0.471)]


# --- the analysis's exact posterior against the published figures and the brute-force grid ---------------

BRUTE_FORCE_ERROR = 2e-5
"""The brute-force rat grid's quantiles of μ move by at most 3e-6 between 600 and 1200 nodes per axis."""


def test_exact_rat_pooled_and_new_report_reproduce_bda3_and_the_brute_force_grid(rat, rat_exact):
    grid, population, _ = rat
    pooled, predictive = population.pooled, population.predictive
    for ours, theirs in ((pooled.mean, 0.144), (pooled.lo, 0.119), (pooled.hi, 0.172)):
        assert abs(ours - theirs) <= 0.0005, (ours, theirs)
    assert abs(pooled.mean - rat_exact.mean("mu")) <= BRUTE_FORCE_ERROR
    for q, ours in zip(QUANTILES, (pooled.lo, pooled.median, pooled.hi)):
        assert abs(ours - rat_exact.quantile("mu", q)) <= BRUTE_FORCE_ERROR, q
    for q, ours in zip(QUANTILES, (predictive.lo, predictive.median, predictive.hi)):
        assert abs(ours - beta_binomial_predictive_quantile(rat_exact, q)) <= BRUTE_FORCE_ERROR, q
    # rat71 (4 of 14): its θ is the mixture over the grid of its exact conditional Beta.
    family, keep = FAMILIES["beta_binomial"], np.arange(RAT_Y.size) == 70
    data = reference_data(RAT_Y, RAT_N, "rat")
    reports = primary.model_reports(load_config(model={"beta_binomial": {"kind": "bda3"}}), data)
    theta = primary.exact_reports(family, grid, reports.subset(keep), data.subset(keep))["rat71"]
    for q, ours in zip(QUANTILES, (theta.lo, theta.median, theta.hi)):
        assert abs(ours - beta_binomial_predictive_quantile(rat_exact, q, y=4, n=14)) <= BRUTE_FORCE_ERROR, q
    assert grid.error <= 2e-5


@pytest.mark.xfail(strict=True, reason="the grid's resolution is settled on the pooled and predictive summaries "
                   "only: with the bda3 prior (u not folded) the spread's quantiles are off by up to 2% at it")
def test_exact_rat_spread_reproduces_bda3_and_the_brute_force_grid(rat, rat_exact):
    """α and β (BDA3's intervals), u and κ (the brute-force grid, whose quantiles of u change by less than
    1e-4 between 600 and 1200 nodes) from the analysis's grid, at the resolution it accepted."""
    grid, population, _ = rat
    values = grid.values
    alpha, beta = values["mu"] * values["kappa"], (1 - values["mu"]) * values["kappa"]
    a_lo, a_hi = grid.grid.quantile(alpha, [0.025, 0.975])
    b_lo, b_hi = grid.grid.quantile(beta, [0.025, 0.975])
    for ours, theirs, half_unit in ((a_lo, 1.21, 0.005), (a_hi, 4.64, 0.005), (b_lo, 7.0, 0.05), (b_hi, 27.6, 0.06)):
        assert abs(ours - theirs) <= half_unit, (ours, theirs)
    u, kappa = population.hyperparameters["u"], population.hyperparameters["kappa"]
    for q, ours in zip(QUANTILES, (u.lo, u.median, u.hi)):
        assert abs(ours - rat_exact.quantile("u", q)) <= 1e-4, q
    for q, ours in zip(QUANTILES, (kappa.hi, kappa.median, kappa.lo)):
        assert abs(ours / rat_exact.quantile("u", q) ** -2 - 1) <= 1e-3, q


@pytest.mark.slow
def test_exact_as_posterior_reproduces_the_published_figures_and_the_brute_force_grid(model_cache, as_exact):
    """The logit-normal's exact posterior (its marginal likelihood by adaptive quadrature) against RBesT's
    figures, and against the brute-force grid to 5e-4 (that grid's 97.5% point of θ_new moves by 1.2e-4
    between 300 and 600 nodes)."""
    config = load_config(CONFIG_DIR / "logit_normal.toml")
    family = FAMILIES["logit_normal"]
    reports = primary.model_reports(config, reference_data(AS_R, AS_N, "as"))
    grid = primary.exact(model_cache, family, model_spec("logit_normal", reports, config.model.prior))
    population = primary.exact_population(family, grid)
    mu, tau, new = population.hyperparameters["mu"], population.hyperparameters["tau"], population.predictive
    ours = _as_published(mu.mean, [mu.lo, mu.median, mu.hi], [tau.lo, tau.median, tau.hi], population.pooled.mean,
                         [new.lo, new.median, new.hi])
    brute = _as_published(as_exact.mean("mu"), [as_exact.quantile("mu", q) for q in QUANTILES],
                          [as_exact.quantile("tau", q) for q in QUANTILES], as_exact.mean("theta_new_mean"),
                          [logit_normal_predictive_quantile(as_exact, q) for q in QUANTILES])
    for (value, published), (reference, _) in zip(ours, brute):
        assert abs(value - published) <= 0.0025, (value, published)
        assert abs(value - reference) <= 5e-4, (value, reference)
    assert population.pooled.mean == pytest.approx(new.mean, abs=1e-12)  # θ_new's mean is the population mean


# --- NUTS against the exact posteriors ------------------------------------------------------------------


def test_nuts_reproduces_bda3_rat_tumours(rat, rat_exact):
    """α's quantiles, the pooled mean, θ_new and one report's θ (rat71: 4 of 14, exact conditional draws).
    α's mean is not compared: it is infinite in the model (see the brute-force test)."""
    _, _, fitted = rat
    assert fitted.convergence.passed, fitted.convergence.failures
    post = fitted.posterior.assign_coords(report=[f"rat{i + 1}" for i in range(RAT_Y.size)])
    alpha = post["mu"] * post["kappa"]
    assert_matches(post["pooled"], rat_exact.mean("mu"), label="pooled")
    for q in QUANTILES:
        assert_matches(post["pooled"], rat_exact.quantile("mu", q), "quantile", q, label="pooled")
        assert_matches(alpha, rat_exact.quantile("alpha", q), "quantile", q, label="alpha")
        assert_matches(post["theta_new"], beta_binomial_predictive_quantile(rat_exact, q), "quantile", q, label="theta_new")
        assert_matches(post["theta"].sel(report="rat71"), beta_binomial_predictive_quantile(rat_exact, q, y=4, n=14),
                       "quantile", q, label="theta[rat71]")


@pytest.mark.slow
def test_nuts_reproduces_rbest_as_map_prior(model_cache, as_exact):
    config = load_config(CONFIG_DIR / "logit_normal.toml")
    family = FAMILIES["logit_normal"]
    data = reference_data(AS_R, AS_N, "as")
    fitted = primary.nuts(model_cache, config, primary.model_reports(config, data), data, Seeds(config.sampling.seed),
                          checks_too=False)
    assert fitted.convergence.passed, fitted.convergence.failures
    post = fitted.posterior
    assert family.heavy_tailed == ()
    assert_matches(post["mu"], as_exact.mean("mu"), label="mu")
    assert_matches(post["pooled"], as_exact.mean("theta_new_mean"), label="population mean")
    assert_matches(post["theta_new"], as_exact.mean("theta_new_mean"), label="theta_new")
    for q in QUANTILES:
        assert_matches(post["mu"], as_exact.quantile("mu", q), "quantile", q, label="mu")
        assert_matches(post["tau"], as_exact.quantile("tau", q), "quantile", q, label="tau")
        assert_matches(post["theta_new"], logit_normal_predictive_quantile(as_exact, q), "quantile", q, label="theta_new")


# --- the primary analysis of the shipped data ------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped(model_cache):
    inputs = load_inputs(load_config())
    return inputs.data, primary.analyse(inputs, model_cache)


@pytest.fixture(scope="module")
def shipped_exact(shipped):
    """The brute-force grid: log u below −9 (κ > 6.6e7) holds a negligible share of the posterior (moving the
    bound to −11 changes E[μ] by 2e-6)."""
    data, _ = shipped
    return beta_binomial(data.y, data.n, load_config().model.prior, size=800, log_u_range=(-9.0, None))


def test_primary_analysis_of_the_shipped_data_is_exact(shipped, shipped_exact):
    """The headline numbers come from quadrature: the reference values (pooled mean 0.8683, 95% 0.7209 to
    0.9685; a new report's lower bound 0.4345), within 1e-4 of the brute-force grid (which test_grid holds
    to that against a 1200-node grid), the stated numerical error below the grid tolerance."""
    data, result = shipped
    assert result.method == "quadrature" and result.numerical_error <= 2e-5
    pooled, predictive = result.pooled, result.predictive
    assert [round(v, 4) for v in (pooled.mean, pooled.lo, pooled.hi, predictive.lo)] == [0.8683, 0.7209, 0.9685, 0.4345]
    assert abs(pooled.mean - shipped_exact.mean("mu")) < 1e-4
    for q, ours in zip(QUANTILES, (pooled.lo, pooled.median, pooled.hi)):
        assert abs(ours - shipped_exact.quantile("mu", q)) < 1e-4, q
    for q, ours in zip((0.025, 0.5), (predictive.lo, predictive.median)):
        assert abs(ours - beta_binomial_predictive_quantile(shipped_exact, q)) < 1e-4, q
    i = data.report_ids.index("Series14_Menta2024")
    theta = result.reports["Series14_Menta2024"].theta
    exact_median = beta_binomial_predictive_quantile(shipped_exact, 0.5, y=int(data.y[i]), n=int(data.n[i]))
    assert abs(theta.median - exact_median) < 1e-4


def test_a_scale_the_data_pin_away_from_zero_gets_nodes_where_its_mass_is(model_cache):
    """Thousands of heterogeneous reports (sizes 1-4, so their distinct rows fit the shipped program) pin u
    away from 0. A box on u's folded axis from 0 to its far face put two or three nodes on the mass and
    converged algebraically (a 5,000-report meta-regression needed 121³ nodes); the box now keeps its lower
    face, the grid settles at its first refinement, and the pooled mean and bounds and a new report's bounds
    match the brute-force grid."""
    rng = np.random.default_rng(5)
    n = rng.integers(1, 5, 3000)
    y = rng.binomial(n, rng.beta(0.7 * 4, 0.3 * 4, n.size))
    config = load_config()
    data = reference_data(y, n, "pinned")
    family = FAMILIES[config.model.family]
    exact = primary.exact(model_cache, family, model_spec(config.model.family, primary.model_reports(config, data),
                                                          config.model.prior))
    scale_axis = int(np.flatnonzero(quadrature.folded_axes(exact))[0])
    assert exact.grid.axes[scale_axis][0] > 0 and exact.contains()
    assert exact.nodes == quadrature.START_NODES[2] and exact.error < 1e-6
    population = primary.exact_population(family, exact)
    reference = beta_binomial(y, n, config.model.prior, size=600, logit_mu_range=(0.6, 1.2), log_u_range=(-1.6, 0.2))
    for name, (lo, hi) in (("mu", expit([0.6, 1.2])), ("u", np.exp([-1.6, 0.2]))):  # the ranges hold the posterior
        assert lo < reference.quantile(name, 1e-6) and reference.quantile(name, 1 - 1e-6) < hi, name
    assert abs(population.pooled.mean - reference.mean("mu")) < 1e-5
    for q, ours in zip(QUANTILES, (population.pooled.lo, population.pooled.median, population.pooled.hi)):
        assert abs(ours - reference.quantile("mu", q)) < 1e-5, q
    for q, ours in zip((0.025, 0.975), (population.predictive.lo, population.predictive.hi)):
        assert abs(ours - beta_binomial_predictive_quantile(reference, q)) < 1e-4, q


def test_nuts_matches_the_exact_posterior_on_the_shipped_data(shipped, shipped_exact):
    """The shipped default prior on the real evidence: the NUTS draws beside the quadrature."""
    data, result = shipped
    assert result.convergence.passed, result.convergence.failures
    post = result.idata["posterior"]
    assert_matches(post["pooled"], shipped_exact.mean("mu"), label="pooled")
    for q in QUANTILES:
        assert_matches(post["pooled"], shipped_exact.quantile("mu", q), "quantile", q, label="pooled")
        assert_matches(post["theta_new"], beta_binomial_predictive_quantile(shipped_exact, q), "quantile", q,
                       label="theta_new")
    i = data.report_ids.index("Series14_Menta2024")
    assert_matches(post["theta"].sel(report="Series14_Menta2024"),
                   beta_binomial_predictive_quantile(shipped_exact, 0.5, y=int(data.y[i]), n=int(data.n[i])),
                   "quantile", 0.5, label="theta[Series14]")
    assert result.cross_check.largest_in_mcse <= 4, result.cross_check


def test_rao_blackwellised_predictive_from_draws_matches_the_exact_one(shipped, shipped_exact):
    """θ_new from draws, as a model too large for the grid reports it (the average of the draws' Beta
    CDFs): its quantiles match the exact ones within 4 Monte Carlo standard errors of that average (the
    MCSE of the mean of the per-draw CDFs at the quantile, over the predictive density there: the delta
    method)."""
    _, result = shipped
    post = result.idata["posterior"].to_dataset()
    summary = primary.draws_population(FAMILIES["beta_binomial"], post).predictive
    assert summary.method == "draws"
    a, b = (post["mu"] * post["kappa"]).values, ((1 - post["mu"]) * post["kappa"]).values
    for q, value in ((0.025, summary.lo), (0.5, summary.median)):
        cdf_mcse = float(az.mcse(xr.DataArray(stats.beta.cdf(value, a, b), dims=("chain", "draw")), method="mean"))
        density = float(stats.beta.pdf(value, a, b).mean())
        exact_q = beta_binomial_predictive_quantile(shipped_exact, q)
        assert abs(value - exact_q) <= 4 * cdf_mcse / density, (q, value, exact_q, cdf_mcse / density)
