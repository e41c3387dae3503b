"""Compile each model structure once per process and sample it with nutpie.

Compilation costs seconds, sampling these models a fraction of one, so a `ModelCache` keeps one compiled
sampler per model structure (the family's `structure_key`) and swaps new data and prior
hyperparameters into it (`with_data`) for every later fit: other variants, refits, simulations.
"""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np
import nutpie
import xarray as xr

from analysis.config import SamplingSettings


class ModelCache:
    """Compiled nutpie samplers, keyed by model structure; counts the compilations it made."""

    def __init__(self) -> None:
        self._compiled: dict[tuple, nutpie.CompiledModel] = {}
        self.compilations = 0

    def sampler(self, family: ModuleType, y: np.ndarray, n: np.ndarray, prior) -> nutpie.CompiledModel:
        key = family.structure_key(prior, len(y))
        if key not in self._compiled:
            with warnings.catch_warnings():
                # The models' random-draw ops have no numba implementation; NUTS never calls them
                # (it runs only the log density), so numba's object-mode notice is noise here.
                warnings.filterwarnings("ignore", message="Numba will use object mode", category=UserWarning)
                self._compiled[key] = nutpie.compile_pymc_model(
                    family.build_model(y, n, prior), initial_points=family.initial_point(prior)
                )
            self.compilations += 1
        return self._compiled[key].with_data(**family.data_values(y, n, prior))


def sample_posterior(
    compiled: nutpie.CompiledModel, settings: SamplingSettings, seed: int, progress: bool = False
) -> xr.DataTree:
    """NUTS draws as a DataTree with `posterior` and `sample_stats` (storable: no object columns)."""
    trace = nutpie.sample(
        compiled,
        chains=settings.chains,
        cores=settings.cores,
        draws=settings.draws,
        tune=settings.tune,
        target_accept=settings.target_accept,
        seed=seed,
        save_warmup=False,
        progress_bar=progress,
    )
    stats = trace["sample_stats"].to_dataset()
    stats = stats.drop_vars([v for v in stats.data_vars if stats[v].dtype == object])
    return xr.DataTree.from_dict({"posterior": trace["posterior"].to_dataset(), "sample_stats": stats})
