"""Pure model definitions: report counts and prior settings in, `pm.Model` (and exact derived draws) out.

Each family module offers the same small interface, so fitting, sensitivity analyses and calibration
share one code path:

- ``build_model(reports, prior, bound)``: the PyMC model of a `Reports` set; data, covariates, the
  publication-selection weight and prior hyperparameters are ``pm.Data``;
- ``structure_key(prior, n_covariates)``: models with equal keys (and equal padded sizes, see
  `models.padding`) share one compiled sampler;
- ``data_values(reports, prior)``: the ``pm.Data`` values to swap into such a sampler;
- ``initial_point(prior, n_covariates)``: data-independent starting values for the sampler;
- ``hyperparameters``: the population-level variable names; ``plotted_parameters``: those to plot;
  ``heavy_tailed``: those whose posterior mean may not exist (summarised by quantiles only);
- ``exchangeable_log_marginal(model, y, n, bound)``: log p(y | population) for a new report at the
  average covariates, θ integrated out;
- ``log_marginal_draws(posterior, reports)``: log p(y_i | population) per draw and report, θ_i integrated
  out (PSIS-LOO);
- ``draw_exchangeable_posterior(posterior, y, n, rng)``: exact draws of a new report's θ given its counts;
- ``draw_new_theta(posterior, rng, covariates)``: θ of new reports (one per covariate row; one at the
  average covariates when None);
- ``new_theta_distribution(posterior)``: the predictive distribution of θ for a new report,
  Rao-Blackwellised (the average over the draws of its exact conditional distribution): CDF and moments;
- ``population_mean_at(posterior, covariates)``: E[θ | x] per draw for covariate rows (meta-regression);
- ``derive(posterior, reports, rng)``: report θ_i, predictive θ_new, the pooled mean and the
  between-report SD of θ, from the draws.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pymc as pm


@dataclass(frozen=True)
class Reports:
    """What a model sees of the evidence: responders `y` of `n` treated per report; optional report-level
    covariates (one column each, centred and scaled by the caller); which reports a publication-selection
    mechanism applies to (`selected`) and its weight ω (`publication_weight`, 1 = no selection)."""

    y: np.ndarray
    n: np.ndarray
    covariates: np.ndarray | None = None
    selected: np.ndarray | None = None
    publication_weight: float = 1.0

    def __post_init__(self) -> None:
        y, n = np.asarray(self.y, dtype=np.int64), np.asarray(self.n, dtype=np.int64)
        covariates = np.zeros((y.size, 0)) if self.covariates is None else np.asarray(self.covariates, dtype=float)
        selected = np.zeros(y.size, dtype=bool) if self.selected is None else np.asarray(self.selected, dtype=bool)
        for name, value in {"y": y, "n": n, "covariates": covariates, "selected": selected}.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "publication_weight", float(self.publication_weight))

    def __len__(self) -> int:
        return int(self.y.size)

    @property
    def n_covariates(self) -> int:
        return int(self.covariates.shape[1])

    def subset(self, keep) -> "Reports":
        """The reports where `keep` is true (a boolean mask or indices), everything else unchanged."""
        return Reports(self.y[keep], self.n[keep], self.covariates[keep], self.selected[keep], self.publication_weight)


@dataclass(frozen=True)
class ModelSpec:
    """What a sampler cache needs: a structure key, how to build the model, and the values to swap in."""

    key: tuple
    build: Callable[[], pm.Model] = field(compare=False)
    values: dict = field(compare=False)
    initial_point: dict = field(compare=False)
    reports: int = field(compare=False, default=0)
    """The real number of reports: draws along the padded `report` dimension beyond it are dropped."""


def model_spec(family_name: str, reports: Reports, prior) -> ModelSpec:
    """The reports' model, as the joint model with an empty target arm.

    A target arm with n = 0 adds log 1 = 0 to the log density, so the reports' model and every joint
    (EXNEX) model of the same family and prior share one compiled sampler.
    """
    return joint.model_spec(family_name, reports, 0, 0, prior, EMPTY_TARGET_WEIGHT, (1.0, 1.0))


EMPTY_TARGET_WEIGHT = 0.5
"""Any w in (0, 1) gives log((1 − w) · 1 + w · 1) = 0 for an empty target arm."""

from models import beta_binomial, logit_normal  # noqa: E402  (the families use Reports above)

FAMILIES = {
    "beta_binomial": beta_binomial,
    "logit_normal": logit_normal,
}

from models import joint  # noqa: E402  (joint builds on FAMILIES and ModelSpec above)
