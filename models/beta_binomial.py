"""Hierarchical beta-binomial (primary model), with optional report-level covariates.

    y_i ~ Binomial(n_i, θ_i),   θ_i ~ Beta(μ_i κ, (1 − μ_i) κ),   logit μ_i = logit μ + x_iᵀβ

Without covariates μ_i = μ, the population mean. With covariates (centred, so x = 0 is the average
report) μ is the mean response of a report with average covariates and κ is shared.

Only the population parameters (μ, κ, β) are sampled or integrated, with θ integrated out (beta-binomial
likelihood). Given them the θ_i are independent with the exact conditional
Beta(μ_i κ + y_i, (1 − μ_i) κ + n_i − y_i), drawn afterwards. This mixes far better than sampling θ in
the centred form, whose funnel at small κ makes NUTS diverge, and leaves a model of two parameters (three
with one covariate) whose posterior can be integrated exactly on a grid.

The likelihood is written with log rising factorials (`models.special.log_rising`), stable for any κ and
any count: the difference of beta functions cancels catastrophically when κ is large (near-homogeneous
reports), which corrupts gradients and can strand a chain at κ ~ 10^16, and a sum over patients costs
memory and time in proportion to the largest report.

Functions on parameter values take a mapping of arrays of one shape (posterior draws (chain, draw), or
grid points (points,)): `mu`, `kappa`, and `beta` (..., covariates) when there are covariates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy import special

from models import special as sf
from models.base import Reports
from models.padding import report_values
from models.priors import BetaBinomialPrior
from models.publication import log_selection

hyperparameters = ("mu", "kappa")
plotted_parameters = ("mu", "u")  # u = κ^(-1/2): κ itself is too heavy-tailed to show a density
heavy_tailed = ("kappa",)
"""u ~ HalfNormal has positive density at u = 0, so P(κ > k) ∝ k^(-1/2) a priori and the likelihood keeps
that tail: E[κ | y] is infinite. κ is summarised by its median and quantiles only."""
quantities = ("mu", "u", "kappa")
"""Constrained quantities the model defines (besides `beta`), for draws and grid points alike."""
bounds = {"mu": (0.0, 1.0), "u": (0.0, None), "heterogeneity_sd": (0.0, 0.5)}
"""Known limits of the plotted quantities (densities must not leak past them)."""
quadrature_tolerance = 2e-5
"""Largest change of a headline summary between two grid resolutions at which the grid is accepted."""
checked_quantities = ()
"""Quantities besides the pooled mean whose quantiles the primary grid's refinement also settles (see
`models.logit_normal`)."""


def initial_point(prior: BetaBinomialPrior, n_covariates: int = 0) -> dict:
    """Starting values (jittered per chain) that do not depend on data or prior values: a compiled
    sampler keeps the starting values of the data it was compiled with, so data-dependent ones would
    make a fit depend on which fit happened to compile the sampler."""
    point = {"mu": 0.5, "u": 0.5} if prior.kind == "weakly_informative" else {"mu": 0.5, "u_fraction": 0.5}
    if n_covariates:
        point["beta"] = np.zeros(n_covariates)
    return point


def structure_key(prior: BetaBinomialPrior, n_covariates: int = 0) -> tuple:
    """θ is integrated out, so the (padded) number of reports is the only size that matters."""
    return ("beta_binomial", prior.kind, n_covariates)


def data_values(reports: Reports, prior: BetaBinomialPrior) -> dict:
    values = {**report_values(reports, prior.slope_sd), "mean_a": np.float64(prior.mean_a),
              "mean_b": np.float64(prior.mean_b)}
    if prior.kind == "weakly_informative":
        values["u_scale"] = np.float64(prior.u_scale)
    else:
        values["u_max"] = np.float64(prior.u_max)
    return values


def build_model(reports: Reports, prior: BetaBinomialPrior) -> pm.Model:
    values = data_values(reports, prior)
    coords = {"report": np.arange(values["n_treated"].size), "covariate": np.arange(reports.n_covariates)}
    with pm.Model(coords=coords) as model:
        data = {name: pm.Data(name, value) for name, value in values.items()}
        mu = pm.Beta("mu", data["mean_a"], data["mean_b"])
        if prior.kind == "weakly_informative":
            u = pm.HalfNormal("u", data["u_scale"])
        else:
            # u = u_max · v with v ~ U(0, 1): the transform of v does not depend on the data value u_max.
            u = pm.Deterministic("u", data["u_max"] * pm.Uniform("u_fraction", 0.0, 1.0))
        kappa = pm.Deterministic("kappa", u**-2)
        location, complement = mu, 1 - mu
        if reports.n_covariates:
            beta = pm.Normal("beta", 0.0, data["slope_sd"], dims="covariate")
            shift = pt.log(mu) - pt.log1p(-mu) + data["covariates"] @ beta
            location, complement = pm.math.invlogit(shift), pm.math.invlogit(-shift)
        pm.CustomDist(
            "y", location, kappa, data["n_treated"], data["multiplicity"],
            logp=_counted_logp, random=_beta_binomial_random, observed=data["responders"], dims="report",
        )
        pm.Potential("publication", log_selection(
            data["responders"], data["n_treated"],
            sf.pt_log_all_responded(location * kappa, complement * kappa, data["n_treated"]),
            data["publication_scope"], data["publication_weight"], data["multiplicity"]))
    return model


def beta_binomial_logp(y, mu, kappa, n):
    """log BetaBinomial(y | n, μκ, (1 − μ)κ), elementwise, stable for any κ > 0 and any n."""
    return sf.pt_log_betabinom(y, n, mu * kappa, (1 - mu) * kappa)


def _counted_logp(y, mu, kappa, n, multiplicity):
    """A row's log likelihood times the number of reports it stands for (`Reports.compressed`)."""
    return multiplicity * beta_binomial_logp(y, mu, kappa, n)


def _beta_binomial_random(mu, kappa, n, multiplicity=None, rng=None, size=None):
    return rng.binomial(n, rng.beta(mu * kappa, (1 - mu) * kappa, size=size))


def exchangeable_log_marginal(model: pm.Model, y, n):
    """log p(y | μ, κ) for a new report (average covariates) of θ ~ Beta(μκ, (1 − μ)κ), θ integrated out."""
    return beta_binomial_logp(y, model["mu"], model["kappa"], n)


# --- functions of parameter values (draws or grid points) -------------------------------------------------


def _values(values: Mapping, name: str) -> np.ndarray:
    return np.asarray(values[name], dtype=float)


def report_means(values: Mapping, covariates: np.ndarray | None) -> np.ndarray:
    """μ_i per point (trailing axis: one per covariate row; a single row at x = 0 when None)."""
    mu = _values(values, "mu")[..., None]
    if covariates is None or covariates.shape[1] == 0:
        return np.broadcast_to(mu, mu.shape[:-1] + (1 if covariates is None else covariates.shape[0],))
    return special.expit(special.logit(mu) + _values(values, "beta") @ covariates.T)


def mean_at(values: Mapping, covariates: np.ndarray) -> np.ndarray:
    """E[θ | x] per point for each covariate row (trailing axis): the mean response of a report like that."""
    return report_means(values, covariates)


KAPPA_CEILING = 1e12
"""κ beyond which Beta(μκ, (1 − μ)κ) is a point mass at μ to double precision: larger values (u → 0 in a
prior's tail) are held here so that CDFs and draws stay finite."""


def shape_parameters(values: Mapping, covariates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(a_i, b_i) = (μ_i κ, (1 − μ_i) κ) per point and covariate row (trailing axis)."""
    mean = report_means(values, covariates)
    kappa = np.minimum(_values(values, "kappa"), KAPPA_CEILING)[..., None]
    return mean * kappa, (1 - mean) * kappa


def log_marginal(values: Mapping, y, n, covariates: np.ndarray | None = None) -> np.ndarray:
    """log p(y_i | μ_i, κ) with θ_i integrated out, per point and report (trailing axis)."""
    a, b = shape_parameters(values, covariates)
    return sf.log_betabinom(np.asarray(y), np.asarray(n), a, b)


def log_all_responded(values: Mapping, n, covariates: np.ndarray | None = None) -> np.ndarray:
    """log P(y_i = n_i | population) per point and report (trailing axis)."""
    a, b = shape_parameters(values, covariates)
    return sf.log_all_responded(a, b, np.asarray(n))


def pooled(values: Mapping) -> np.ndarray:
    """The population mean response probability at average covariates: μ."""
    return _values(values, "mu")


def heterogeneity_sd(values: Mapping) -> np.ndarray:
    """Between-report SD of θ (at average covariates): √(μ(1 − μ)/(κ + 1))."""
    mu, kappa = _values(values, "mu"), _values(values, "kappa")
    return np.sqrt(mu * (1 - mu) / (kappa + 1))


def new_theta_cdf(values: Mapping, x: float) -> np.ndarray:
    """P(θ_new ≤ x | μ, κ) per point: a new report's θ ~ Beta(μκ, (1 − μ)κ)."""
    a, b = shape_parameters(values)
    return special.betainc(a[..., 0], b[..., 0], x)


def new_theta_pdf(values: Mapping, x: float) -> np.ndarray:
    """The density of θ_new at x per point (the derivative of `new_theta_cdf`)."""
    a, b = shape_parameters(values)
    return sf.beta_pdf(a[..., 0], b[..., 0], x)


def new_theta_moments(values: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """E[θ_new | μ, κ] and E[θ_new² | μ, κ] per point."""
    mu, kappa = _values(values, "mu"), np.minimum(_values(values, "kappa"), KAPPA_CEILING)
    return mu, mu * (mu * kappa + 1) / (kappa + 1)


def report_theta_cdf(values: Mapping, y: int, n: int,
                     covariates: np.ndarray | None = None) -> Callable[[float], np.ndarray]:
    """x ↦ P(θ_i ≤ x | μ, κ, y_i) per point: exactly Beta(a_i + y_i, b_i + n_i − y_i); `covariates`: the
    report's one row (1, k) when the model has covariates."""
    a, b = shape_parameters(values, covariates)
    a, b = a[..., 0] + y, b[..., 0] + n - y
    return lambda x: special.betainc(a, b, x)


def report_theta_pdf(values: Mapping, y: int, n: int,
                     covariates: np.ndarray | None = None) -> Callable[[float], np.ndarray]:
    """x ↦ the density of θ_i at x per point (the derivative of `report_theta_cdf`)."""
    a, b = shape_parameters(values, covariates)
    a, b = a[..., 0] + y, b[..., 0] + n - y
    return lambda x: sf.beta_pdf(a, b, x)


def report_theta_moments(values: Mapping, y: int, n: int, covariates: np.ndarray | None = None):
    a, b = shape_parameters(values, covariates)
    a, b = a[..., 0] + y, b[..., 0] + n - y
    mean = a / (a + b)
    return mean, mean * (a + 1) / (a + b + 1)


def draw_report_theta(values: Mapping, y, n, covariates, rng: np.random.Generator) -> np.ndarray:
    """θ_i per point and report (trailing axis), drawn from their exact conditionals."""
    a, b = shape_parameters(values, covariates)
    return rng.beta(a + np.asarray(y), b + np.asarray(n) - np.asarray(y))


def draw_new_theta(values: Mapping, rng: np.random.Generator, covariates: np.ndarray | None = None) -> np.ndarray:
    """θ of new reports per point: one at the average covariates (None: the points' shape), or one per
    covariate row (trailing axis)."""
    a, b = shape_parameters(values, covariates)
    theta = rng.beta(a, b)
    return theta[..., 0] if covariates is None else theta


def derive(posterior: xr.Dataset, reports: Reports, rng: np.random.Generator, per_report: bool = True) -> xr.Dataset:
    """Report θ_i from their exact conditionals, predictive θ_new, the pooled mean μ and the
    between-report SD of θ; without `per_report`, no θ_i (a meta-regression reads only the population)."""
    dims = posterior["mu"].dims
    reported = {"theta": (dims + ("report",), draw_report_theta(posterior, reports.y, reports.n, reports.covariates,
                                                                rng))} if per_report else {}
    return xr.Dataset(
        {
            **reported,
            "theta_new": (dims, draw_new_theta(posterior, rng)),
            "pooled": posterior["mu"],
            "heterogeneity_sd": (dims, heterogeneity_sd(posterior)),
        },
        coords=posterior["mu"].coords,
    )
