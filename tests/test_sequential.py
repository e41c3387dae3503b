"""The sequential (continuation-ratio) model of the graded outcomes: the likelihood against brute-force
enumeration of patient-level outcomes, the MCMC posterior against an exact grid posterior, a clean fit
of the shipped data, nesting, padding, program reuse, and the worst-case variant."""

import itertools

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr
from scipy import stats
from scipy.special import expit, logit, logsumexp

from analysis.engine.fitting import fit
from analysis.engine.programs import ModelCache
from analysis.inputs.bundle import load_inputs
from analysis.inputs.config import PROJECT_ROOT, load_config
from analysis.steps import estimates as est, graded
from mc import MCSE_MULTIPLE, assert_matches, estimate_and_mcse
from models import importance, sequential
from models.sequential import MISSING, OUTCOMES, STAGES, SequentialPrior

# --- the likelihood ------------------------------------------------------------------------------------------

# A patient's outcome: no response, or a response that is (not marked | marked, not complete | complete)
# and (not | is) sustained: 7 categories, as (responded, marked, complete, sustained).
CATEGORIES = [(0, 0, 0, 0)] + [(1, m, c, s) for m, c in ((0, 0), (1, 0), (1, 1)) for s in (0, 1)]
PROBABILITIES = [
    np.array([0.7, 0.4, 0.6, 0.8]),
    np.array([0.05, 0.9, 0.2, 0.5]),
    np.array([0.999, 0.01, 0.97, 0.3]),
]


def category_probabilities(p):
    """P(category) for one patient: respond p1; if so marked p2, if marked complete p3; sustained p4."""
    p1, p2, p3, p4 = p
    chain = {(0, 0): 1 - p2, (1, 0): p2 * (1 - p3), (1, 1): p2 * p3}
    return np.array([1 - p1] + [p1 * chain[m, c] * (p4 if s else 1 - p4) for _, m, c, s in CATEGORIES[1:]])


def brute_force(p, n):
    """{graded pattern: {observed counts (−1 = ungraded): probability}} by enumerating all 7^n patients."""
    weights = category_probabilities(p)
    full = {}
    for combo in itertools.product(range(len(CATEGORIES)), repeat=n):
        counts = tuple(int(x) for x in np.sum([CATEGORIES[k] for k in combo], axis=0)) if n else (0, 0, 0, 0)
        full[counts] = full.get(counts, 0.0) + float(np.prod(weights[list(combo)]))
    patterns = {}
    for pattern in itertools.product((False, True), repeat=4):
        observed = {}
        for counts, probability in full.items():
            key = tuple(c if g else MISSING for c, g in zip(counts, pattern))
            observed[key] = observed.get(key, 0.0) + probability
        patterns[pattern] = observed
    return patterns


@pytest.fixture(scope="module")
def loglik():
    counts, n, logit_p = pt.lmatrix("counts"), pt.lvector("n"), pt.dmatrix("logit_p")
    value = sequential.log_likelihood(counts, n, logit_p, bound=8)
    return pytensor.function([counts, n, logit_p], value), pytensor.function(
        [counts, n, logit_p], pytensor.grad(value.sum(), logit_p))


@pytest.mark.parametrize("p", PROBABILITIES, ids=lambda p: "p=" + ",".join(f"{x:g}" for x in p))
def test_likelihood_equals_brute_force_enumeration_for_every_missingness_pattern(loglik, p):
    value, _ = loglik
    checked = 0
    for n in range(1, 5):
        for pattern, observed in brute_force(p, n).items():
            counts = np.array(list(observed), dtype=np.int64)
            exact = np.log(np.array(list(observed.values())))
            ours = value(counts, np.full(len(counts), n), np.tile(logit(p), (len(counts), 1)))
            np.testing.assert_allclose(ours, exact, rtol=0, atol=1e-10, err_msg=f"n={n}, graded={pattern}")
            checked += len(counts)
    assert checked == 957  # distinct observable count vectors over n = 1..4 and the 16 patterns


def test_likelihood_and_its_gradient_stay_finite_at_extreme_logits(loglik):
    value, gradient = loglik
    patterns = np.array(list(itertools.product((False, True), repeat=4)))
    counts = np.where(patterns, np.array([3, 2, 1, 2]), MISSING)
    n = np.full(len(counts), 3)
    for logit_p in (40.0, -40.0, 800.0, -800.0, np.array([700.0, -700.0, 700.0, -700.0])):
        logit_p = np.broadcast_to(logit_p, (len(counts), 4)).astype(float)
        assert not np.any(np.isnan(value(counts, n, logit_p)))
        assert np.all(np.isfinite(gradient(counts, n, logit_p)))
    # An empty (padded) report, or one with no graded stage, adds exactly 0.
    empty = np.array([[MISSING] * 4, [MISSING] * 4])
    assert np.all(value(empty, np.array([0, 5]), np.zeros((2, 4))) == 0.0)


def test_simulated_counts_follow_the_likelihood(loglik):
    """`simulate_counts` draws from the model the likelihood describes (here with every stage graded and
    with the response count ungraded, which uses the exact sum over A)."""
    value, _ = loglik
    p, n, draws = np.array([0.6, 0.5, 0.7, 0.4]), 3, 200_000
    rng = np.random.default_rng(4)
    for graded in ([True] * 4, [False, True, False, True]):
        sims = sequential.simulate_counts(np.full(draws, n), np.tile(p, (draws, 1)), rng, np.tile(graded, (draws, 1)))
        keys, freq = np.unique(sims, axis=0, return_counts=True)
        expected = np.exp(value(keys, np.full(len(keys), n), np.tile(logit(p), (len(keys), 1))))
        assert expected.sum() == pytest.approx(1.0, abs=1e-12)  # every possible outcome was drawn
        assert np.all(np.abs(freq / draws - expected) <= 4.5 * np.sqrt(expected * (1 - expected) / draws))


# --- the correlation and the pooled quantities ----------------------------------------------------------------


def test_partial_correlation_construction_is_lkj():
    """Beta canonical partial correlations give LKJ(η): every correlation's marginal is
    Beta(η − 1 + d/2) on (−1, 1), E[det R] = Π 2β/(2β + 1), as pm.LKJCorr's draws agree."""
    eta, draws = 2.0, 100_000
    rng = np.random.default_rng(7)
    shape = sequential._beta_shapes(eta)
    chol = sequential.correlation_cholesky(rng.beta(shape, shape, size=(draws, len(shape))))
    corr = chol @ np.swapaxes(chol, -1, -2)
    np.testing.assert_allclose(np.diagonal(corr, axis1=-2, axis2=-1), 1.0, atol=1e-12)
    rho = sequential.correlations(chol)
    np.testing.assert_allclose(rho, corr[:, sequential._PAIR_ROWS, sequential._PAIR_COLUMNS], atol=1e-15)
    marginal = stats.beta(eta - 1 + 2, eta - 1 + 2)
    lkj = pm.draw(pm.LKJCorr.dist(n=4, eta=eta), draws=20_000, random_seed=8)
    lkj_rho = sequential.correlations(lkj)
    for k in range(len(sequential.PAIRS)):
        assert stats.kstest((rho[:, k] + 1) / 2, marginal.cdf).pvalue > 1e-4
        assert stats.ks_2samp(rho[:, k], lkj_rho[:, k]).pvalue > 1e-4
    det = np.linalg.det(corr)
    exact = np.prod(2 * shape / (2 * shape + 1))
    assert abs(det.mean() - exact) <= 4 * det.std() / np.sqrt(draws)
    # The same construction in PyTensor, as the model uses it.
    b = rng.uniform(size=(5, len(shape)))
    symbolic = sequential.correlation_cholesky(pt.as_tensor(b), xp=pt).eval()
    np.testing.assert_allclose(symbolic, sequential.correlation_cholesky(b), atol=1e-15)


def test_population_means_match_one_dimensional_quadrature():
    """With R = I the stages are independent: E[p1 p2 p3] = E[p1] E[p2] E[p3], each a 1-D Gauss-Hermite
    integral; with τ = 0 the integrals are exact products. The QMC error is within its stated bound."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(101)
    weights = weights / weights.sum()
    mu = np.array([[1.5, 0.5, -0.3, 1.0], [-1.0, 2.0, 0.0, -0.5], [2.0, 1.0, 0.5, 1.5]])
    tau = np.array([[0.5, 1.0, 1.5, 0.8], [2.0, 1.0, 0.3, 1.8], [0.0, 0.0, 0.0, 0.0]])
    pooled = sequential.population_means(mu, tau, np.broadcast_to(np.eye(4), (3, 4, 4)))
    for m, t, ours, bound in zip(mu, tau, pooled, (2e-5, 5e-5, 1e-12)):
        e = expit(m[:, None] + t[:, None] * nodes) @ weights
        exact = np.array([e[0], e[0] * e[1], e[0] * e[1] * e[2], e[0] * e[3]])
        np.testing.assert_allclose(ours, exact, rtol=0, atol=bound)


def test_nesting_holds_in_every_draw_even_at_extreme_values():
    rng = np.random.default_rng(3)
    draws = 400
    shape = sequential._beta_shapes(0.3)  # strong correlations
    posterior = xr.Dataset({
        "mu": (("chain", "draw", "stage"), rng.normal(0, 15, (1, draws, 4))),
        "tau": (("chain", "draw", "stage"), np.abs(rng.normal(0, 5, (1, draws, 4)))),
        "cpc_unit": (("chain", "draw", "pair"), rng.beta(shape, shape, (1, draws, 6))),
        "p": (("chain", "draw", "report", "stage"), expit(rng.normal(0, 20, (1, draws, 3, 4)))),
    })
    derived = sequential.derive(posterior, np.full((3, 4), MISSING), np.array([1, 2, 3]), rng)
    assert_nested(derived)


def assert_nested(derived: xr.Dataset) -> None:
    for name in ("cumulative", "pooled", "cumulative_new", "typical"):
        value = derived[name]
        a, m, c, s = (value.sel(outcome=o).values for o in OUTCOMES)
        assert np.all(c <= m) and np.all(m <= a) and np.all(s <= a), name
        assert np.all((value.values >= 0) & (value.values <= 1)), name


# --- counts ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped():
    """(report ids, counts, n) of the shipped reports that grade any stage, as the graded step reads them."""
    return graded.graded_counts(load_inputs(load_config()))


def test_graded_counts_read_blank_grades_as_missing(shipped):
    ids, counts, n = shipped
    assert counts.shape == (12, 4) and n.sum() == 43 and counts[:, 0].sum() == 36
    rows = dict(zip(ids, counts.tolist()))
    assert rows["Ibrahim2017"] == [3, 3, 0, MISSING]  # 0 complete is a grade, not a blank
    assert rows["JasansBarcelo2020"] == [7, MISSING, MISSING, 7]
    assert rows["McBride2020"] == [1, MISSING, MISSING, MISSING]
    assert rows["Series14_Menta2024"] == [8, MISSING, MISSING, 2]
    with pytest.raises(ValueError, match="nesting"):
        sequential.validate_counts([[2, 3, MISSING, MISSING]], [3])


def test_missing_as_failure_counts_ungraded_stages_of_series_as_failures():
    counts = np.array([
        [7, MISSING, MISSING, 7],         # series: marked and complete ungraded -> 0, 0
        [3, 3, MISSING, 3],               # series: complete ungraded -> 0
        [3, 3, 0, MISSING],               # series: sustained ungraded -> 0
        [MISSING, 2, MISSING, 3],         # series: complete -> 0; any -> max(marked, sustained) = 3
        [MISSING, MISSING, 1, MISSING],   # series: marked -> complete = 1; sustained -> 0; any -> 1
        [MISSING] * 4,                    # series with nothing graded: all 0
        [1, MISSING, MISSING, MISSING],   # single patient: left as is
    ])
    n = np.array([8, 3, 3, 5, 4, 2, 1])
    expected = np.array([
        [7, 0, 0, 7],
        [3, 3, 0, 3],
        [3, 3, 0, 0],
        [3, 2, 0, 3],
        [1, 1, 1, 0],
        [0, 0, 0, 0],
        [1, MISSING, MISSING, MISSING],
    ])
    result = sequential.missing_as_failure(counts, n)
    np.testing.assert_array_equal(result, expected)
    sequential.validate_counts(result, n)  # still nested
    graded = counts >= 0
    np.testing.assert_array_equal(result[graded], counts[graded])  # graded counts never change
    # min_n = 1 treats the single-patient report as a series too.
    np.testing.assert_array_equal(sequential.missing_as_failure(counts, n, min_n=1)[-1], [1, 0, 0, 0])


# --- the model ---------------------------------------------------------------------------------------------------

TOY_COUNTS = np.array([
    [3, 2, 1, 2],                  # every stage graded
    [2, MISSING, 1, MISSING],      # marked ungraded: C | A ~ Bin(A, p2 p3)
    [MISSING, MISSING, MISSING, 3],  # response ungraded: S | n ~ Bin(n, p1 p4)
])
TOY_N = np.array([4, 3, 5])


def test_model_exposes_data_and_priors_as_swappable_data():
    prior = SequentialPrior()
    model = sequential.build_model(TOY_COUNTS, TOY_N, prior)
    assert {v.name for v in model.data_vars} == set(sequential.data_values(TOY_COUNTS, TOY_N, prior))
    assert {"mu", "tau", "cpc_unit", "z"} == {v.name for v in model.free_RVs}
    assert set(sequential.initial_point(prior)) <= {v.name for v in model.free_RVs}
    assert list(model.coords["stage"]) == list(STAGES)


def _random_point(model, rng):
    shapes = {name: np.shape(value) for name, value in model.initial_point().items()}
    return {v.name: rng.normal(0, 0.7, shapes[v.name]) for v in model.value_vars}


def _logp(model, variables=None):
    """The model's log density (PyMC's own), compiled for the Python linker: quick to build for a few calls."""
    return model.compile_logp(vars=variables, mode="FAST_COMPILE")


def test_padding_and_the_loop_bound_leave_the_log_density_unchanged():
    """Extra empty reports (n = 0, ungraded) add only their z's Normal(0, 1) prior; a longer loop adds
    exactly nothing."""
    counts = np.vstack([TOY_COUNTS, [[MISSING, 2, MISSING, 1]]])  # also the summed-over-A pattern
    n = np.append(TOY_N, 4)
    prior = SequentialPrior()
    small = sequential.build_model(counts, n, prior)
    extra = 20
    padded = sequential.build_model(np.vstack([counts, np.full((extra, 4), MISSING)]), np.append(n, [0] * extra), prior)
    longer = sequential.build_model(counts, n, prior, bound=64)
    size, big = sequential.padded_reports(len(n)), sequential.padded_reports(len(n) + extra)
    assert small["n_treated"].get_value().size == size < big == padded["n_treated"].get_value().size
    rng = np.random.default_rng(5)
    small_logp, padded_logp, longer_logp = (_logp(m) for m in (small, padded, longer))
    for _ in range(4):
        point = _random_point(small, rng)
        z_more = rng.normal(size=(big - size, 4))
        big_point = {**point, "z": np.vstack([point["z"], z_more])}
        expected = small_logp(point)
        assert padded_logp(big_point) - stats.norm.logpdf(z_more).sum() == pytest.approx(expected, abs=1e-9)
        assert longer_logp(point) == pytest.approx(expected, abs=1e-10)


def test_model_likelihood_is_the_report_likelihood_at_the_reports_logits():
    """The model's potential is the reports' likelihood at logit p = μ + τ · L z, with L built from the
    partial correlations (checked at random points against SciPy binomials)."""
    model = sequential.build_model(TOY_COUNTS, TOY_N, SequentialPrior())
    logp = _logp(model, [model["loglik"]])
    rng = np.random.default_rng(6)
    binom = stats.binom.logpmf
    for _ in range(3):
        point = _random_point(model, rng)
        chol = sequential.correlation_cholesky(expit(point["cpc_unit_logodds__"]))
        p = expit(point["mu"] + np.exp(point["tau_log__"]) * (point["z"] @ chol.T))
        exact = (
            binom(3, 4, p[0, 0]) + binom(2, 3, p[0, 1]) + binom(1, 2, p[0, 2]) + binom(2, 3, p[0, 3])
            + binom(2, 3, p[1, 0]) + binom(1, 2, p[1, 1] * p[1, 2])
            + binom(3, 5, p[2, 0] * p[2, 3])
        )
        assert logp(point) == pytest.approx(exact, abs=1e-10)


# --- fits: one program for every data set and prior below -----------------------------------------------------

COORDS = {dim: list(labels) for dim, labels in sequential.LABELS.items()}


@pytest.fixture(scope="module")
def cache():
    """A cache of this module's own, so that it counts the programs these fits prepare."""
    return ModelCache()


@pytest.fixture(scope="module")
def config():
    return load_config()  # 4 chains, target_accept 0.95; the graded model's 1000 draws per chain


def _fit(cache, config, counts, n, prior, seed, derive_seed):
    """The sequential model's NUTS fit, its derived quantities and the convergence gate over every quantity
    (the report effects and probabilities included), as the graded step runs it."""
    def derive(posterior):
        return sequential.derive(posterior, counts, n, np.random.default_rng(derive_seed))

    return fit(cache, sequential.model_spec(counts, n, prior), config.sampling, seed, config.diagnostics, derive,
               draws=config.graded.draws, coords=COORDS)


@pytest.fixture(scope="module")
def shipped_fit(cache, config, shipped):
    _, counts, n = shipped
    return _fit(cache, config, counts, n, SequentialPrior(), config.sampling.seed, 11)


@pytest.fixture(scope="module")
def toy_fit(cache, config, shipped_fit):
    return _fit(cache, config, TOY_COUNTS, TOY_N, SequentialPrior(tau_scale=1e-4), 12, 13)


def grid_posterior(loglik, size=801, half_width=10.0):
    """Normalised posterior weights of two stage logits on a grid, Normal(0, 2) priors, and the grid."""
    axis = np.linspace(-half_width, half_width, size)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    log_post = loglik(expit(a), expit(b)) + stats.norm.logpdf(a, 0, 2) + stats.norm.logpdf(b, 0, 2)
    return np.exp(log_post - logsumexp(log_post)), a, b


def toy_exact() -> tuple[dict, list]:
    """The toy data's exact pooled probabilities and μ means at vanishing report effects (see below)."""
    binom = stats.binom.logpmf
    w14, m1, m4 = grid_posterior(lambda p1, p4: binom(3, 4, p1) + binom(2, 3, p4) + binom(2, 3, p1) + binom(3, 5, p1 * p4))
    w23, m2, m3 = grid_posterior(lambda p2, p3: binom(2, 3, p2) + binom(1, 2, p3) + binom(1, 2, p2 * p3))
    e1 = np.sum(w14 * expit(m1))
    exact = {
        "any_response": e1,
        "marked": e1 * np.sum(w23 * expit(m2)),
        "complete": e1 * np.sum(w23 * expit(m2) * expit(m3)),
        "sustained": np.sum(w14 * expit(m1) * expit(m4)),
    }
    exact_mu = [np.sum(w14 * m1), np.sum(w23 * m2), np.sum(w23 * m3), np.sum(w14 * m4)]
    return exact, exact_mu


def test_posterior_with_vanishing_report_effects_matches_exact_integration(toy_fit):
    """τ_s ~ HalfNormal(1e-4): every report has the stage probabilities expit(μ_s) (report effects change
    the likelihood by O(τ²) ~ 1e-8). The toy data then factor into two independent blocks, (μ1, μ4)
    (report 3's S | n ~ Bin(5, p1 p4)) and (μ2, μ3) (report 2's C | A ~ Bin(2, p2 p3)), each an exact
    2-D grid integral; the pooled probabilities are products of block expectations."""
    exact, exact_mu = toy_exact()
    posterior = toy_fit.posterior
    assert toy_fit.convergence.divergences == 0
    for outcome, value in exact.items():
        assert_matches(posterior["pooled"].sel(outcome=outcome), value, label=f"pooled {outcome}")
    for s, value in enumerate(exact_mu):
        assert_matches(posterior["mu"].isel(stage=s), value, label=f"mu[{STAGES[s]}]")
    assert float(posterior["tau"].max()) < 1e-3


def test_shipped_data_fit_converges_cleanly(shipped_fit):
    """R-hat ≤ 1.01, bulk and tail ESS ≥ 400 and no divergence, for the population quantities and for
    every report effect and probability."""
    convergence = shipped_fit.convergence
    assert convergence.passed, convergence.failures
    judged = set(convergence.table.index)
    for name in ("mu[response]", "tau[sustained_given_response]", "rho[response:marked]", "pooled[complete]",
                 "z[0, response]", "p[11, sustained_given_response]", "cpc_unit[complete:sustained]"):
        assert name in judged, name


def test_shipped_data_pooled_probabilities(shipped_fit):
    """Regression guard on the shipped data with the default priors (posterior means of the pooled
    probabilities; their Monte Carlo error is about 0.001). A new report's draws average to the pooled
    means (the QMC integral and the predictive draws estimate the same expectation)."""
    posterior = shipped_fit.posterior
    means = posterior["pooled"].mean(("chain", "draw"))
    for outcome, expected in {"any_response": 0.86, "marked": 0.78, "complete": 0.51, "sustained": 0.70}.items():
        assert abs(float(means.sel(outcome=outcome)) - expected) <= 0.02, (outcome, float(means.sel(outcome=outcome)))
        new = posterior["cumulative_new"].sel(outcome=outcome)
        assert abs(float(new.mean()) - float(means.sel(outcome=outcome))) <= MCSE_MULTIPLE * float(az.mcse(new)) + 2e-4


def test_nesting_holds_in_every_posterior_draw(shipped_fit, toy_fit, shipped):
    for fitted, reports in ((shipped_fit, len(shipped[0])), (toy_fit, len(TOY_N))):
        assert_nested(fitted.posterior)
        assert fitted.posterior["cumulative"].sizes["report"] == fitted.posterior["p"].sizes["report"] == reports


def test_rho_is_the_correlation_of_the_sampled_cholesky_factor(shipped_fit):
    posterior = shipped_fit.posterior
    rho = sequential.correlations(sequential.chol_draws(posterior))
    np.testing.assert_allclose(rho, posterior["rho"].transpose("chain", "draw", "pair").values, atol=1e-12)


def test_one_program_serves_every_data_set_and_prior_of_a_padded_size(cache, config, shipped_fit, toy_fit, shipped):
    """The shipped data (12 reports) and the toy data (3 reports, another prior) have one structure; the
    toy data pad to 4 reports, so they have a program of their own. Ten of the shipped reports with a prior
    that pins μ near −3 pad to 12 and reuse the shipped data's program, whose draws then follow that prior:
    the swapped values really replace the old."""
    _, counts, n = shipped
    assert sequential.model_spec(counts, n, SequentialPrior()).key == sequential.model_spec(
        TOY_COUNTS, TOY_N, SequentialPrior(tau_scale=1e-4)).key
    assert cache.programs == 2 and cache.compilations <= 2
    pinned = _fit(cache, config, counts[:10], n[:10], SequentialPrior(mu_mean=-3.0, mu_sd=0.01), 1, 2)
    assert cache.programs == 2
    assert np.all(np.abs(pinned.posterior["mu"].mean(("chain", "draw")).values + 3.0) < 0.01)
    assert float(shipped_fit.posterior["tau"].mean()) > 100 * float(toy_fit.posterior["tau"].mean())


# --- the integration that gives the printed numbers -------------------------------------------------------


@pytest.mark.parametrize("report, size", [((3, 2, 1, 2), 4), ((3, 3, 0, MISSING), 3), ((8, MISSING, MISSING, 2), 14),
                                          ((1, MISSING, MISSING, MISSING), 1), ((MISSING, MISSING, 2, MISSING), 5)],
                         ids=["all graded", "three graded", "series of 14, two graded", "one graded",
                              "complete alone"])
def test_adaptive_quadrature_of_a_report_matches_a_dense_product_rule(loglik, report, size):
    """The effects program's log posterior at two points that differ only in μ: the difference, less the
    prior's (Normal(0, 2) per stage), is the difference of the report's log integrals over its four
    effects, against a 16-node product Gauss-Hermite rule (65,536 nodes, converged), for reports that
    grade 4, 3, 2 or 1 stages (and one whose complete count is read through an ungraded marked count).
    Measured error of the 3-node adaptive rule: 7e-5 and 9e-5 for four and two graded stages; allowed 1e-3,
    a relative error of 0.1% in the ratio of the integrals (the importance sampling's own errors are
    larger)."""
    counts, n = np.array([report]), np.array([size])
    spec = sequential.model_spec(counts, n, SequentialPrior())
    program = ModelCache().effects(spec)
    tau, cpc = np.array([0.8, 0.6, 1.0, 0.7]), np.array([0.4, -0.3, 0.2, 0.5, -0.1, 0.3])
    mu_a = np.array([0.5, 0.2, -0.3, 0.1])
    mu_b = mu_a + np.array([0.3, -0.2, 0.1, 0.2])
    value = program.evaluate(spec.values, np.array([np.concatenate([m, np.log(tau), cpc]) for m in (mu_a, mu_b)]))[0]
    adaptive = value[0] - value[1] - (stats.norm.logpdf(mu_a, 0, 2).sum() - stats.norm.logpdf(mu_b, 0, 2).sum())
    x, w = np.polynomial.hermite_e.hermegauss(16)
    nodes = np.stack(np.meshgrid(*[x] * 4, indexing="ij"), -1).reshape(-1, 4)
    log_w = np.log(np.stack(np.meshgrid(*[w / w.sum()] * 4, indexing="ij"), -1).reshape(-1, 4)).sum(axis=1)
    chol = sequential.correlation_cholesky(expit(cpc))
    value_of, _ = loglik

    def log_integral(mu):
        logits = mu + tau * (nodes @ chol.T)
        return logsumexp(log_w + value_of(np.repeat(counts, len(nodes), 0), np.repeat(n, len(nodes)), logits))

    assert abs(adaptive - (log_integral(mu_a) - log_integral(mu_b))) < 1e-3


@pytest.fixture(scope="module")
def shipped_integration(cache, shipped):
    _, counts, n = shipped
    spec = sequential.model_spec(counts, n, SequentialPrior())
    return graded.integrate(cache, spec, counts, n, replicated=True)


def test_integration_agrees_with_nuts_on_the_shipped_data(shipped_fit, shipped_integration):
    """The pooled probabilities from importance sampling and from NUTS (4 × 1000 draws): within 4 combined
    standard errors (the draws' MCSE and the integration's stated error)."""
    integrated = graded._population(shipped_integration)
    for k, outcome in enumerate(OUTCOMES):
        drawn = shipped_fit.posterior["pooled"].sel(outcome=outcome)
        value, mcse = float(drawn.mean()), float(az.mcse(drawn))
        combined = np.hypot(mcse, integrated[k].mcse["mean"])
        assert abs(integrated[k].mean - value) <= MCSE_MULTIPLE * combined, (outcome, integrated[k].mean, value)
        assert integrated[k].method == "importance" and integrated[k].mcse["mean"] < 0.005
    assert shipped_integration.ess.min() > 200


def test_integration_with_vanishing_report_effects_matches_exact_integration(cache):
    """The toy data of the NUTS check above (τ ~ HalfNormal(1e-4)): the integrated pooled probabilities
    against the same exact 2-D grid integrals, within 4 stated errors plus 1e-4 (the effects the tiny τ
    leaves, and the grid)."""
    spec = sequential.model_spec(TOY_COUNTS, TOY_N, SequentialPrior(tau_scale=1e-4))
    integrated = graded._population(graded.integrate(cache, spec, TOY_COUNTS, TOY_N, replicated=False))
    for k, (outcome, value) in enumerate(toy_exact()[0].items()):
        assert abs(integrated[k].mean - value) <= MCSE_MULTIPLE * integrated[k].mcse["mean"] + 1e-4, \
            (outcome, integrated[k].mean, value)


@pytest.mark.slow
def test_integration_agrees_with_a_long_nuts_run(cache, config, shipped, shipped_integration):
    """Against 4 × 10,000 NUTS draws (MCSE about 4e-4): the pooled probabilities, their 95% bounds and the
    worst-case missing-grade means, within 4 combined standard errors."""
    _, counts, n = shipped
    long = fit(cache, sequential.model_spec(counts, n, SequentialPrior()), config.sampling, 99, config.diagnostics,
               lambda p: sequential.derive(p, counts, n, np.random.default_rng(5)), draws=10_000, coords=COORDS)
    assert long.convergence.passed, long.convergence.failures
    integrated = graded._population(shipped_integration)
    for k, outcome in enumerate(OUTCOMES):
        drawn = long.posterior["pooled"].sel(outcome=outcome)
        for statistic, prob, ours, error in (("mean", None, integrated[k].mean, integrated[k].mcse["mean"]),
                                             ("quantile", 0.025, integrated[k].lo, integrated[k].mcse["lo"]),
                                             ("quantile", 0.975, integrated[k].hi, integrated[k].mcse["hi"])):
            value, mcse = estimate_and_mcse(drawn, statistic, prob)
            assert abs(ours - value) <= MCSE_MULTIPLE * np.hypot(mcse, error), (outcome, statistic, prob, ours, value)


def test_heavy_tailed_importance_weights_fail_the_integration_check():
    """The weights' check (`estimates.importance_check`, through `graded._integration`) fails when a
    replicate's weights have a heavy tail: weights from a Pareto tail of index 1/1.2 (k = 1.2) fail;
    exponentially tailed weights (k ≈ 0) pass."""
    rng = np.random.default_rng(3)

    def weighted(draw):
        weights = [w / w.sum() for w in (draw(1024) for _ in range(8))]
        return importance.Weighted([np.zeros((1024, 14))] * 8, weights, [None] * 8, np.zeros(14))

    heavy = graded._integration(weighted(lambda m: rng.pareto(1 / 1.2, m) + 1))
    light = graded._integration(weighted(lambda m: rng.exponential(size=m)))
    assert heavy["pareto_k_max"] > est.PARETO_K_MAX and heavy["failures"]
    assert light["pareto_k_max"] < 0.5 and not light["failures"]


def test_a_sensitivity_variant_is_integrated_without_nuts(cache):
    """`analyse(detail=False)` (the sweep's graded rows): pooled and predictive outcomes from the integration
    alone, its weights checked; no NUTS fit, cross-check, replicated-data check or missing-grade sweep."""
    inputs = load_inputs(load_config(PROJECT_ROOT / "analysis" / "configs" / "sens_graded_missing_as_failure.toml"))
    result = graded.analyse(inputs, cache, detail=False)
    assert result.convergence is None and result.idata is None and result.cross_check is None
    assert result.missingness is None and result.reports == {}
    assert result.integration["failures"] == [] and result.integration["pareto_k_max"] <= est.PARETO_K_MAX
    for key, outcome in result.outcomes.items():
        assert outcome.pooled.method == "importance" and outcome.check is None, key
        assert outcome.pooled.lo < outcome.pooled.mean < outcome.pooled.hi, key
    assert result.to_dict()["diagnostics"] is None
