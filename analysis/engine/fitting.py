"""The one path from a model to checked draws: sample → derive → DataTree → convergence gate; and the one
prior predictive.

Every NUTS fit of the project (the primary model's cross-check, the graded-outcome model, a
meta-regression with several covariates, simulation-based calibration) goes through `fit`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pymc as pm
import xarray as xr
from arviz_base import from_dict

from analysis.engine.diagnostics import check_convergence
from analysis.engine.programs import STAT_NAMES, ModelCache, SamplerSettings
from analysis.inputs.config import DiagnosticsSettings, SamplingSettings
from analysis.results import Convergence
from models.base import ModelSpec


@dataclass(frozen=True)
class Fit:
    idata: xr.DataTree
    """posterior (the model's variables and the derived quantities) and sample_stats."""
    convergence: Convergence

    @property
    def posterior(self) -> xr.Dataset:
        return self.idata["posterior"].to_dataset()


def sampler_settings(settings: SamplingSettings, draws: int | None = None, tune: int | None = None) -> SamplerSettings:
    """The program's shape: the chains spread evenly over `cores` concurrent calls."""
    per_call = -(-settings.chains // min(settings.cores, settings.chains))
    return SamplerSettings(per_call, draws or settings.draws, settings.tune if tune is None else tune,
                           settings.target_accept)


def fit(cache: ModelCache, spec: ModelSpec, settings: SamplingSettings, seed: int, thresholds: DiagnosticsSettings,
        derive: Callable[[xr.Dataset], xr.Dataset] | None = None, heavy_tailed=(), draws: int | None = None,
        tune: int | None = None, gated: Callable[[xr.Dataset], xr.Dataset] | None = None,
        report_level: bool = True, coords: dict | None = None) -> Fit:
    """Draws of `spec`'s model (NUTS), the quantities `derive` adds, and the gate over them.

    `gated`: the part of the posterior the gate judges (all of it by default); `report_level`: whether
    report-level quantities are judged too; `coords`: labels of the model's dimensions."""
    program = cache.sampler(spec, sampler_settings(settings, draws, tune))
    with cache.running():
        arrays = program.run(spec.values, seed, settings.chains)
    posterior = _posterior(program, arrays, spec.reports, coords or {})
    if derive is not None:
        posterior = posterior.merge(derive(posterior), compat="override")
    stats = dict(zip(STAT_NAMES, arrays[len(program.outputs):]))
    stats["diverging"] = stats["diverging"].astype(bool)
    chains, n_draws = arrays[0].shape[:2]
    sample_stats = {name: np.broadcast_to(v.reshape(chains, -1), (chains, n_draws)).copy() for name, v in stats.items()}
    idata = from_dict({"posterior": {k: v.values for k, v in posterior.data_vars.items()},
                       "sample_stats": sample_stats},
                      dims={k: [d for d in v.dims if d not in ("chain", "draw")] for k, v in posterior.data_vars.items()},
                      coords={d: posterior[d].values for d in posterior.dims if d not in ("chain", "draw")})
    judged = idata if gated is None else xr.DataTree.from_dict(
        {"posterior": gated(idata["posterior"].to_dataset()), "sample_stats": idata["sample_stats"].to_dataset()})
    return Fit(idata, check_convergence(judged, thresholds, heavy_tailed, report_level))


def _posterior(program, arrays: list[np.ndarray], reports: int, coords: dict) -> xr.Dataset:
    """The sampler's named variables as a Dataset; padded reports beyond `reports` are dropped."""
    chains, draws = arrays[0].shape[:2]
    variables = {}
    for (name, dims), values in zip(program.outputs, arrays):
        if "report" in dims and reports:
            values = np.take(values, np.arange(reports), axis=2 + dims.index("report"))
        variables[name] = (("chain", "draw", *dims), values)
    dataset = xr.Dataset(variables, coords={"chain": np.arange(chains), "draw": np.arange(draws)})
    return dataset.assign_coords({d: list(v) for d, v in coords.items() if d in dataset.dims})


def prior_predictive(model: pm.Model, draws: int, seed: int, reports: int) -> xr.DataTree:
    """Draws of every quantity from the prior, and of the counts before any data (groups prior and
    prior_predictive), padded reports beyond `reports` dropped. The prior predictive describes reports
    before any publication selection, so a selection Potential is rightly left out of it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
        # Forward sampling of a few scalars: Python-mode compilation takes a fraction of numba's time.
        sampled = pm.sample_prior_predictive(draws=draws, model=model, random_seed=seed,
                                             compile_kwargs={"mode": "FAST_COMPILE"})
    real = {"report": slice(0, reports)}
    return xr.DataTree.from_dict({group: sampled[group].to_dataset().isel(real, missing_dims="ignore")
                                  for group in ("prior", "prior_predictive")})
