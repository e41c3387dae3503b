"""Pure model definitions: counts and prior settings in, `pm.Model` (and exact derived draws) out.

Each family module offers the same small interface, so fitting, sensitivity analyses and calibration
share one code path:

- ``build_model(y, n, prior, selection_weight)``: the PyMC model; data, prior hyperparameters and the
  publication weight of single-patient failures are ``pm.Data``;
- ``structure_key(prior)``: models with equal keys (and equal padded sizes, see `padded_size`) share one
  compiled sampler;
- ``data_values(y, n, prior, selection_weight)``: the ``pm.Data`` values to swap into such a sampler;
- ``initial_point(prior)``: data-independent starting values for the sampler;
- ``hyperparameters``: the population-level variable names; ``plotted_parameters``: those to plot;
- ``exchangeable_log_marginal(model, y, n)``: log p(y | population) for a new report, θ integrated out;
- ``log_marginal_draws(posterior, y, n)``: log p(y_i | population) per draw and report, θ_i integrated
  out (PSIS-LOO, the joint model);
- ``draw_exchangeable_posterior(posterior, y, n, rng)``: exact draws of a new report's θ given its counts;
- ``draw_new_theta(posterior, rng, size)``: θ for new reports from posterior (or prior) draws;
- ``derive(posterior, y, n, rng)``: report θ_i, predictive θ_new and the pooled mean, from the draws.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import pymc as pm

from models import beta_binomial, logit_normal

FAMILIES = {
    "beta_binomial": beta_binomial,
    "logit_normal": logit_normal,
}


@dataclass(frozen=True)
class ModelSpec:
    """What a sampler cache needs: a structure key, how to build the model, and the values to swap in."""

    key: tuple
    build: Callable[[], pm.Model] = field(compare=False)
    values: dict = field(compare=False)
    initial_point: dict = field(compare=False)
    reports: int = field(compare=False, default=0)
    """The real number of reports: draws along the padded `report` dimension beyond it are dropped."""


def model_spec(family_name: str, y, n, prior, selection_weight: float = 1.0) -> ModelSpec:
    """The reports' model, as the joint model with an empty target arm.

    A target arm with n = 0 adds log 1 = 0 to the log density, so the reports' model and every joint
    (EXNEX) model of the same family and prior share one compiled sampler: one compilation per analysis
    instead of two. `selection_weight` ω: the relative chance that a single-patient failure is published.
    """
    return joint.model_spec(family_name, y, n, 0, 0, prior, EMPTY_TARGET_WEIGHT, (1.0, 1.0), selection_weight)


EMPTY_TARGET_WEIGHT = 0.5
"""Any w in (0, 1) gives log((1 − w) · 1 + w · 1) = 0 for an empty target arm."""

from models import joint  # noqa: E402  (joint builds on FAMILIES and ModelSpec above)
