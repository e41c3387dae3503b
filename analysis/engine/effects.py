"""The log posterior of a model's population parameters with its report effects integrated out, report by
report, by adaptive Gauss-Hermite quadrature: the program that `models.importance` integrates.

For a model whose report i has effects z_i ~ Normal(0, I_k) entering only its own likelihood ℓ_i
(`models.base.ReportEffects`), the posterior of the population parameters θ is

    log p(θ | y) = log p(θ) + Σ_i log ∫ exp(ℓ_i(θ, z)) φ_k(z) dz + const.

Per report and θ: Newton steps find the mode ẑ of g(z) = ℓ_i(θ, z) − |z|²/2 (from z = 0; the Hessian's
eigenvalues are capped at −1/2 so that every step ascends), then the integral is the product rule of
`NODES` Gauss-Hermite nodes per axis on the normal that matches g at ẑ (Liu and Pierce 1994): exact for a
Gaussian g, and for these binomial likelihoods within about 1e-3 of the 5-node rule in any posterior mean
(a check in the tests). The same nodes, weighted by the integrand, are the report's posterior of z_i given
θ: the quantities `ReportEffects.outputs` gives at each node (the report's outcome probabilities) come out
with their node weights, for replicated-data checks.

The program is built from the PyMC model's own prior (its compiled prior log density, Jacobians included)
and the model's own likelihood and outputs functions (`ReportEffects`), traced to JAX like the sampler,
exported and cached like every other program (`analysis.engine.programs`). Its points are the population
parameters on PyMC's unconstrained scale, the effects variable left out.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytensor.tensor as pt
from pymc.sampling.jax import get_jaxified_graph

from models.base import ModelSpec

NODES = 3
"""Gauss-Hermite nodes per axis of a report's effects (3^k nodes per report)."""
NEWTON_STEPS = 3
"""Newton steps to a report's mode from z = 0 (quadratic convergence: within 1e-6 of the converged log
density by the third step on the shipped data, and an error at the mode is second order in the integral)."""
CURVATURE_CAP = -0.5
"""Largest eigenvalue allowed in the Hessian of g (its prior part alone gives −1)."""


def _hermite_rule(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (NODES^k, k) and log weights (NODES^k,) of the product Gauss-Hermite rule for Normal(0, I_k)."""
    x, w = np.polynomial.hermite_e.hermegauss(NODES)
    w = w / w.sum()
    grids = np.meshgrid(*[np.arange(NODES)] * k, indexing="ij")
    index = np.stack([g.ravel() for g in grids], axis=1)
    return x[index], np.log(w[index]).sum(axis=1)


def effects_function(spec: ModelSpec, functions, model):
    """`function(points, *data)` over points (batch, d) of the population parameters (the value variables
    other than the effects, flattened in `functions.value_names` order): the log posterior density up to a
    constant (batch,), each report's node weights (batch, reports, nodes) and its outputs at the nodes
    (batch, reports, nodes, m)."""
    effects = spec.effects
    names = tuple(functions.value_names)
    position = names.index(effects.variable)
    shapes = functions.value_shapes
    k = int(shapes[position][-1])
    sizes = [int(np.prod(s)) for i, s in enumerate(shapes) if i != position]
    offsets = np.cumsum([0, *sizes])
    output_names = [name for name, _ in functions.outputs]
    data_names = tuple(sorted(spec.values))
    rows_at = [data_names.index(name) for name in effects.rows]

    population = {name: model[name].type() for name in effects.population}
    z = pt.matrix("z", dtype="float64")
    rows = {name: pt.tensor(name, dtype=np.asarray(spec.values[name]).dtype,
                            shape=(None, *np.shape(spec.values[name])[1:])) for name in effects.rows}
    inputs = [*population.values(), z, *rows.values()]
    log_likelihood = get_jaxified_graph(inputs, [effects.log_likelihood(population, z, rows)])
    outputs = get_jaxified_graph(inputs[:-len(rows)], [effects.outputs(population, z)])
    nodes, log_weights = (jnp.asarray(a) for a in _hermite_rule(k))
    zeros = jnp.zeros(shapes[position])
    z_prior_at_zero = -0.5 * np.log(2 * np.pi) * int(np.prod(shapes[position]))

    def one(point, data):
        values = [point[offsets[i]:offsets[i + 1]].reshape(s) for i, s in enumerate(s for j, s in enumerate(shapes)
                                                                                     if j != position)]
        values.insert(position, zeros)
        log_prior = functions.prior_logp(*values, *data)[0] - z_prior_at_zero
        named = dict(zip(output_names, functions.constrain(*values, *data)))
        theta = [named[name] for name in effects.population]

        def g(zi, row):
            return log_likelihood(*theta, zi[None], *[r[None] for r in row])[0][0] - 0.5 * zi @ zi

        def report(row):
            def derivatives(zi):  # (Hessian, gradient) in one forward-over-reverse pass
                return jax.jacfwd(lambda v: (jax.grad(g)(v, row),) * 2, has_aux=True)(zi)

            def step(_, zi):
                hessian, gradient = derivatives(zi)
                curvature, vectors = jnp.linalg.eigh(0.5 * (hessian + hessian.T))
                move = -vectors @ ((vectors.T @ gradient) / jnp.minimum(curvature, CURVATURE_CAP))
                return zi + move * jnp.minimum(1.0, 2.0 / jnp.maximum(jnp.sqrt(move @ move), 1e-300))

            mode = jax.lax.fori_loop(0, NEWTON_STEPS, step, jnp.zeros(k))
            hessian = derivatives(mode)[0]
            curvature, vectors = jnp.linalg.eigh(0.5 * (hessian + hessian.T))
            spread = 1.0 / jnp.sqrt(-jnp.minimum(curvature, CURVATURE_CAP))
            at = mode + nodes @ (vectors * spread).T
            terms = log_weights + jax.vmap(lambda zi: g(zi, row))(at) + 0.5 * jnp.sum(nodes * nodes, axis=1)
            log_integral = jnp.sum(jnp.log(spread)) + jax.scipy.special.logsumexp(terms)
            return log_integral, jax.nn.softmax(terms), outputs(*theta, at)[0]

        log_integrals, weights, values_at_nodes = jax.vmap(report)(tuple(data[i] for i in rows_at))
        return log_prior + log_integrals.sum(), weights, values_at_nodes

    def function(points, *data):
        return jax.vmap(lambda p: one(p, data))(points)

    return function
