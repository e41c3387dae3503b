"""Logit-normal binomial random-effects model (alternative family), with optional report-level covariates.

    y_i ~ Binomial(n_i, θ_i),   logit θ_i = μ + x_iᵀβ + τ z_i,   z_i ~ Normal(0, 1)

As in the beta-binomial family, θ_i is integrated out of the likelihood, here by quadrature
(`models.special.logit_normal_log_marginal`, accurate to 10⁻⁵ in the log at any count and τ ≤ 15), so the
model has the two population parameters (μ, τ) (three with one covariate): no funnel for NUTS, and a
posterior that can be integrated exactly on a grid. θ_i is drawn afterwards from its conditional given
(μ, τ, y_i).

The pooled quantity is the population mean of a report with average covariates (x = 0, the covariates
being centred), E[θ] = ∫ expit(μ + τ z) φ(z) dz, computed by Gauss-Hermite quadrature; expit(μ) (the
median report's θ) is reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy import special
from scipy.special import expit

from models import special as sf
from models.base import Reports
from models.padding import report_values
from models.priors import LogitNormalPrior
from models.publication import log_selection

hyperparameters = ("mu", "tau")
plotted_parameters = ("mu", "tau")
heavy_tailed = ()
quantities = ("mu", "tau")
bounds = {"tau": (0.0, None), "heterogeneity_sd": (0.0, 0.5)}
quadrature_tolerance = 1e-4
"""Coarser than the beta-binomial's: the marginal likelihood is 30 times dearer per point, and the family
is a sensitivity analysis printed to two decimals."""
checked_quantities = ("heterogeneity_sd",)
"""Quantities besides the pooled mean whose quantiles the primary grid's refinement also settles: the
between-report SD's come from the grid's smoothed estimator, which needs about twice the nodes that the
pooled mean (integrated along μ, `pooled_location`) needs."""

_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(61)
_HERMITE_WEIGHTS = _HERMITE_WEIGHTS / _HERMITE_WEIGHTS.sum()


def initial_point(prior: LogitNormalPrior, n_covariates: int = 0) -> dict:
    """Data-independent starting values (jittered per chain); see `beta_binomial.initial_point`."""
    point = {"mu": 0.0, "tau": 0.5}
    if n_covariates:
        point["beta"] = np.zeros(n_covariates)
    return point


def structure_key(prior: LogitNormalPrior, n_covariates: int = 0) -> tuple:
    """τ's prior (half-normal or half-Cauchy) is data (`tau_cauchy`), so one program serves both."""
    return ("logit_normal", n_covariates)


def data_values(reports: Reports, prior: LogitNormalPrior) -> dict:
    return {**report_values(reports, prior.slope_sd), "mu_mean": np.float64(prior.mu_mean),
            "mu_sd": np.float64(prior.mu_sd), "tau_scale": np.float64(prior.tau_scale),
            "tau_cauchy": np.float64(prior.tau_dist == "half_cauchy")}


def build_model(reports: Reports, prior: LogitNormalPrior) -> pm.Model:
    values = data_values(reports, prior)
    coords = {"report": np.arange(values["n_treated"].size), "covariate": np.arange(reports.n_covariates)}
    with pm.Model(coords=coords) as model:
        data = {name: pm.Data(name, value) for name, value in values.items()}
        mu = pm.Normal("mu", data["mu_mean"], data["mu_sd"])
        tau = pm.CustomDist("tau", data["tau_scale"], data["tau_cauchy"], logp=_tau_logp, random=_tau_random,
                            transform=pm.distributions.transforms.log)
        location = mu
        if reports.n_covariates:
            beta = pm.Normal("beta", 0.0, data["slope_sd"], dims="covariate")
            location = mu + data["covariates"] @ beta
        pm.CustomDist("y", location, tau, data["n_treated"], data["multiplicity"], logp=_marginal_logp,
                      random=_random, observed=data["responders"], dims="report")
        pm.Potential("publication", log_selection(
            data["responders"], data["n_treated"],
            sf.pt_logit_normal_log_marginal(data["n_treated"], data["n_treated"], location, tau),
            data["publication_scope"], data["publication_weight"], data["multiplicity"]))
    return model


def _tau_logp(value, scale, cauchy):
    """HalfCauchy(scale) where `cauchy` is 1, else HalfNormal(scale): PyMC's own densities, chosen by data."""
    return pt.switch(pt.gt(cauchy, 0.5), pm.logp(pm.HalfCauchy.dist(beta=scale), value),
                     pm.logp(pm.HalfNormal.dist(sigma=scale), value))


def _tau_random(scale, cauchy, rng=None, size=None):
    draw = rng.standard_cauchy if cauchy > 0.5 else rng.standard_normal
    return np.abs(scale * draw(size))


def _marginal_logp(y, location, tau, n, multiplicity):
    """A row's log marginal likelihood times the number of reports it stands for (`Reports.compressed`)."""
    return multiplicity * sf.pt_logit_normal_log_marginal(y, n, location, tau)


def _random(location, tau, n, multiplicity=None, rng=None, size=None):
    return rng.binomial(n, expit(location + tau * rng.standard_normal(size)))


def exchangeable_log_marginal(model: pm.Model, y, n):
    """log p(y | μ, τ) for a new report (average covariates), θ = expit(μ + τ z) integrated out."""
    return sf.pt_logit_normal_log_marginal(y, n, model["mu"], model["tau"])


# --- functions of parameter values (draws or grid points) -------------------------------------------------


def _values(values: Mapping, name: str) -> np.ndarray:
    return np.asarray(values[name], dtype=float)


def report_locations(values: Mapping, covariates: np.ndarray | None) -> np.ndarray:
    """μ + x_iᵀβ per point (trailing axis: one per covariate row; a single row at x = 0 when None)."""
    mu = _values(values, "mu")[..., None]
    if covariates is None or covariates.shape[1] == 0:
        return np.broadcast_to(mu, mu.shape[:-1] + (1 if covariates is None else covariates.shape[0],))
    return mu + _values(values, "beta") @ covariates.T


def _moment(mu, tau, power: int) -> np.ndarray:
    mu, tau = np.asarray(mu)[..., None], np.asarray(tau)[..., None]
    return expit(mu + tau * _HERMITE_NODES) ** power @ _HERMITE_WEIGHTS


def population_mean(mu, tau) -> np.ndarray:
    """E[expit(μ + τ z)] over z ~ Normal(0, 1), elementwise in (μ, τ)."""
    return _moment(mu, tau, 1)


def pooled_location(t: float, tau, lower: float, upper: float) -> np.ndarray:
    """The μ in [lower, upper] at which the population mean E[expit(μ + τ z)] equals `t` (0 < t < 1),
    elementwise in τ: the inverse of `population_mean` in μ (it increases in μ), `lower` or `upper` where
    the mean stays above or below t over the whole interval. Newton's method on the mean's logit (nearly
    linear in μ, slope about (1 + πτ²/8)^-½), from that approximation's root, kept inside a shrinking
    bracket by bisection where a step would leave it (very large τ, where the mean is nearly flat)."""
    tau = np.asarray(tau, dtype=float)
    target = special.logit(t)

    def mean_and_slope(mu):
        p = expit(mu[..., None] + tau[..., None] * _HERMITE_NODES)
        return p @ _HERMITE_WEIGHTS, (p * (1.0 - p)) @ _HERMITE_WEIGHTS

    lo, hi = np.full(tau.shape, float(lower)), np.full(tau.shape, float(upper))
    below_everywhere = mean_and_slope(hi)[0] <= t
    above_everywhere = mean_and_slope(lo)[0] >= t
    mu = np.clip(target * np.sqrt(1.0 + np.pi * tau**2 / 8.0), lo, hi)
    for _ in range(200):
        mean, slope = mean_and_slope(mu)
        lo, hi = np.where(mean < t, mu, lo), np.where(mean > t, mu, hi)
        with np.errstate(all="ignore"):
            newton = mu - (special.logit(mean) - target) * mean * (1.0 - mean) / slope
        inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
        step = np.where(inside, newton, 0.5 * (lo + hi)) - mu
        mu = mu + step
        if np.all(np.abs(step) <= 1e-13 * (1.0 + np.abs(mu))):
            break
    return np.where(below_everywhere, upper, np.where(above_everywhere, lower, mu))


def mean_at(values: Mapping, covariates: np.ndarray) -> np.ndarray:
    """E[θ | x] = E_z[expit(μ + xᵀβ + τ z)] per point for each covariate row (trailing axis)."""
    return _moment(report_locations(values, covariates), _values(values, "tau")[..., None], 1)


def log_marginal(values: Mapping, y, n, covariates: np.ndarray | None = None) -> np.ndarray:
    """log p(y_i | μ, β, τ) with θ_i integrated out, per point and report (trailing axis)."""
    location = report_locations(values, covariates)
    return sf.logit_normal_log_marginal(np.asarray(y), np.asarray(n), location, _values(values, "tau")[..., None])


def log_all_responded(values: Mapping, n, covariates: np.ndarray | None = None) -> np.ndarray:
    return log_marginal(values, n, n, covariates)


def pooled(values: Mapping) -> np.ndarray:
    return population_mean(_values(values, "mu"), _values(values, "tau"))


def heterogeneity_sd(values: Mapping) -> np.ndarray:
    """Between-report SD of θ (at average covariates): √(E[θ²] − E[θ]²) by quadrature."""
    mu, tau = _values(values, "mu"), _values(values, "tau")
    return np.sqrt(np.maximum(_moment(mu, tau, 2) - _moment(mu, tau, 1) ** 2, 0.0))


def new_theta_cdf(values: Mapping, x: float) -> np.ndarray:
    """P(θ_new ≤ x | μ, τ) = Φ((logit x − μ) / τ) per point."""
    with np.errstate(divide="ignore"):
        return special.ndtr((special.logit(x) - _values(values, "mu")) / _values(values, "tau"))


def new_theta_pdf(values: Mapping, x: float) -> np.ndarray:
    """The density of θ_new at x per point: φ((logit x − μ)/τ) / (τ x (1 − x))."""
    mu, tau = _values(values, "mu"), _values(values, "tau")
    if not 0.0 < x < 1.0:
        return np.zeros(np.shape(mu))
    return np.exp(-0.5 * ((special.logit(x) - mu) / tau) ** 2) / (np.sqrt(2 * np.pi) * tau * x * (1 - x))


def new_theta_moments(values: Mapping) -> tuple[np.ndarray, np.ndarray]:
    mu, tau = _values(values, "mu"), _values(values, "tau")
    return _moment(mu, tau, 1), _moment(mu, tau, 2)


def report_theta_cdf(values: Mapping, y: int, n: int,
                     covariates: np.ndarray | None = None) -> Callable[[float], np.ndarray]:
    """x ↦ P(θ_i ≤ x | μ, β, τ, y_i) per point (`covariates`: the report's one row (1, k), or None); what
    does not depend on x (each point's support and normaliser) is computed once."""
    location = report_locations(values, covariates)[..., 0]
    return sf.logit_normal_conditional_cdf(y, n, location, _values(values, "tau"))


def report_theta_pdf(values: Mapping, y: int, n: int,
                     covariates: np.ndarray | None = None) -> Callable[[float], np.ndarray]:
    """x ↦ the density of θ_i at x per point (the derivative of `report_theta_cdf`)."""
    location = report_locations(values, covariates)[..., 0]
    return sf.logit_normal_conditional_pdf(y, n, location, _values(values, "tau"))


def report_theta_moments(values: Mapping, y: int, n: int, covariates: np.ndarray | None = None):
    location = report_locations(values, covariates)[..., 0]
    return sf.logit_normal_conditional_moments(y, n, location, _values(values, "tau"))


def draw_report_theta(values: Mapping, y, n, covariates, rng: np.random.Generator) -> np.ndarray:
    """θ_i per point and report (trailing axis), from z_i's conditional given (μ, β, τ, y_i)."""
    location = report_locations(values, covariates)
    tau = _values(values, "tau")[..., None]
    return sf.logit_normal_draw_theta(np.asarray(y), np.asarray(n), location, tau, rng.random(location.shape))


def draw_new_theta(values: Mapping, rng: np.random.Generator, covariates: np.ndarray | None = None) -> np.ndarray:
    location = report_locations(values, covariates)
    theta = expit(location + _values(values, "tau")[..., None] * rng.standard_normal(location.shape))
    return theta[..., 0] if covariates is None else theta


def derive(posterior: xr.Dataset, reports: Reports, rng: np.random.Generator, per_report: bool = True) -> xr.Dataset:
    """θ_i from their conditionals, θ_new, the population mean E[θ], expit(μ) and the between-report SD;
    without `per_report`, no θ_i (a meta-regression reads only the population quantities)."""
    mu, tau = posterior["mu"], posterior["tau"]
    reported = {"theta": (mu.dims + ("report",), draw_report_theta(posterior, reports.y, reports.n,
                                                                     reports.covariates, rng))} if per_report else {}
    return xr.Dataset(
        {
            **reported,
            "theta_new": (mu.dims, draw_new_theta(posterior, rng)),
            "pooled": (mu.dims, population_mean(mu.values, tau.values)),
            "expit_mu": (mu.dims, expit(mu.values)),
            "heterogeneity_sd": (mu.dims, heterogeneity_sd(posterior)),
        },
        coords=mu.coords,
    )
