"""A PyMC model as pure JAX functions with the `pm.Data` values as arguments: its log density and the map
from unconstrained values to the model's variables; NUTS over that log density; the log density over a
batch of points (for quadrature).

Used only when a program is built (`analysis.engine.programs`); later processes load the exported result
and never import this module, PyMC's graph rewriting or BlackJAX. `pymc.sampling.jax` bakes `pm.Data` in
as constants, so every new data set would recompile; here data stay arguments, which is what lets one
compiled program serve every variant, leave-one-out step and user data set of a model structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import pymc as pm
import pytensor.tensor as pt
from blackjax.adaptation.base import get_filter_adapt_info_fn
from pymc.initial_point import make_initial_point_fn
from pymc.sampling.jax import get_jaxified_graph
from pymc.util import get_default_varnames
from pytensor.compile import SharedVariable
from pytensor.graph.replace import clone_replace
from pytensor.graph.traversal import graph_inputs


@dataclass(frozen=True)
class ModelFunctions:
    """`logp(*values, *data)` (the log density on the unconstrained scale, Jacobians included),
    `prior_logp(*values, *data)` (the same without the likelihood and potentials) and
    `constrain(*values, *data)` (the model's named variables); the value variables' names and shapes; the
    constrained outputs as (name, dims)."""

    logp: object
    prior_logp: object
    constrain: object
    value_names: tuple[str, ...]
    value_shapes: tuple[tuple[int, ...], ...]
    outputs: tuple[tuple[str, tuple[str, ...]], ...]
    start: tuple[np.ndarray, ...]


def model_functions(model: pm.Model, data_names: tuple[str, ...], initial_point: dict) -> ModelFunctions:
    """Every `pm.Data` named in `data_names` becomes an argument in that order, so the traced functions
    serve any values of the same shapes; every other shared value (dimension lengths) is fixed."""
    shared = {v.name: v for v in model.data_vars}
    arguments = [shared[name].type(name=name) for name in data_names]
    value_vars = list(model.value_vars)
    constrained = get_default_varnames(model.unobserved_value_vars, include_transformed=False)
    prior = model.logp(vars=model.free_RVs)
    graph = [model.logp(), prior, *constrained]
    replace = {shared[n]: a for n, a in zip(data_names, arguments)}
    replace |= {v: pt.constant(v.get_value(borrow=True)) for v in graph_inputs(graph)
                if isinstance(v, SharedVariable) and v not in replace}
    logp, prior_logp, *constrained_graph = clone_replace(graph, replace=replace)
    inputs = [*value_vars, *arguments]
    start = make_initial_point_fn(model=model, overrides=initial_point, jitter_rvs=set(), return_transformed=True)(0)
    start = tuple(np.asarray(start[v.name], dtype=np.float64) for v in value_vars)
    return ModelFunctions(
        logp=get_jaxified_graph(inputs, [logp]),
        prior_logp=get_jaxified_graph(inputs, [prior_logp]),
        constrain=get_jaxified_graph(inputs, constrained_graph),
        value_names=tuple(v.name for v in value_vars),
        value_shapes=tuple(s.shape for s in start),
        outputs=tuple((v.name, tuple(model.named_vars_to_dims.get(v.name, ()))) for v in constrained),
        start=start,
    )


def sampler_function(functions: ModelFunctions, tune: int, draws: int, target_accept: float):
    """`function(chain_keys, *data)` runs one NUTS chain per row of `chain_keys` (window adaptation for
    `tune` steps, then `draws` draws) and returns the constrained variables of `functions.outputs`, each
    (chain, draw, ...), then the sampler statistics of `programs.STAT_NAMES`. A chain's draws depend only
    on its own key, so chains may be run in any grouping (several calls in parallel threads) with identical
    results. Chains start at the model's initial point jittered by Uniform(−1, 1) on the unconstrained
    scale, as PyMC's `jitter+adapt_diag` does."""
    start = functions.start

    def function(chain_keys, *data):
        def logdensity(position):
            return functions.logp(*position, *data)[0]

        def one_chain(key):
            jitter_key, warmup_key, draw_key = jax.random.split(key, 3)
            jitter_keys = jax.random.split(jitter_key, len(start))
            position = [s + jax.random.uniform(k, s.shape, minval=-1.0, maxval=1.0) for s, k in zip(start, jitter_keys)]
            if tune > 0:
                warmup = blackjax.window_adaptation(
                    blackjax.nuts, logdensity, target_acceptance_rate=target_accept,
                    adaptation_info_fn=get_filter_adapt_info_fn(),
                )
                (state, parameters), _ = warmup.run(warmup_key, position, num_steps=tune)
            else:
                state = blackjax.nuts.init(position, logdensity)
                parameters = {"step_size": 1.0, "inverse_mass_matrix": jnp.ones(sum(s.size for s in start))}
            kernel = blackjax.nuts(logdensity, **parameters).step

            def step(state, key):
                state, info = kernel(key, state)
                return state, (state.position, info.is_divergent, info.energy, state.logdensity,
                               info.acceptance_rate, info.num_integration_steps, info.num_trajectory_expansions)

            _, (positions, *stats) = jax.lax.scan(step, state, jax.random.split(draw_key, draws))
            values = jax.vmap(lambda p: functions.constrain(*p, *data))(positions)
            return (*values, *stats, jnp.asarray(parameters["step_size"]))

        # Chains one after another within a call: NUTS trajectories differ in length, so vectorised chains
        # would all wait for the longest (measured: slower). Parallelism comes from concurrent calls.
        return jax.lax.map(lambda key_data: one_chain(jax.random.wrap_key_data(key_data)), chain_keys)

    return function


def density_function(functions: ModelFunctions):
    """`function(points, *data)`: for a batch of points (batch, d) on the unconstrained scale (the value
    variables flattened in `functions.value_names` order), the log density, the prior log density and
    the constrained variables of `functions.outputs`, each with a leading batch axis."""
    sizes = [int(np.prod(shape)) for shape in functions.value_shapes]
    offsets = np.cumsum([0, *sizes])

    def unpack(point):
        return [point[offsets[i]:offsets[i + 1]].reshape(shape) for i, shape in enumerate(functions.value_shapes)]

    def one(point, data):
        values = unpack(point)
        return (functions.logp(*values, *data)[0], functions.prior_logp(*values, *data)[0],
                *functions.constrain(*values, *data))

    def function(points, *data):
        return jax.vmap(lambda p: one(p, data))(points)

    return function
