"""The sensitivity analyses: variants of the primary analysis, run as one sweep.

Variants are the `sens_*.toml` configs (each extends the primary or the logit-normal config), the
logit-normal config itself, and one leave-one-report-out variant per pooled report, generated here.
`python -m analysis.fit` runs the sweep with the primary analysis and draws it into the report; this
module's own command, `python -m analysis.sensitivity`, writes the same table to a page of its own and
can spread the variants over local worker processes or a Dask cluster (`analysis.executors`). Every
variant of one model structure reuses that structure's compiled sampler. A variant that cannot run on
the data (a filter that leaves no report, a companion file it needs is missing) is marked "not run"
with the reason, one that fails the convergence checks is marked "failed", and the sweep carries on.
The naloxone column is the joint EXNEX model at the variant's robust weight, computed by weighting the
variant's posterior draws with the naloxone likelihood (the same model as a joint fit, without a refit).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.bias import meta_regression_summary
from analysis.borrowing import reweighted_target, target_arm
from analysis.config import CONFIG_DIR, DEFAULT_CONFIG, PROJECT_ROOT, Config, load_config, user_data
from analysis.errors import InputError
from analysis.intervals import describe, describe_predictive
from analysis.outputs import run_to_completion
from analysis.graded import graded_summary, run_graded
from analysis.pipeline import AnalysisResult, run_analysis
from models import FAMILIES

GROUPS = (
    ("outcome", "sens_outcome_"), ("prior", "sens_prior_"), ("prior", "sens_tau_"), ("evidence", "sens_evidence_"),
    ("publication bias", "sens_publication_"), ("small-study effects", "sens_metareg_"),
    ("naloxone borrowing", "sens_naloxone_"), ("graded outcomes", "sens_graded_"),
)


@dataclass(frozen=True)
class Variant:
    name: str
    group: str
    description: str
    path: Path
    overrides: dict = field(default_factory=dict)


def discover_variants(data_path: Path | None = None, seed: int | None = None) -> list[Variant]:
    """Primary, family, the sens_*.toml files, then leave-one-report-out for every pooled report."""
    data = user_data(data_path)
    base = {"data": data} | ({"sampling": {"seed": seed}} if seed is not None else {})
    found = [Variant("primary", "primary", "Primary analysis", DEFAULT_CONFIG, base),
             Variant("logit_normal", "likelihood family", "Logit-normal binomial", CONFIG_DIR / "logit_normal.toml", base)]
    for path in sorted(CONFIG_DIR.glob("sens_*.toml")):
        group = next((g for g, prefix in GROUPS if path.stem.startswith(prefix)), "other")
        found.append(Variant(path.stem, group, "", path, base))
    _, pooled = load_config(DEFAULT_CONFIG, **base).load()
    for report_id in pooled.report_ids:
        found.append(Variant(f"loo_{report_id}", "leave one out", f"Without {report_id}", DEFAULT_CONFIG,
                             {**base, "data": {**data, "exclude_reports": [report_id]}}))
    return found


def run_variant(variant: Variant, cache=None, result: AnalysisResult | None = None, graded=None) -> list[dict]:
    """The variant's rows of the table (an executor task): one, or one per graded outcome for a graded-
    outcome variant. `result`, `graded`: the variant's analyses when they have been run already (the
    primary, inside `analysis.fit`), so that its rows carry the report's own numbers."""
    from analysis.executors import process_cache

    cache = cache if cache is not None else process_cache()
    row = {"variant": variant.name, "group": variant.group, "description": variant.description}
    try:
        config = load_config(variant.path, **variant.overrides)
        row["description"] = variant.description or config.description
        table, data = config.load()
    except InputError as err:
        return [{**row, "status": "not run", "passed": False, "error": "; ".join(err.problems)}]
    if variant.group == "graded outcomes":
        return graded_rows(row, graded or run_graded(config, table, cache))
    rows = [_estimate_row(row, config, table, data, result or run_analysis(config, data, cache, checks=False))]
    if variant.name == "primary" and config.graded.enabled:
        rows += graded_rows({"variant": "graded", "group": "graded outcomes",
                             "description": "Graded outcomes, one sequential model, ungraded stages missing at random"},
                            graded or run_graded(config, table, cache))
    return rows


def graded_rows(row: dict, graded) -> list[dict]:
    """One row per outcome beyond any response, from the sequential model (all reports of the set)."""
    if graded is None:
        return [{**row, "status": "not run", "passed": False, "error": "no report grades any outcome"}]
    summary = graded_summary(graded)
    failures = graded.convergence.failures
    rows = []
    for outcome in ("marked", "complete", "sustained"):
        block = summary[outcome]
        rows.append({**row, "variant": f"{row['variant']}_{outcome}",
                     "description": f"{row['description']}: P({outcome}) (all {len(graded.report_ids)} reports; "
                                    f"{block['reports']} graded it)",
                     "outcome": outcome, "model": "sequential", "reports": len(graded.report_ids),
                     "patients": int(graded.n.sum()), "responders": block["responders"],
                     "pooled_mean": block["pooled"]["mean"], "pooled_lo": block["pooled"]["ci95"][0],
                     "pooled_hi": block["pooled"]["ci95"][1], "predictive_mean": block["predictive"]["mean"],
                     "predictive_lo": block["predictive"]["ci95"][0], "predictive_hi": block["predictive"]["ci95"][1],
                     "status": "failed" if failures else "passed", "passed": not failures, "error": "; ".join(failures)})
    return rows


def _estimate_row(row: dict, config: Config, table, data, result: AnalysisResult) -> dict:
    posterior = result.idata["posterior"]
    row.update(outcome=data.outcome, model=config.model.family, reports=len(data), patients=int(data.n.sum()),
               responders=int(data.y.sum()), publication_mechanism=config.model.publication.mechanism,
               publication_weight=config.model.publication.weight)
    if result.design is not None:
        row["meta_regression"] = meta_regression_summary(result)
    predictive = describe_predictive(FAMILIES[config.model.family], posterior)
    for key, block in (("pooled", describe(posterior["pooled"])), ("predictive", predictive)):
        row.update({f"{key}_mean": block["mean"], f"{key}_lo": block["ci95"][0], f"{key}_hi": block["ci95"][1]})
    failures = list(result.convergence.failures)
    target = target_arm(config, table) if config.borrowing.enabled and not config.model.covariates else None
    if target is not None:
        block = reweighted_target(config, result, target, config.borrowing.robust_weight)
        row.update(naloxone_mean=block["mean"], naloxone_lo=block["ci95"][0], naloxone_hi=block["ci95"][1])
    passed = not failures
    if data.outcome != "any_response":
        row["description"] += f" (separate analysis of the {len(data)} reports that graded it)"
    return {**row, "status": "passed" if passed else "failed", "passed": passed, "error": "; ".join(failures)}


def run_sweep(variants: list[Variant], executor, primary: AnalysisResult | None = None, primary_graded=None) -> pd.DataFrame:
    """Every variant's rows, in order, with each estimate's shift from the primary analysis."""
    if primary is None:
        rows = executor.map(run_variant, variants, progress="sensitivity variants")
    else:  # in the command's own process: the primary rows from the primary analyses themselves
        others = executor.map(run_variant, [v for v in variants if v.name != "primary"], progress="sensitivity variants")
        first = [run_variant(v, result=primary, graded=primary_graded) for v in variants if v.name == "primary"]
        rows = first + others
    table = pd.DataFrame([r for variant_rows in rows for r in variant_rows])
    reference = table.set_index("variant").loc["primary"]
    # A shift is a sensitivity of the primary estimate: defined only for rows of the same estimand (other
    # outcomes, and a meta-regression's report of average covariates, are comparisons, not perturbations).
    same = table["outcome"] == reference["outcome"]
    if "meta_regression" in table:
        same &= table["meta_regression"].isna()
    for key in ("pooled", "predictive", "naloxone"):
        if f"{key}_mean" in table:
            table[f"{key}_shift"] = (table[f"{key}_mean"] - reference[f"{key}_mean"]).round(6).where(same)
    return table


def prior_sensitivity(config: Config, result: AnalysisResult | None = None) -> pd.DataFrame:
    """Power-scaling sensitivity (psense) of the primary model's population parameters (an executor task;
    `result`: the primary analysis when it has been run already)."""
    import arviz as az
    import pymc as pm
    import xarray as xr

    from analysis.executors import process_cache

    family = FAMILIES[config.model.family]
    if result is None:
        _, data = config.load()
        result = run_analysis(config, data, process_cache())
    names = list(family.plotted_parameters)
    posterior = result.idata["posterior"].to_dataset()[names]
    model = family.build_model(result.reports, config.model.prior)
    tree = xr.DataTree.from_dict({"posterior": posterior, "log_likelihood": result.idata["log_likelihood"].to_dataset()})
    log_prior = pm.stats.compute_log_prior(tree, model=model, extend_inferencedata=False, progressbar=False)
    tree = xr.DataTree.from_dict({**{k: tree[k].to_dataset() for k in ("posterior", "log_likelihood")},
                                  "log_prior": log_prior})
    advice = logging.getLogger("arviz_stats.psense")
    level, advice.level = advice.level, logging.ERROR  # its advice is logged; the diagnosis column carries it
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            summary = az.psense_summary(tree, prior_var_names=names)
    finally:
        advice.setLevel(level)
    return summary.reset_index(names="parameter")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.sensitivity", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "sensitivity")
    parser.add_argument("--data", type=Path, help="evidence CSV for every variant (default: the configs' data.path)")
    parser.add_argument("--seed", type=int, help="random seed for every variant (default: the configs' sampling.seed)")
    parser.add_argument("--workers", type=int, help="local worker processes (default 1: this process; each fit uses sampling.cores threads)")
    parser.add_argument("--scheduler", help="address of a Dask scheduler to run the variants on instead")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        variants = discover_variants(args.data, args.seed)
        logging.getLogger("pymc").setLevel(logging.WARNING)
        from analysis.executors import make_executor

        executor = make_executor(args.workers, args.scheduler)
    except InputError as err:
        for line in err.problems:
            print(f"error: {line}", file=sys.stderr)
        return 2

    return run_to_completion(lambda: _run(args, variants, executor, started), args.out)


def _run(args: argparse.Namespace, variants: list[Variant], executor, started: float) -> int:
    from analysis.report.sensitivity_page import write_sweep

    with executor:
        table = run_sweep(variants, executor)
        primary = load_config(DEFAULT_CONFIG, **variants[0].overrides)
        psense = executor.map(prior_sensitivity, [primary])[0]
        programs = executor.programs
    elapsed = time.perf_counter() - started
    write_sweep(table, psense, args.out, programs=programs, seconds=elapsed)
    failed = table[~table["passed"].astype(bool)]
    print(f"{len(table)} variants, {len(failed)} failed or not run; sampler programs: {programs} "
          f"(model structures, per worker) on {executor.description}; wall time {elapsed:.0f} s; outputs: {args.out}")
    for _, row in failed.iterrows():
        print(f"  {row['variant']}: {row['error'] or 'failed'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
