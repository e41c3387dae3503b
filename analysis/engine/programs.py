"""Compiled programs, one per model structure and kind, kept on disk between processes.

Two kinds of program are made from a model (a `ModelSpec`: structure key, padded sizes, `pm.Data` values):
- a **sampler**: the PyMC model's log density, translated by PyTensor's JAX backend, inside a fully
  jitted BlackJAX NUTS sampler (Stan-style window adaptation, then the draws);
- a **density**: the same log density (and the prior's, and the model's named variables) over a batch of
  points on the unconstrained scale, for deterministic quadrature (`analysis.engine.quadrature`);
- an **effects** program, for a model whose report effects separate (`ModelSpec.effects`): the log
  posterior of the population parameters with the effects integrated out report by report
  (`analysis.engine.effects`), for importance sampling on fixed quasi-random points (`models.importance`).

Every `pm.Data` value (counts, prior hyperparameters, publication and borrowing weights) is an argument of
the program, so new data, priors or variants never retrace or recompile it. The traced program is saved
with `jax.export` and its machine code goes to JAX's persistent compilation cache, both under
`cache_dir()`; a later process loads them in about half a second instead of building the PyMC model,
tracing and compiling again. An entry is keyed by everything that shapes the program (kind, structure,
sizes, settings, the source of `models/` and of the engine, package versions): a stale key is never looked
up, and an unreadable entry is rebuilt, never trusted. A data set of another padded size (a user's table
of 40 reports after the shipped 12) is another structure: its programs are built once, then cached too.
"""

from __future__ import annotations

import functools
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

from analysis.engine.cache import cache_dir
from models.base import ModelSpec

_FORMAT = 3  # bump when the layout of a saved program changes
_ENGINE = Path(__file__).resolve().parent
_SOURCES = (_ENGINE / "programs.py", _ENGINE / "nuts.py", _ENGINE / "effects.py", *sorted((_ENGINE.parents[1] / "models").glob("*.py")))
_PACKAGES = ("jax", "jaxlib", "blackjax", "pymc", "pytensor", "numpy")
STAT_NAMES = ("diverging", "energy", "lp", "acceptance_rate", "n_steps", "tree_depth", "step_size")
DENSITY_BATCHES = (64, 4096)
"""Points per call of a density program: a small batch for the mode search (single points, gradients by
differences) and a large one for grids (a call's overhead negligible, a 3-D grid of a large data set
within memory). One exported program with a symbolic batch size is compiled for both."""
EFFECTS_BATCH = 64
"""Points per call of an effects program, exported with this fixed shape: one compiled executable, not one
per batch size (the shipped data's loads in 0.6 s; exported with a symbolic batch size and compiled for two
sizes it took 2.1 s), big enough for one gradient by central differences (2d + 1 points, d ≤ 31); larger
batches were measured to save about 10% per point."""
SMALL_BATCH_LIMIT = 1280
"""Up to this many points (the 4 × 257 face points of a 2-D box search, the rest of a grid after whole
large batches) go in small batches: a large batch costs as much as 19 (beta-binomial, 12 reports) to 45
(1,000 reports) or 63 (logit-normal) small ones, so padding them to a large batch wasted most of its work."""


def _configure_jax() -> None:
    jax.config.update("jax_enable_x64", True)  # the models' log densities need double precision
    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "xla"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


_configure_jax()


@dataclass(frozen=True)
class SamplerSettings:
    """What shapes a sampler program: chains per call, draws, tuning steps, target acceptance."""

    chains_per_call: int
    draws: int
    tune: int
    target_accept: float


@dataclass(frozen=True)
class Sampler:
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


@dataclass(frozen=True)
class Density:
    """A loaded density program: the log density, prior log density and named variables at points."""

    calls: tuple
    """One compiled executable per size of `DENSITY_BATCHES`."""
    data_names: tuple[str, ...]
    outputs: tuple[tuple[str, tuple[str, ...]], ...]
    dimension: int
    value_names: tuple[str, ...]

    def evaluate(self, values: dict, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(log density, prior log density, {variable: values}) at `points` (m, dimension), in batches."""
        arrays = [np.asarray(values[name]) for name in self.data_names]
        points = np.asarray(points, dtype=np.float64).reshape(-1, self.dimension)
        pieces = []
        for start, size, call in _batches(points.shape[0], self.calls):
            batch = points[start:start + size]
            padded = np.concatenate([batch, np.repeat(batch[-1:], size - len(batch), axis=0)])
            pieces.append([np.asarray(a)[:len(batch)] for a in call(padded, *arrays)])
        columns = [np.concatenate([p[k] for p in pieces]) for k in range(len(pieces[0]))]
        logp, prior = (np.where(np.isnan(c), -np.inf, c) for c in columns[:2])
        return logp, prior, {name: c for (name, _), c in zip(self.outputs, columns[2:])}


def _batches(count: int, calls: tuple) -> list[tuple[int, int, object]]:
    """(first point, batch size, program) per call for `count` points: whole large batches, then the rest in
    one large batch or, up to `SMALL_BATCH_LIMIT` points, in small ones. The split depends on the count
    only, so the same points always go through the same calls."""
    (small, small_call), (large, large_call) = zip(DENSITY_BATCHES, calls)
    whole = count // large if count % large <= SMALL_BATCH_LIMIT else -(-count // large)
    out = [(k * large, large, large_call) for k in range(whole)]
    out += [(start, small, small_call) for start in range(whole * large, count, small)]
    return out


@dataclass(frozen=True)
class Effects:
    """A loaded effects program: per point the log posterior density with the report effects integrated
    out, each report's quadrature node weights and its outputs at the nodes."""

    call: object
    """The compiled executable, for `EFFECTS_BATCH` points."""
    data_names: tuple[str, ...]
    dimension: int

    def evaluate(self, values: dict, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log density (m,), node weights (m, reports, nodes), outputs at the nodes (m, reports, nodes,
        outputs)) at `points` (m, dimension), in batches of `EFFECTS_BATCH`."""
        arrays = [np.asarray(values[name]) for name in self.data_names]
        points = np.asarray(points, dtype=np.float64).reshape(-1, self.dimension)
        size = EFFECTS_BATCH

        def run(start):
            batch = points[start:start + size]
            padded = np.concatenate([batch, np.repeat(batch[-1:], size - len(batch), axis=0)])
            return [np.asarray(a)[:len(batch)] for a in self.call(padded, *arrays)]

        pieces = [run(start) for start in range(0, points.shape[0], size)]
        log_density, weights, outputs = (np.concatenate([p[k] for p in pieces]) for k in range(3))
        return np.where(np.isnan(log_density), -np.inf, log_density), weights, outputs


class ModelCache:
    """Programs, keyed by kind and model structure. `programs` counts those this process prepared,
    `compilations` those it had to build because no saved one could be loaded. `compile_seconds` counts the
    time spent preparing programs, `sample_seconds` the wall time during which at least one program was
    running, `busy_seconds` the wall time during which it was doing either (work in parallel threads
    overlaps: its time is not summed)."""

    def __init__(self) -> None:
        self._programs: dict[str, Sampler | Density] = {}
        self._used: set[str] = set()
        self._building: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._active = {"sample": [0, 0.0], "busy": [0, 0.0]}  # per clock: running tasks, since when
        self.compilations = 0
        self.busy_seconds = 0.0
        self.compile_seconds = 0.0
        self.sample_seconds = 0.0

    @property
    def programs(self) -> int:
        return len(self._programs)

    @property
    def used(self) -> list[str]:
        """The keys of the programs asked for so far (not those only loaded ahead by `load_saved`)."""
        with self._lock:
            return sorted(self._used)

    def load_saved(self, keys: list[str]) -> None:
        """Load these saved programs now, ahead of their use (a warm process waiting for its run); a key
        with no readable saved program is skipped (it is built when asked for)."""
        for key in keys:
            with self._lock:
                if key in self._programs:
                    continue
            program = _load(key)
            if program is not None:
                with self._lock:
                    self._programs.setdefault(key, program)

    def sampler(self, spec: ModelSpec, settings: SamplerSettings) -> Sampler:
        key = program_key("sampler", spec, [settings.chains_per_call, settings.draws, settings.tune,
                                            settings.target_accept])
        return self._prepare(key, lambda: _build_sampler(spec, settings, key))

    def density(self, spec: ModelSpec) -> Density:
        key = program_key("density", spec, list(DENSITY_BATCHES))
        return self._prepare(key, lambda: _build_density(spec, key))

    def effects(self, spec: ModelSpec) -> Effects:
        from analysis.engine.effects import NODES

        key = program_key("effects", spec, [EFFECTS_BATCH, NODES])
        return self._prepare(key, lambda: _build_effects(spec, key))

    def _prepare(self, key: str, build):
        """The program of `key`, loaded or built once per process; different programs are prepared in
        parallel threads (XLA's compilation releases the interpreter), the same one only once."""
        with self._lock:
            self._used.add(key)
            if key in self._programs:
                return self._programs[key]
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                if key in self._programs:
                    return self._programs[key]
                started = time.perf_counter()
                self._start("busy")
            try:
                program = _load(key)
                built = program is None
                if built:
                    program = build()
            finally:
                with self._lock:
                    self._stop("busy")
            with self._lock:
                self.compilations += built
                self._programs[key] = program
                self.compile_seconds += time.perf_counter() - started
            return program

    def running(self):
        """A context in which a program runs: booked to the sampling and busy clocks."""
        cache = self

        class _Running:
            def __enter__(self):
                with cache._lock:
                    cache._start("sample")
                    cache._start("busy")

            def __exit__(self, *exc):
                with cache._lock:
                    cache._stop("sample")
                    cache._stop("busy")

        return _Running()

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


def program_key(kind: str, spec: ModelSpec, settings: list) -> str:
    """Everything that shapes the compiled program, hashed: a change of any of it is a new program."""
    shapes = {name: [list(np.shape(v)), np.asarray(v).dtype.str] for name, v in sorted(spec.values.items())}
    document = {
        "format": _FORMAT,
        "kind": kind,
        "structure": repr(spec.key),
        "shapes": shapes,
        "initial_point": {k: np.asarray(v, dtype=float).tolist() for k, v in sorted(spec.initial_point.items())},
        "settings": settings,
        "packages": _package_versions(),
        "sources": _sources_hash(),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32]


@functools.cache
def _sources_hash() -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in _SOURCES)).hexdigest()


@functools.cache
def _package_versions() -> dict[str, str]:
    """Read once per process: each lookup scans the installed distributions (3 ms each, for every key)."""
    return {name: metadata.version(name) for name in _PACKAGES}


# --- loading and saving ------------------------------------------------------------------------------


def _paths(key: str) -> tuple[Path, Path]:
    folder = cache_dir() / "programs"
    return folder / f"{key}.jaxexport", folder / f"{key}.json"


def _load(key: str) -> Sampler | Density | None:
    """The saved program of this key, or None when there is none or it cannot be read (then it is rebuilt)."""
    blob_path, meta_path = _paths(key)
    try:
        meta = json.loads(meta_path.read_text())
        exported = jax.export.deserialize(bytearray(blob_path.read_bytes()))
        if meta.get("key") != key:
            return None
        return _compiled(exported, meta)
    except Exception:  # missing, truncated or corrupt: any failure means "build it again"
        return None


def _save(key: str, exported, meta: dict) -> None:
    """Write both files atomically (worker processes may build the same program at once)."""
    for path, payload in zip(_paths(key), (bytes(exported.serialize()), json.dumps(meta).encode())):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
        os.replace(temporary, path)


def _compiled(exported, meta: dict) -> Sampler | Density | Effects:
    """Compile the exported program now (from JAX's persistent cache when it holds it), so that the time
    is booked as compilation, not as running."""
    outputs = tuple((name, tuple(dims)) for name, dims in meta["outputs"])
    data_names = tuple(meta["data_names"])
    if meta["kind"] == "density":  # a symbolic batch size, compiled for each of `DENSITY_BATCHES`
        calls = tuple(jax.jit(exported.call).lower(jax.ShapeDtypeStruct((size, meta["dimension"]), np.float64),
                                                   *exported.in_avals[1:]).compile() for size in DENSITY_BATCHES)
        return Density(calls, data_names, outputs, meta["dimension"], tuple(meta["value_names"]))
    executable = jax.jit(exported.call).lower(*exported.in_avals).compile()
    if meta["kind"] == "effects":
        return Effects(executable, data_names, meta["dimension"])
    return Sampler(executable, data_names, outputs, meta["chains_per_call"])


def _export(function, leading: list, spec: ModelSpec, data_names: tuple[str, ...]):
    arguments = leading + [jax.ShapeDtypeStruct(np.shape(spec.values[n]), np.asarray(spec.values[n]).dtype)
                           for n in data_names]
    with warnings.catch_warnings():
        # PyMC's parameter checks become −inf switches in JAX; the notice comes when the graph is traced.
        warnings.filterwarnings("ignore", message="Skipping Check", category=UserWarning)
        return jax.export.export(jax.jit(function))(*arguments)


def _model_functions(spec: ModelSpec, model=None):
    from analysis.engine.nuts import model_functions

    data_names = tuple(sorted(spec.values))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping Check", category=UserWarning)
        return data_names, model_functions(model or spec.build(), data_names, spec.initial_point)


def _build_sampler(spec: ModelSpec, settings: SamplerSettings, key: str) -> Sampler:
    """Build the PyMC model, translate it to JAX, wrap it in NUTS, export and save it."""
    from analysis.engine.nuts import sampler_function

    data_names, functions = _model_functions(spec)
    function = sampler_function(functions, settings.tune, settings.draws, settings.target_accept)
    exported = _export(function, [jax.ShapeDtypeStruct((settings.chains_per_call, 2), np.uint32)], spec, data_names)
    meta = {"key": key, "kind": "sampler", "data_names": data_names, "outputs": functions.outputs,
            "chains_per_call": settings.chains_per_call}
    _try_save(key, exported, meta)
    return _compiled(exported, meta)


def _build_density(spec: ModelSpec, key: str) -> Density:
    from analysis.engine.nuts import density_function

    data_names, functions = _model_functions(spec)
    dimension = int(sum(np.prod(s) for s in functions.value_shapes))
    batch, = jax.export.symbolic_shape("batch")
    exported = _export(density_function(functions), [jax.ShapeDtypeStruct((batch, dimension), np.float64)],
                       spec, data_names)
    meta = {"key": key, "kind": "density", "data_names": data_names, "outputs": functions.outputs,
            "dimension": dimension, "value_names": functions.value_names}
    _try_save(key, exported, meta)
    return _compiled(exported, meta)


def _build_effects(spec: ModelSpec, key: str) -> Effects:
    from analysis.engine.effects import effects_function

    model = spec.build()
    data_names, functions = _model_functions(spec, model)
    position = functions.value_names.index(spec.effects.variable)
    dimension = int(sum(np.prod(s) for i, s in enumerate(functions.value_shapes) if i != position))
    exported = _export(effects_function(spec, functions, model),
                       [jax.ShapeDtypeStruct((EFFECTS_BATCH, dimension), np.float64)], spec, data_names)
    meta = {"key": key, "kind": "effects", "data_names": data_names, "outputs": [], "dimension": dimension}
    _try_save(key, exported, meta)
    return _compiled(exported, meta)


def _try_save(key: str, exported, meta: dict) -> None:
    try:
        _save(key, exported, meta)
    except OSError:
        pass  # an unwritable cache costs speed in the next process, never correctness
