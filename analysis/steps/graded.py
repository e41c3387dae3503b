"""The graded outcomes (any, marked, complete, sustained response) as one coherent model, beside the
primary analysis: every report contributes the stages it graded, so all four outcomes rest on the same
reports and complete ≤ marked ≤ any holds at every parameter value (`models.sequential`).

The model has 14 population parameters and correlated report effects, too many for a grid. Its numbers
come from importance sampling on fixed quasi-random points of the population parameters, each report's
effects integrated out by adaptive Gauss-Hermite quadrature (`integrate`): the same at every seed, each
with the standard error its independent scramblings give (printed like a Monte Carlo one). NUTS samples the
same model beside it as a cross-check, for the convergence plots and for the per-report estimates, which
only `summary.json` carries. An ungraded stage is assumed missing at
random given the report's effects; `missingness` shows how far each outcome moves if the ungraded stages
went worse (a pattern-mixture shift δ of their log-odds, up to no patient reaching them).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import special

from analysis.engine.fitting import fit
from analysis.engine.programs import ModelCache
from analysis.engine.seeds import Seeds
from analysis.inputs.bundle import Inputs, selection
from analysis.inputs.evidence import selected_reports, stage_counts
from analysis.results import Estimate
from analysis.results.graded import OUTCOME_KEYS, Graded, GradedOutcome, Missingness, OutcomeCheck
from analysis.steps import estimates as est
from models import importance, sequential

ASSUMPTIONS = {
    "at_random": "an outcome a report did not grade is missing at random given the report's effects: the "
                 "report's graded stages and the population, not the reason it went ungraded, say what it "
                 "would have been",
    "failure": "sensitivity analysis: in every series (two or more patients) an ungraded stage counts its "
               "patients as not reaching it (the worst case); single-patient reports keep their blanks",
}
DELTAS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, None)
"""The log-odds shifts of an ungraded stage against a graded one; None is ∞ (the worst case)."""
MISSINGNESS_POINTS = 128
"""Quasi-Monte Carlo points of the report effects per population point for the shifted population means
(fewer than the model's 2048: their integration error per point, about 1e-4, is far below the error of
the importance sampling)."""
DRAW_BLOCK = 128
"""Population points per block of the shifted means (a block's arrays, 128 × 128 × 4, fit in cache)."""
STAGES_OF = {"any_response": (0,), "marked": (0, 1), "complete": (0, 1, 2), "sustained": (0, 3)}
"""The stages (of `sequential.STAGES`) whose probabilities an outcome multiplies."""


def graded_counts(inputs: Inputs) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """The reports of the analysis set that grade at least one stage, their counts and sizes; none when no
    report grades a stage beyond any response (the model would only repeat the primary analysis of any
    response, and the deeper outcomes would be their prior: a user's table of responders alone)."""
    config, table = inputs.config, inputs.table
    rows = table.frame[selected_reports(table, config.data.drug, selection(config.data, table, inputs.appraisal))]
    for column in sequential.COUNT_COLUMNS:
        if column not in rows:
            rows = rows.assign(**{column: np.nan})
    counts = stage_counts(rows)
    if not (counts[:, 1:] >= 0).any():
        return (), counts[:0], np.zeros(0, dtype=np.int64)
    keep = (counts >= 0).any(axis=1)
    n = rows["n_treated"].to_numpy(dtype=np.int64)[keep]
    counts = counts[keep]
    if config.graded.missing == "failure":
        counts = sequential.missing_as_failure(counts, n)
    return tuple(rows["report_id"][keep]), counts, n


def why_not(inputs: Inputs) -> str | None:
    """Why the graded-outcome model is not fitted to this run's table (a sentence), or None when it is."""
    if not graded_counts(inputs)[0]:
        return "no report grades an outcome beyond any response"
    return None


def analyse(inputs: Inputs, cache: ModelCache, detail: bool = True) -> Graded | None:
    """The sequential model fitted to the graded counts; None when no report grades a stage beyond any
    response (`graded_counts`). Its printed numbers come from `integrate` (the same at every seed), whose
    importance weights are checked (`_integration`); NUTS samples the same model beside it as a cross-check
    and for the convergence plots. Without `detail` (a sensitivity variant's rows): the pooled and predictive
    outcomes only, integrated, with no NUTS run, replicated-data check, per-report estimates or missing-grade
    sweep."""
    config = inputs.config
    report_ids, counts, n = graded_counts(inputs)
    if not report_ids:
        return None
    spec = sequential.model_spec(counts, n, config.graded.prior)
    sampled = _sampled(inputs, cache, spec, report_ids, counts, n) if detail else None
    integrated = integrate(cache, spec, counts, n, replicated=detail)
    pooled = _population(integrated)
    predictive = _new_report(integrated)
    outcomes = {}
    for k, outcome in enumerate(sequential.OUTCOMES):
        graded = counts[:, k] >= 0
        observed = int(counts[graded, k].sum())
        outcomes[OUTCOME_KEYS[k]] = GradedOutcome(pooled[k], predictive[k], int(graded.sum()), int(n[graded].sum()),
                                                  observed, _check(integrated, k, observed) if detail else None)
    return Graded(config.graded.model, config.graded.missing, ASSUMPTIONS[config.graded.missing], outcomes,
                  _per_report(sampled.posterior, report_ids, counts, n) if sampled else {},
                  missingness(integrated, counts) if detail else None,
                  sampled.convergence if sampled else None, len(report_ids), int(n.sum()), _integration(integrated),
                  _cross_check(sampled.posterior, pooled) if sampled else None, sampled.idata if sampled else None,
                  counts)


def _per_report(posterior: xr.Dataset, report_ids, counts: np.ndarray, n: np.ndarray) -> dict:
    """Per report and outcome: the observed count (None where not graded), its patients and the NUTS estimate
    of its cumulative probability."""
    return {rid: {OUTCOME_KEYS[k]: {"observed": None if counts[i, k] < 0 else int(counts[i, k]), "n": int(n[i]),
                                    "estimate": est.of_draws(posterior["cumulative"].sel(report=rid,
                                                                                         outcome=outcome).values)}
                  for k, outcome in enumerate(sequential.OUTCOMES)}
            for i, rid in enumerate(report_ids)}


def _sampled(inputs: Inputs, cache: ModelCache, spec, report_ids, counts: np.ndarray, n: np.ndarray):
    """The NUTS fit of the same model (the cross-check, the convergence plots, the per-report estimates)."""
    config = inputs.config
    seeds = Seeds(config.sampling.seed)
    coords = {dim: list(labels) for dim, labels in sequential.LABELS.items()}

    def derive(posterior: xr.Dataset) -> xr.Dataset:
        derived = sequential.derive(posterior.assign_coords(coords), counts, n, seeds.rng("graded derive"))
        return derived.assign_coords(report=list(report_ids))

    return fit(cache, spec, config.sampling, seeds.integer("graded"), config.diagnostics, derive,
               draws=config.graded.draws, gated=lambda p: p[["mu", "tau", "rho", "pooled"]], coords=coords)


def integrate(cache: ModelCache, spec, counts: np.ndarray, n: np.ndarray, replicated: bool = True) \
        -> importance.Weighted:
    """The posterior of the model's 14 population parameters, the report effects integrated out report by
    report (`analysis.engine.effects`), by importance sampling on fixed quasi-random points
    (`models.importance`); with `replicated`, each point keeps the distribution of the replicated outcome
    counts of the graded reports (`_replicated_totals`). Without it (a sensitivity variant, whose rows print
    pooled and predictive intervals only) half the points serve: their errors, about 1.4 times larger, are
    still printed with their own digits."""
    program = cache.effects(spec)
    graded = counts >= 0
    reports = len(n)

    def log_density(points):
        with cache.running():
            return program.evaluate(spec.values, points)[0]

    def evaluate(points):
        log_density, totals = [], []
        for start in range(0, len(points), EFFECT_BLOCK):
            with cache.running():
                value, weights, outcomes = program.evaluate(spec.values, points[start:start + EFFECT_BLOCK])
            log_density.append(value)
            rows = max(1, REDUCTION_SIZE // (weights.shape[2] * len(sequential.OUTCOMES) * (int(n.max()) + 1)))
            totals += [_replicated_totals(weights[first:first + rows, :reports], outcomes[first:first + rows, :reports],
                                          n, graded) for first in range(0, len(value), rows)]
        return np.concatenate(log_density), np.concatenate(totals)

    s, pairs = len(sequential.STAGES), len(sequential.PAIRS)  # points: μ, log τ, logit b (`_unpack`)
    log_scales = np.repeat([False, True, False], [s, s, pairs])
    start = np.concatenate([np.zeros(s), np.full(s, np.log(0.5)), np.zeros(pairs)])
    if not replicated:
        return importance.sample(log_density, start, log_scales, points_log2=importance.POINTS_LOG2 - 1)
    return importance.sample(log_density, start, log_scales, evaluate)


EFFECT_BLOCK = 512
"""Points per block of the final evaluation (a block's node weights and outcomes, 512 × reports × 81 × 5
numbers, are reduced before the next)."""
REDUCTION_SIZE = 4_000_000
"""Largest array (points × nodes × outcomes × counts) of one step of `_replicated_totals`."""


def _unpack(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """μ, τ and the correlation's Cholesky factor at points on the unconstrained scale (mu, log τ, logit b)."""
    s = len(sequential.STAGES)
    return points[:, :s], np.exp(points[:, s:2 * s]), sequential.correlation_cholesky(special.expit(points[:, 2 * s:]))


def _replicated_totals(weights: np.ndarray, outcomes: np.ndarray, n: np.ndarray, graded: np.ndarray) -> np.ndarray:
    """Per point, the distribution (point, outcome, total + 1) of each outcome's count summed over the reports
    that graded it, in data replicated from the same reports: per report a mixture over its quadrature
    nodes (its effects' posterior given the point) of Binomial(n_i, the outcome's probability), then
    convolved over the reports."""
    points, outcomes_count = weights.shape[0], outcomes.shape[-1]
    total = np.zeros((points, outcomes_count, int(n.sum()) + 1))
    total[:, :, 0] = 1.0
    for i, size in enumerate(n):
        p = outcomes[:, i]  # (point, node, outcome)
        powers = np.ones((size + 1, *p.shape))  # p^y and (1 − p)^y by repeated products (exp is dearer)
        failures = np.ones((size + 1, *p.shape))
        for y in range(1, size + 1):
            powers[y] = powers[y - 1] * p
            failures[y] = failures[y - 1] * (1.0 - p)
        choose = special.comb(size, np.arange(size + 1))
        binomial = choose[:, None, None, None] * powers * failures[::-1]  # (y, point, node, outcome)
        pmf = np.einsum("pk,ypko->poy", weights[:, i], binomial)  # (point, outcome, y)
        pmf[:, ~graded[i]] = np.eye(size + 1)[0]  # an ungraded outcome adds nothing
        shifted = np.zeros_like(total)
        for count in range(size + 1):
            shifted[:, :, count:] += pmf[:, :, count, None] * total[:, :, :total.shape[2] - count]
        total = shifted
    return total


def _population(weighted: importance.Weighted) -> list[Estimate]:
    """The pooled probability of each outcome: the population mean over a new report's effects at each point."""
    values = [sequential.population_means(*_unpack(points)) for points in weighted.points]
    return [est.of_importance(weighted, [v[:, k] for v in values]) for k in range(len(OUTCOME_KEYS))]


def _new_report(weighted: importance.Weighted) -> list[Estimate]:
    """A new report's outcome probabilities: at each point, its distribution over a new report's effects
    (`PREDICTIVE_POINTS` of the model's fixed quasi-Monte Carlo points)."""
    values = []
    for points in weighted.points:
        mu, tau, chol = _unpack(points)
        logits = np.einsum("kt,dst->dks", sequential.QMC_POINTS[:PREDICTIVE_POINTS], chol * tau[:, :, None]) + mu[:, None]
        values.append(sequential.cumulative(special.expit(logits)).reshape(-1, len(OUTCOME_KEYS)))
    return [est.of_importance(weighted, [v[:, k] for v in values], PREDICTIVE_POINTS) for k in range(len(OUTCOME_KEYS))]


PREDICTIVE_POINTS = 64
"""Points of a new report's effects per population point for its predictive distribution (with about 8,000
population points, half a million atoms)."""


def _check(weighted: importance.Weighted, k: int, observed: int) -> OutcomeCheck:
    """Observed responders of outcome k against the distribution of the same count in replicated data."""
    pmfs = [w @ totals[:, k] for w, totals in zip(weighted.weights, weighted.collected)]
    pmf = np.mean(pmfs, axis=0)
    counts = np.arange(pmf.size)

    def summary(p):
        cdf = np.cumsum(p)
        lo, median, hi = (float(np.searchsorted(cdf, q * cdf[-1])) for q in (est.LOWER, 0.5, est.UPPER))
        mean = float(counts @ p)
        return (mean, median, lo, hi, float(np.sqrt(max(counts ** 2 @ p - mean ** 2, 0.0))),
                float(p[:observed + 1].sum()), float(p[observed:].sum()))

    mean, median, lo, hi, sd, at_most, at_least = summary(pmf)
    spread = np.array([summary(p) for p in pmfs]).std(axis=0, ddof=1) / np.sqrt(len(pmfs))
    predicted = Estimate(mean, median, sd, lo, hi, "importance", None,
                         {"mean": float(spread[0]), "median": float(spread[1]), "lo": float(spread[2]),
                          "hi": float(spread[3])})
    return OutcomeCheck(observed, predicted, at_most, at_least)


def _cross_check(posterior: xr.Dataset, pooled: list[Estimate]) -> dict:
    """The largest difference between the NUTS draws' and the integration's pooled means, in the draws'
    Monte Carlo standard errors."""
    rows = []
    for k, outcome in enumerate(sequential.OUTCOMES):
        drawn = est.of_draws(posterior["pooled"].sel(outcome=outcome).values)
        rows.append((abs(drawn.mean - pooled[k].mean) / drawn.mcse["mean"], abs(drawn.mean - pooled[k].mean),
                     OUTCOME_KEYS[k]))
    in_mcse, difference, largest = max(rows)
    draws = int(posterior.sizes["chain"] * posterior.sizes["draw"])
    return {"largest": largest, "largest_difference": difference, "largest_in_mcse": in_mcse, "draws": draws}


def _integration(weighted: importance.Weighted) -> dict:
    """How the numbers were integrated, and why the integration should not be trusted (`failures`, empty
    when it passes): the largest Pareto k̂ of a replicate's importance weights (`est.importance_check`) and
    the limit it is held to."""
    pareto_k, failures = est.importance_check(weighted)
    return {"method": "importance", "parameters": int(weighted.mode.size),
            "points": int(sum(len(w) for w in weighted.weights)),
            "replicates": len(weighted.weights), "ess_min": float(weighted.ess.min()), "pareto_k_max": pareto_k,
            "pareto_k_limit": est.PARETO_K_MAX, "failures": failures}


def missingness(weighted: importance.Weighted, counts: np.ndarray) -> Missingness:
    """The pooled probability of each outcome as an average over the reports' patterns of missing grades:
    a report that did not grade a stage has that stage's log-odds shifted by −δ (pattern-mixture
    identification); at δ = 0 every pattern gives the pooled value of the model, at δ = ∞ the ungraded
    stages contribute no patient. Per point, over fixed quasi-Monte Carlo points of the report effects."""
    patterns, shares = np.unique(counts < 0, axis=0, return_counts=True)
    shares = shares / shares.sum()
    means = [_shifted_means(*_unpack(points), patterns, shares) for points in weighted.points]  # (δ, point, outcome)
    outcomes = {key: tuple(est.of_importance(weighted, [m[j, :, k] for m in means]) for j in range(len(DELTAS)))
                for k, key in enumerate(OUTCOME_KEYS)}
    ungraded = {key: int(np.any(counts[:, list(STAGES_OF[outcome])] < 0, axis=1).sum())
                for key, outcome in zip(OUTCOME_KEYS, sequential.OUTCOMES)}
    return Missingness(DELTAS, outcomes, ungraded)


def _shifted_means(mu, tau, chol, patterns, shares) -> np.ndarray:
    """(δ, point, outcome): the pattern-weighted population means with the ungraded stages shifted by −δ."""
    points = sequential.QMC_POINTS[:MISSINGNESS_POINTS]
    means = np.empty((len(DELTAS), mu.shape[0], len(OUTCOME_KEYS)))
    for block in range(0, mu.shape[0], DRAW_BLOCK):  # blocks of points, so that the arrays stay in cache
        rows = slice(block, block + DRAW_BLOCK)
        logits = np.einsum("kt,dst->dks", points, chol[rows] * tau[rows, :, None]) + mu[rows, None, :]
        graded = special.expit(logits)  # (point, node, stage)
        for j, delta in enumerate(DELTAS):
            if delta == 0:  # every pattern gives the model's pooled value
                means[j, rows] = sequential.point_average(sequential.cumulative(graded))
                continue
            shifted = 0.0 if delta is None else special.expit(logits - delta)
            means[j, rows] = sum(
                share * sequential.point_average(sequential.cumulative(np.where(pattern, shifted, graded)))
                for pattern, share in zip(patterns, shares))
    return means
