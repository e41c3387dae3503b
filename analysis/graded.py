"""The graded outcomes (any, marked, complete, sustained response) as one coherent model, beside the
primary analysis: every report contributes the stages it graded, so all four outcomes rest on the same
reports and complete ≤ marked ≤ any holds in every draw (`models.sequential`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from analysis.config import Config
from analysis.data import EvidenceTable, selected_reports
from analysis.diagnostics import ConvergenceReport, check_convergence
from analysis.intervals import describe
from analysis.sampling import ModelCache, Seeds
from models import sequential

ASSUMPTIONS = {
    "at_random": "an outcome a report did not grade is missing at random given the report's effects: the "
                 "report's graded stages and the population, not the reason it went ungraded, say what it "
                 "would have been",
    "failure": "sensitivity analysis: in every series (two or more patients) an ungraded stage counts its "
               "patients as not reaching it (the worst case); single-patient reports keep their blanks",
}


@dataclass(frozen=True)
class GradedResult:
    config: Config
    report_ids: tuple[str, ...]
    counts: np.ndarray
    """(reports, 4) in the order any, marked, complete, sustained; −1 = not graded (after `missing`)."""
    n: np.ndarray
    idata: xr.DataTree
    """posterior (with the derived `cumulative`, `pooled`, `cumulative_new`) and sample_stats."""
    convergence: ConvergenceReport


def labelled(posterior: xr.Dataset) -> xr.Dataset:
    """The sequential model's draws with the labels of their stage and pair dimensions."""
    return posterior.assign_coords({dim: list(labels) for dim, labels in sequential.LABELS.items()
                                    if dim in posterior.dims})


def graded_counts(config: Config, table: EvidenceTable) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """The reports of the analysis set that grade at least one stage, their counts and sizes."""
    rows = table.frame[selected_reports(table, config.data.drug, config.data.selection())]
    for column in sequential.COUNT_COLUMNS:
        if column not in rows:
            rows = rows.assign(**{column: np.nan})
    counts = sequential.counts_matrix(rows)
    keep = (counts >= 0).any(axis=1)
    n = rows["n_treated"].to_numpy(dtype=np.int64)[keep]
    counts = counts[keep]
    if config.graded.missing == "failure":
        counts = sequential.missing_as_failure(counts, n)
    return tuple(rows["report_id"][keep]), counts, n


def run_graded(config: Config, table: EvidenceTable, cache: ModelCache) -> GradedResult | None:
    """Fit the sequential model to the graded counts; None when no report grades any stage."""
    report_ids, counts, n = graded_counts(config, table)
    if not report_ids:
        return None
    settings = config.sampling.model_copy(update={"draws": config.graded.draws})
    seeds = Seeds(config.sampling.seed)
    trace = cache.sample(sequential.model_spec(counts, n, config.graded.prior), settings, seed=seeds.integer("graded"))
    posterior = labelled(trace["posterior"].to_dataset())
    derived = sequential.derive(posterior, counts, n, seeds.rng("graded derive"))
    posterior = posterior.drop_vars("p").merge(derived).assign_coords(report=list(report_ids))
    gate = posterior[["mu", "tau", "rho", "pooled"]]
    idata = xr.DataTree.from_dict({"posterior": posterior, "sample_stats": trace["sample_stats"].to_dataset()})
    convergence = check_convergence(
        xr.DataTree.from_dict({"posterior": gate, "sample_stats": trace["sample_stats"].to_dataset()}),
        config.diagnostics)
    return GradedResult(config, report_ids, counts, n, idata, convergence)


SUMMARY_KEYS = dict(zip(sequential.OUTCOMES, ("any", "marked", "complete", "sustained")))
"""`summary.json`'s fixed names of the stages (the data's `any_response` is `any` there)."""


def graded_summary(result: GradedResult) -> dict:
    """`summary.json`'s `graded`: per outcome the pooled and new-report probabilities with the reports and
    patients that graded it; per report and outcome the posterior; observed against predicted counts."""
    posterior = result.idata["posterior"]
    rng = Seeds(result.config.sampling.seed).rng("graded replicates")
    replicated = _replicated_counts(posterior, result.n, result.counts >= 0, rng)
    block = {"model": result.config.graded.model, "missing": result.config.graded.missing,
             "assumption": ASSUMPTIONS[result.config.graded.missing]}
    for k, outcome in enumerate(sequential.OUTCOMES):
        graded = result.counts[:, k] >= 0
        observed = int(result.counts[graded, k].sum())
        predicted = replicated[..., graded, k].sum(axis=-1)
        block[SUMMARY_KEYS[outcome]] = {
            "pooled": _central(posterior["pooled"].sel(outcome=outcome)),
            "predictive": _central(posterior["cumulative_new"].sel(outcome=outcome)),
            "reports": int(graded.sum()),
            "patients": int(result.n[graded].sum()),
            "responders": observed,
            "check": {"observed": observed, "predicted": describe(predicted),
                      "p_at_most_observed": round(float(np.mean(predicted <= observed)), 4),
                      "p_at_least_observed": round(float(np.mean(predicted >= observed)), 4)},
        }
    block["reports"] = {
        rid: {SUMMARY_KEYS[outcome]: {"observed": None if result.counts[i, k] < 0 else int(result.counts[i, k]), "n": int(result.n[i]),
                        **_central(posterior["cumulative"].sel(report=rid, outcome=outcome))}
              for k, outcome in enumerate(sequential.OUTCOMES)}
        for i, rid in enumerate(result.report_ids)
    }
    block["diagnostics"] = result.convergence.as_dict()
    return block


def _replicated_counts(posterior: xr.Dataset, n: np.ndarray, graded: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Counts of the same reports replicated patient by patient from their posterior stage probabilities,
    as cumulative outcome counts (chain, draw, report, outcome); a stage counts only where it was graded."""
    p = posterior["p"].transpose("chain", "draw", "report", "stage").values
    responders = rng.binomial(n, p[..., 0])
    marked = rng.binomial(responders, p[..., 1])
    complete = rng.binomial(marked, p[..., 2])
    sustained = rng.binomial(responders, p[..., 3])
    return np.where(graded, np.stack([responders, marked, complete, sustained], axis=-1), 0)


def _central(draws) -> dict:
    block = describe(draws)
    return {"mean": block["mean"], "median": block["median"], "ci95": block["ci95"]}
