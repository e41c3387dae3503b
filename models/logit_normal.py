"""Logit-normal binomial random-effects model (alternative family).

    y_i ~ Binomial(n_i, θ_i),   logit θ_i = μ + τ z_i,   z_i ~ Normal(0, 1)   (non-centred)

The pooled quantity is the population mean E[θ] = ∫ expit(μ + τ z) φ(z) dz, computed per draw by
Gauss-Hermite quadrature; expit(μ) (the median report's θ) is reported beside it.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy import special
from scipy.special import expit

from models.padding import pad, padded_size
from models.beta_binomial import single_report_selection
from models.priors import LogitNormalPrior

hyperparameters = ("mu", "tau")
plotted_parameters = ("mu", "tau")



def initial_point(prior: LogitNormalPrior) -> dict[str, float]:
    """Data-independent starting values (jittered per chain); see `beta_binomial.initial_point`."""
    return {"mu": 0.0, "tau": 0.5}

_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(61)
_HERMITE_WEIGHTS = _HERMITE_WEIGHTS / _HERMITE_WEIGHTS.sum()


def structure_key(prior: LogitNormalPrior) -> tuple:
    """Each report has its own latent z_i: the padded number of reports is part of the structure (a
    padded report has no likelihood, so its z_i keeps its prior and is dropped after sampling)."""
    return ("logit_normal", prior.tau_dist)


def data_values(y: np.ndarray, n: np.ndarray, prior: LogitNormalPrior, selection_weight: float = 1.0) -> dict:
    size = padded_size(len(y))
    return {
        "responders": pad(y, size),
        "n_treated": pad(n, size),
        "selection_weight": np.float64(selection_weight),
        "mu_mean": np.float64(prior.mu_mean),
        "mu_sd": np.float64(prior.mu_sd),
        "tau_scale": np.float64(prior.tau_scale),
    }


def build_model(y: np.ndarray, n: np.ndarray, prior: LogitNormalPrior, selection_weight: float = 1.0,
                bound: int | None = None) -> pm.Model:
    """`bound` is unused (the binomial likelihood needs no loop); accepted for a common interface."""
    values = data_values(y, n, prior, selection_weight)
    with pm.Model(coords={"report": np.arange(values["n_treated"].size)}) as model:
        data = {name: pm.Data(name, value) for name, value in values.items()}
        mu = pm.Normal("mu", data["mu_mean"], data["mu_sd"])
        if prior.tau_dist == "half_normal":
            tau = pm.HalfNormal("tau", data["tau_scale"])
        else:
            tau = pm.HalfCauchy("tau", data["tau_scale"])
        z = pm.Normal("z", 0.0, 1.0, dims="report")
        theta = pm.Deterministic("theta", pm.math.invlogit(mu + tau * z), dims="report")
        pm.Binomial("y", n=data["n_treated"], p=theta, observed=data["responders"], dims="report")
        # Publication of single-patient reports (see beta_binomial): P(pub) = E[θ] + ω(1 − E[θ]).
        population = pt.sum(pm.math.invlogit(mu + tau * _HERMITE_NODES) * _HERMITE_WEIGHTS)
        pm.Potential(
            "selection",
            single_report_selection(data["responders"], data["n_treated"], population, data["selection_weight"]),
        )
    return model


def population_mean(mu: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """E[expit(μ + τ z)] over z ~ Normal(0, 1), elementwise in (μ, τ)."""
    mu = np.asarray(mu)[..., None]
    tau = np.asarray(tau)[..., None]
    return expit(mu + tau * _HERMITE_NODES) @ _HERMITE_WEIGHTS


def exchangeable_log_marginal(model: pm.Model, y, n, bound: int | None = None):
    """log p(y | μ, τ) for a new report, θ = expit(μ + τ z) integrated out by Gauss-Hermite quadrature."""
    eta = model["mu"] + model["tau"] * _HERMITE_NODES
    log_pmf = (
        pt.gammaln(n + 1) - pt.gammaln(y + 1) - pt.gammaln(n - y + 1)
        - y * pt.softplus(-eta) - (n - y) * pt.softplus(eta)
    )
    return pt.logsumexp(log_pmf + np.log(_HERMITE_WEIGHTS))


def log_marginal_draws(posterior: xr.Dataset, y, n) -> np.ndarray:
    """log p(y_i | μ, τ) with θ_i integrated out (quadrature), per draw and report (trailing axis)."""
    eta = posterior["mu"].values[..., None, None] + posterior["tau"].values[..., None, None] * _HERMITE_NODES
    y, n = np.atleast_1d(y)[:, None], np.atleast_1d(n)[:, None]
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


def draw_new_theta(posterior: xr.Dataset, rng: np.random.Generator, size: int | None = None) -> xr.DataArray:
    """θ of new reports, one per draw (and per `size` new reports): expit(μ + τ z_new)."""
    mu, tau = posterior["mu"], posterior["tau"]
    shape = mu.shape if size is None else mu.shape + (size,)
    z_new = rng.standard_normal(shape)
    if size is None:
        return xr.DataArray(expit(mu.values + tau.values * z_new), dims=mu.dims, coords=mu.coords)
    values = expit(mu.values[..., None] + tau.values[..., None] * z_new)
    return xr.DataArray(values, dims=mu.dims + ("new_report",), coords=mu.coords)


def derive(posterior: xr.Dataset, y: np.ndarray, n: np.ndarray, rng: np.random.Generator) -> xr.Dataset:
    """θ_i are sampled by NUTS already; add θ_new, the population mean E[θ] and expit(μ)."""
    mu, tau = posterior["mu"], posterior["tau"]
    return xr.Dataset(
        {
            "theta_new": draw_new_theta(posterior, rng),
            "pooled": (mu.dims, population_mean(mu.values, tau.values)),
            "expit_mu": (mu.dims, expit(mu.values)),
        },
        coords=mu.coords,
    )
