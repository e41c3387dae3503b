"""Exact posteriors of models with at most three continuous parameters: the PyMC model's own compiled log
density (`programs.Density`), integrated on a grid (`models.grid`).

The grid's coordinates are PyMC's unconstrained ones (logit μ, μ, β) except for a scale parameter s that
PyMC samples as its log (u, τ): the grid runs over t = asinh(s / c) from 0 (c = `FOLD_SCALE`), the density
carrying the Jacobian. On the log scale a scale's posterior has a long exponential tail toward 0 (κ → ∞,
complete pooling), which a box must follow for 30 units of log density; in t it ends at 0, near which t is
linear in s, and the density is an even function of s there (the likelihood depends on u² = 1/κ, and the
half-normal, half-Cauchy and uniform priors are even), hence of t, so the trapezoid rule with its
half-weight node at 0 keeps its spectral accuracy (Euler-Maclaurin's odd-derivative terms vanish). For
large s, t grows like log s, so a heavy right tail (a half-Cauchy prior) stays as compact as on the log
scale. The node at 0 is evaluated at s = `FOLD_FLOOR` (κ = 10¹⁶: the likelihood's limit in double precision).
Where the data pin a scale away from 0 (thousands of reports), the box does not reach 0 and its lower face in t
is a cut like any other, so the nodes fall where the mass is.

The PyMC model stays the single definition: the grid evaluates the same log density NUTS samples, and the
model's named variables (μ, κ, τ, β) come out of the same program at every node. The grid's box is found
from the mode outward until the log density on every face is 30 below its maximum; the resolution grows by
about half (`finer`) until the summaries the caller names change by less than the tolerance, and the last
change is kept as the stated numerical error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from analysis.engine.programs import Density, ModelCache
from models import grid as grids
from models import importance as importance_sampling
from models.base import ModelSpec

START_NODES = {1: 201, 2: 61, 3: 31}
MAX_NODES = {1: 6401, 2: 961, 3: 241}
TOLERANCE = 2e-5
"""Largest change of a checked summary between two resolutions at which the grid is accepted: far below
the fourth decimal that `summary.json` carries."""
MAX_PARAMETERS = 3


@dataclass(frozen=True)
class Exact:
    """A posterior on a grid: the grid (weights, quantiles, mixtures) and the model's named variables at its
    nodes (arrays of the grid's shape; `beta` has a trailing covariate axis)."""

    grid: grids.GridPosterior
    values: dict[str, np.ndarray]
    error: float
    """Largest change of the checked summaries at the last refinement (the stated numerical error)."""
    nodes: int
    """Nodes per axis of the accepted grid."""
    fold: tuple[bool, ...] = ()
    """Which axes run over t = asinh(scale / c) (see the module docstring)."""

    def support_values(self) -> dict[str, np.ndarray]:
        """The named variables at the support nodes only (where mixtures are evaluated)."""
        mask = self.grid.support
        return {name: value[mask] for name, value in self.values.items()}

    def contains(self, margin: float = 20.0) -> bool:
        """Whether the posterior is contained in the grid's box: every face at least `margin` below the
        maximum, except a folded axis's face at 0 (the scale's end, not a cut; a folded axis away from 0
        has a cut there like any other). After `reweighted` (a
        report added or left out) a smaller value says the new posterior has moved to the box's edge."""
        drop = self.grid.face_drop()
        at_zero = folded_axes(self) & np.array([axis[0] == 0.0 for axis in self.grid.axes])
        drop[at_zero, 0] = np.inf
        return bool(np.min(drop) >= margin)

    def reweighted(self, log_factor: np.ndarray) -> "Exact":
        return dataclasses.replace(self, grid=self.grid.reweighted(log_factor))


FOLD_FLOOR = 1e-8
FOLD_SCALE = 0.1
"""c of t = asinh(s / c): below it the grid is linear in the scale, above it logarithmic."""


def folded(density: Density) -> np.ndarray:
    """Which grid axes run over a scale parameter from 0 (PyMC's scalar log-transformed values)."""
    names = density.value_names
    return np.array([name.endswith("_log__") for name in names]) if len(names) == density.dimension else \
        np.zeros(density.dimension, dtype=bool)


def folded_axes(exact: Exact) -> np.ndarray:
    return np.array(exact.fold, dtype=bool) if exact.fold else np.zeros(len(exact.grid.axes), dtype=bool)


def scale_of(exact: Exact) -> Callable[[np.ndarray], np.ndarray]:
    """The scale parameter as a function of its folded grid coordinate t: c sinh t (at least the floor)."""
    return lambda t: np.maximum(FOLD_SCALE * np.sinh(np.asarray(t, dtype=float)), FOLD_FLOOR)


def _program_points(points: np.ndarray, fold: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PyMC's unconstrained points (log s) for grid points (t), and the log Jacobian of the change:
    d log s / dt = c cosh t / s."""
    points = np.asarray(points, dtype=float)
    if not fold.any():
        return points, np.zeros(points.shape[0])
    t = np.abs(points[:, fold])
    scales = np.maximum(FOLD_SCALE * np.sinh(t), FOLD_FLOOR)
    program = points.copy()
    program[:, fold] = np.log(scales)
    log_jacobian = np.log(FOLD_SCALE) + np.logaddexp(t, -t) - np.log(2.0) - np.log(scales)
    return program, log_jacobian.sum(axis=1)


Extra = Callable[[dict[str, np.ndarray]], np.ndarray] | None
"""A term added to the log density, as a function of the model's named variables at the points (the
likelihood of reports added or left out, e.g. for leave-one-out or a hypothetical next report)."""


def _evaluate(density: Density, values: dict, points: np.ndarray, which: int, extra: Extra):
    program, log_jacobian = _program_points(points, folded(density))
    logp, prior, named = density.evaluate(values, program)
    log_density = (logp, prior)[which] + log_jacobian
    if extra is not None:
        with np.errstate(invalid="ignore"):
            log_density = log_density + extra(named)
    return np.where(np.isnan(log_density), -np.inf, log_density), named


def _log_density(density: Density, values: dict, which: int = 0, extra: Extra = None):
    return lambda points: _evaluate(density, values, points, which, extra)[0]


def _on_axes(density: Density, values: dict, axes: tuple[np.ndarray, ...], which: int = 0,
             truncated=(), extra: Extra = None) -> tuple[grids.GridPosterior, dict[str, np.ndarray]]:
    mesh = np.meshgrid(*axes, indexing="ij")
    points = np.stack([m.ravel() for m in mesh], axis=1)
    log_density, named = _evaluate(density, values, points, which, extra)
    shape = tuple(a.size for a in axes)
    named = {name: v.reshape(shape + v.shape[1:]) for name, v in named.items()}
    return grids.GridPosterior(axes, log_density.reshape(shape), truncated), named


def box(cache: ModelCache, spec: ModelSpec, values: dict | None = None, prior: bool = False,
        extra: Extra = None) -> grids.Box:
    """The box holding all but e^−30 of the posterior (or, with `prior`, of the prior)."""
    density = cache.density(spec)
    log_density = _log_density(density, values or spec.values, 1 if prior else 0, extra)
    fold = folded(density)
    with cache.running():
        mode, scale = grids.find_mode(log_density, np.where(fold, 1.5, 0.0))
        found = grids.posterior_box(log_density, mode, scale)
    # The density is even in a folded coordinate and the grid covers t ≥ 0: a box that reaches 0 becomes
    # [0, its farther face]; one on the negative side is mirrored; one away from 0 (a scale the data pin
    # down, e.g. thousands of reports) keeps its faces, so that its nodes fall where the mass is.
    lower, upper, face_drop = found.lower.copy(), found.upper.copy(), found.face_drop.copy()
    reaching = fold & (lower <= 0) & (upper >= 0)
    mirrored = fold & (upper < 0)
    upper[reaching] = np.maximum(np.abs(lower[reaching]), upper[reaching])
    lower[reaching] = 0.0
    lower[mirrored], upper[mirrored] = -found.upper[mirrored], -found.lower[mirrored]
    face_drop[mirrored] = face_drop[mirrored][:, ::-1]
    sides = {"lower": "upper", "upper": "lower"}
    truncated = tuple(dataclasses.replace(t, side=sides[t.side]) if mirrored[t.axis] else t
                      for t in found.truncated if not (reaching[t.axis] and t.side == "lower"))
    return grids.Box(lower, upper, found.log_max, face_drop, truncated)


def union(*boxes: grids.Box) -> grids.Box:
    """The smallest box holding each of `boxes` (one grid for posteriors that move with a data value)."""
    lower = np.min([b.lower for b in boxes], axis=0)
    upper = np.max([b.upper for b in boxes], axis=0)
    return grids.Box(lower, upper, max(b.log_max for b in boxes), np.min([b.face_drop for b in boxes], axis=0),
                     tuple(t for b in boxes for t in b.truncated))


def posterior(cache: ModelCache, spec: ModelSpec, checked: Callable[[Exact], dict[str, float]],
              values: dict | None = None, on: grids.Box | None = None, prior: bool = False,
              tolerance: float = TOLERANCE, extra: Extra = None) -> Exact:
    """The exact posterior of `spec` (or its prior) on the coarsest grid whose summaries (those `checked`
    returns) change by less than `tolerance` on a grid of about 1.5 times the nodes (`finer`): that change is
    its stated numerical error (the finer grid, spectrally more accurate, only checks it). `on`: a box to use instead
    of finding one. A grid that reaches `MAX_NODES` unconverged is returned with its last change."""
    density = cache.density(spec)
    if density.dimension > MAX_PARAMETERS:
        raise ValueError(f"{density.dimension} parameters: quadrature serves at most {MAX_PARAMETERS}")
    values = values or spec.values
    region = on or box(cache, spec, values, prior, extra)
    d = density.dimension
    fold = tuple(bool(f) for f in folded(density))
    nodes, previous = START_NODES[d], None
    while True:
        axes = tuple(np.linspace(lo, hi, nodes) for lo, hi in zip(region.lower, region.upper))
        with cache.running():
            grid, named = _on_axes(density, values, axes, 1 if prior else 0, region.truncated, extra)
        current = Exact(grid, named, np.nan, nodes, fold)
        summaries = checked(current)
        if previous is not None:
            coarse, coarse_summaries = previous
            error = float(max(abs(summaries[k] - coarse_summaries[k]) for k in summaries))
            if error <= tolerance:
                return dataclasses.replace(coarse, error=error)
            if finer(nodes) > MAX_NODES[d]:
                return dataclasses.replace(current, error=error)
        previous = (current, summaries)
        nodes = finer(nodes)


def finer(nodes: int) -> int:
    """The next resolution: about 1.5 times the nodes per axis. The error of a spectrally converging grid
    falls so fast that the finer grid only checks the coarser; halving the spacing instead costs 2^d times
    the accepted grid (8 times in three dimensions) for that check."""
    return 2 * (3 * nodes // 4) + 1


def on_box(cache: ModelCache, spec: ModelSpec, region: grids.Box, nodes: int, values: dict | None = None,
           extra: Extra = None, error: float = np.nan) -> Exact:
    """The posterior for `values` on a given box and resolution (no refinement: for sweeps whose
    resolution and `error` were settled on neighbouring posteriors)."""
    density = cache.density(spec)
    axes = tuple(np.linspace(lo, hi, nodes) for lo, hi in zip(region.lower, region.upper))
    with cache.running():
        grid, named = _on_axes(density, values or spec.values, axes, 0, region.truncated, extra)
    return Exact(grid, named, error, nodes, tuple(bool(f) for f in folded(density)))


def parameters(cache: ModelCache, spec: ModelSpec) -> int:
    """How many continuous parameters the model integrates (after θ is integrated out)."""
    return cache.density(spec).dimension


def importance(cache: ModelCache, spec: ModelSpec, values: dict | None = None) \
        -> tuple[importance_sampling.Weighted, list[dict[str, np.ndarray]]]:
    """The posterior of a model with more parameters than a grid serves, by importance sampling on fixed
    quasi-random points of the same compiled log density (`models.importance`): the weighted points per
    replicate and the model's named variables at them. The same at every seed."""
    density = cache.density(spec)
    values = values or spec.values

    def evaluate(points):
        with cache.running():
            logp, _, named = density.evaluate(values, points)
        return logp, named

    weighted = importance_sampling.sample(lambda points: evaluate(points)[0], np.zeros(density.dimension),
                                          folded(density), evaluate)
    return weighted, weighted.collected
