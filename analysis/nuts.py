"""A PyMC model as one pure JAX function: seed and data values in, constrained draws and NUTS statistics out.

Used only when a program is built (`analysis.sampling`); later processes load the exported result and
never import this module, PyMC's graph rewriting or BlackJAX.
"""

from __future__ import annotations

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import pymc as pm
from blackjax.adaptation.base import get_filter_adapt_info_fn
from pymc.initial_point import make_initial_point_fn
from pymc.util import get_default_varnames
import pytensor.tensor as pt
from pytensor.compile import SharedVariable, mode
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.replace import clone_replace
from pytensor.graph.traversal import graph_inputs
from pytensor.link.jax.dispatch import jax_funcify

from analysis.config import SamplingSettings


def sampler_function(model: pm.Model, data_names: tuple[str, ...], initial_point: dict[str, float],
                     settings: SamplingSettings):
    """`(function, outputs)`: `function(chain_keys, *data)` runs one NUTS chain per row of `chain_keys`
    (window adaptation for `tune` steps, then `draws` draws) and returns the constrained variables named
    in `outputs` (name, dims), each (chain, draw, ...), then the sampler statistics of
    `sampling.STAT_NAMES`. A chain's draws depend only on its own key, so chains may be run in any
    grouping (several calls in parallel threads) with identical results.

    Every `pm.Data` named in `data_names` becomes an argument in that order, so the traced program
    serves any values of the same shapes. Chains start at `initial_point` (constrained values; the
    model's own starting value elsewhere) jittered by Uniform(−1, 1) on the unconstrained scale, as
    PyMC's `jitter+adapt_diag` does."""
    shared = {v.name: v for v in model.data_vars}
    arguments = [shared[name].type(name=name) for name in data_names]
    value_vars = list(model.value_vars)
    constrained = get_default_varnames(model.unobserved_value_vars, include_transformed=False)
    graph = [model.logp(), *constrained]
    # Data become arguments; every other shared value (dimension lengths) is fixed by the structure.
    replace = {shared[n]: a for n, a in zip(data_names, arguments)}
    replace |= {v: pt.constant(v.get_value(borrow=True)) for v in graph_inputs(graph)
                if isinstance(v, SharedVariable) and v not in replace}
    logp, *constrained_graph = clone_replace(graph, replace=replace)
    logp_fn = _jaxified([*value_vars, *arguments], [logp])
    constrain_fn = _jaxified([*value_vars, *arguments], constrained_graph)
    start = make_initial_point_fn(model=model, overrides=initial_point, jitter_rvs=set(), return_transformed=True)(0)
    start = [np.asarray(start[v.name], dtype=np.float64) for v in value_vars]
    outputs = [(v.name, list(model.named_vars_to_dims.get(v.name, ()))) for v in constrained]

    def function(chain_keys, *data):
        def logdensity(position):
            return logp_fn(*position, *data)[0]

        def one_chain(key):
            jitter_key, warmup_key, draw_key = jax.random.split(key, 3)
            jitter_keys = jax.random.split(jitter_key, len(start))
            position = [s + jax.random.uniform(k, s.shape, minval=-1.0, maxval=1.0) for s, k in zip(start, jitter_keys)]
            if settings.tune > 0:
                warmup = blackjax.window_adaptation(
                    blackjax.nuts, logdensity, target_acceptance_rate=settings.target_accept,
                    adaptation_info_fn=get_filter_adapt_info_fn(),
                )
                (state, parameters), _ = warmup.run(warmup_key, position, num_steps=settings.tune)
            else:
                state = blackjax.nuts.init(position, logdensity)
                parameters = {"step_size": 1.0, "inverse_mass_matrix": jnp.ones(sum(s.size for s in start))}
            kernel = blackjax.nuts(logdensity, **parameters).step

            def step(state, key):
                state, info = kernel(key, state)
                return state, (state.position, info.is_divergent, info.energy, state.logdensity,
                               info.acceptance_rate, info.num_integration_steps, info.num_trajectory_expansions)

            _, (positions, *stats) = jax.lax.scan(step, state, jax.random.split(draw_key, settings.draws))
            values = jax.vmap(lambda p: constrain_fn(*p, *data))(positions)
            return (*values, *stats, jnp.asarray(parameters["step_size"]))

        # Chains one after another within a call: NUTS trajectories differ in length, so vectorised chains
        # would all wait for the longest (measured: slower). Parallelism comes from concurrent calls.
        return jax.lax.map(lambda key_data: one_chain(jax.random.wrap_key_data(key_data)), chain_keys)

    return function, outputs


def _jaxified(inputs: list, outputs: list):
    """The graph `inputs → outputs` rewritten for JAX (PyMC's parameter checks become −inf switches)."""
    graph = FunctionGraph(inputs=inputs, outputs=outputs, clone=True)
    mode.JAX.optimizer.rewrite(graph)
    return jax_funcify(graph)
