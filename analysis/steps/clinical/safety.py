"""Harms: how many patients' reports state an adverse-event assessment, how many had an event, and what
risk that is compatible with. Counts and intervals only; `analysis.report.prose.clinical` words them."""

from __future__ import annotations

import pandas as pd
from scipy import stats

from analysis.results import CI_PROB
from analysis.results.clinical import ADVERSE_EVENT_REPORTING, ReportSafety, Safety, Unrecognised
from analysis.steps.clinical.wording import cell, classify_adverse_events, count, included_reports
from analysis.steps.estimates import clopper_pearson, of_distribution

JEFFREYS = (0.5, 0.5)
ANY_EVENT = ("assessed, none", "assessed, event")
"""Statuses whose patients enter the any-event denominator: the report says there was no event at all,
or names its events."""
NO_SIGNIFICANT_EVENT = ("assessed, none", "none significant")
"""Statuses that say no significant event occurred."""


def _report(row: pd.Series) -> tuple[ReportSafety, Unrecognised | None]:
    rid, n, wording = cell(row, "report_id"), count(row, "n_treated") or 0, cell(row, "adverse_events")
    reading = classify_adverse_events(wording)
    events = None if reading.events is None else min(reading.events, n)
    unread = Unrecognised(rid, "adverse_events", wording, unread=reading.unrecognised) if reading.unrecognised else None
    return ReportSafety(rid, n, reading.status, wording, events, reading.events, reading.event_names), unread


def _patients(reports: list[ReportSafety], statuses: tuple[str, ...]) -> int:
    return sum(r.patients for r in reports if r.status in statuses)


def safety(reports: pd.DataFrame, drug: str, prior: tuple[float, float] = JEFFREYS) -> Safety:
    """Harms of `drug` in its included reports.

    Only a stated assessment of every event enters the any-event denominator: "not reported" is not
    "none", "not read" is the extraction's gap, not the report's silence, and "none significant" says
    that events may have occurred, so their patients are counted apart, never as event-free. A report that
    names an event without saying in how many patients is assessed, but its patients are left out of the
    interval and the posterior (their number of events is unknown). Events named in one report are counted
    in different patients, at most the report's patients.

    The interval is exact (Clopper-Pearson): with 0 events the two-sided 95% upper bound is the
    1 − 0.025^(1/n) of the "rule of three" family (0.336 for 0 of 9). The posterior is Beta(a + events,
    b + assessed − events) under the stated prior; the default is Jeffreys Beta(0.5, 0.5) because it is
    the reference prior for a binomial risk (invariant to reparametrisation), carries half a patient of
    information instead of the uniform's two, and its intervals have close to nominal frequentist
    coverage even at 0 events (Brown, Cai & DasGupta 2001), which is where a safety question usually sits.
    """
    a, b = prior
    read = [_report(row) for _, row in included_reports(reports, drug).iterrows()]
    per_report = [r for r, _ in read]
    assessed = [r for r in per_report if r.status in ANY_EVENT]
    counted = [r for r in assessed if r.events is not None]
    known = sum(r.patients for r in counted)
    events = sum(r.events for r in counted)
    posterior = stats.beta(a + events, b + known - events)
    significant = _patients(per_report, NO_SIGNIFICANT_EVENT)
    return Safety(
        drug=drug,
        column_present="adverse_events" in reports.columns,
        reports_included=len(per_report),
        patients_included=sum(r.patients for r in per_report),
        reports_assessed=len(assessed),
        assessed_patients=sum(r.patients for r in assessed),
        patients_with_events=events,
        event_count_unknown_patients=sum(r.patients for r in assessed if r.events is None),
        event_names=tuple(dict.fromkeys(name for r in assessed for name in r.event_names)),
        none_significant_patients=_patients(per_report, ("none significant",)),
        significant_assessed_patients=significant,
        significant_ci95=clopper_pearson(0, significant) if significant else None,
        not_read_patients=_patients(per_report, ("not read",)),
        not_reported_patients=_patients(per_report, ("not reported",)),
        ci95=clopper_pearson(events, known) if known else None,
        posterior=of_distribution(posterior),
        prior=f"Beta({a:g}, {b:g})",
        upper95_one_sided=float(posterior.ppf(CI_PROB)),
        reporting_bias=ADVERSE_EVENT_REPORTING,
        reports=tuple(per_report),
        unrecognised=tuple(u for _, u in read if u is not None),
    )
