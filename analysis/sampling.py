"""NUTS for every model: one compiled program per model structure, kept on disk between processes.

A model structure (a `ModelSpec` key with its padded sizes) and the sampler settings become one JAX
program: the PyMC model's log density, translated by PyTensor's JAX backend, inside a fully jitted
BlackJAX NUTS sampler (Stan-style window adaptation, then the draws, chains one after another). Every
`pm.Data` value (counts, prior hyperparameters, publication and borrowing weights) is an argument of
that program, so new data, priors or variants never retrace or recompile it.

The traced program is saved with `jax.export` and its machine code goes to JAX's persistent
compilation cache, both under `cache_dir()`. A later process loads them in about a second instead of
building the PyMC model, tracing and compiling again. An entry is keyed by everything that shapes the
program (structure, sizes, settings, the source of `models/` and of this module, package versions); a
stale key is never looked up, and an unreadable entry is rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import jax
import numpy as np
import xarray as xr

from analysis.config import SamplingSettings
from models import ModelSpec

CACHE_ENV = "HHD_CACHE_DIR"
_FORMAT = 2  # bump when the layout of a saved program changes
_SOURCES = (Path(__file__), *sorted((Path(__file__).resolve().parent.parent / "models").glob("*.py")))
_PACKAGES = ("jax", "jaxlib", "blackjax", "pymc", "pytensor", "numpy")
STAT_NAMES = ("diverging", "energy", "lp", "acceptance_rate", "n_steps", "tree_depth", "step_size")


def cache_dir() -> Path:
    """Where compiled programs live: `$HHD_CACHE_DIR`, else the user's cache directory. Safe to delete."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hhd-opioid-antagonists"


def _configure_jax() -> None:
    jax.config.update("jax_enable_x64", True)  # the models' log densities need double precision
    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


_configure_jax()


@dataclass(frozen=True)
class Program:
    """A loaded sampler for `chains_per_call` chains; `run` spreads a fit's chains over threads."""

    call: object
    data_names: tuple[str, ...]
    outputs: tuple[tuple[str, tuple[str, ...]], ...]
    """(variable name, its dims beyond chain and draw), in the order the program returns them."""
    chains_per_call: int

    def run(self, values: dict, seed: int, chains: int) -> list[np.ndarray]:
        """`chains` chains from `seed`, in concurrent calls of `chains_per_call` chains each (JAX releases
        the interpreter while it samples, so the calls run on separate cores). Each chain has its own key
        from the seed, so the draws do not depend on how the chains were grouped."""
        keys = np.random.SeedSequence(seed).generate_state(2 * chains).reshape(chains, 2).astype(np.uint32)
        arrays = [np.asarray(values[name]) for name in self.data_names]
        groups = [keys[i:i + self.chains_per_call] for i in range(0, chains, self.chains_per_call)]
        padded = [np.concatenate([g, np.repeat(g[-1:], self.chains_per_call - len(g), axis=0)]) for g in groups]

        def call(group_keys):
            return [np.asarray(a) for a in self.call(group_keys, *arrays)]

        if len(padded) == 1:
            results = [call(padded[0])]
        else:
            with ThreadPoolExecutor(len(padded)) as pool:
                results = list(pool.map(call, padded))
        return [np.concatenate([r[k][:len(g)] for r, g in zip(results, groups)]) for k in range(len(results[0]))]


class ModelCache:
    """Sampler programs, keyed by model structure. `programs` counts those this process prepared (one per
    structure it met), `compilations` those it had to build because no saved one could be loaded.
    `compile_seconds` counts the time spent preparing programs, `sample_seconds` the wall time during which
    at least one fit was sampling, `busy_seconds` the wall time during which it was doing either (fits in
    parallel threads overlap: their time is not summed)."""

    def __init__(self) -> None:
        self._programs: dict[str, Program] = {}
        self._lock = threading.Lock()  # fits may run in parallel threads; each program is prepared once
        self._active = {"sample": [0, 0.0], "busy": [0, 0.0]}  # per clock: running tasks, since when
        self.compilations = 0
        self.busy_seconds = 0.0
        self.compile_seconds = 0.0
        self.sample_seconds = 0.0

    @property
    def programs(self) -> int:
        return len(self._programs)

    def program(self, spec: ModelSpec, settings: SamplingSettings) -> Program:
        key = program_key(spec, settings)
        with self._lock:
            if key not in self._programs:
                started = time.perf_counter()
                self._start("busy")
                try:
                    program = _load(key)
                    if program is None:
                        program = _build(spec, settings, key)
                        self.compilations += 1
                finally:
                    self._stop("busy")
                self._programs[key] = program
                self.compile_seconds += time.perf_counter() - started
            return self._programs[key]

    def _start(self, clock: str) -> None:
        counter = self._active[clock]
        if counter[0] == 0:
            counter[1] = time.perf_counter()
        counter[0] += 1

    def _stop(self, clock: str) -> None:
        counter = self._active[clock]
        counter[0] -= 1
        if counter[0] == 0:
            elapsed = time.perf_counter() - counter[1]
            if clock == "sample":
                self.sample_seconds += elapsed
            else:
                self.busy_seconds += elapsed

    def sample(self, spec: ModelSpec, settings: SamplingSettings, seed: int, progress: bool = False) -> xr.DataTree:
        """Posterior draws of the model `spec` describes, building or loading its program first if needed.

        `progress` is accepted for the commands' interface; a fit takes well under a second."""
        program = self.program(spec, settings)
        with self._lock:
            self._start("sample")
            self._start("busy")
        try:
            arrays = program.run(spec.values, seed, settings.chains)
        finally:
            with self._lock:
                self._stop("sample")
                self._stop("busy")
        return _as_datatree(program, arrays, spec.reports)


def chains_per_call(settings: SamplingSettings) -> int:
    """Chains per program call: the chains spread evenly over `cores` concurrent calls."""
    return -(-settings.chains // min(settings.cores, settings.chains))


def program_key(spec: ModelSpec, settings: SamplingSettings) -> str:
    """Everything that shapes the compiled program, hashed: a change of any of it is a new program."""
    shapes = {name: [list(np.shape(v)), np.asarray(v).dtype.str] for name, v in sorted(spec.values.items())}
    document = {
        "format": _FORMAT,
        "structure": repr(spec.key),
        "shapes": shapes,
        "initial_point": {k: np.asarray(v, dtype=float).tolist() for k, v in sorted(spec.initial_point.items())},
        "settings": [chains_per_call(settings), settings.draws, settings.tune, settings.target_accept],
        "packages": {name: metadata.version(name) for name in _PACKAGES},
        "sources": hashlib.sha256(b"".join(p.read_bytes() for p in _SOURCES)).hexdigest(),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32]


# --- loading and saving ------------------------------------------------------------------------------


def _paths(key: str) -> tuple[Path, Path]:
    folder = cache_dir() / "programs"
    return folder / f"{key}.jaxexport", folder / f"{key}.json"


def _load(key: str) -> Program | None:
    """The saved program of this key, or None when there is none or it cannot be read (then it is rebuilt)."""
    blob_path, meta_path = _paths(key)
    try:
        meta = json.loads(meta_path.read_text())
        exported = jax.export.deserialize(bytearray(blob_path.read_bytes()))
        if meta.get("key") != key:
            return None
    except Exception:  # missing, truncated or corrupt: any failure means "build it again"
        return None
    return _compiled(exported, meta["data_names"], meta["outputs"], meta["chains_per_call"])


def _save(key: str, exported, meta: dict) -> None:
    """Write both files atomically (worker processes may build the same program at once)."""
    for path, payload in zip(_paths(key), (bytes(exported.serialize()), json.dumps(meta).encode())):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
        os.replace(temporary, path)


# --- building a program --------------------------------------------------------------------------------


def _build(spec: ModelSpec, settings: SamplingSettings, key: str) -> Program:
    """Build the PyMC model, translate it to JAX, wrap it in NUTS, export and save it."""
    from analysis.nuts import sampler_function

    data_names = tuple(sorted(spec.values))
    with warnings.catch_warnings():
        # PyMC's parameter checks are dropped from the JAX graph; NUTS rejects invalid points anyway
        # (the log density is −inf or NaN there, which the sampler treats as a divergence).
        # The checks are met when the graph is traced, which is at export.
        warnings.filterwarnings("ignore", message="Skipping Check", category=UserWarning)
        function, outputs = sampler_function(spec.build(), data_names, spec.initial_point, settings)
        per_call = chains_per_call(settings)
        arguments = [jax.ShapeDtypeStruct((per_call, 2), np.uint32)]
        arguments += [jax.ShapeDtypeStruct(np.shape(spec.values[n]), np.asarray(spec.values[n]).dtype)
                      for n in data_names]
        exported = jax.export.export(jax.jit(function))(*arguments)
    try:
        _save(key, exported, {"key": key, "data_names": data_names, "outputs": outputs, "chains_per_call": per_call})
    except OSError:
        pass  # an unwritable cache costs speed in the next process, never correctness
    return _compiled(exported, data_names, outputs, per_call)


def _compiled(exported, data_names, outputs, per_call: int) -> Program:
    """Compile the exported program now (from JAX's persistent cache when it holds it), so that the
    time is booked as compilation, not as sampling."""
    executable = jax.jit(exported.call).lower(*exported.in_avals).compile()
    return Program(executable, tuple(data_names), tuple((name, tuple(dims)) for name, dims in outputs), per_call)


# --- draws as a DataTree -----------------------------------------------------------------------------


def _as_datatree(program: Program, arrays: list[np.ndarray], reports: int) -> xr.DataTree:
    """Posterior and sample_stats groups; padded reports beyond `reports` are dropped."""
    names = [name for name, _ in program.outputs]
    variables = dict(zip(names, arrays[: len(names)]))
    chains, draws = arrays[0].shape[:2]
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    posterior = {}
    for name, dims in program.outputs:
        values = variables[name]
        if "report" in dims and reports:
            values = np.take(values, np.arange(reports), axis=2 + dims.index("report"))
        posterior[name] = (("chain", "draw", *dims), values)
    stats = dict(zip(STAT_NAMES, arrays[len(names):]))
    stats["diverging"] = stats["diverging"].astype(bool)
    sample_stats = {name: (("chain", "draw"), np.broadcast_to(values.reshape(chains, -1), (chains, draws)).copy())
                    for name, values in stats.items()}
    return xr.DataTree.from_dict({
        "posterior": xr.Dataset(posterior, coords=coords),
        "sample_stats": xr.Dataset(sample_stats, coords=coords),
    })


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
