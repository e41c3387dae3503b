"""The log posterior of a model's population parameters with its report effects integrated out, report by
report, by adaptive Gauss-Hermite quadrature: the program that `models.importance` integrates.

For a model whose report i has effects z_i ~ Normal(0, I_k) entering only its own likelihood ℓ_i, through a
linear predictor η_i = m(θ) + A(θ) z_i (`models.base.ReportEffects`), the posterior of the population
parameters θ is

    log p(θ | y) = log p(θ) + Σ_i log ∫ exp(ℓ_i(η)) N(η; m, A Aᵀ) dη + const,

and when ℓ_i reads only the components S_i of η (the stages a report graded, and their ancestors), the
integral is over their r_i-dimensional normal marginal alone: η_S = m_S + C w, w ~ Normal(0, I_r), with
C Cᵀ = A_S A_Sᵀ (C from the QR factors of A_Sᵀ, stable where A_S is nearly singular). This is the same
integral as over all k effects, and the same rule: the rule below is covariant under rotations of the
effects, and along the k − r_i directions the likelihood does not read the integrand is exactly the
prior. A report that grades one stage needs 3 nodes instead of 81.

Per report and θ: Newton steps find the mode ŵ of g(w) = ℓ_i(η(w)) − |w|²/2 (from w = 0; the Hessian's
eigenvalues are capped at −1/2 so that every step ascends), then the integral is the product rule of
`NODES` Gauss-Hermite nodes per axis on the normal that matches g at ŵ (Liu and Pierce 1994): exact for a
Gaussian g, and for these binomial likelihoods within about 1e-3 of the 5-node rule in any posterior mean
(a check in the tests). The same nodes, weighted by the integrand, are the report's posterior of η_S given
θ: the quantities `ReportEffects.outputs` gives at each node (the report's outcome probabilities) come out
with their node weights, for replicated-data checks.

The program is built from the PyMC model's own prior (its compiled prior log density, Jacobians included)
and the model's own predictor, likelihood and outputs functions (`ReportEffects`), traced to JAX like the
sampler, exported and cached like every other program (`analysis.engine.programs`). Its points are the
population parameters on PyMC's unconstrained scale, the effects variable left out; the reports' grouping
by how many components they inform (`ReportEffects.groups`) is part of its shape.
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
    """`function(points, *data, *layout)` over points (batch, d) of the population parameters (the value
    variables other than the effects, flattened in `functions.value_names` order), with `layout` the
    arrays of `ReportEffects.groups` (index, components, active per group): the log posterior density up to
    a constant (batch,), then per group its reports' node weights (batch, reports, NODES^r) and outputs at
    the nodes (batch, reports, NODES^r, m)."""
    effects = spec.effects
    names = tuple(functions.value_names)
    position = names.index(effects.variable)
    shapes = functions.value_shapes
    sizes = [int(np.prod(s)) for i, s in enumerate(shapes) if i != position]
    offsets = np.cumsum([0, *sizes])
    output_names = [name for name, _ in functions.outputs]
    data_names = tuple(sorted(spec.values))
    rows_at = [data_names.index(name) for name in effects.rows]
    components = [r for r, *_ in effects.groups()]

    population = {name: model[name].type() for name in effects.population}
    eta = pt.matrix("eta", dtype="float64")
    rows = {name: pt.tensor(name, dtype=np.asarray(spec.values[name]).dtype,
                            shape=(None, *np.shape(spec.values[name])[1:])) for name in effects.rows}
    predictor = get_jaxified_graph(list(population.values()), list(effects.predictor(population)))
    log_likelihood = get_jaxified_graph([eta, *rows.values()], [effects.log_likelihood(eta, rows)])
    outputs = get_jaxified_graph([eta], [effects.outputs(eta)])
    rules = {r: tuple(jnp.asarray(a) for a in _hermite_rule(r)) for r in components}
    zeros = jnp.zeros(shapes[position])
    z_prior_at_zero = -0.5 * np.log(2 * np.pi) * int(np.prod(shapes[position]))

    def one(point, data, layout):
        values = [point[offsets[i]:offsets[i + 1]].reshape(s) for i, s in enumerate(s for j, s in enumerate(shapes)
                                                                                     if j != position)]
        values.insert(position, zeros)
        log_prior = functions.prior_logp(*values, *data)[0] - z_prior_at_zero
        named = dict(zip(output_names, functions.constrain(*values, *data)))
        mean, loading = predictor(*[named[name] for name in effects.population])
        report_rows = [data[i] for i in rows_at]

        def report(index, stages, active, nodes, log_weights):
            row = [r[index][None] for r in report_rows]
            factor = jnp.linalg.qr(loading[stages].T, mode="reduced")[1].T  # C with C Cᵀ = A_S A_Sᵀ
            r = stages.shape[0]

            def predictors(w):  # (..., r) → (..., k): η at the informed components, the mean elsewhere
                return jnp.broadcast_to(mean, (*w.shape[:-1], mean.shape[0])).at[..., stages].set(
                    mean[stages] + w @ factor.T)

            def g(w):
                return log_likelihood(predictors(w)[None], *row)[0][0] - 0.5 * w @ w

            def derivatives(w):  # (Hessian, gradient) in one forward-over-reverse pass
                return jax.jacfwd(lambda v: (jax.grad(g)(v),) * 2, has_aux=True)(w)

            def step(_, w):
                hessian, gradient = derivatives(w)
                curvature, vectors = jnp.linalg.eigh(0.5 * (hessian + hessian.T))
                move = -vectors @ ((vectors.T @ gradient) / jnp.minimum(curvature, CURVATURE_CAP))
                return w + move * jnp.minimum(1.0, 2.0 / jnp.maximum(jnp.sqrt(move @ move), 1e-300))

            mode = jax.lax.fori_loop(0, NEWTON_STEPS, step, jnp.zeros(r))
            hessian = derivatives(mode)[0]
            curvature, vectors = jnp.linalg.eigh(0.5 * (hessian + hessian.T))
            spread = 1.0 / jnp.sqrt(-jnp.minimum(curvature, CURVATURE_CAP))
            at = mode + nodes @ (vectors * spread).T
            terms = log_weights + jax.vmap(g)(at) + 0.5 * jnp.sum(nodes * nodes, axis=1)
            log_integral = jnp.sum(jnp.log(spread)) + jax.scipy.special.logsumexp(terms)
            return jnp.where(active, log_integral, 0.0), jax.nn.softmax(terms), outputs(predictors(at))[0]

        total, per_group = log_prior, []
        for r, (index, stages, active) in zip(components, layout):
            nodes, log_weights = rules[r]
            log_integrals, weights, values_at_nodes = jax.vmap(
                lambda i, s, a: report(i, s, a, nodes, log_weights))(index, stages, active)
            total = total + log_integrals.sum()
            per_group += [weights, values_at_nodes]
        return total, *per_group

    def function(points, *arguments):
        data = arguments[:len(data_names)]
        rest = arguments[len(data_names):]
        layout = [rest[3 * g:3 * g + 3] for g in range(len(components))]
        return jax.vmap(lambda p: one(p, data, layout))(points)

    return function
