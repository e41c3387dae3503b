"""Prior settings of each model family, validated once here and used as-is by the models and configs."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat


SLOPE_SD = 2.5
"""Gelman et al. (2008)'s weakly informative scale for logistic regression coefficients, with binary
covariates centred and continuous ones centred and divided by two standard deviations: a one-unit change
(a binary contrast, or ±1 SD) moving the log-odds by more than 5 is a priori unlikely (95%)."""


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BetaBinomialPrior(_Settings):
    """Priors of the hierarchical beta-binomial, in the BDA3 parameterisation.

    The pooled mean μ ~ Beta(mean_a, mean_b). Heterogeneity enters through u = κ^(-1/2), where κ is
    the Beta concentration:
    - ``weakly_informative`` (default): u ~ HalfNormal(u_scale). BDA3's reference prior is flat in u;
      the half-normal keeps that shape near homogeneity (u → 0) and shrinks away from κ < 1, where
      the report-level distribution turns U-shaped (reports either all respond or none do). At μ = 0.5,
      u ≈ τ/2 for a logit-normal τ, so u_scale = 0.5 matches τ ~ HalfNormal(1).
    - ``bda3``: u ~ Uniform(0, u_max), which with μ ~ Beta(1, 1) is p(α, β) ∝ (α+β)^(-5/2) truncated
      at κ ≥ u_max^(-2) (BDA3 section 5.3).
    """

    kind: Literal["weakly_informative", "bda3"] = "weakly_informative"
    mean_a: PositiveFloat = 1.0
    mean_b: PositiveFloat = 1.0
    u_scale: PositiveFloat = 0.5
    u_max: PositiveFloat = 10.0
    slope_sd: PositiveFloat = SLOPE_SD
    """β ~ Normal(0, slope_sd) per covariate on the logit of the report mean (meta-regression only)."""


class LogitNormalPrior(_Settings):
    """Priors of the logit-normal random-effects model: logit θ_i ~ Normal(μ, τ).

    μ ~ Normal(mu_mean, mu_sd); τ ~ HalfNormal(tau_scale) or HalfCauchy(tau_scale). The defaults
    (Normal(0, 2), HalfNormal(1)) are the RBesT convention for binary endpoints.
    """

    mu_mean: float = 0.0
    mu_sd: PositiveFloat = 2.0
    tau_dist: Literal["half_normal", "half_cauchy"] = "half_normal"
    tau_scale: PositiveFloat = Field(1.0)
    slope_sd: PositiveFloat = SLOPE_SD
    """β ~ Normal(0, slope_sd) per covariate on the logit scale (meta-regression only)."""


class SequentialPrior(_Settings):
    """Priors of the sequential model: μ_s ~ Normal(mu_mean, mu_sd), τ_s ~ HalfNormal(tau_scale) for each
    of the four stages, the correlation of the report effects R ~ LKJ(lkj_eta). The defaults are the
    logit-normal RBesT convention (Normal(0, 2), HalfNormal(1)) and LKJ(2), which keeps each correlation's
    marginal at Beta(3, 3) on (−1, 1) (standard deviation 0.38): mild shrinkage toward independence."""

    mu_mean: float = 0.0
    mu_sd: PositiveFloat = 2.0
    tau_scale: PositiveFloat = 1.0
    lkj_eta: PositiveFloat = 2.0
