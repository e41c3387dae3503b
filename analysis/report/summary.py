"""Numbers for people: posterior summaries, per-report tables and the `summary.json` document.

`summary.json` is built here from the analysis result, and the report (and anything else that shows
numbers) reads the same document, so the two cannot disagree.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from analysis.borrowing import BorrowingResult, summary_block
from analysis.checks import all_predictive_checks, loo_summary
from analysis.intervals import clopper_pearson, describe, rounded
from analysis.pipeline import AnalysisResult
from models import FAMILIES

def report_table(result: AnalysisResult) -> pd.DataFrame:
    """Per report: counts, raw proportion with exact interval, and the shrunken posterior θ_i."""
    theta = result.idata["posterior"]["theta"]
    rows = []
    for rid, n, y in zip(result.data.report_ids, result.data.n, result.data.y):
        raw_lo, raw_hi = clopper_pearson(int(y), int(n))
        post = describe(theta.sel(report=rid))
        rows.append(
            {
                "report_id": rid,
                "drug": result.data.drug,
                "outcome": result.data.outcome,
                "n": int(n),
                "y": int(y),
                "raw_proportion": rounded(y / n),
                "raw_ci95_lo": rounded(raw_lo),
                "raw_ci95_hi": rounded(raw_hi),
                "theta_mean": post["mean"],
                "theta_median": post["median"],
                "theta_ci95_lo": post["ci95"][0],
                "theta_ci95_hi": post["ci95"][1],
            }
        )
    return pd.DataFrame(rows)


def summary_document(result: AnalysisResult, borrowing, data_sha256: str, data_path: str) -> dict:
    """Everything `summary.json` holds; deterministic for given data, config and seed.

    `borrowing` is the target arm's result, a sentence saying why it was skipped, or None (disabled)."""

    config, data = result.config, result.data
    posterior = result.idata["posterior"]
    prior = result.idata["prior"]
    family = FAMILIES[config.model.family]
    theta_new = posterior["theta_new"]
    extra_pooled = {"expit_mu": describe(posterior["expit_mu"])} if "expit_mu" in posterior else {}
    return {
        "config": config.name,
        "config_file": config.source,
        "config_sha256": hashlib.sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest(),
        "description": config.description,
        "data_file": data_path,
        "data_sha256": data_sha256,
        "outcome": data.outcome,
        "drug": data.drug,
        "model": config.model.family,
        "prior": config.model.prior.model_dump(),
        "seed": config.sampling.seed,
        "status": "passed" if run_passed(result, borrowing) else "failed",
        "data_warnings": data.what_cannot_be_learnt(),
        "evidence": {
            "reports": len(data),
            "patients": int(data.n.sum()),
            "responders": int(data.y.sum()),
        },
        "pooled": describe(posterior["pooled"]),
        "predictive": describe(theta_new),
        "new_patient": {"p_response": rounded(theta_new.mean())},
        **extra_pooled,
        "hyperparameters": {name: describe(posterior[name]) for name in family.hyperparameters},
        "prior_predictive": {
            "pooled": describe(prior["pooled"]),
            "predictive": describe(prior["theta_new"]),
        },
        "reports": {
            row.report_id: {
                "n": row.n,
                "y": row.y,
                "mean": row.theta_mean,
                "median": row.theta_median,
                "ci95": [row.theta_ci95_lo, row.theta_ci95_hi],
                "raw_ci95": [row.raw_ci95_lo, row.raw_ci95_hi],
            }
            for row in report_table(result).itertuples()
        },
        "predictive_checks": all_predictive_checks(result.idata),
        "loo": loo_summary(result.idata)[0],
        "diagnostics": result.convergence.as_dict(),
        **_borrowing_entries(borrowing, config),
    }


def run_passed(result: AnalysisResult, borrowing) -> bool:
    """The gate covers the primary fit and the joint model of the target arm."""
    return result.convergence.passed and not (isinstance(borrowing, BorrowingResult) and not borrowing.joint.convergence.passed)


def _borrowing_entries(borrowing, config) -> dict:
    if borrowing is None:
        return {}
    target = config.borrowing.target_drug
    block = summary_block(borrowing, config) if isinstance(borrowing, BorrowingResult) else {"skipped": borrowing}
    return {"borrowing_target": target, target: block}
