"""`python -m analysis.sensitivity`: every sensitivity analysis, run as one sweep.

Variants are the `sens_*.toml` configs (each extends the primary config) plus the logit-normal config,
and one leave-one-report-out variant per pooled report, generated here. The variants are independent
fits run by an executor (`analysis.executors`: local worker processes by default, or a Dask cluster);
each worker compiles a model structure once and reuses it, so compilations number the distinct model
structures per worker, not the variants. A variant
that fails (bad config, no data left, failed convergence checks) is marked in the table and the sweep
carries on. The naloxone column is the joint EXNEX model at the variant's robust weight (the exact
version of the two-step route, which the primary report shows in full).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.borrowing import fit_joint, target_arm
from analysis.config import CONFIG_DIR, DEFAULT_CONFIG, PROJECT_ROOT, Config, load_config
from analysis.errors import InputError
from analysis.outputs import run_to_completion
from analysis.intervals import describe
from analysis.pipeline import run_analysis

GROUPS = (
    ("outcome", "sens_outcome_"), ("prior", "sens_prior_"), ("prior", "sens_tau_"), ("evidence", "sens_evidence_"),
    ("publication bias", "sens_selection_"), ("naloxone borrowing", "sens_naloxone_"),
)


@dataclass(frozen=True)
class Variant:
    name: str
    group: str
    description: str
    path: Path
    overrides: dict


def discover_variants(data_path: Path | None) -> list[Variant]:
    """Primary, family, the sens_*.toml files, then leave-one-report-out for every pooled report."""
    data = {"path": str(data_path.resolve())} if data_path else {}
    found = [Variant("primary", "primary", "Primary analysis", DEFAULT_CONFIG, {"data": data}),
             Variant("logit_normal", "likelihood family", "Logit-normal binomial", CONFIG_DIR / "logit_normal.toml",
                     {"data": data})]
    for path in sorted(CONFIG_DIR.glob("sens_*.toml")):
        group = next((g for g, prefix in GROUPS if path.stem.startswith(prefix)), "other")
        found.append(Variant(path.stem, group, "", path, {"data": data}))
    _, pooled = load_config(DEFAULT_CONFIG, data=data).data.load()
    for report_id in pooled.report_ids:
        found.append(Variant(f"loo_{report_id}", "leave one out", f"Without {report_id}", DEFAULT_CONFIG,
                             {"data": {**data, "exclude_reports": [report_id]}}))
    return found


def run_variant(variant: Variant) -> dict:
    """One row of the table (an executor task); user-caused problems become the row's error, not an exception."""
    from analysis.executors import process_cache

    cache = process_cache()
    row = {"variant": variant.name, "group": variant.group, "description": variant.description}
    try:
        config = load_config(variant.path, **variant.overrides)
        row["description"] = variant.description or config.description
        table, data = config.data.load()
    except InputError as err:
        return {**row, "passed": False, "error": "; ".join(err.problems)}
    result = run_analysis(config, data, cache)
    row.update(outcome=data.outcome, model=config.model.family, reports=len(data), patients=int(data.n.sum()),
               responders=int(data.y.sum()))
    for key, draws in (("pooled", result.idata["posterior"]["pooled"]), ("predictive", result.idata["posterior"]["theta_new"])):
        block = describe(draws)
        row.update({f"{key}_mean": block["mean"], f"{key}_lo": block["ci95"][0], f"{key}_hi": block["ci95"][1]})
    passed = result.convergence.passed
    target = target_arm(config, table) if config.borrowing.enabled else None
    if target is not None:
        joint = fit_joint(config, result, target, config.borrowing.robust_weight, cache)
        block = describe(joint.idata["posterior"]["theta_target"])
        row.update(naloxone_mean=block["mean"], naloxone_lo=block["ci95"][0], naloxone_hi=block["ci95"][1])
        passed = passed and joint.convergence.passed
    failures = result.convergence.failures
    return {**row, "passed": passed, "error": "; ".join(failures)}


def run_sweep(variants: list[Variant], executor) -> pd.DataFrame:
    table = pd.DataFrame(executor.map(run_variant, variants, progress="sensitivity variants"))
    primary = table.set_index("variant").loc["primary"]
    for key in ("pooled", "predictive", "naloxone"):
        if f"{key}_mean" in table:
            table[f"{key}_shift"] = (table[f"{key}_mean"] - primary[f"{key}_mean"]).round(6)
    return table


def prior_sensitivity(config: Config) -> pd.DataFrame:
    """Power-scaling sensitivity (psense) of the primary model's population parameters (an executor task)."""
    import arviz as az
    import pymc as pm
    import xarray as xr

    from analysis.executors import process_cache
    from models import FAMILIES

    cache = process_cache()
    family = FAMILIES[config.model.family]
    _, data = config.data.load()
    result = run_analysis(config, data, cache)
    names = list(family.plotted_parameters)
    posterior = result.idata["posterior"].to_dataset()[names]
    model = family.build_model(data.y, data.n, config.model.prior, config.model.selection_weight)
    tree = xr.DataTree.from_dict({"posterior": posterior, "log_likelihood": result.idata["log_likelihood"].to_dataset()})
    log_prior = pm.stats.compute_log_prior(tree, model=model, extend_inferencedata=False, progressbar=False)
    tree = xr.DataTree.from_dict({**{k: tree[k].to_dataset() for k in ("posterior", "log_likelihood")},
                                  "log_prior": log_prior})
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # its advice is printed; the diagnosis column carries it
        summary = az.psense_summary(tree, prior_var_names=names)
    return summary.reset_index(names="parameter")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.sensitivity", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "sensitivity")
    parser.add_argument("--data", type=Path, help="evidence CSV for every variant (default: the configs' data.path)")
    parser.add_argument("--workers", type=int, help="local worker processes (default: one per core; 1 = no subprocess)")
    parser.add_argument("--scheduler", help="address of a Dask scheduler to run the variants on instead")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        variants = discover_variants(args.data)
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
        primary = load_config(DEFAULT_CONFIG, data=variants[0].overrides["data"])
        psense = executor.map(prior_sensitivity, [primary])[0]
        compilations = executor.programs
    elapsed = time.perf_counter() - started
    write_sweep(table, psense, args.out, compilations=compilations, seconds=elapsed)
    failed = table[~table["passed"].astype(bool)]
    print(f"{len(table)} variants, {len(failed)} failed or marked; compilations: {compilations} "
          f"(model structures, per worker) on {executor.description}; wall time {elapsed:.0f} s; outputs: {args.out}")
    for _, row in failed.iterrows():
        print(f"  {row['variant']}: {row['error'] or 'failed'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
