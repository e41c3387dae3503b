"""The graded outcomes (any, marked, complete, sustained response) as one coherent model, beside the
primary analysis: every report contributes the stages it graded, so all four outcomes rest on the same
reports and complete ≤ marked ≤ any holds in every draw (`models.sequential`).

The model has 14 population parameters and correlated report effects, too many for a grid: its numbers
come from NUTS draws, with their Monte Carlo standard errors. An ungraded stage is assumed missing at
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
from analysis.results.graded import OUTCOME_KEYS, Graded, GradedOutcome, Missingness, OutcomeCheck
from analysis.steps import estimates as est
from models import sequential

ASSUMPTIONS = {
    "at_random": "an outcome a report did not grade is missing at random given the report's effects: the "
                 "report's graded stages and the population, not the reason it went ungraded, say what it "
                 "would have been",
    "failure": "sensitivity analysis: in every series (two or more patients) an ungraded stage counts its "
               "patients as not reaching it (the worst case); single-patient reports keep their blanks",
}
DELTAS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, None)
"""The log-odds shifts of an ungraded stage against a graded one; None is ∞ (the worst case)."""
MISSINGNESS_POINTS = 256
"""Quasi-Monte Carlo points per draw for the shifted population means (fewer than the model's 2048:
their integration error per draw, about 1e-4, is far below the Monte Carlo error of the draws)."""
DRAW_BLOCK = 128
"""Draws per block of the shifted population means (a block's arrays, 128 × 256 × 4, fit in cache)."""
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


def analyse(inputs: Inputs, cache: ModelCache) -> Graded | None:
    """The sequential model fitted to the graded counts; None when no report grades a stage beyond any
    response (`graded_counts`)."""
    config = inputs.config
    report_ids, counts, n = graded_counts(inputs)
    if not report_ids:
        return None
    seeds = Seeds(config.sampling.seed)
    coords = {dim: list(labels) for dim, labels in sequential.LABELS.items()}

    def derive(posterior: xr.Dataset) -> xr.Dataset:
        derived = sequential.derive(posterior.assign_coords(coords), counts, n, seeds.rng("graded derive"))
        return derived.assign_coords(report=list(report_ids))

    result = fit(cache, sequential.model_spec(counts, n, config.graded.prior), config.sampling,
                 seeds.integer("graded"), config.diagnostics, derive, draws=config.graded.draws,
                 gated=lambda p: p[["mu", "tau", "rho", "pooled"]], coords=coords)
    posterior = result.posterior
    replicated = _replicated_counts(posterior, n, counts >= 0, seeds.rng("graded replicates"))
    outcomes = {}
    for k, outcome in enumerate(sequential.OUTCOMES):
        graded = counts[:, k] >= 0
        observed = int(counts[graded, k].sum())
        predicted = replicated[..., graded, k].sum(axis=-1)
        outcomes[OUTCOME_KEYS[k]] = GradedOutcome(
            est.of_draws(posterior["pooled"].sel(outcome=outcome).values),
            est.of_draws(posterior["cumulative_new"].sel(outcome=outcome).values),
            int(graded.sum()), int(n[graded].sum()), observed,
            OutcomeCheck(observed, est.of_draws(predicted), float(np.mean(predicted <= observed)),
                         float(np.mean(predicted >= observed))))
    per_report = {
        rid: {OUTCOME_KEYS[k]: {"observed": None if counts[i, k] < 0 else int(counts[i, k]), "n": int(n[i]),
                                "estimate": est.of_draws(posterior["cumulative"].sel(report=rid, outcome=outcome).values)}
              for k, outcome in enumerate(sequential.OUTCOMES)}
        for i, rid in enumerate(report_ids)}
    return Graded(config.graded.model, config.graded.missing, ASSUMPTIONS[config.graded.missing], outcomes,
                  per_report, missingness(posterior, counts), result.convergence, len(report_ids), int(n.sum()),
                  result.idata, counts)


def missingness(posterior: xr.Dataset, counts: np.ndarray) -> Missingness:
    """The pooled probability of each outcome as an average over the reports' patterns of missing grades:
    a report that did not grade a stage has that stage's log-odds shifted by −δ (pattern-mixture
    identification); at δ = 0 every pattern gives the pooled value of the model, at δ = ∞ the ungraded
    stages contribute no patient. Per draw, over fixed quasi-Monte Carlo points of the report effects."""
    mu = posterior["mu"].transpose("chain", "draw", "stage").values.reshape(-1, len(sequential.STAGES))
    tau = posterior["tau"].transpose("chain", "draw", "stage").values.reshape(-1, len(sequential.STAGES))
    chol = sequential.chol_draws(posterior).reshape(-1, len(sequential.STAGES), len(sequential.STAGES))
    points = sequential.QMC_POINTS[:MISSINGNESS_POINTS]
    patterns, shares = np.unique(counts < 0, axis=0, return_counts=True)
    shares = shares / shares.sum()
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    means = np.empty((len(DELTAS), mu.shape[0], len(OUTCOME_KEYS)))
    for block in range(0, mu.shape[0], DRAW_BLOCK):  # blocks of draws, so that the arrays stay in cache
        rows = slice(block, block + DRAW_BLOCK)
        logits = np.einsum("kt,dst->dks", points, chol[rows] * tau[rows, :, None]) + mu[rows, None, :]
        graded = special.expit(logits)  # (draw, point, stage)
        for j, delta in enumerate(DELTAS):
            if delta == 0:  # every pattern gives the model's pooled value
                means[j, rows] = sequential.point_average(sequential.cumulative(graded))
                continue
            shifted = 0.0 if delta is None else special.expit(logits - delta)
            means[j, rows] = sum(
                share * sequential.point_average(sequential.cumulative(np.where(pattern, shifted, graded)))
                for pattern, share in zip(patterns, shares))
    outcomes = {key: [] for key in OUTCOME_KEYS}
    for j in range(len(DELTAS)):
        for k, key in enumerate(OUTCOME_KEYS):
            outcomes[key].append(est.of_draws(means[j, :, k].reshape(chains, draws)))
    ungraded = {key: int(np.any(counts[:, list(STAGES_OF[outcome])] < 0, axis=1).sum())
                for key, outcome in zip(OUTCOME_KEYS, sequential.OUTCOMES)}
    return Missingness(DELTAS, {k: tuple(v) for k, v in outcomes.items()}, ungraded)


def _replicated_counts(posterior: xr.Dataset, n: np.ndarray, graded: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Counts of the same reports replicated patient by patient from their posterior stage probabilities,
    as cumulative outcome counts (chain, draw, report, outcome); a stage counts only where it was graded."""
    p = posterior["p"].transpose("chain", "draw", "report", "stage").values
    responders = rng.binomial(n, p[..., 0])
    marked = rng.binomial(responders, p[..., 1])
    complete = rng.binomial(marked, p[..., 2])
    sustained = rng.binomial(responders, p[..., 3])
    return np.where(graded, np.stack([responders, marked, complete, sustained], axis=-1), 0)
