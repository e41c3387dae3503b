"""Model building blocks: the stable likelihood, exact conditional draws, quadrature, compiled-model reuse."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr
from scipy import stats
from scipy.special import expit

from analysis import sampling
from analysis.config import load_config
from models import FAMILIES, Reports, beta_binomial, logit_normal, model_spec
from models.padding import padded_size
from models.priors import BetaBinomialPrior

Y = np.array([0, 3, 7, 8, 1])
N = np.array([3, 3, 8, 14, 1])


@pytest.fixture(scope="module")
def logp_function():
    y, n, mu, kappa = pt.lvector(), pt.lvector(), pt.dscalar(), pt.dscalar()
    return pytensor.function([y, mu, kappa, n], beta_binomial.beta_binomial_logp(y, mu, kappa, n, bound=16))


@pytest.mark.parametrize("mu, kappa", [(0.3, 2.0), (0.8, 0.05), (0.5, 40.0)])
def test_likelihood_matches_scipy_where_scipy_is_accurate(logp_function, mu, kappa):
    expected = stats.betabinom.logpmf(Y, N, mu * kappa, (1 - mu) * kappa)
    np.testing.assert_allclose(logp_function(Y, mu, kappa, N), expected, rtol=1e-10)


def test_likelihood_tends_to_the_binomial_when_reports_are_homogeneous(logp_function):
    # κ → ∞ leaves no between-report variation; the beta-function form has lost digits by κ = 1e12.
    np.testing.assert_allclose(logp_function(Y, 0.9, 1e12, N), stats.binom.logpmf(Y, N, 0.9), rtol=1e-9)


def _constant_posterior(draws: int, **values) -> xr.Dataset:
    return xr.Dataset({k: (("chain", "draw"), np.full((1, draws), v)) for k, v in values.items()})


def test_report_theta_is_drawn_from_its_exact_conditional_beta():
    mu, kappa, draws = 0.7, 5.0, 200_000
    derived = beta_binomial.derive(_constant_posterior(draws, mu=mu, kappa=kappa), Reports(Y, N), np.random.default_rng(1))
    a, b = mu * kappa + Y, (1 - mu) * kappa + N - Y
    exact_mean, exact_sd = a / (a + b), np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    estimate = derived["theta"].mean(("chain", "draw")).values
    # 4 standard errors of a mean of 200 000 independent draws.
    assert np.all(np.abs(estimate - exact_mean) <= 4 * exact_sd / np.sqrt(draws))
    new = derived["theta_new"].values.ravel()
    assert abs(new.mean() - mu) <= 4 * np.sqrt(mu * (1 - mu) / (kappa + 1) / draws)
    assert np.all(derived["pooled"].values == mu)


def test_population_mean_quadrature():
    mu, tau = np.array([-1.0, 0.5, 2.0]), np.array([0.0, 1.0, 2.5])
    pooled = logit_normal.population_mean(mu, tau)
    assert pooled[0] == pytest.approx(expit(-1.0), abs=1e-12)  # τ = 0: E[θ] = expit(μ)
    z = np.random.default_rng(0).standard_normal(2_000_000)
    for m, t, p in zip(mu[1:], tau[1:], pooled[1:]):
        sample = expit(m + t * z)
        assert abs(p - sample.mean()) <= 4 * sample.std() / np.sqrt(z.size)
    assert pooled[2] < expit(2.0)  # with spread, the mean is pulled toward 1/2


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_models_expose_data_and_priors_as_swappable_data(family):
    module = FAMILIES[family]
    prior = load_config(model={"family": family}).model.prior
    model = module.build_model(Reports(Y, N), prior)
    shared = {v.name for v in model.data_vars}
    assert shared == set(module.data_values(Reports(Y, N), prior))
    free = {v.name for v in model.free_RVs}
    assert set(module.hyperparameters) - {"kappa"} <= free


@pytest.mark.parametrize("family", ["beta_binomial", "logit_normal"])
def test_reports_model_is_the_joint_model_with_an_empty_target_arm(family):
    """The shared structure adds log 1 = 0 for an empty target arm: same log density as the plain model."""
    y, n = np.array([1, 5, 2, 1]), np.array([4, 9, 2, 1])
    prior = load_config(model={"family": family}).model.prior
    plain = FAMILIES[family].build_model(Reports(y, n), prior)
    shared = model_spec(family, Reports(y, n), prior).build()
    point = plain.initial_point()
    for shift in (-1.0, 0.0, 1.5):
        moved = {k: v + shift for k, v in point.items()}
        assert shared.compile_logp()(moved) == pytest.approx(plain.compile_logp()(moved), abs=1e-10)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_padding_and_the_static_loop_bound_leave_the_log_density_unchanged(family):
    """Padded empty reports (n = 0) and a rising-factorial loop longer than the largest report add
    exactly nothing: the padded model's log density equals the unpadded likelihood plus the priors."""
    prior = load_config(model={"family": family}).model.prior
    y, n = np.array([0, 3, 7, 8, 1]), np.array([3, 3, 8, 14, 1])
    small = model_spec(family, Reports(y, n), prior).build()
    large = model_with_bound(family, y, n, prior, bound=64)
    assert small["n_treated"].get_value().size == padded_size(len(y)) > len(y)
    point = small.initial_point()
    for shift in (-1.0, 0.0, 1.5):
        moved = {k: v + shift for k, v in point.items()}
        assert large.compile_logp()(moved) == pytest.approx(small.compile_logp()(moved), abs=1e-10)
    if family == "beta_binomial":  # and the value itself is the beta-binomial likelihood plus the priors
        logp = small.compile_logp(vars=[small["y"]])
        mu, u = 0.7, 0.4
        moved = {"mu_logodds__": np.log(mu / (1 - mu)), "u_log__": np.log(u)}
        kappa = u**-2
        assert logp(moved) == pytest.approx(stats.betabinom.logpmf(y, n, mu * kappa, (1 - mu) * kappa).sum(), abs=1e-10)


def model_with_bound(family, y, n, prior, bound):
    module = FAMILIES[family]
    return module.build_model(Reports(y, n), prior, bound)


def test_compiled_sampler_is_reused_and_new_values_really_replace_old_ones(model_cache):
    """Swapping data and prior values into the cached program gives exactly what a freshly built
    program gives."""
    settings = load_config(sampling={"draws": 200, "tune": 200}).sampling
    prior = BetaBinomialPrior(mean_a=30.0, mean_b=2.0, u_scale=0.2)
    y, n = np.array([1, 5, 2]), np.array([4, 9, 2])

    before = model_cache.compilations
    model_cache.sample(model_spec("beta_binomial", Reports(Y, N), BetaBinomialPrior()), settings, seed=1)
    spec = model_spec("beta_binomial", Reports(y, n), prior)
    reused = model_cache.sample(spec, settings, seed=3)["posterior"]
    assert model_cache.compilations - before <= 1  # at most the first use of this structure builds

    key = sampling.program_key(spec, settings)
    fresh = sampling._build(spec, settings, key)
    arrays = fresh.run(spec.values, seed=3, chains=settings.chains)
    b = sampling._as_datatree(fresh, arrays, spec.reports)["posterior"]
    np.testing.assert_array_equal(reused["mu"].values, b["mu"].values)
    np.testing.assert_array_equal(reused["kappa"].values, b["kappa"].values)
    assert not np.array_equal(reused["mu"].values[0], model_cache.sample(
        model_spec("beta_binomial", Reports(Y, N), BetaBinomialPrior()), settings, seed=3)["posterior"]["mu"].values[0])


def test_draws_do_not_depend_on_how_chains_are_spread_over_threads(model_cache):
    """Each chain has its own key: 4 chains in 2 concurrent calls, in 4 calls or in one call are the same."""
    spec = model_spec("beta_binomial", Reports(Y, N), BetaBinomialPrior())
    draws = {cores: model_cache.sample(spec, load_config(sampling={"draws": 200, "tune": 200, "cores": cores}).sampling,
                                       seed=5)["posterior"]["mu"].values for cores in (1, 2, 4)}
    np.testing.assert_array_equal(draws[1], draws[2])
    np.testing.assert_array_equal(draws[1], draws[4])
