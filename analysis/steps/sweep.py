"""The sensitivity analyses: variants of the primary analysis, run as one sweep.

Variants are the `sens_*.toml` configs (each extends the primary or the logit-normal config), the
logit-normal config itself, one leave-one-report-out variant per pooled report, and the rows that other
steps compute once (the publication scenarios, the size meta-regression and the target arm's borrowing
weights): one code path per number. Every model with at most three parameters is integrated exactly on a
grid (no NUTS); the graded-outcome variant and a logit-normal meta-regression are importance-sampled on
fixed quasi-random points (no NUTS; the graded one's weights checked by their Pareto k̂). A variant that cannot
run on the data (a filter that leaves no report, a companion file it needs is missing) is "not run" with
the reason, one that fails the convergence checks "failed", and the sweep carries on.

Rows answer one of two questions, kept apart in the report: "if publication were biased" (kind "bias")
and "if a choice were different" (kind "choice"). Shifts from the primary are given only for rows of the
primary estimand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analysis.engine.executors import process_cache
from analysis.engine.programs import ModelCache
from analysis.engine.seeds import Seeds
from analysis.errors import InputError
from analysis.inputs.bundle import Files, Inputs, load_inputs
from analysis.inputs.config import CONFIG_DIR, DEFAULT_CONFIG, Config, load_config, user_overrides
from analysis.results import Estimate, Primary
from analysis.results.borrowing import TargetArm
from analysis.results.publication import Publication
from analysis.results.sweep import Sweep, VariantRow
from analysis.steps import estimates as est
from analysis.steps import graded as graded_step
from analysis.steps import metaregression
from analysis.steps.primary import Population, draws_population, model_reports, nuts, pooled_and_predictive, population

from models import joint
from models.families import FAMILIES

GROUPS = (
    ("outcome", "sens_outcome_", "choice"), ("prior", "sens_prior_", "choice"), ("prior", "sens_tau_", "choice"),
    ("evidence", "sens_evidence_", "choice"), ("publication bias", "sens_publication_", "bias"),
    ("small-study effects", "sens_metareg_", "bias"), ("graded outcomes", "sens_graded_", "choice"),
)
PRIMARY_ESTIMAND = "primary"
TOLERANCE = 5e-4
"""Grid tolerance of a variant: its numbers are printed to two decimals."""


@dataclass(frozen=True)
class Variant:
    name: str
    group: str
    kind: str
    description: str
    path: Path
    overrides: dict = field(default_factory=dict)


def discover(data_path: Path | None = None, seed: int | None = None) -> list[Variant]:
    """The logit-normal family and the sens_*.toml configs, with the run's data and seed."""
    base = {**user_overrides(data_path), **({"sampling": {"seed": seed}} if seed is not None else {})}
    found = [Variant("logit_normal", "likelihood family", "choice", "Logit-normal binomial",
                     CONFIG_DIR / "logit_normal.toml", base)]
    for path in sorted(CONFIG_DIR.glob("sens_*.toml")):
        group, _, kind = next((g for g in GROUPS if path.stem.startswith(g[1])), ("other", "", "choice"))
        found.append(Variant(path.stem, group, kind, "", path, base))
    return found


def config_rows(variant: Variant, cache: ModelCache, files: Files | None = None,
                target_drug: str | None = None) -> list[VariantRow]:
    """A config variant's rows (an executor task: everything it needs is in its arguments)."""
    row = {"variant": variant.name, "group": variant.group, "kind": variant.kind, "description": variant.description}
    try:
        config = load_config(variant.path, **variant.overrides)
        row["description"] = variant.description or config.description
        inputs = load_inputs(config, files)
    except InputError as err:
        return [VariantRow(**row, estimand="none", status="not run", error="; ".join(err.problems))]
    if variant.group == "graded outcomes":
        return _graded_rows(row, inputs, cache)
    if config.model.covariates:
        result = metaregression.analyse(inputs, cache)
        return [_row(row, inputs, "average covariates", result.pooled, None, None, not result.failures,
                     "; ".join(result.failures))]
    estimates, passed, error = _population(inputs, cache)
    target = _target(inputs, estimates, target_drug)
    estimand = PRIMARY_ESTIMAND if config.data.outcome == "any_response" else "other outcome"
    return [_row(row, inputs, estimand, estimates.pooled, estimates.predictive, target, passed, error)]


def _population(inputs: Inputs, cache: ModelCache) -> tuple[Population, bool, str]:
    """Exact when the model allows, else from NUTS draws (with the gate's verdict)."""
    reports = model_reports(inputs.config, inputs.data, inputs.design)
    exact = population(cache, inputs.config, reports, TOLERANCE)
    if exact is not None:
        return exact, True, ""
    fitted = nuts(cache, inputs.config, reports, inputs.data, Seeds(inputs.config.sampling.seed), checks_too=False)
    failures = "; ".join(fitted.convergence.failures)
    return draws_population(FAMILIES[inputs.config.model.family], fitted.posterior), not failures, failures


def _target(inputs: Inputs, estimates: Population, drug: str | None) -> Estimate | None:
    """The target arm under this variant: the variant's grid reweighted by the arm's marginal likelihood
    (the joint EXNEX model exactly), θ_target's conditional mixed over it."""
    config = inputs.config
    if drug is None or estimates.exact is None or config.model.covariates or not config.borrowing.enabled:
        return None
    arm = inputs.target(drug)
    if len(arm) == 0:
        return None
    family = FAMILIES[config.model.family]
    y, n = int(arm.y.sum()), int(arm.n.sum())
    w, vague = config.borrowing.robust_weight, config.borrowing.vague
    grid = estimates.exact
    joined = grid.reweighted(joint.target_log_likelihood(family, grid.values, y, n, w, vague))
    return est.mixture(joined, lambda v: joint.target_theta_cdf(family, v, y, n, w, vague),
                       lambda v: joint.target_theta_moments(family, v, y, n, w, vague),
                       lambda v: joint.target_theta_pdf(family, v, y, n, w, vague))


def _row(row: dict, inputs: Inputs, estimand: str, pooled, predictive, target, passed: bool, error: str) -> VariantRow:
    data = inputs.data
    description = row["description"]
    if estimand == "other outcome":
        description += f" (a separate analysis of the {len(data)} reports that graded it)"
    return VariantRow(**{**row, "description": description}, estimand=estimand,
                      status="passed" if passed else "failed", error=error, outcome=data.outcome,
                      model=inputs.config.model.family, reports=len(data), patients=int(data.n.sum()),
                      responders=int(data.y.sum()), pooled=pooled, predictive=predictive, target=target)


def _meta_regression_row(variant: Variant, result, inputs: Inputs) -> VariantRow:
    data = inputs.data
    config = load_config(variant.path, **variant.overrides)
    return VariantRow(variant=variant.name, group=variant.group, kind=variant.kind, description=config.description,
                      estimand="average covariates", status="failed" if result.failures else "passed",
                      error="; ".join(result.failures), outcome=data.outcome,
                      model=config.model.family, reports=len(data), patients=int(data.n.sum()),
                      responders=int(data.y.sum()), pooled=result.pooled)


def _graded_rows(row: dict, inputs: Inputs, cache: ModelCache) -> list[VariantRow]:
    """One row per outcome beyond any response, from the graded-outcome model of this variant."""
    result = graded_step.analyse(inputs, cache, detail=False)
    if result is None:
        return [VariantRow(**row, estimand="none", status="not run",
                           error="no report grades an outcome beyond any response")]
    failures = "; ".join(result.integration["failures"])
    return [VariantRow(**{**row, "variant": f"{row['variant']}_{key}",
                          "description": f"{row['description']}: P({key}) (all {result.reports_total} reports; "
                                         f"{outcome.reports} graded it)"},
                       estimand=f"graded {key}", status="failed" if failures else "passed", error=failures,
                       outcome=key, model="sequential", reports=result.reports_total, patients=result.patients_total,
                       responders=outcome.responders, pooled=outcome.pooled, predictive=outcome.predictive)
            for key, outcome in result.outcomes.items() if key != "any"]


def leave_one_out(inputs: Inputs, primary: Primary, cache: ModelCache, target_drug: str | None) -> list[VariantRow]:
    """Leave each report out in turn. On the primary grid every leave-one-out posterior is a reweighting by
    1 / p(y_i | φ) (a grid of its own where leaving the report out moves the posterior to the grid's edge);
    reports with the same counts (and covariates) give the same result, computed once."""
    config, data = inputs.config, inputs.data
    family = FAMILIES[config.model.family]
    reports = primary.reports_input
    rows, seen = [], {}
    _, row_of = reports.distinct()
    for i, rid in enumerate(data.report_ids):
        key = row_of[i]
        base = {"variant": f"loo_{rid}", "group": "leave one out", "kind": "choice", "description": f"Without {rid}"}
        subset = data.subset(np.arange(len(data)) != i)
        if len(subset) == 0:
            rows.append(VariantRow(**base, estimand="none", status="not run", error="no report would be left"))
            continue
        if key not in seen:
            seen[key] = (_loo_population(family, primary, config, reports, data, i, cache), rid)
        estimates, first = seen[key]
        target = _target(_without(inputs, subset), estimates, target_drug) if estimates.exact is not None else None
        rows.append(VariantRow(**base, estimand=PRIMARY_ESTIMAND, status="passed", error="", outcome=data.outcome,
                               model=config.model.family, reports=len(subset), patients=int(subset.n.sum()),
                               responders=int(subset.y.sum()), pooled=estimates.pooled, predictive=estimates.predictive,
                               target=target))
    return _mark_identical(rows)


def _loo_population(family, primary: Primary, config: Config, reports, data, i: int, cache: ModelCache) -> Population:
    keep = np.arange(len(reports)) != i
    if primary.exact is None:
        fitted = nuts(cache, config, reports.subset(keep), data.subset(keep), Seeds(config.sampling.seed),
                      checks_too=False)
        return draws_population(family, fitted.posterior)
    log_lik = family.log_marginal(primary.exact.values, reports.y[i:i + 1], reports.n[i:i + 1],
                                  reports.covariates[i:i + 1])[..., 0]
    moved = primary.exact.reweighted(-log_lik)
    if moved.contains():
        return pooled_and_predictive(family, moved)
    return population(cache, config, reports.subset(keep), TOLERANCE)


def _without(inputs: Inputs, subset) -> Inputs:
    return Inputs(inputs.config, inputs.table, subset, inputs.patients, inputs.appraisal, inputs.excluded,
                  inputs.search, inputs.design, inputs.files)


def _mark_identical(rows: list[VariantRow]) -> list[VariantRow]:
    """Record, on each leave-one-out row, the other rows with exactly its result."""
    groups: dict[tuple, list[str]] = {}
    for r in rows:
        if r.pooled is not None:
            groups.setdefault((r.pooled.mean, r.pooled.lo, r.pooled.hi), []).append(r.variant)
    marked = []
    for r in rows:
        same = () if r.pooled is None else tuple(v for v in groups[(r.pooled.mean, r.pooled.lo, r.pooled.hi)]
                                                  if v != r.variant)
        marked.append(VariantRow(**{**r.__dict__, "identical_to": same}))
    return marked


def publication_rows(publication: Publication, inputs: Inputs) -> list[VariantRow]:
    """The publication step's scenarios as rows of the sweep (computed once, there)."""
    data = inputs.data
    rows = []
    for s in publication.scenarios:
        scope = "reports of any size" if s.mechanism == "all_responders" else "single-patient reports"
        rows.append(VariantRow(
            variant=s.variant, group="publication bias", kind="bias",
            description=f"Publication bias, {scope}: a report with a non-responder is {s.weight:g} times as likely "
                        "to be published as an all-responder report",
            estimand=PRIMARY_ESTIMAND, status="passed", error="", outcome=data.outcome, model=inputs.config.model.family,
            reports=len(data), patients=int(data.n.sum()), responders=int(data.y.sum()), pooled=s.pooled,
            predictive=s.predictive))
    return rows


def borrowing_rows(arm: TargetArm, primary: Primary, inputs: Inputs) -> list[VariantRow]:
    """The target arm at the other borrowing weights of its sweep (the reports' estimates are unchanged)."""
    data = inputs.data
    return [VariantRow(variant=f"borrowing_w{round(100 * r.weight):03d}", group="target arm borrowing", kind="choice",
                       description=f"{arm.target_drug.capitalize()} borrowing: weight {r.weight:g} on the vague "
                                   f"component (the primary uses {arm.robust_weight:g})",
                       estimand=PRIMARY_ESTIMAND, status="passed", error="", outcome=data.outcome,
                       model=inputs.config.model.family, reports=len(data), patients=int(data.n.sum()),
                       responders=int(data.y.sum()), pooled=primary.pooled, predictive=primary.predictive,
                       target=r.exact)
            for r in arm.sweep if r.weight != arm.robust_weight]


def primary_row(primary: Primary, inputs: Inputs, arm: TargetArm | None) -> VariantRow:
    data = inputs.data
    return VariantRow(variant="primary", group="primary", kind="primary", description="Primary analysis",
                      estimand=PRIMARY_ESTIMAND, status="passed" if primary.convergence.passed else "failed",
                      error="; ".join(primary.convergence.failures), outcome=data.outcome,
                      model=inputs.config.model.family, reports=len(data), patients=int(data.n.sum()),
                      responders=int(data.y.sum()), pooled=primary.pooled, predictive=primary.predictive,
                      target=None if arm is None else arm.posterior)


def with_shifts(rows: list[VariantRow], reference: VariantRow) -> tuple[VariantRow, ...]:
    """Each row of the primary estimand with its shifts from the primary."""
    out = []
    for r in rows:
        if r.estimand != PRIMARY_ESTIMAND or r.pooled is None:
            out.append(r)
            continue
        shifts = {"pooled_shift": r.pooled.shifted(reference.pooled),
                  "predictive_shift": None if r.predictive is None else r.predictive.shifted(reference.predictive),
                  "target_shift": None if r.target is None or reference.target is None else r.target.shifted(reference.target)}
        out.append(VariantRow(**{**r.__dict__, **shifts}))
    return tuple(out)


def sweep(inputs: Inputs, primary: Primary, publication: Publication | None, arm: TargetArm | None,
          cache: ModelCache, executor, data_path: Path | None, psense=None, precomputed: dict | None = None) -> Sweep:
    """Every variant's rows, in order: primary, configs, leave-one-out, then the other steps' rows.
    `precomputed`: {variant name: a meta-regression result other steps computed for that variant}."""
    target_drug = arm.target_drug if arm is not None else None
    precomputed = {k: v for k, v in (precomputed or {}).items() if v is not None}
    variants = discover(data_path, inputs.config.sampling.seed)
    todo = [v for v in variants if v.name not in precomputed]
    computed = dict(zip((v.name for v in todo),
                        executor.map(_task, [(v, target_drug) for v in todo], progress="sensitivity variants")))
    reference = primary_row(primary, inputs, arm)
    rows = [reference]
    for v in variants:
        if v.name in precomputed:
            rows.append(_meta_regression_row(v, precomputed[v.name], inputs))
        else:
            rows += computed[v.name]
    rows += leave_one_out(inputs, primary, cache, target_drug)
    if publication is not None:
        rows += publication_rows(publication, inputs)
    if arm is not None:
        rows += borrowing_rows(arm, primary, inputs)
    return Sweep("run", "", with_shifts(rows, reference), psense)


def _task(task) -> list[VariantRow]:
    variant, target_drug = task
    return config_rows(variant, process_cache(), target_drug=target_drug)


def not_run(note: str) -> Sweep:
    return Sweep("not run", note, (), None)


def is_primary(config_path: Path) -> bool:
    return Path(config_path).resolve() == DEFAULT_CONFIG.resolve()
