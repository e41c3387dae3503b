"""Everything one command computes, in memory: the steps of the synthesis in order, each timed, into one
`Synthesis`. Nothing here writes a file or renders a sentence."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from analysis.engine.executors import InProcessExecutor
from analysis.engine.programs import ModelCache
from analysis.errors import InputError
from analysis.inputs.bundle import Inputs, load_inputs
from analysis.inputs.config import CONFIG_DIR, display_path, load_config
from analysis.results import Estimate
from analysis.results.synthesis import Synthesis
from analysis.steps import borrowing, cumulative, design, evidence, grade, graded, metaregression, primary, psense
from analysis.steps import next_report, publication, sweep
from analysis.steps.clinical import durability, safety
from analysis.steps.clinical.safety import ANY_EVENT
from analysis.steps.estimates import clopper_pearson
from analysis.timing import Stopwatch

SIZE_VARIANT = CONFIG_DIR / "sens_metareg_log_n.toml"
"""The size meta-regression of the bias section (also the sweep's row of that name)."""


def synthesise(inputs: Inputs, cache: ModelCache, clock: Stopwatch, sensitivity: bool, sensitivity_note: str = "",
               overrides: dict | None = None, data_path: Path | None = None,
               on_primary: Callable[[object], None] | None = None) -> Synthesis:
    """Every step, each timed under its own name in `clock` (see the README for what each computes).

    The graded-outcome model, which needs no other step, is fitted in a second thread from the start: its
    NUTS program runs outside the interpreter's lock while this thread computes the rest (same numbers,
    its seed is its own). `on_primary(result)` is called as soon as the primary model is done (the
    command starts drawing its diagnostic figures then)."""
    beside = ThreadPoolExecutor(1, thread_name_prefix="graded")
    fitted = inputs.config.graded.enabled and graded.why_not(inputs) is None
    graded_fit = beside.submit(_timed, graded.analyse, inputs, cache) if fitted else None
    try:
        synthesis = _steps(inputs, cache, clock, sensitivity, sensitivity_note, overrides, data_path, on_primary,
                           graded_fit)
    except BaseException:
        beside.shutdown(wait=False, cancel_futures=True)  # a stopped or failed run does not wait for it
        raise
    beside.shutdown()
    return synthesis


def _timed(step: Callable, *args):
    started = time.perf_counter()
    return step(*args), time.perf_counter() - started


def _steps(inputs: Inputs, cache: ModelCache, clock: Stopwatch, sensitivity: bool, sensitivity_note: str,
           overrides: dict | None, data_path: Path | None, on_primary, graded_fit) -> Synthesis:
    config, data = inputs.config, inputs.data
    skipped: dict[str, str] = {}
    with clock.phase("primary"):
        main = primary.analyse(inputs, cache)
    if on_primary is not None:
        on_primary(main)
    with clock.phase("evidence"):
        target_drug = config.borrowing.target_drug if config.borrowing.enabled else None
        comparators = evidence.conventional(inputs)
        rows = evidence.evidence_rows(inputs, target_drug)
        rob = evidence.risk_of_bias(inputs.appraisal, data.report_ids)
        harms = safety(inputs.table.frame, config.data.drug)
        lasting = durability(inputs.table.frame, inputs.patients, config.data.drug)
    with clock.phase("publication"):
        bias = publication.analyse(inputs, main, cache) if main.exact is not None else None
        if bias is None:
            skipped["publication"] = "the primary model has more parameters than the grid serves"
    with clock.phase("meta-regression"):
        meta = metaregression.analyse(inputs, cache) if inputs.design is not None else None
        small = None
        if not config.model.covariates:
            small = _size_regression(overrides or {}, inputs, cache, skipped)
    with clock.phase("cumulative"):
        steps = cumulative.analyse(inputs, cache) if config.cumulative.enabled else None
    if config.graded.enabled and graded_fit is None:
        skipped["graded"] = graded.why_not(inputs)
    target = None
    if target_drug is not None:
        arm = inputs.target(target_drug)
        reason = borrowing.why_not(inputs, int(arm.y.sum()) if len(arm) else None)
        if reason is None and main.exact is None:
            reason = "the target arm is computed on the primary model's grid, which this model does not have"
        if reason is None:
            with clock.phase("borrowing"):
                target = borrowing.analyse(inputs, main, cache)
        else:
            skipped["target"] = reason
    table = None
    psense_tree = None
    if sensitivity:
        with clock.phase("sensitivity"):
            rows_psense, psense_tree = psense.analyse(config, main)
            executor = InProcessExecutor(threads=config.sampling.cores)
            table = sweep.sweep(inputs, main, bias, target, cache, executor, data_path, rows_psense,
                                precomputed={"sens_metareg_log_n": small})
    else:
        table = sweep.not_run(sensitivity_note)
    with clock.phase("next report"):
        unmapped = next_report.why_not(inputs, main)
        updates = next_report.analyse(inputs, main, cache) if unmapped is None else None
        if unmapped is not None:
            skipped["next_report"] = unmapped
    with clock.phase("design"):
        plan = None
        if config.design.enabled:
            plan = design.analyse(config.design, main, bias, target, lasting)
    grades = None
    if graded_fit is not None:  # joined last: the steps before it need no graded outcome
        grades, seconds = graded_fit.result()
        clock.book("graded", seconds)
    with clock.phase("grade"):
        rows_grade = _grade(inputs, main, grades, harms, bias, small, rob)
    failures = [*main.convergence.failures]
    if target is not None:
        failures += [f"joint model: {f}" for f in target.joint_convergence.failures]
    if grades is not None:
        failures += [f"graded-outcome model: {f}"
                     for f in (*grades.convergence.failures, *grades.integration["failures"])]
    for name, regression in (("meta-regression", meta), ("size meta-regression", small)):
        failures += [f"{name}: {f}" for f in (regression.failures if regression is not None else ())]
    return Synthesis(
        meta=_meta(inputs), evidence=data.describe(), data_warnings=tuple(data.what_cannot_be_learnt()),
        primary=main, comparators=comparators, publication=bias, meta_regression=meta, small_study=small,
        cumulative=steps, graded=grades, safety=harms, durability=lasting, risk_of_bias=rob,
        prisma=evidence.prisma(inputs, target_drug), search=evidence.search(inputs), evidence_rows=rows,
        grade=rows_grade, grade_rules=grade.rules(config.grade), target=target, sweep=table, design=plan,
        next_report=updates, skipped=skipped, failures=tuple(failures), psense_tree=psense_tree,
        config=config.model_dump(mode="json"))


def _size_regression(overrides: dict, inputs: Inputs, cache: ModelCache, skipped: dict[str, str]):
    """The size meta-regression on the run's data (the variant config with the run's overrides)."""
    try:
        variant = load_inputs(load_config(SIZE_VARIANT, **overrides), inputs.files)
    except InputError as err:
        skipped["small_study"] = "; ".join(err.problems)
        return None
    return metaregression.analyse(variant, cache)


def _meta(inputs: Inputs) -> dict:
    config = inputs.config
    return {
        "config": config.name, "config_file": config.source,
        "config_sha256": hashlib.sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest(),
        "description": config.description, "data_file": display_path(inputs.table.path),
        "data_sha256": inputs.table.sha256, "outcome": config.data.outcome, "drug": config.data.drug,
        "condition": inputs.condition, "natural_course": config.names.natural_course,
        "model": config.model.family, "prior": config.model.prior.model_dump(), "seed": config.sampling.seed,
        "publication": config.model.publication.model_dump(),
        "target_drug": config.borrowing.target_drug if config.borrowing.enabled else None,
        "sampling": config.sampling.model_dump(), "graded_draws": config.graded.draws,
        "grade_settings": config.grade.model_dump(), "design_settings": config.design.model_dump(),
    }


def _grade(inputs: Inputs, main, grades, harms, bias, small, rob) -> dict:
    """The summary of findings: any response from the primary model, the deeper outcomes from the graded
    model (whose estimate rests on every report of the set, not only those that graded the outcome), and
    adverse events as reported."""
    settings, data, condition = inputs.config.grade, inputs.data, inputs.condition
    concerns = None if rob is None else {r: v["overall"] for r, v in rob.reports.items()}
    supporting = _publication_support(bias, small)
    intervals = {rid: (int(n), clopper_pearson(int(y), int(n))) for rid, y, n in zip(data.report_ids, data.y, data.n)}
    patients = dict(zip(data.report_ids, map(int, data.n)))
    rows = {data.outcome: grade.row(
        settings, condition, "primary analysis", main.pooled, len(data), int(data.n.sum()), len(data),
        int(data.n.sum()), (int(data.y.sum()), int(data.n.sum())),
        {"risk_of_bias": grade.risk_of_bias(concerns, patients, settings),
         "inconsistency": grade.inconsistency(main.pooled.mean, intervals),
         "imprecision": grade.imprecision(main.pooled.interval, int(data.n.sum()), settings.decision_threshold, settings),
         "publication_bias": grade.publication_bias(settings.publication_bias, supporting)})}
    if grades is not None:
        for k, key in enumerate(("marked", "complete", "sustained"), start=1):
            outcome = grades.outcomes[key]
            if not outcome.reports:  # no report graded it: the model's value is its prior, not evidence
                continue
            column = grades.counts[:, k]
            graded_ids = [rid for rid, c in zip(grades.reports, column) if c >= 0]
            graded_n = sum(v["any"]["n"] for rid, v in grades.reports.items() if rid in graded_ids)
            rows[key] = grade.row(
                settings, condition, "graded-outcome model", outcome.pooled, grades.reports_total,
                grades.patients_total, outcome.reports, outcome.patients, (outcome.responders, graded_n),
                {"risk_of_bias": grade.risk_of_bias(concerns, {r: grades.reports[r]["any"]["n"] for r in graded_ids}, settings),
                 "inconsistency": grade.inconsistency(outcome.pooled.mean, {}),
                 "imprecision": grade.imprecision(outcome.pooled.interval, grades.patients_total,
                                                  settings.decision_threshold, settings),
                 "publication_bias": grade.publication_bias(settings.publication_bias, supporting)})
    if harms.assessed_patients - harms.event_count_unknown_patients > 0 and harms.ci95 is not None:
        assessed = {r.report_id: r.patients for r in harms.reports if r.status in ANY_EVENT}
        rows["adverse_events"] = grade.row(
            settings, condition, "adverse events as reported",
            Estimate(harms.patients_with_events / harms.assessed_patients, harms.posterior.median, None,
                     harms.ci95[0], harms.ci95[1], "exact", 0.0),
            len(assessed), harms.assessed_patients, len(assessed), harms.assessed_patients,
            (harms.patients_with_events, harms.assessed_patients),
            {"risk_of_bias": grade.risk_of_bias(concerns, assessed, settings),
             "inconsistency": grade.Domain("not assessable", "too few events to judge"),
             "imprecision": grade.imprecision(tuple(harms.ci95), harms.assessed_patients, settings.harm_threshold,
                                              settings),
             "publication_bias": grade.publication_bias(settings.harms_publication_bias, ())})
    return rows


def _publication_support(bias, small) -> tuple[str, ...]:
    """Considerations that support the publication-bias judgement (not a detection rule)."""
    out = []
    if bias is not None:
        for t in bias.tipping:
            if t.quantity == "mean" and t.reached and t.times and t.times > 1:
                out.append(f"the pooled mean falls below {t.threshold:g} if reports with a non-responder were "
                           f"{t.times:.1f} times less likely to be published")
                break
    if small is not None and "log_n" in small.slopes:
        slope = small.slopes["log_n"]
        text = f"larger reports found lower rates (P(size slope < 0) = {slope.p_negative:.2f}"
        if slope.without_most_influential:
            w = slope.without_most_influential
            text += f"; {w['p_negative']:.2f} without {w['report']}"
        out.append(text + ")")
    return tuple(out)
