"""Pure model definitions: counts and prior settings in, `pm.Model` (and exact derived draws) out.

Each family module offers the same small interface, so fitting, sensitivity analyses and calibration
share one code path:

- ``build_model(y, n, prior)``: the PyMC model; data and prior hyperparameters are ``pm.Data``;
- ``structure_key(prior, n_reports)``: models with equal keys share one compiled sampler;
- ``data_values(y, n, prior)``: the ``pm.Data`` values to swap into such a compiled sampler;
- ``hyperparameters``: the population-level variable names;
- ``initial_point(prior)``: data-independent starting values for the sampler;
- ``draw_new_theta(posterior, rng, size)``: θ for new reports from posterior (or prior) draws;
- ``derive(posterior, y, n, rng)``: report θ_i, predictive θ_new and the pooled mean, from the draws.
"""

from models import beta_binomial, logit_normal

FAMILIES = {
    "beta_binomial": beta_binomial,
    "logit_normal": logit_normal,
}
