"""Numbers for people: the `summary.json` document and the per-report table, built from a `Run`.

`summary.json` is written from this document and the report renders the same document, so the two cannot
disagree. Every number is computed here or in the analysis modules; nothing about the data is written
by hand.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from analysis import clinical, grade
from analysis.appraisal import load_excluded, prisma_counts, search_methods
from analysis.bias import meta_regression_summary, size_confounders
from analysis.borrowing import BorrowingResult
from analysis.config import display_path
from analysis.graded import graded_summary
from analysis.intervals import clopper_pearson, describe, describe_predictive, describe_quantiles, rounded
from analysis.pipeline import AnalysisResult
from analysis.run import Run
from models import FAMILIES
from models.borrowing import BetaMixture, MixtureFit, box_conflict_p, ess_elir, ess_moment, robustify, total_variation
from models.comparators import comparators


def report_table(result: AnalysisResult) -> pd.DataFrame:
    """Per report: counts, raw proportion with exact interval, and the shrunken posterior θ_i."""
    theta = result.idata["posterior"]["theta"]
    rows = []
    for rid, n, y in zip(result.data.report_ids, result.data.n, result.data.y):
        raw_lo, raw_hi = clopper_pearson(int(y), int(n))
        post = describe(theta.sel(report=rid))
        rows.append({
            "report_id": rid, "drug": result.data.drug, "outcome": result.data.outcome, "n": int(n), "y": int(y),
            "raw_proportion": rounded(y / n), "raw_ci95_lo": rounded(raw_lo), "raw_ci95_hi": rounded(raw_hi),
            "theta_mean": post["mean"], "theta_median": post["median"], "theta_ci95_lo": post["ci95"][0],
            "theta_ci95_hi": post["ci95"][1],
        })
    return pd.DataFrame(rows)


def summary_document(run: Run) -> dict:
    """Everything `summary.json` holds; deterministic for given data, config and seed."""
    config, data, result = run.config, run.data, run.result
    family = FAMILIES[config.model.family]
    posterior, prior = result.idata["posterior"], result.idata["prior"]
    years = _years(data)
    document = {
        "config": config.name,
        "config_file": config.source,
        "config_sha256": hashlib.sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest(),
        "description": config.description,
        "data_file": display_path(run.table.path),
        "data_sha256": run.table.sha256,
        "outcome": data.outcome,
        "drug": data.drug,
        "model": config.model.family,
        "prior": config.model.prior.model_dump(),
        "seed": config.sampling.seed,
        "status": "passed" if run_passed(run) else "failed",
        "data_warnings": data.what_cannot_be_learnt(),
        "evidence": data.describe(),
        "pooled": describe(posterior["pooled"]),
        "predictive": describe_predictive(family, posterior),
        "heterogeneity": {"posterior": describe(posterior["heterogeneity_sd"]),
                          "prior": describe(prior["heterogeneity_sd"])},
        "hyperparameters": {name: describe_quantiles(posterior[name]) if name in family.heavy_tailed
                            else describe(posterior[name]) for name in family.hyperparameters + ("u",) if name in posterior},
        "prior_predictive": {"pooled": describe(prior["pooled"]), "predictive": describe(prior["theta_new"])},
        "reports": {
            row.report_id: {"n": row.n, "y": row.y, "year": years.get(row.report_id), "mean": row.theta_mean,
                            "median": row.theta_median, "ci95": [row.theta_ci95_lo, row.theta_ci95_hi],
                            "raw_ci95": [row.raw_ci95_lo, row.raw_ci95_hi]}
            for row in report_table(result).itertuples()
        },
        "predictive_checks": _checks(result),
        "loo": run.loo,
        "diagnostics": result.convergence.as_dict(),
        "publication": config.model.publication.model_dump(),
        "comparators": _rounded_tree(comparators(data.y, data.n)),
    }
    if "expit_mu" in posterior:
        document["expit_mu"] = describe(posterior["expit_mu"])
    if "kappa" in posterior:
        document["weights"] = _report_weights(posterior, data)
    if result.design is not None:
        document["meta_regression"] = {**meta_regression_summary(result),
                                       "confounders": size_confounders(run.table.frame, result.data)}
    if run.cumulative is not None:
        document["cumulative"] = run.cumulative["steps"]
        document["cumulative_first_seen"] = run.cumulative["first_seen"]
        document["cumulative_note"] = run.cumulative["note"]
    document["sensitivity"] = _sensitivity(run)
    document["bias"] = _bias(run, document)
    if run.graded is not None:
        document["graded"] = graded_summary(run.graded)
    document.update(_clinical(run))
    document.update(_appraisal(run))
    document["grade"] = _grade(run, document)
    document["grade_rules"] = grade.rules(run.config.grade)
    if run.borrowing is not None:
        target = config.borrowing.target_drug
        document["borrowing_target"] = target
        document[target] = (borrowing_block(run.borrowing, config, run.result) if isinstance(run.borrowing, BorrowingResult)
                            else {"skipped": run.borrowing})
        if isinstance(run.borrowing, BorrowingResult):
            document[target]["safety"] = clinical.safety(run.table.frame, target)
    return document


def run_passed(run: Run) -> bool:
    """The gate covers the primary fit, the joint model of the target arm and the graded-outcome model."""
    borrowing_ok = not isinstance(run.borrowing, BorrowingResult) or run.borrowing.joint.convergence.passed
    graded_ok = run.graded is None or run.graded.convergence.passed
    return run.result.convergence.passed and borrowing_ok and graded_ok


def gate_failures(run: Run) -> list[str]:
    failures = list(run.result.convergence.failures)
    if isinstance(run.borrowing, BorrowingResult):
        failures += [f"joint model: {f}" for f in run.borrowing.joint.convergence.failures]
    if run.graded is not None:
        failures += [f"graded-outcome model: {f}" for f in run.graded.convergence.failures]
    return failures


def _report_weights(posterior, data) -> dict:
    """How many single patients the largest report counts as in the pooled mean, at the posterior median
    concentration κ: its effective size n / (1 + (n − 1)/(κ + 1)) (the design effect of a beta-binomial)."""
    kappa = float(np.median(posterior["kappa"].values))
    largest = int(data.n.max())
    return {"kappa_median": rounded(kappa), "largest_n": largest,
            "largest_weight": rounded(largest / (1 + (largest - 1) / (kappa + 1)))}


def _years(data) -> dict[str, int | None]:
    if data.rows is None or "year" not in data.rows:
        return {}
    year = pd.to_numeric(data.rows["year"], errors="coerce")
    return {rid: None if pd.isna(y) else int(y) for rid, y in zip(data.report_ids, year)}


def _checks(result: AnalysisResult) -> dict:
    from analysis.checks import all_predictive_checks

    return all_predictive_checks(result.idata)


def _rounded_tree(value):
    if isinstance(value, dict):
        return {k: _rounded_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded_tree(v) for v in value]
    if isinstance(value, float | np.floating):
        return rounded(value) if np.isfinite(value) else None
    return value


# --- the sweep and the bias analyses --------------------------------------------------------------------

SWEEP_COLUMNS = ("variant", "group", "description", "outcome", "model", "reports", "patients", "responders",
                 "pooled_mean", "pooled_lo", "pooled_hi", "pooled_shift", "predictive_mean", "predictive_lo",
                 "predictive_hi", "predictive_shift", "naloxone_mean", "naloxone_lo", "naloxone_hi",
                 "naloxone_shift", "publication_mechanism", "publication_weight", "status", "error")


def sweep_rows(table: pd.DataFrame) -> list[dict]:
    """The sweep's table as plain rows (the columns a reader sees; NaN as None)."""
    columns = [c for c in SWEEP_COLUMNS if c in table.columns]
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
            for row in table[columns].to_dict(orient="records")]


def _sensitivity(run: Run) -> dict:
    if run.sweep is None:
        return {"status": "not run", "note": run.sensitivity_note}
    return {"status": "run", "variants": sweep_rows(run.sweep),
            "psense": _rounded_tree(run.psense.to_dict(orient="records")) if run.psense is not None else None}


def _bias(run: Run, document: dict) -> dict:
    """The headline's bias-aware range: the pooled estimate if every report were as likely to be
    published, and under all-responder selection at each configured ω; the small-study slope."""
    block = {"crude": document["comparators"]["crude"], "pooled": document["pooled"], "scenarios": [],
             "small_study": None}
    if run.sweep is None:
        return block
    table = run.sweep
    scenarios = table[(table.get("publication_mechanism") == "all_responders") & (table["status"] == "passed")
                      & (table["model"] == run.config.model.family)]
    for _, row in scenarios.sort_values("publication_weight", ascending=False).iterrows():
        block["scenarios"].append({"variant": row["variant"], "weight": float(row["publication_weight"]),
                                   "pooled": {"mean": row["pooled_mean"], "ci95": [row["pooled_lo"], row["pooled_hi"]]},
                                   "shift": row["pooled_shift"]})
    size = table[table["variant"] == "sens_metareg_log_n"]
    if len(size) and isinstance(size.iloc[0].get("meta_regression"), dict):
        block["small_study"] = {"variant": "sens_metareg_log_n", **size.iloc[0]["meta_regression"],
                                "confounders": size_confounders(run.table.frame, run.data)}
    return block


# --- clinical and appraisal -------------------------------------------------------------------------------


def _clinical(run: Run) -> dict:
    frame, drug = run.table.frame, run.config.data.drug
    return {"safety": clinical.safety(frame, drug),
            "durability": clinical.durability(frame, run.config.data.load_patients(run.table), drug)}


def _appraisal(run: Run) -> dict:
    settings = run.config.data
    appraisal = settings.load_appraisal(run.table)
    search = settings.companion(settings.search_path)
    excluded = settings.companion(settings.excluded_path)
    excluded_frame = load_excluded(excluded) if excluded is not None else None
    target = run.config.borrowing.target_drug if run.config.borrowing.enabled else None
    return {
        "risk_of_bias": appraisal.as_summary() if appraisal is not None else None,
        "prisma": prisma_counts(run.table.frame, excluded_frame, settings.drug, target),
        "search": search_methods(search.read_text(encoding="utf-8")) if search is not None else None,
    }


def _grade(run: Run, document: dict) -> dict:
    """Summary of findings: each outcome the run estimates, rated by `analysis.grade` (outcome -> rating)."""
    settings = run.config.grade
    concerns = None if document["risk_of_bias"] is None else {r: v["overall"] for r, v in document["risk_of_bias"].items()}
    small = document["bias"]["small_study"]
    slope = None if small is None else small.get("log_n")
    half = [s for s in document["bias"]["scenarios"] if s["weight"] == 0.5]
    shift = half[0]["shift"] if half else None
    publication = grade.publication_bias(slope, shift, settings)
    data = run.data
    outcomes = {data.outcome: grade.rating(
        settings,
        {"risk_of_bias": grade.risk_of_bias(concerns, dict(zip(data.report_ids, map(int, data.n))), settings),
         "inconsistency": grade.inconsistency(document["predictive"]["ci95"], settings),
         "imprecision": grade.imprecision(document["pooled"]["ci95"], settings),
         "publication_bias": publication},
        source="primary analysis", reports=len(data), patients=int(data.n.sum()), pooled=document["pooled"],
        predictive=document["predictive"], crude=document["comparators"]["crude"])}
    graded = document.get("graded")
    if graded is not None:
        for k, outcome in enumerate(("marked", "complete", "sustained")):
            block = graded[outcome]
            column = run.graded.counts[:, 1 + k]
            patients = {rid: int(n) for rid, n, c in zip(run.graded.report_ids, run.graded.n, column) if c >= 0}
            crude_n = sum(patients.values())
            outcomes[outcome] = grade.rating(
                settings,
                {"risk_of_bias": grade.risk_of_bias(concerns, patients, settings),
                 "inconsistency": grade.inconsistency(block["predictive"]["ci95"], settings),
                 "imprecision": grade.imprecision(block["pooled"]["ci95"], settings),
                 "publication_bias": publication},
                source="graded-outcome model", reports=block["reports"], patients=block["patients"],
                pooled=block["pooled"], predictive=block["predictive"],
                crude={"y": block["responders"], "n": crude_n,
                       "proportion": rounded(block["responders"] / crude_n) if crude_n else None,
                       "ci95": [rounded(v) for v in clopper_pearson(block["responders"], crude_n)] if crude_n else None})
    safety = document["safety"]
    if safety["assessed_patients"]:
        assessed = {r["report_id"]: r["patients"] for r in safety["reports"] if r["status"].startswith("assessed")}
        outcomes["adverse_events"] = grade.rating(
            settings,
            {"risk_of_bias": grade.risk_of_bias(concerns, assessed, settings),
             "inconsistency": {"judgement": "not assessable", "reason": "too few events to judge"},
             "imprecision": grade.imprecision(safety["ci95"], settings, "exact"),
             "publication_bias": publication},
            source="adverse events as reported", reports=len(assessed), patients=safety["assessed_patients"],
            pooled=None, predictive=None,
            crude={"y": safety["patients_with_events"], "n": safety["assessed_patients"],
                   "proportion": rounded(safety["patients_with_events"] / safety["assessed_patients"]),
                   "ci95": safety["ci95"]})
    return outcomes


# --- the target arm ----------------------------------------------------------------------------------------


def borrowing_block(result: BorrowingResult, config, primary: AnalysisResult) -> dict:
    """`summary.json`'s block of the target arm; `primary`: the reports' analysis the MAP prior comes from."""
    settings = config.borrowing
    target, prior, posterior = result.target, result.prior, result.posterior
    map_mixture = result.map_fit.mixture
    conflict_p = box_conflict_p(map_mixture, target.y, target.n)
    possible = [box_conflict_p(map_mixture, y, target.n) for y in range(target.n + 1)]
    joint = result.joint
    theta_joint = joint.idata["posterior"]["theta_target"]
    unborrowed = BetaMixture.single(settings.vague[0] + target.y, settings.vague[1] + target.n - target.y)
    return {
        "target_drug": target.drug,
        "route": "robust_map",
        "reports": list(target.report_ids),
        "y": target.y,
        "n": target.n,
        "robust_weight": settings.robust_weight,
        "vague_prior": list(settings.vague),
        "unborrowed": _rounded(unborrowed.summary()),
        "map_prior": {
            # The MAP prior is θ for a new report: the same Rao-Blackwellised summary as `predictive`.
            **describe_predictive(FAMILIES[config.model.family], primary.idata["posterior"]),
            "mixture": [[rounded(v) for v in comp] for comp in map_mixture.components()],
            "mixture_summary": _rounded(map_mixture.summary()),
            "fit": _fit_quality(result.map_fit),
        },
        "map_prior_ess": _ess(result.elir_fit, result.map_draws, None, settings),
        "robust_prior_ess": _ess(result.elir_fit, result.map_draws, settings.robust_weight, settings),
        "prior": _rounded(prior.summary()),
        "posterior_robust_weight": rounded(posterior.weights[-1]) if 0 < settings.robust_weight < 1 else settings.robust_weight,
        **_rounded(posterior.summary()),
        "posterior_map_distance": rounded(total_variation(posterior, map_mixture)),
        "p_above": {f"{c:g}": rounded(posterior.prob_above(c)) for c in settings.thresholds},
        "conflict_p": rounded(conflict_p),
        "conflict": bool(conflict_p < settings.conflict_alpha),
        "conflict_alpha": settings.conflict_alpha,
        "conflict_possible_p": [rounded(p) for p in possible],
        "conflict_min_p": rounded(min(possible)),
        "conflict_has_power": bool(min(possible) < settings.conflict_alpha),
        "conflict_flagging_counts": [y for y, p in enumerate(possible) if p < settings.conflict_alpha],
        "joint": {
            "model": "exnex",
            "nonexchangeable_weight": joint.weight,
            **describe(theta_joint),
            "p_above": {f"{c:g}": rounded((theta_joint.values > c).mean()) for c in settings.thresholds},
            "p_exchangeable": rounded(joint.idata["posterior"]["p_exchangeable"].mean()),
            "diagnostics": joint.convergence.as_dict(),
        },
        "sweep": [_sweep_row(result, w) for w in sorted(result.joint_fits)],
    }


def _sweep_row(result: BorrowingResult, weight: float) -> dict:
    fit = result.joint_fits[weight]
    two_step = robustify(result.map_fit.mixture, weight, result.vague).posterior(result.target.y, result.target.n)
    return {
        "weight": weight,
        "two_step": _rounded(two_step.summary()),
        "joint": {**describe(fit.idata["posterior"]["theta_target"]), "passed": fit.convergence.passed},
    }


def _ess(elir_fit: MixtureFit, draws: np.ndarray, weight: float | None, settings) -> dict:
    """ELIR on the a, b ≥ 1 fit, and the moment ESS from the draws (or the robust mixture's moments)."""
    mixture = elir_fit.mixture if weight is None else robustify(elir_fit.mixture, weight, settings.vague)
    # Moments of (1 − w)·MAP + w·Beta(vague), the MAP's taken from its draws (no mixture approximation).
    m, v, w = float(draws.mean()), float(draws.var()), weight or 0.0
    vague = BetaMixture.single(*settings.vague)
    mean = (1 - w) * m + w * vague.mean()
    second = (1 - w) * (v + m**2) + w * (vague.var() + vague.mean() ** 2)
    moment = ess_moment(mean, second - mean**2)
    # ELIR jumps at a or b = 1 (Beta(a, 1 + ε) has ELIR a + 1 + ε, Beta(a, 1) has 1), and a fit pressed
    # against that bound, or a poor one, makes the number meaningless rather than approximate.
    on_boundary = bool(np.any(elir_fit.mixture.a < 1.001) or np.any(elir_fit.mixture.b < 1.001))
    elir = ess_elir(mixture)
    reliable = elir_fit.ks_distance <= 0.02 and not on_boundary and elir > 0
    end = "1" if np.mean(draws > 0.99) >= np.mean(draws < 0.01) else "0"
    return {
        "elir": rounded(elir) if reliable else None,
        "moment": rounded(moment),
        "elir_fit_ks_distance": rounded(elir_fit.ks_distance),
        "elir_reliable": reliable,
        "note": "" if reliable else (
            f"not reported: the MAP prior piles up at {end}, where no Beta mixture with a, b >= 1 fits it "
            f"(KS distance {elir_fit.ks_distance:.3f}) and the ELIR integral is dominated by the boundary; "
            "read the moment ESS"
        ),
    }


def _fit_quality(fit: MixtureFit) -> dict:
    return {"components": len(fit.mixture.weights), "ks_distance": rounded(fit.ks_distance),
            "aic": {str(k): rounded(v, 2) for k, v in fit.aic.items()}}


def _rounded(summary: dict) -> dict:
    return {k: [rounded(x) for x in v] if isinstance(v, list) else rounded(v) for k, v in summary.items()}
