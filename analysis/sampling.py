"""Compile each model structure once per process and sample it with nutpie.

Compilation costs seconds, sampling these models a fraction of one, so a `ModelCache` keeps one compiled
sampler per model structure (the family's `structure_key`) and swaps new data and prior
hyperparameters into it (`with_data`) for every later fit: other variants, refits, simulations.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import nutpie
import xarray as xr

from analysis.config import SamplingSettings
from models import ModelSpec


class ModelCache:
    """Compiled nutpie samplers, keyed by model structure; counts the compilations it made and the
    seconds spent compiling and sampling."""

    def __init__(self) -> None:
        self._compiled: dict[tuple, nutpie.CompiledModel] = {}
        self.compilations = 0
        self.compile_seconds = 0.0
        self.sample_seconds = 0.0

    def sampler(self, spec: ModelSpec) -> nutpie.CompiledModel:
        key = spec.key
        if key not in self._compiled:
            started = time.perf_counter()
            with warnings.catch_warnings():
                # The models' random-draw ops have no numba implementation; NUTS never calls them
                # (it runs only the log density), so numba's object-mode notice is noise here.
                warnings.filterwarnings("ignore", message="Numba will use object mode", category=UserWarning)
                self._compiled[key] = nutpie.compile_pymc_model(spec.build(), initial_points=spec.initial_point)
            self.compilations += 1
            self.compile_seconds += time.perf_counter() - started
        return self._compiled[key].with_data(**spec.values)

    def sample(self, spec: ModelSpec, settings: SamplingSettings, seed: int, progress: bool = False) -> xr.DataTree:
        """Posterior draws of the model `spec` describes, compiling its structure first if needed."""
        compiled = self.sampler(spec)
        started = time.perf_counter()
        draws = sample_posterior(compiled, settings, seed, progress)
        self.sample_seconds += time.perf_counter() - started
        return draws


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


class Seeds:
    """Independent, reproducible random streams, one per purpose, all from the one configured seed."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self.sampler = self.integer("sampler")
        self.prior = self.integer("prior")

    def _sequence(self, purpose: str) -> np.random.SeedSequence:
        return np.random.SeedSequence([self._seed, *purpose.encode()])

    def integer(self, purpose: str) -> int:
        return int(self._sequence(purpose).generate_state(1)[0])

    def rng(self, purpose: str) -> np.random.Generator:
        return np.random.default_rng(self._sequence(purpose))
