"""Exact posteriors by numerical integration on a grid, the yardstick for the MCMC reference tests.

Both reference models have two population parameters, so their posteriors can be computed on a fine
grid to more digits than the published figures; the MCMC answer is then judged against these values
with a tolerance set by its own Monte Carlo standard error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats
from scipy.special import betaln, expit, gammaln, logsumexp

# BDA3 Table 5.1 (rat tumours) and the RBesT / bayesmeta AS placebo arms, as in shared/references.
RAT_Y = np.array(
    [0] * 14 + [1] * 8 + [2] * 9 + [1, 5, 2, 5, 3, 2, 7, 7, 3, 3, 2, 9, 10, 4, 4, 4, 4, 4, 4, 4]
    + [10, 4, 4, 4, 5, 11, 12, 5, 5, 6, 5, 6, 6, 6, 6, 16, 15, 15, 9, 4]
)
RAT_N = np.array(
    [20] * 7 + [19] * 4 + [18, 18, 17, 20, 20, 20, 20, 19, 19, 18, 18, 25, 24, 23, 20, 20, 20, 20, 20, 20, 10, 49]
    + [19, 46, 27, 17, 49, 47, 20, 20, 13, 48, 50, 20, 20, 20, 20, 20, 20, 20, 48, 19, 19, 19, 22, 46, 49, 20, 20]
    + [23, 19, 22, 20, 20, 20, 52, 46, 47, 24, 14]
)
AS_R = np.array([23, 12, 19, 9, 39, 6, 9, 10])
AS_N = np.array([107, 44, 51, 39, 139, 20, 78, 35])


def reference_data(y, n, name: str):
    """A reference data set as the pipeline takes it (reports named name1, name2, ...)."""
    from analysis.inputs.evidence import BinomialData

    return BinomialData(tuple(f"{name}{i + 1}" for i in range(len(y))), np.asarray(n), np.asarray(y), "reference", name)


def inputs_for(config, data, table=None, design=None):
    """A step's inputs for counts made without a table file (no companion files)."""
    from analysis.inputs.bundle import Inputs

    return Inputs(config, table, data, None, None, None, None, design)


@dataclass(frozen=True)
class GridPosterior:
    """Normalised weights over a 2-D grid of population parameters, with named quantities on it."""

    weights: np.ndarray
    quantities: dict[str, np.ndarray]
    axes: dict[str, tuple[int, np.ndarray]]
    """Quantities that are grid axes: name -> (axis number, evenly spaced grid values)."""

    def mean(self, name: str) -> float:
        return float(np.sum(self.weights * self.quantities[name]))

    def quantile(self, name: str, q: float) -> float:
        if name in self.axes:
            # Marginal density on the axis, integrated by the trapezoid rule: no staircase from ties.
            axis, values = self.axes[name]
            density = self.weights.sum(axis=1 - axis)
            cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2)])
            return float(np.interp(q, cdf / cdf[-1], values))
        values = self.quantities[name].ravel()
        order = np.argsort(values)
        cdf = np.cumsum(self.weights.ravel()[order])
        return float(np.interp(q, cdf, values[order]))


def _log_selection(log_p_all, y, n, selected, weight) -> np.ndarray:
    """Publication selection: Σ over reports in scope of [y_i < n_i] log ω − log(P_i + ω(1 − P_i)),
    with log P_i = log P(y_i = n_i | population) given per report along the last axis."""
    if selected is None or weight == 1.0:
        return 0.0
    p_all = np.exp(log_p_all)
    term = np.where(np.asarray(y) < np.asarray(n), np.log(weight), 0.0) - np.log(p_all + weight * (1 - p_all))
    return np.sum(np.where(np.asarray(selected), term, 0.0), axis=-1)


def beta_binomial(y, n, prior, size: int = 600, logit_mu_range=(-5.0, 6.0), log_u_range=(-5.0, None),
                  selected=None, weight: float = 1.0) -> GridPosterior:
    """Posterior of (μ, u = κ^(-1/2)) for a `BetaBinomialPrior`, θ integrated out, on a grid in
    (logit μ, log u). The ranges must hold all but a negligible share of the posterior; the lower end of
    log u truncates near-homogeneity (κ ≤ e^(-2 log u)). `selected`, `weight`: publication selection of
    the reports in scope (see models.publication), P(y = n) = B(α + n, β) / B(α, β)."""
    log_u_max = log_u_range[1]
    if log_u_max is None:
        log_u_max = np.log(prior.u_max) if prior.kind == "bda3" else np.log(prior.u_scale) + 2.0
    logit_mu = np.linspace(*logit_mu_range, size)
    log_u = np.linspace(log_u_range[0], log_u_max, size)
    lm, lu = np.meshgrid(logit_mu, log_u, indexing="ij")
    mu, u = expit(lm), np.exp(lu)
    kappa = u**-2
    a, b = mu * kappa, (1 - mu) * kappa
    log_norm = betaln(a, b)
    pairs, counts = np.unique(np.column_stack([y, n]), axis=0, return_counts=True)
    loglik = sum(count * (betaln(a + yi, b + ni - yi) - log_norm) for (yi, ni), count in zip(pairs, counts))
    if selected is not None and weight != 1.0:
        log_p_all = np.stack([betaln(a + ni, b) - log_norm for ni in n], axis=-1)
        loglik = loglik + _log_selection(log_p_all, y, n, selected, weight)
    log_prior = stats.beta.logpdf(mu, prior.mean_a, prior.mean_b)
    if prior.kind == "weakly_informative":
        log_prior = log_prior + stats.halfnorm.logpdf(u, scale=prior.u_scale)
    # (u ~ Uniform(0, u_max) for bda3 adds a constant.) Jacobians of the logit and log transforms:
    logpost = loglik + log_prior + np.log(mu * (1 - mu)) + np.log(u)
    weights = np.exp(logpost - logsumexp(logpost))
    return GridPosterior(
        weights,
        {"alpha": a, "beta": b, "mu": mu, "kappa": kappa, "u": u},
        axes={"mu": (0, expit(logit_mu)), "u": (1, np.exp(log_u))},
    )


def as_logit_normal(tau_scale: float = 1.0, size: int = 300) -> GridPosterior:
    """RBesT gMAP set-up: logit θ_i ~ N(μ, τ), μ ~ N(0, 2), τ ~ HalfNormal(tau_scale); θ_i integrated out."""
    return logit_normal(AS_R, AS_N, tau_scale=tau_scale, size=size, mu_range=(-2.6, 0.4), tau_max=3.0)


def logit_normal(y, n, tau_scale: float = 1.0, mu_sd: float = 2.0, size: int = 300, mu_range=(-2.6, 0.4),
                 tau_max: float = 3.0, selected=None, weight: float = 1.0) -> GridPosterior:
    """logit θ_i ~ N(μ, τ), μ ~ N(0, mu_sd), τ ~ HalfNormal(tau_scale), θ_i integrated out by 80-node
    Gauss-Hermite quadrature; `selected`, `weight`: publication selection as in `beta_binomial`."""
    nodes, node_weights = np.polynomial.hermite_e.hermegauss(80)
    node_weights = node_weights / node_weights.sum()
    mu_grid = np.linspace(*mu_range, size)
    tau_grid = np.linspace(1e-4, tau_max, size)
    mu, tau = np.meshgrid(mu_grid, tau_grid, indexing="ij")
    eta = mu[..., None] + tau[..., None] * nodes
    loglik = np.zeros_like(mu)
    for r, m in zip(y, n):
        log_binom = gammaln(m + 1) - gammaln(r + 1) - gammaln(m - r + 1)
        # log p = -log(1 + e^-eta), log(1 - p) = -log(1 + e^eta): finite for every node.
        log_pmf = log_binom - r * np.logaddexp(0, -eta) - (m - r) * np.logaddexp(0, eta)
        loglik += logsumexp(log_pmf, b=node_weights, axis=-1)
    if selected is not None and weight != 1.0:
        log_p_all = np.stack([logsumexp(-m * np.logaddexp(0, -eta), b=node_weights, axis=-1) for m in n], axis=-1)
        loglik = loglik + _log_selection(log_p_all, y, n, selected, weight)
    logpost = loglik + stats.norm.logpdf(mu, 0, mu_sd) + stats.halfnorm.logpdf(tau, scale=tau_scale)
    weights = np.exp(logpost - logsumexp(logpost))
    pop_mean = expit(mu[..., None] + tau[..., None] * nodes) @ node_weights
    return GridPosterior(
        weights, {"mu": mu, "tau": tau, "theta_new_mean": pop_mean}, axes={"mu": (0, mu_grid), "tau": (1, tau_grid)}
    )


def logit_normal_predictive_quantile(post: GridPosterior, q: float) -> float:
    """Quantile of θ_new = expit(μ + τ z) under the grid posterior of (μ, τ)."""
    keep = post.weights > 1e-18
    mu, tau, w = post.quantities["mu"][keep], post.quantities["tau"][keep], post.weights[keep]

    def cdf(t: float) -> float:
        return float(np.sum(w * special.ndtr((np.log(t / (1 - t)) - mu) / tau)))

    return optimize.brentq(lambda t: cdf(t) - q, 1e-6, 1 - 1e-6, xtol=1e-9)


def beta_binomial_predictive_quantile(post: GridPosterior, q: float, y: int = 0, n: int = 0) -> float:
    """Quantile of θ ~ Beta(α + y, β + n − y) under the grid posterior: θ_new (y = n = 0) or a report's θ_i."""
    # Points of weight below 1e-18 (together less than 1e-12 of the posterior) are left out.
    keep = post.weights > 1e-18
    a, b, w = post.quantities["alpha"][keep] + y, post.quantities["beta"][keep] + n - y, post.weights[keep]

    def cdf(t: float) -> float:
        return float(np.sum(w * special.betainc(a, b, t)))

    return optimize.brentq(lambda t: cdf(t) - q, 1e-9, 1 - 1e-9, xtol=1e-9)
