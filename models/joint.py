"""Joint model: a target arm (another drug) in the same model as the reports, exchangeable with them
only with some probability (EXNEX, Neuenschwander et al. 2016):

    θ_target ~ (1 − w) · [a new report's θ from the hierarchical model] + w · Beta(a0, b0)

w, the non-exchangeable weight, is the discount: w = 0 is full exchangeability (the target is one more
report), w = 1 ignores the reports. The target's counts enter through their marginal likelihood, a
two-component mixture with θ_target integrated out, so the model has no extra latent variable (its
posterior can be integrated on the same grid as the reports' model); θ_target is then drawn, or its CDF
evaluated, exactly given the population parameters.

This is the exact model behind the robust MAP prior (1 − w)·MAP + w·Beta(a0, b0) updated with the
target's counts: the two routes differ only by the MAP prior's mixture approximation. The target's counts
also inform the population parameters here, but that feedback leaves θ_target's posterior unchanged. w
and the target's counts are `pm.Data`: one compiled program serves a whole sweep over w.

Functions here take the family module (`models.beta_binomial` or `models.logit_normal`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy import special, stats

from models import special as sf
from models.base import ModelSpec, Reports


def data_values(y_target: int, n_target: int, weight: float, vague: tuple[float, float]) -> dict:
    return {
        "target_responders": np.int64(y_target),
        "target_n": np.int64(n_target),
        "nonexchangeable_weight": np.float64(weight),
        "vague_a": np.float64(vague[0]),
        "vague_b": np.float64(vague[1]),
    }


def build_model(family: ModuleType, reports: Reports, y_target: int, n_target: int, prior, weight: float,
                vague) -> pm.Model:
    """The reports' model plus the target arm; the target is a new report at the average covariates."""
    model = family.build_model(reports, prior)
    with model:
        d = {k: pm.Data(k, v) for k, v in data_values(y_target, n_target, weight, vague).items()}
        y_t, n_t, w = d["target_responders"], d["target_n"], d["nonexchangeable_weight"]
        exchangeable = family.exchangeable_log_marginal(model, y_t, n_t)
        vague_marginal = sf.pt_log_betabinom(y_t, n_t, d["vague_a"], d["vague_b"])
        pm.Potential("target_loglik", pt.logaddexp(pt.log1p(-w) + exchangeable, pt.log(w) + vague_marginal))
    return model


def model_spec(family: ModuleType, reports: Reports, y_target: int, n_target: int, prior, weight: float,
               vague) -> ModelSpec:
    """The program's model and values, over the reports' distinct rows (`Reports.compressed`): the same
    log density, at a cost that grows with the rows, not the reports."""
    rows = reports.compressed()
    return ModelSpec(
        key=("joint_exnex", *family.structure_key(prior, reports.n_covariates)),
        build=lambda: build_model(family, rows, y_target, n_target, prior, weight, vague),
        values={**family.data_values(rows, prior), **data_values(y_target, n_target, weight, vague)},
        initial_point=family.initial_point(prior, reports.n_covariates),
        reports=len(rows),
    )


def _log_components(family: ModuleType, values: Mapping, y_target, n_target, weight, vague):
    """log((1 − w) p_exchangeable(y)) and log(w p_vague(y)) per point; None for a component of weight 0."""
    log_ex = None
    if weight < 1:
        log_ex = np.log1p(-weight) + family.log_marginal(values, [y_target], [n_target])[..., 0]
    log_nex = np.log(weight) + stats.betabinom.logpmf(y_target, n_target, *vague) if weight > 0 else None
    return log_ex, log_nex


def target_log_likelihood(family: ModuleType, values: Mapping, y_target: int, n_target: int, weight: float,
                          vague) -> np.ndarray:
    """log p(y_target | population) per point: the joint model's extra factor. Weighting the reports'
    posterior (draws or grid) by it gives the joint model's posterior exactly, without another fit."""
    log_ex, log_nex = _log_components(family, values, y_target, n_target, weight, vague)
    shape = np.shape(np.asarray(values["mu"]))
    if log_ex is None:
        return np.full(shape, log_nex)
    return log_ex if log_nex is None else np.logaddexp(log_ex, log_nex)


def exchangeable_probability(family: ModuleType, values: Mapping, y_target, n_target, weight, vague) -> np.ndarray:
    """P(the target is exchangeable | population, its counts) per point."""
    log_ex, log_nex = _log_components(family, values, y_target, n_target, weight, vague)
    shape = np.shape(np.asarray(values["mu"]))
    if log_nex is None:
        return np.ones(shape)
    if log_ex is None:
        return np.zeros(shape)
    return np.exp(log_ex - np.logaddexp(log_ex, log_nex))


def target_theta_cdf(family: ModuleType, values: Mapping, y_target, n_target, weight,
                     vague) -> Callable[[float], np.ndarray]:
    """x ↦ P(θ_target ≤ x | population, its counts) per point: the exchangeable component's exact
    conditional (a report's posterior θ) mixed with the vague component's Beta update. Needs the family's
    `report_theta_cdf` (the beta-binomial's is exact). The components' weights are computed once, for
    the many x of a quantile search."""
    return _target_mixture(family, values, y_target, n_target, weight, vague, family.report_theta_cdf,
                           special.betainc)


def target_theta_pdf(family: ModuleType, values: Mapping, y_target, n_target, weight,
                     vague) -> Callable[[float], np.ndarray]:
    """x ↦ the density of θ_target at x per point (the derivative of `target_theta_cdf`)."""
    return _target_mixture(family, values, y_target, n_target, weight, vague, family.report_theta_pdf, sf.beta_pdf)


def _target_mixture(family: ModuleType, values: Mapping, y_target, n_target, weight, vague, exchangeable_part,
                    vague_part) -> Callable[[float], np.ndarray]:
    """x ↦ p_ex · (the exchangeable component's function of x) + (1 − p_ex) · (the vague Beta's)."""
    p_ex = exchangeable_probability(family, values, y_target, n_target, weight, vague)
    a, b = vague[0] + y_target, vague[1] + n_target - y_target
    exchangeable = exchangeable_part(values, y_target, n_target) if weight < 1 else lambda x: 0.0
    return lambda x: p_ex * exchangeable(x) + (1 - p_ex) * vague_part(a, b, x)


def target_theta_moments(family: ModuleType, values: Mapping, y_target, n_target, weight, vague):
    p_ex = exchangeable_probability(family, values, y_target, n_target, weight, vague)
    a, b = vague[0] + y_target, vague[1] + n_target - y_target
    vague_mean, vague_second = a / (a + b), a * (a + 1) / ((a + b) * (a + b + 1))
    if weight < 1:
        mean, second = family.report_theta_moments(values, y_target, n_target)
    else:
        mean = second = 0.0
    return p_ex * mean + (1 - p_ex) * vague_mean, p_ex * second + (1 - p_ex) * vague_second


def draw_target(family: ModuleType, values: Mapping, y_target: int, n_target: int, weight: float, vague,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(θ_target, P(exchangeable)) per point, θ_target drawn exactly: the component by its posterior
    probability, then θ from that component's conditional."""
    p_ex = exchangeable_probability(family, values, y_target, n_target, weight, vague)
    shape = p_ex.shape
    exchangeable = rng.random(shape) < p_ex
    if weight < 1:
        from_reports = family.draw_report_theta(values, [y_target], [n_target], None, rng)[..., 0]
    else:
        from_reports = np.full(shape, np.nan)
    theta = np.where(exchangeable, from_reports,
                     rng.beta(vague[0] + y_target, vague[1] + n_target - y_target, size=shape))
    return theta, p_ex
