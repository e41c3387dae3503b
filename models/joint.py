"""Joint model: a target arm (another drug) in the same model as the reports, exchangeable with them
only with some probability (EXNEX, Neuenschwander et al. 2016):

    θ_target ~ (1 − w) · [a new report's θ from the hierarchical model] + w · Beta(a0, b0)

w, the non-exchangeable weight, is the discount: w = 0 is full exchangeability (the target is one more
report), w = 1 ignores the reports. The target's counts enter through their marginal likelihood, a
two-component mixture with θ_target integrated out, so the model has no extra latent variable and
samples as well as the reports' model does; θ_target is then drawn exactly for every posterior draw
(choose the component by its posterior probability, then draw θ from that component's conditional).

This is the exact model behind the robust MAP prior (1 − w)·MAP + w·Beta(a0, b0) updated with the
target's counts: the two routes differ only by the MAP prior's mixture approximation and Monte Carlo
error. The target's counts also inform μ and κ (or τ) here, but that feedback leaves θ_target's posterior
unchanged. w and the target's counts are `pm.Data`: one compiled sampler serves a whole sweep over w.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy import stats

from models import FAMILIES, ModelSpec, Reports, beta_binomial


def data_values(y_target: int, n_target: int, weight: float, vague: tuple[float, float]) -> dict:
    return {
        "target_responders": np.int64(y_target),
        "target_n": np.int64(n_target),
        "nonexchangeable_weight": np.float64(weight),
        "vague_a": np.float64(vague[0]),
        "vague_b": np.float64(vague[1]),
    }


def build_model(family_name: str, reports: Reports, y_target: int, n_target: int, prior, weight: float,
                vague) -> pm.Model:
    """The reports' model plus the target arm; the target is a new report at the average covariates."""
    family = FAMILIES[family_name]
    bound = _count_bound(reports.n, n_target)
    model = family.build_model(reports, prior, bound)
    with model:
        d = {k: pm.Data(k, v) for k, v in data_values(y_target, n_target, weight, vague).items()}
        y_t, n_t, w = d["target_responders"], d["target_n"], d["nonexchangeable_weight"]
        exchangeable = family.exchangeable_log_marginal(model, y_t, n_t, bound)
        vague_marginal = pm.logp(pm.BetaBinomial.dist(n=n_t, alpha=d["vague_a"], beta=d["vague_b"]), y_t)
        pm.Potential("target_loglik", pt.logaddexp(pt.log1p(-w) + exchangeable, pt.log(w) + vague_marginal))
    return model


def model_spec(family_name: str, reports: Reports, y_target: int, n_target: int, prior, weight: float,
               vague) -> ModelSpec:
    family = FAMILIES[family_name]
    return ModelSpec(
        key=("joint_exnex", *family.structure_key(prior, reports.n_covariates), _count_bound(reports.n, n_target)),
        build=lambda: build_model(family_name, reports, y_target, n_target, prior, weight, vague),
        values={**family.data_values(reports, prior), **data_values(y_target, n_target, weight, vague)},
        initial_point=family.initial_point(prior, reports.n_covariates),
        reports=len(reports),
    )


def _count_bound(n, n_target: int) -> int:
    return beta_binomial.count_bound(np.append(n, n_target))


def derive_target(
    family_name: str, posterior: xr.Dataset, y_target: int, n_target: int, weight: float, vague, rng: np.random.Generator
) -> xr.Dataset:
    """θ_target and the posterior probability that the target is exchangeable, per draw, exactly."""
    family = FAMILIES[family_name]
    log_ex, log_nex = _log_components(family, posterior, y_target, n_target, weight, vague)
    shape = posterior["mu"].shape
    if log_nex is None:
        p_exchangeable = np.ones(shape)
    elif log_ex is None:
        p_exchangeable = np.zeros(shape)
    else:
        p_exchangeable = np.exp(log_ex - np.logaddexp(log_ex, log_nex))
    exchangeable = rng.random(shape) < p_exchangeable
    theta = np.where(
        exchangeable,
        family.draw_exchangeable_posterior(posterior, y_target, n_target, rng) if weight < 1 else np.nan,
        rng.beta(vague[0] + y_target, vague[1] + n_target - y_target, size=shape),
    )
    dims = posterior["mu"].dims
    return xr.Dataset(
        {"theta_target": (dims, theta), "p_exchangeable": (dims, p_exchangeable)}, coords=posterior["mu"].coords
    )


def target_log_likelihood(family_name: str, posterior: xr.Dataset, y_target: int, n_target: int, weight: float,
                          vague) -> np.ndarray:
    """log p(y_target | population) per draw: the joint model's extra factor. Weighting draws of the
    reports' posterior by it gives the joint model's posterior exactly (importance sampling with
    weights at most 1), without fitting the joint model."""
    log_ex, log_nex = _log_components(FAMILIES[family_name], posterior, y_target, n_target, weight, vague)
    if log_ex is None:
        return np.full(posterior["mu"].shape, log_nex)
    return log_ex if log_nex is None else np.logaddexp(log_ex, log_nex)


def _log_components(family, posterior, y_target, n_target, weight, vague):
    """log((1 − w) p_exchangeable(y)) and log(w p_vague(y)); None for a component of weight 0."""
    log_ex = np.log1p(-weight) + family.log_target_marginal(posterior, y_target, n_target) if weight < 1 else None
    log_nex = np.log(weight) + stats.betabinom.logpmf(y_target, n_target, *vague) if weight > 0 else None
    return log_ex, log_nex
