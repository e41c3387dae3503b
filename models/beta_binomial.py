"""Hierarchical beta-binomial (primary model).

    y_i ~ Binomial(n_i, θ_i),   θ_i ~ Beta(μκ, (1 − μ)κ)

NUTS samples only the population parameters (μ, κ), with θ integrated out (beta-binomial
likelihood). Given (μ, κ) the θ_i are independent with the exact conditional
Beta(μκ + y_i, (1 − μ)κ + n_i − y_i), drawn afterwards for every posterior draw. This mixes far better
than sampling θ in the centred form, whose funnel at small κ makes NUTS diverge.

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

from models.padding import pad, padded_size
from models.priors import BetaBinomialPrior

hyperparameters = ("mu", "kappa")
plotted_parameters = ("mu", "u")  # u = κ^(-1/2): κ itself is too heavy-tailed to show a density



def initial_point(prior: BetaBinomialPrior) -> dict[str, float]:
    """Starting values (jittered per chain) that do not depend on data or prior values: a compiled
    sampler keeps the starting values of the data it was compiled with, so data-dependent ones would
    make a fit depend on which fit happened to compile the sampler."""
    return {"mu": 0.5, "u": 0.5} if prior.kind == "weakly_informative" else {"mu": 0.5, "u_fraction": 0.5}


def structure_key(prior: BetaBinomialPrior) -> tuple:
    """θ is integrated out, so the (padded) number of reports is the only size that matters."""
    return ("beta_binomial", prior.kind)


def data_values(y: np.ndarray, n: np.ndarray, prior: BetaBinomialPrior, selection_weight: float = 1.0) -> dict:
    size = padded_size(len(y))
    values = {
        "responders": pad(y, size),
        "n_treated": pad(n, size),
        "selection_weight": np.float64(selection_weight),
        "mean_a": np.float64(prior.mean_a),
        "mean_b": np.float64(prior.mean_b),
    }
    if prior.kind == "weakly_informative":
        values["u_scale"] = np.float64(prior.u_scale)
    else:
        values["u_max"] = np.float64(prior.u_max)
    return values


def count_bound(n) -> int:
    """The static length of the rising-factorial loop: at least the largest report."""
    return padded_size(int(np.max(n, initial=1)))


def build_model(y: np.ndarray, n: np.ndarray, prior: BetaBinomialPrior, selection_weight: float = 1.0,
                bound: int | None = None) -> pm.Model:
    """`bound`: the rising-factorial loop length (`count_bound` of the largest report by default)."""
    values = data_values(y, n, prior, selection_weight)
    bound = bound or count_bound(n)
    with pm.Model(coords={"report": np.arange(values["n_treated"].size)}) as model:
        data = {name: pm.Data(name, value) for name, value in values.items()}
        mu = pm.Beta("mu", data["mean_a"], data["mean_b"])
        if prior.kind == "weakly_informative":
            u = pm.HalfNormal("u", data["u_scale"])
        else:
            # u = u_max · v with v ~ U(0, 1): the transform of v does not depend on the data value u_max.
            u = pm.Deterministic("u", data["u_max"] * pm.Uniform("u_fraction", 0.0, 1.0))
        kappa = pm.Deterministic("kappa", u**-2)
        pm.CustomDist(
            "y",
            mu,
            kappa,
            data["n_treated"],
            logp=partial(beta_binomial_logp, bound=bound),
            random=_beta_binomial_random,
            observed=data["responders"],
            dims="report",
        )
        # Publication of single-patient reports: P(y | published) = P(y) P(pub | y) / P(pub), with a
        # success always published and a failure with probability ω; P(pub | μ, κ) = μ + ω(1 − μ).
        pm.Potential("selection", single_report_selection(data["responders"], data["n_treated"], mu, data["selection_weight"]))
    return model


def single_report_selection(y, n, success_probability, weight):
    """log P(pub | y) − log P(pub) summed over single-patient reports; 0 when ω = 1."""
    single = pt.eq(n, 1)
    term = (1 - y) * pt.log(weight) - pt.log(success_probability + weight * (1 - success_probability))
    return pt.sum(pt.switch(single, term, 0.0))


def beta_binomial_logp(y, mu, kappa, n, bound: int):
    """log BetaBinomial(y | n, μκ, (1 − μ)κ), elementwise, stable for any κ > 0, for n ≤ `bound`.

    The loop over j runs to the static `bound` (a compiled program needs fixed shapes); the masks make
    every term with j ≥ n exactly 0, so the value does not depend on the bound."""
    a, b = mu * kappa, (1 - mu) * kappa
    j = pt.arange(bound)
    y_, n_ = y[..., None], n[..., None]
    rising = (
        pt.switch(j < y_, pt.log(a + j), 0.0)
        + pt.switch(j < n_ - y_, pt.log(b + j), 0.0)
        - pt.switch(j < n_, pt.log(kappa + j), 0.0)
    ).sum(axis=-1)
    log_choose = pt.gammaln(n + 1) - pt.gammaln(y + 1) - pt.gammaln(n - y + 1)
    return log_choose + rising


def _beta_binomial_random(mu, kappa, n, rng=None, size=None):
    return rng.binomial(n, rng.beta(mu * kappa, (1 - mu) * kappa, size=size))


def exchangeable_log_marginal(model: pm.Model, y, n, bound: int):
    """log p(y | μ, κ) for a new report of θ ~ Beta(μκ, (1 − μ)κ): the beta-binomial, θ integrated out."""
    return beta_binomial_logp(y, model["mu"], model["kappa"], n, bound)


def log_marginal_draws(posterior: xr.Dataset, y, n) -> np.ndarray:
    """log p(y_i | μ, κ) with θ_i integrated out, per draw and report (trailing axis), in NumPy; the same
    rising-factorial form as the model's likelihood. Used for PSIS-LOO and the joint model's θ draws."""
    a, b = (v.values[..., None, None] for v in _shape_parameters(posterior))
    y, n = np.atleast_1d(y)[:, None], np.atleast_1d(n)[:, None]
    j = np.arange(int(n.max()))
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


def draw_new_theta(posterior: xr.Dataset, rng: np.random.Generator, size: int | None = None) -> xr.DataArray:
    """θ of new reports, one per draw (and per `size` new reports): Beta(μκ, (1 − μ)κ)."""
    a, b = _shape_parameters(posterior)
    shape = a.shape if size is None else a.shape + (size,)
    draws = rng.beta(_expand(a.values, size), _expand(b.values, size), size=shape)
    dims = a.dims if size is None else a.dims + ("new_report",)
    return xr.DataArray(draws, dims=dims, coords=a.coords)


def derive(posterior: xr.Dataset, y: np.ndarray, n: np.ndarray, rng: np.random.Generator) -> xr.Dataset:
    """Report θ_i from their exact conditionals, predictive θ_new, and the pooled mean μ."""
    a, b = _shape_parameters(posterior)
    y = np.asarray(y)
    n = np.asarray(n)
    theta = rng.beta(a.values[..., None] + y, b.values[..., None] + (n - y))
    return xr.Dataset(
        {
            "theta": (a.dims + ("report",), theta),
            "theta_new": draw_new_theta(posterior, rng),
            "pooled": posterior["mu"],
        },
        coords=a.coords,
    )


def _shape_parameters(posterior: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
    mu, kappa = posterior["mu"], posterior["kappa"]
    return mu * kappa, (1 - mu) * kappa


def _expand(values: np.ndarray, size: int | None) -> np.ndarray:
    return values if size is None else values[..., None]
