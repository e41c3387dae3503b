"""What the next report could change: for a hypothetical report of n = 1…`MAX_N` patients with y = 0…n
responders, the pooled mean with its 95% interval and GRADE imprecision, the lower bound for a further new
report, the between-report SD and the crude rate after adding it, exactly.

A new report multiplies the posterior by its marginal likelihood p(y | n, φ) (θ integrated out, and
conditioned on publication as the pooled reports are when the model has a publication mechanism), so each
updated posterior is the primary grid reweighted by that extra term: no refit, and the estimators of the
primary analysis. The primary grid serves when it holds the most extreme updates (`MAX_N` patients with
none, half or all responding); otherwise a grid on a box that holds them too is refined until their
summaries settle. The map is one pass of arrays over the (n, y) pairs: the weights, the expectations and a
new report's predictive CDF on a grid of logit θ; only the pooled mean's interval is a root per pair, of its
marginal on the grid's first axis where the pooled mean is a function of that axis alone (the spectral
quantiles of the primary analysis, at a fraction of the cost of the whole grid).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
from scipy import special

from analysis.engine import quadrature
from analysis.engine.programs import ModelCache
from analysis.engine.quadrature import Exact
from analysis.inputs.bundle import Inputs
from analysis.inputs.config import GradeSettings, PublicationSettings
from analysis.results import Primary
from analysis.results.next_report import NextReport, Update
from analysis.steps import estimates as est
from analysis.steps import grade
from analysis.steps.primary import headline, pooled_and_predictive, pooled_estimate
from models.families import FAMILIES, model_spec
from models.grid import PRUNE, GridPosterior
from models.publication import in_scope

MAX_N = 40
EXAMPLE_N = 20
EXAMPLE_SERIES = (1, 3)
"""The worked examples: one and three series of `EXAMPLE_N` patients with half responding."""
LOGIT_STEP, LOGIT_SPAN, COARSE = 1 / 32, 12.0, 16
"""Each update's predictive CDF is evaluated on a grid of logit θ over ±`LOGIT_SPAN` (there it stays smooth
where a predictive piles up against 0 or 1): on every `COARSE`-th point to bracket its 2.5% point, then on
every point of the bracketing span, whose local cubic gives the root (error below 1e-6)."""
PAIRS_PER_CHUNK = 4_000_000
"""Largest (node, pair) count held at once."""
_CUBIC = np.linalg.inv(np.vander(np.arange(4.0), increasing=True))


def why_not(inputs: Inputs, primary: Primary) -> str | None:
    """Why the map cannot be computed for this run (a sentence), or None when it can."""
    if primary.exact is None:
        return "the primary model has more parameters than the grid serves"
    if inputs.config.model.covariates:
        return "a model with covariates would need the new report's covariate values"
    return None


def log_likelihood(family: ModuleType, publication: PublicationSettings, values: dict, y, n) -> np.ndarray:
    """log p(y_k | n_k, φ) of new reports (trailing axis), published as the pooled reports are: in the
    mechanism's scope, P(pub | y) / P(pub | φ, n) (`models.publication`)."""
    y, n = np.asarray(y), np.asarray(n)
    out = family.log_marginal(values, y, n)
    scope = in_scope(publication.mechanism, n)
    if publication.weight < 1 and scope.any():
        w = publication.weight
        p_all = np.exp(family.log_all_responded(values, n))
        out = out + np.where(scope, np.where(y < n, np.log(w), 0.0) - np.log(w + (1 - w) * p_all), 0.0)
    return out


def analyse(inputs: Inputs, primary: Primary, cache: ModelCache) -> NextReport:
    """The map and the reports its sentence names (see the module docstring)."""
    config, data = inputs.config, inputs.data
    family = FAMILIES[config.model.family]
    spec = model_spec(config.model.family, primary.reports_input, config.model.prior)

    def extra(y: int, n: int, series: int = 1) -> quadrature.Extra:
        return lambda values: series * log_likelihood(family, config.model.publication, values, [y], [n])[..., 0]

    grid, widened = _grid(cache, family, spec, primary.exact, [extra(y, MAX_N) for y in (0, MAX_N // 2, MAX_N)])
    pairs = [(n, y) for n in range(MAX_N + 1) for y in range(n + 1)]
    responders, patients = int(data.y.sum()), int(data.n.sum())
    values = _map(family, config.model.publication, config.grade, grid, responders, patients, pairs)
    updates = [Update(1 if n else 0, n, y, *row) for (n, y), row in zip(pairs, zip(*values.values()))]
    current, rest = updates[0], updates[1:]
    threshold = config.grade.decision_threshold
    below = [u for u in rest if u.pooled_mean < threshold]
    changed = [u for u in rest if u.imprecision != current.imprecision]
    examples = tuple(_example(cache, family, spec, grid, extra(EXAMPLE_N // 2, EXAMPLE_N, k), k, config.grade,
                              responders, patients) for k in EXAMPLE_SERIES)
    table = {name: {str(n): [] for n in range(1, MAX_N + 1)} for name in
             ("pooled_mean", "pooled_lo", "predictive_lo", "heterogeneity", "crude", "imprecision")}
    for u in rest:
        for name, value in (("pooled_mean", u.pooled_mean), ("pooled_lo", u.pooled_ci95[0]),
                            ("predictive_lo", u.predictive_lo), ("heterogeneity", u.heterogeneity),
                            ("crude", u.crude), ("imprecision", u.imprecision)):
            table[name][str(u.n)].append(value)
    return NextReport(
        max_n=MAX_N, threshold=threshold, current=current,
        lowest=min(rest, key=lambda u: u.pooled_mean), highest=max(rest, key=lambda u: u.pooled_mean),
        below_threshold=min(below, key=lambda u: (u.n, -u.y)) if below else None,
        imprecision_change=min(changed, key=lambda u: (u.n, -u.y)) if changed else None,
        examples=examples, map=table, grid="widened" if widened else "primary", error=grid.error)


def _grid(cache: ModelCache, family: ModuleType, spec, exact: Exact, extremes: list) -> tuple[Exact, bool]:
    """The primary grid when it holds every extreme update, else (and True) a grid on a box that holds
    them, refined until the summaries of the posterior and of each extreme update settle."""
    moved = [e for e in extremes if not exact.reweighted(e(exact.values)).contains()]
    if not moved:
        return exact, False
    region = quadrature.union(quadrature.box(cache, spec), *(quadrature.box(cache, spec, extra=e) for e in moved))
    checked = headline(family)

    def summaries(candidate: Exact) -> dict[str, float]:
        out = checked(candidate)
        for i, e in enumerate(extremes):
            out |= {f"{k}.{i}": v for k, v in checked(candidate.reweighted(e(candidate.values))).items()}
        return out

    return quadrature.posterior(cache, spec, summaries, on=region, tolerance=family.quadrature_tolerance), True


def _map(family: ModuleType, publication: PublicationSettings, settings: GradeSettings, grid: Exact,
         responders: int, patients: int, pairs: list[tuple[int, int]]) -> dict[str, list]:
    """Every update's estimates, chunked over the pairs (one array operation per chunk and quantity)."""
    shape = grid.grid.shape
    with np.errstate(divide="ignore"):
        log_weights = np.log(grid.grid.weights).ravel()
    pooled = np.asarray(family.pooled(grid.values), dtype=float)
    axis_only = bool(np.all(pooled.reshape(shape[0], -1) == pooled.reshape(shape[0], -1)[:, :1]))
    spread = np.asarray(family.heterogeneity_sd(grid.values), dtype=float).ravel()
    predictive = _PredictiveCDF(family, grid.values)
    out: dict[str, list] = {k: [] for k in ("pooled_mean", "pooled_ci95", "predictive_lo", "heterogeneity", "crude",
                                             "imprecision")}
    size = max(1, PAIRS_PER_CHUNK // log_weights.size)
    for start in range(0, len(pairs), size):
        n, y = np.array(pairs[start:start + size]).T
        log_factor = log_likelihood(family, publication, grid.values, y, n).reshape(-1, n.size)
        log_w = np.where(np.isnan(log_factor), -np.inf, log_weights[:, None] + log_factor)
        weights = np.exp(log_w - log_w.max(axis=0))
        weights /= weights.sum(axis=0)
        for k in range(n.size):
            estimate = pooled_estimate(family, _marginal(grid, weights[:, k], pooled) if axis_only else
                                       grid.reweighted(log_factor[:, k].reshape(shape)))
            out["pooled_mean"].append(estimate.mean)
            out["pooled_ci95"].append(estimate.interval)
            out["imprecision"].append(grade.imprecision(estimate.interval, patients + int(n[k]),
                                                        settings.decision_threshold, settings).judgement)
        out["predictive_lo"] += predictive.quantile(weights, est.LOWER).tolist()
        out["heterogeneity"] += (spread @ weights).tolist()
        out["crude"] += ((responders + y) / (patients + n)).tolist()
    return out


def _marginal(grid: Exact, weights: np.ndarray, pooled: np.ndarray) -> Exact:
    """An update's marginal on the grid's first axis as a 1-D grid (node values, the trapezoid's half
    weights at its ends undone), with the pooled mean along it: the same quantiles as on the whole grid."""
    shape = grid.grid.shape
    mass = weights.reshape(shape).sum(axis=tuple(range(1, len(shape))))
    mass[[0, -1]] *= 2.0
    with np.errstate(divide="ignore"):
        line = GridPosterior((grid.grid.axes[0],), np.log(mass),
                             tuple(t for t in grid.grid.truncated if t.axis == 0))
    mean = pooled.reshape(shape[0], -1)[:, 0]
    return Exact(line, {"mu": mean}, grid.error, grid.nodes)


class _PredictiveCDF:
    """A new report's predictive CDF of θ under each update, at the points of the logit grid where it is
    needed: each node's component CDF is computed once per point, for the nodes that carry weight."""

    def __init__(self, family: ModuleType, values: dict):
        self.family = family
        self.values = {k: np.asarray(v, dtype=float).reshape(-1) for k, v in values.items()}
        self.logit = np.arange(-LOGIT_SPAN, LOGIT_SPAN + LOGIT_STEP / 2, LOGIT_STEP)
        self.columns: dict[int, np.ndarray] = {}

    def at(self, weights: np.ndarray, points: np.ndarray) -> np.ndarray:
        """(pairs, points): Σ_j w_jk F_j(θ) at the grid points `points`."""
        active = (weights >= PRUNE * weights.max(axis=0)).any(axis=1)
        for i in points:
            column = self.columns.setdefault(int(i), np.full(active.size, np.nan))
            missing = active & np.isnan(column)
            if missing.any():
                column[missing] = self.family.new_theta_cdf({k: v[missing] for k, v in self.values.items()},
                                                            special.expit(self.logit[i]))
        return weights[active].T @ np.stack([self.columns[int(i)][active] for i in points], axis=1)

    def quantile(self, weights: np.ndarray, level: float) -> np.ndarray:
        coarse = np.arange(0, self.logit.size, COARSE)
        cell = np.clip(np.sum(self.at(weights, coarse) < level, axis=1) - 1, 0, coarse.size - 2)
        span = np.arange(max(coarse[cell.min()] - 2, 0), min(coarse[cell.max() + 1] + 2, self.logit.size - 1) + 1)
        return special.expit(_crossing(self.logit[span], self.at(weights, span), level))


def _crossing(x: np.ndarray, cdf: np.ndarray, level: float) -> np.ndarray:
    """Where each row of a CDF tabulated at evenly spaced `x` reaches `level`: Newton's root of the cubic
    through the four table points around the crossing, kept in the crossing's cell."""
    h = x[1] - x[0]
    cell = np.clip(np.sum(cdf < level, axis=1) - 1, 0, x.size - 2)
    first = np.clip(cell - 1, 0, x.size - 4)
    rows = np.arange(cdf.shape[0])[:, None]
    coefficients = (cdf[rows, first[:, None] + np.arange(4)] - level) @ _CUBIC.T
    lo, hi = (cell - first).astype(float), (cell - first + 1).astype(float)
    f_lo, f_hi = (np.polynomial.polynomial.polyval(v, coefficients.T, tensor=False) for v in (lo, hi))
    u = lo + np.where(f_hi > f_lo, -f_lo / np.where(f_hi > f_lo, f_hi - f_lo, 1.0), 0.5)
    slope_coefficients = coefficients[:, 1:] * np.arange(1, 4)
    for _ in range(6):
        value = np.polynomial.polynomial.polyval(u, coefficients.T, tensor=False)
        slope = np.polynomial.polynomial.polyval(u, slope_coefficients.T, tensor=False)
        u = np.clip(u - value / np.where(slope > 0, slope, np.inf), lo, hi)
    return x[first] + h * u


def _example(cache: ModelCache, family: ModuleType, spec, grid: Exact, extra: quadrature.Extra, series: int,
             settings: GradeSettings, responders: int, patients: int) -> Update:
    """`series` reports of `EXAMPLE_N` patients with half responding, each with its own θ."""
    updated = grid.reweighted(extra(grid.values))
    if not updated.contains():
        updated = quadrature.posterior(cache, spec, headline(family), extra=extra,
                                       tolerance=family.quadrature_tolerance)
    population = pooled_and_predictive(family, updated)
    n, y = series * EXAMPLE_N, series * (EXAMPLE_N // 2)
    pooled = population.pooled
    return Update(series, EXAMPLE_N, EXAMPLE_N // 2, pooled.mean, pooled.interval, population.predictive.lo,
                  updated.grid.expectation(family.heterogeneity_sd(updated.values)), (responders + y) / (patients + n),
                  grade.imprecision(pooled.interval, patients + n, settings.decision_threshold, settings).judgement)
