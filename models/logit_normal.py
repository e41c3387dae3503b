"""Logit-normal binomial random-effects model (alternative family), with optional report-level covariates.

    y_i ~ Binomial(n_i, θ_i),   logit θ_i = μ + x_iᵀβ + τ z_i,   z_i ~ Normal(0, 1)   (non-centred)

The pooled quantity is the population mean of a report with average covariates (x = 0, the covariates
being centred), E[θ] = ∫ expit(μ + τ z) φ(z) dz, computed per draw by Gauss-Hermite quadrature;
expit(μ) (the median report's θ) is reported beside it.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy import special
from scipy.special import expit

from models import Reports
from models.padding import report_values
from models.priors import LogitNormalPrior
from models.publication import log_selection

hyperparameters = ("mu", "tau")
plotted_parameters = ("mu", "tau")
heavy_tailed = ()

_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(61)
_HERMITE_WEIGHTS = _HERMITE_WEIGHTS / _HERMITE_WEIGHTS.sum()


def initial_point(prior: LogitNormalPrior, n_covariates: int = 0) -> dict:
    """Data-independent starting values (jittered per chain); see `beta_binomial.initial_point`."""
    point = {"mu": 0.0, "tau": 0.5}
    if n_covariates:
        point["beta"] = np.zeros(n_covariates)
    return point


def structure_key(prior: LogitNormalPrior, n_covariates: int = 0) -> tuple:
    """Each report has its own latent z_i: the padded number of reports is part of the structure (a
    padded report has no likelihood, so its z_i keeps its prior and is dropped after sampling)."""
    return ("logit_normal", prior.tau_dist, n_covariates)


def data_values(reports: Reports, prior: LogitNormalPrior) -> dict:
    return {**report_values(reports, prior.slope_sd), "mu_mean": np.float64(prior.mu_mean),
            "mu_sd": np.float64(prior.mu_sd), "tau_scale": np.float64(prior.tau_scale)}


def build_model(reports: Reports, prior: LogitNormalPrior, bound: int | None = None) -> pm.Model:
    """`bound` is unused (the binomial likelihood needs no loop); accepted for a common interface."""
    values = data_values(reports, prior)
    coords = {"report": np.arange(values["n_treated"].size), "covariate": np.arange(reports.n_covariates)}
    with pm.Model(coords=coords) as model:
        data = {name: pm.Data(name, value) for name, value in values.items()}
        mu = pm.Normal("mu", data["mu_mean"], data["mu_sd"])
        if prior.tau_dist == "half_normal":
            tau = pm.HalfNormal("tau", data["tau_scale"])
        else:
            tau = pm.HalfCauchy("tau", data["tau_scale"])
        z = pm.Normal("z", 0.0, 1.0, dims="report")
        location = mu
        if reports.n_covariates:
            beta = pm.Normal("beta", 0.0, data["slope_sd"], dims="covariate")
            location = mu + data["covariates"] @ beta
        theta = pm.Deterministic("theta", pm.math.invlogit(location + tau * z), dims="report")
        pm.Binomial("y", n=data["n_treated"], p=theta, observed=data["responders"], dims="report")
        # P(y = n | population, n) by the same quadrature as the population mean.
        eta = pt.shape_padright(location + pt.zeros_like(data["n_treated"])) + tau * _HERMITE_NODES
        log_all = pt.logsumexp(-pt.shape_padright(data["n_treated"]) * pt.softplus(-eta) + np.log(_HERMITE_WEIGHTS),
                               axis=-1)
        pm.Potential("publication", log_selection(data["responders"], data["n_treated"], log_all,
                                                  data["publication_scope"], data["publication_weight"]))
    return model


def population_mean(mu: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """E[expit(μ + τ z)] over z ~ Normal(0, 1), elementwise in (μ, τ)."""
    return _moment(mu, tau, 1)


def _moment(mu, tau, power: int) -> np.ndarray:
    mu, tau = np.asarray(mu)[..., None], np.asarray(tau)[..., None]
    return expit(mu + tau * _HERMITE_NODES) ** power @ _HERMITE_WEIGHTS


def exchangeable_log_marginal(model: pm.Model, y, n, bound: int | None = None):
    """log p(y | μ, τ) for a new report (average covariates), θ = expit(μ + τ z) integrated out by
    Gauss-Hermite quadrature."""
    eta = model["mu"] + model["tau"] * _HERMITE_NODES
    log_pmf = (
        pt.gammaln(n + 1) - pt.gammaln(y + 1) - pt.gammaln(n - y + 1)
        - y * pt.softplus(-eta) - (n - y) * pt.softplus(eta)
    )
    return pt.logsumexp(log_pmf + np.log(_HERMITE_WEIGHTS))


def report_locations(posterior: xr.Dataset, covariates: np.ndarray | None) -> np.ndarray:
    """μ + x_iᵀβ per draw (trailing axis: one per covariate row; a single row at x = 0 when None)."""
    mu = posterior["mu"].values[..., None]
    if covariates is None or covariates.shape[1] == 0:
        return np.broadcast_to(mu, mu.shape[:-1] + (1 if covariates is None else covariates.shape[0],))
    return mu + posterior["beta"].values @ covariates.T


def population_mean_at(posterior: xr.Dataset, covariates: np.ndarray) -> np.ndarray:
    """E[θ | x] = E_z[expit(μ + xᵀβ + τ z)] per draw for each covariate row (trailing axis)."""
    return _moment(report_locations(posterior, covariates), posterior["tau"].values[..., None], 1)


def log_marginal_draws(posterior: xr.Dataset, reports: Reports) -> np.ndarray:
    """log p(y_i | μ, β, τ) with θ_i integrated out (quadrature), per draw and report (trailing axis)."""
    return _log_marginal(posterior, reports.y, reports.n, report_locations(posterior, reports.covariates))


def log_target_marginal(posterior: xr.Dataset, y: int, n: int) -> np.ndarray:
    """log p(y | μ, τ) of a new report at the average covariates, per draw (the joint model's target)."""
    return _log_marginal(posterior, np.atleast_1d(y), np.atleast_1d(n), report_locations(posterior, None))[..., 0]


def _log_marginal(posterior, y, n, location) -> np.ndarray:
    eta = location[..., None] + posterior["tau"].values[..., None, None] * _HERMITE_NODES
    y, n = np.asarray(y)[:, None], np.asarray(n)[:, None]
    log_pmf = (
        special.gammaln(n + 1) - special.gammaln(y + 1) - special.gammaln(n - y + 1)
        - y * np.logaddexp(0, -eta) - (n - y) * np.logaddexp(0, eta)
    )
    return special.logsumexp(log_pmf, b=_HERMITE_WEIGHTS, axis=-1)


def draw_exchangeable_posterior(
    posterior: xr.Dataset, y: int, n: int, rng: np.random.Generator, max_rounds: int = 10_000
) -> np.ndarray:
    """θ of a new report that observed y of n, per draw, by exact rejection sampling: propose
    z ~ Normal(0, 1), accept with probability Binomial(y | n, θ) / max_θ Binomial(y | n, θ)."""
    mu, tau = posterior["mu"].values, posterior["tau"].values
    theta = np.full(mu.shape, np.nan)
    pending = np.ones(mu.shape, dtype=bool)
    p_hat = y / n
    log_max = special.xlogy(y, p_hat) + special.xlogy(n - y, 1 - p_hat)
    for _ in range(max_rounds):
        proposal = expit(mu[pending] + tau[pending] * rng.standard_normal(pending.sum()))
        log_ratio = special.xlogy(y, proposal) + special.xlog1py(n - y, -proposal) - log_max
        accept = np.log(rng.random(proposal.size)) < log_ratio
        index = np.flatnonzero(pending)[accept]
        theta.flat[index] = proposal[accept]
        pending.flat[index] = False
        if not pending.any():
            return theta
    raise RuntimeError(f"rejection sampling of θ given {y} of {n} did not finish in {max_rounds} rounds")


def draw_new_theta(posterior: xr.Dataset, rng: np.random.Generator, covariates: np.ndarray | None = None) -> np.ndarray:
    """θ of new reports, per draw: one at the average covariates (None: shape of the draws), or one per
    covariate row (trailing axis): expit(μ + x_newᵀβ + τ z_new)."""
    location = report_locations(posterior, covariates)
    theta = expit(location + posterior["tau"].values[..., None] * rng.standard_normal(location.shape))
    return theta[..., 0] if covariates is None else theta


def new_theta_distribution(posterior: xr.Dataset):
    """θ for a new report, Rao-Blackwellised: (cdf, mean, second moment) of the average over the draws of
    the logit-normal, P(θ ≤ x) = Φ((logit x − μ)/τ); `cdf` takes an array of points."""
    mu, tau = posterior["mu"].values.ravel(), posterior["tau"].values.ravel()

    def cdf(x):
        with np.errstate(divide="ignore"):
            return special.ndtr((special.logit(np.asarray(x, dtype=float))[..., None] - mu) / tau).mean(axis=-1)

    return cdf, float(_moment(mu, tau, 1).mean()), float(_moment(mu, tau, 2).mean())


def _moments(posterior: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    mu, tau = posterior["mu"].values, posterior["tau"].values
    return _moment(mu, tau, 1), _moment(mu, tau, 2)


def heterogeneity_sd(posterior: xr.Dataset) -> np.ndarray:
    """Between-report SD of θ (at average covariates), per draw: √(E[θ²] − E[θ]²) by quadrature."""
    first, second = _moments(posterior)
    return np.sqrt(np.maximum(second - first**2, 0.0))


def derive(posterior: xr.Dataset, reports: Reports, rng: np.random.Generator) -> xr.Dataset:
    """θ_i are sampled by NUTS already; add θ_new, the population mean E[θ], expit(μ) and the
    between-report SD of θ."""
    mu, tau = posterior["mu"], posterior["tau"]
    return xr.Dataset(
        {
            "theta_new": (mu.dims, draw_new_theta(posterior, rng)),
            "pooled": (mu.dims, population_mean(mu.values, tau.values)),
            "expit_mu": (mu.dims, expit(mu.values)),
            "heterogeneity_sd": (mu.dims, heterogeneity_sd(posterior)),
        },
        coords=mu.coords,
    )
