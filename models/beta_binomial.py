"""Hierarchical beta-binomial (primary model), with optional report-level covariates.

    y_i ~ Binomial(n_i, θ_i),   θ_i ~ Beta(μ_i κ, (1 − μ_i) κ),   logit μ_i = logit μ + x_iᵀβ

Without covariates μ_i = μ, the population mean. With covariates (centred, so x = 0 is the average
report) μ is the mean response of a report with average covariates and κ is shared.

NUTS samples only the population parameters (μ, κ, β), with θ integrated out (beta-binomial
likelihood). Given them the θ_i are independent with the exact conditional
Beta(μ_i κ + y_i, (1 − μ_i) κ + n_i − y_i), drawn afterwards for every posterior draw. This mixes far
better than sampling θ in the centred form, whose funnel at small κ makes NUTS diverge.

The likelihood is written as rising factorials, (α)_y (β)_(n−y) / (κ)_n, rather than through beta
functions: B(y + α, n − y + β) / B(α, β) cancels catastrophically when κ is large (near-homogeneous
reports), which corrupts gradients and can strand a chain at κ ~ 10^16.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy import special

from models import Reports
from models.padding import padded_size, report_values
from models.priors import BetaBinomialPrior
from models.publication import log_selection

hyperparameters = ("mu", "kappa")
plotted_parameters = ("mu", "u")  # u = κ^(-1/2): κ itself is too heavy-tailed to show a density
heavy_tailed = ("kappa",)
"""u ~ HalfNormal has positive density at u = 0, so P(κ > k) ∝ k^(-1/2) a priori and the likelihood keeps
that tail: E[κ | y] is infinite. κ is summarised by its median and quantiles only."""


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


def count_bound(n) -> int:
    """The static length of the rising-factorial loop: at least the largest report."""
    return padded_size(int(np.max(n, initial=1)))


def build_model(reports: Reports, prior: BetaBinomialPrior, bound: int | None = None) -> pm.Model:
    """`bound`: the rising-factorial loop length (`count_bound` of the largest report by default)."""
    values = data_values(reports, prior)
    bound = bound or count_bound(reports.n)
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
        location = mu
        if reports.n_covariates:
            beta = pm.Normal("beta", 0.0, data["slope_sd"], dims="covariate")
            location = pm.math.invlogit(pt.log(mu) - pt.log1p(-mu) + data["covariates"] @ beta)
        pm.CustomDist(
            "y",
            location,
            kappa,
            data["n_treated"],
            logp=partial(beta_binomial_logp, bound=bound),
            random=_beta_binomial_random,
            observed=data["responders"],
            dims="report",
        )
        pm.Potential("publication", log_selection(
            data["responders"], data["n_treated"], log_all_responded(location, kappa, data["n_treated"], bound),
            data["publication_scope"], data["publication_weight"]))
    return model


def beta_binomial_logp(y, mu, kappa, n, bound: int):
    """log BetaBinomial(y | n, μκ, (1 − μ)κ), elementwise, stable for any κ > 0, for n ≤ `bound`.

    The loop over j runs to the static `bound` (a compiled program needs fixed shapes); the masks make
    every term with j ≥ n exactly 0, so the value does not depend on the bound."""
    a, b = mu * kappa, (1 - mu) * kappa
    j = pt.arange(bound)
    y_, n_, a_, b_ = y[..., None], n[..., None], pt.shape_padright(a), pt.shape_padright(b)
    rising = (
        pt.switch(j < y_, pt.log(a_ + j), 0.0)
        + pt.switch(j < n_ - y_, pt.log(b_ + j), 0.0)
        - pt.switch(j < n_, pt.log(kappa + j), 0.0)
    ).sum(axis=-1)
    log_choose = pt.gammaln(n + 1) - pt.gammaln(y + 1) - pt.gammaln(n - y + 1)
    return log_choose + rising


def log_all_responded(mu, kappa, n, bound: int):
    """log P(y = n | μ, κ) = Σ_{j<n} log((μκ + j) / (κ + j)), the same stable rising-factorial form."""
    j = pt.arange(bound)
    a_ = pt.shape_padright(mu * kappa)
    return pt.switch(j < n[..., None], pt.log(a_ + j) - pt.log(kappa + j), 0.0).sum(axis=-1)


def _beta_binomial_random(mu, kappa, n, rng=None, size=None):
    return rng.binomial(n, rng.beta(mu * kappa, (1 - mu) * kappa, size=size))


def exchangeable_log_marginal(model: pm.Model, y, n, bound: int):
    """log p(y | μ, κ) for a new report (average covariates) of θ ~ Beta(μκ, (1 − μ)κ), θ integrated out."""
    return beta_binomial_logp(y, model["mu"], model["kappa"], n, bound)


def report_means(posterior: xr.Dataset, covariates: np.ndarray | None) -> np.ndarray:
    """μ_i per draw (trailing axis: one per covariate row; a single row at x = 0 when None)."""
    mu = posterior["mu"].values[..., None]
    if covariates is None or covariates.shape[1] == 0:
        return np.broadcast_to(mu, mu.shape[:-1] + (1 if covariates is None else covariates.shape[0],))
    return special.expit(special.logit(mu) + posterior["beta"].values @ covariates.T)


def population_mean_at(posterior: xr.Dataset, covariates: np.ndarray) -> np.ndarray:
    """E[θ | x] per draw for each covariate row (trailing axis): the mean response of a report like that."""
    return report_means(posterior, covariates)


def log_marginal_draws(posterior: xr.Dataset, reports: Reports) -> np.ndarray:
    """log p(y_i | μ_i, κ) with θ_i integrated out, per draw and report (trailing axis), in NumPy; the same
    rising-factorial form as the model's likelihood. Used for PSIS-LOO."""
    mean = report_means(posterior, reports.covariates)
    kappa = posterior["kappa"].values[..., None]
    return _log_betabinom(reports.y, reports.n, mean * kappa, (1 - mean) * kappa)


def log_target_marginal(posterior: xr.Dataset, y: int, n: int) -> np.ndarray:
    """log p(y | μ, κ) of a new report at the average covariates, per draw (the joint model's target)."""
    a, b = _shape_parameters(posterior)
    return _log_betabinom(np.atleast_1d(y), np.atleast_1d(n), a.values[..., None], b.values[..., None])[..., 0]


def _log_betabinom(y, n, a, b) -> np.ndarray:
    """Elementwise over the trailing (report) axis of a and b, with y, n per report."""
    y, n = np.asarray(y)[:, None], np.asarray(n)[:, None]
    j = np.arange(int(n.max(initial=1)))
    a, b = a[..., None], b[..., None]
    rising = (
        np.where(j < y, np.log(a + j), 0.0) + np.where(j < n - y, np.log(b + j), 0.0)
        - np.where(j < n, np.log(a + b + j), 0.0)
    ).sum(-1)
    log_choose = special.gammaln(n + 1) - special.gammaln(y + 1) - special.gammaln(n - y + 1)
    return rising + log_choose[:, 0]


def draw_exchangeable_posterior(posterior: xr.Dataset, y: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """θ of a new report that observed y of n, per draw: exactly Beta(μκ + y, (1 − μ)κ + n − y)."""
    a, b = (v.values for v in _shape_parameters(posterior))
    return rng.beta(a + y, b + n - y)


def draw_new_theta(posterior: xr.Dataset, rng: np.random.Generator, covariates: np.ndarray | None = None) -> np.ndarray:
    """θ of new reports, per draw: one at the average covariates (None: shape of the draws), or one per
    covariate row (trailing axis)."""
    mean = report_means(posterior, covariates)
    kappa = posterior["kappa"].values[..., None]
    theta = rng.beta(mean * kappa, (1 - mean) * kappa)
    return theta[..., 0] if covariates is None else theta


def new_theta_distribution(posterior: xr.Dataset):
    """θ for a new report, Rao-Blackwellised: (cdf, mean, second moment) of the average over the draws of
    Beta(μκ, (1 − μ)κ); `cdf` takes an array of points."""
    mu, kappa = posterior["mu"].values.ravel(), posterior["kappa"].values.ravel()
    a, b = mu * kappa, (1 - mu) * kappa

    def cdf(x):
        return special.betainc(a, b, np.asarray(x, dtype=float)[..., None]).mean(axis=-1)

    return cdf, float(mu.mean()), float(np.mean(mu * (a + 1) / (kappa + 1)))


def heterogeneity_sd(posterior: xr.Dataset) -> np.ndarray:
    """Between-report SD of θ (at average covariates): √(μ(1 − μ)/(κ + 1)), per draw."""
    mu, kappa = posterior["mu"].values, posterior["kappa"].values
    return np.sqrt(mu * (1 - mu) / (kappa + 1))


def derive(posterior: xr.Dataset, reports: Reports, rng: np.random.Generator) -> xr.Dataset:
    """Report θ_i from their exact conditionals, predictive θ_new, the pooled mean μ and the
    between-report SD of θ."""
    mean = report_means(posterior, reports.covariates)
    kappa = posterior["kappa"].values[..., None]
    theta = rng.beta(mean * kappa + reports.y, (1 - mean) * kappa + reports.n - reports.y)
    dims = posterior["mu"].dims
    return xr.Dataset(
        {
            "theta": (dims + ("report",), theta),
            "theta_new": (dims, draw_new_theta(posterior, rng)),
            "pooled": posterior["mu"],
            "heterogeneity_sd": (dims, heterogeneity_sd(posterior)),
        },
        coords=posterior["mu"].coords,
    )


def _shape_parameters(posterior: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
    mu, kappa = posterior["mu"], posterior["kappa"]
    return mu * kappa, (1 - mu) * kappa
