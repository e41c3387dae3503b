"""How soon the response comes, whether it lasts on the drug, what stopping does, and how long anyone
looked: numbers read from the wording of the evidence table (and the per-patient table where there is
one), never from a model. `analysis.report.prose.clinical` words them.

Every function takes the report frame (one row per report: `load_evidence(...).frame`, or the raw CSV read
as strings), the optional per-patient frame and the drug, and keeps the included reports of that drug.
A user's own data may have no per-patient table: the report-level columns are read instead.
"""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd

from analysis.results.clinical import (ChallengeTotals, Dechallenge, Durability, FollowupClause, Followup,
                                       LossOnTreatment, PatientFollowup, ReportChallenge, ReportLoss, TimeReading,
                                       TimeToFirstImprovement, TimeToResponse, Unrecognised)
from analysis.steps.clinical.wording import (MONTH_DAYS, WEEK_DAYS, cell, classify_flare, classify_rechallenge,
                                             count, documented, flare_count, flare_for_series_only,
                                             included_reports, parse_time_to_response, patients_of,
                                             read_followup)

SHORT_FOLLOWUP_MONTHS = 3
"""Follow-up shorter than this is "short": the appraisal's Q7 asks for at least 3 months on treatment."""
LONG_FOLLOWUP_MONTHS = 6
"""Six months or more on the drug is "long": half a year, the horizon at which a chronic relapsing
disease's flares would usually have shown."""


def _treated(row: pd.Series) -> int:
    return count(row, "n_treated") or 0


def _responders(own: pd.DataFrame) -> pd.DataFrame:
    """The patients of a report not graded as non-responders (a non-responder has no time to response)."""
    if own.empty or "any_response" not in own.columns:
        return own
    return own[own["any_response"].fillna("").astype(str).str.strip() != "0"]


# --- time to first improvement -------------------------------------------------------------------------


def time_to_response(reports: pd.DataFrame, patients: pd.DataFrame | None, drug: str) -> tuple[TimeToResponse, ...]:
    """One entry per responding patient where the per-patient table gives a time to response for any
    patient of the report (the others are "not stated"), else one entry for the report's responders read
    from its `followup_note`. A time is read with the rest of the patient's and the report's wording as
    context (`parse_time_to_response`), and keeps its source wording beside the days."""
    entries = []
    for _, row in included_reports(reports, drug).iterrows():
        rid = cell(row, "report_id")
        report_context = tuple(cell(row, c) for c in ("followup_note", "response_wording", "evidence"))
        own = _responders(patients_of(patients, rid))
        if any(cell(p, "time_to_response") for _, p in own.iterrows()):
            for _, p in own.iterrows():
                wording = cell(p, "time_to_response")
                context = (cell(p, "outcome_as_reported"), cell(p, "coding_note"), *report_context)
                entries.append(_entry(rid, cell(p, "patient_id") or None, 1, "patients.time_to_response", wording,
                                      parse_time_to_response(wording, context)))
        else:
            wording = cell(row, "followup_note")
            responders = count(row, "n_any_response")
            patients_covered = _treated(row) if responders is None else responders
            entries.append(_entry(rid, None, patients_covered, "reports.followup_note", wording,
                                  parse_time_to_response(wording, report_context[1:], bare_duration=False)))
    return tuple(entries)


def _entry(rid: str, pid: str | None, patients: int, source: str, wording: str,
           reading: TimeReading) -> TimeToResponse:
    return TimeToResponse(rid, pid, patients, source, wording, reading.status, reading.kind, reading.reason,
                          reading.days, reading.stated_days, reading.shape, reading.marked_by)


def time_to_first_improvement(entries: tuple[TimeToResponse, ...]) -> TimeToFirstImprovement:
    """The entries summed by kind: first improvement and upper bounds are never pooled into one range."""
    first = [t for t in entries if t.kind == "first improvement"]
    bounds = [t for t in entries if t.kind == "upper bound"]
    reasons: dict[str, int] = {}
    for t in bounds:
        reasons[t.reason] = reasons.get(t.reason, 0) + t.patients
    responders = sum(t.patients for t in entries)
    timed = sum(t.patients for t in first + bounds)
    return TimeToFirstImprovement(
        responders=responders,
        first_improvement_patients=sum(t.patients for t in first),
        first_improvement_reports=tuple(dict.fromkeys(t.report_id for t in first)),
        first_improvement_days=(min(t.days[0] for t in first), max(t.days[1] for t in first)) if first else None,
        upper_bound_patients=sum(t.patients for t in bounds),
        upper_bound_reports=tuple(dict.fromkeys(t.report_id for t in bounds)),
        upper_bound_days=(min(t.days[1] for t in bounds), max(t.days[1] for t in bounds)) if bounds else None,
        upper_bound_reasons=reasons,
        not_stated_patients=responders - timed,
        largest_first_improvement_days=max((t.days[1] for t in first), default=None),
        largest_upper_bound_days=max((t.days[1] for t in bounds), default=None),
    )


# --- loss of response on treatment ---------------------------------------------------------------------


def loss_on_treatment(reports: pd.DataFrame, drug: str) -> LossOnTreatment:
    """Responders who no longer had the response at the last on-treatment follow-up: n_any_response −
    n_sustained, in the reports that grade both (a blank sustained count is not "all sustained").

    That the difference was lost *on* treatment follows from the definition of n_sustained ("still present
    at the last on-treatment follow-up"); where that rests on a reading of the source (Series14_Menta2024,
    known from a review) the report's `response_wording` is kept beside the number for the reader to judge.
    """
    graded = []
    for _, row in included_reports(reports, drug).iterrows():
        y, s = count(row, "n_any_response"), count(row, "n_sustained")
        if y is not None and s is not None:
            graded.append(ReportLoss(cell(row, "report_id"), count(row, "n_treated"), y, s, y - s,
                                     cell(row, "response_wording")))
    return LossOnTreatment(
        reports_graded=len(graded),
        responders_graded=sum(g.n_any_response for g in graded),
        lost=sum(g.lost for g in graded),
        reports_with_loss=tuple(g.report_id for g in graded if g.lost > 0),
        reports=tuple(graded),
    )


# --- dechallenge and rechallenge -----------------------------------------------------------------------


def dechallenge(reports: pd.DataFrame, patients: pd.DataFrame | None, drug: str) -> Dechallenge:
    """Per report: was stopping (or lowering) the drug followed by a flare, and restarting by the response
    coming back; how many patients that was seen in.

    Patients are counted from the per-patient `relapse_on_stop` and `outcome_as_reported` cells where they
    name the patient. Where the flare is stated only for the report (a report-level `withdrawal_flare`
    with no per-patient cell, or a per-patient cell saying it was "reported for the series (per-patient
    detail not ...)") the report counts as 1 patient, the least the wording guarantees: a series-level
    statement does not say it happened in every patient. (Albers2017 is such a report; the extraction's
    coding rule — one man stopped and restarted several times, per a 2019 commentary — gives the same 1.)
    A report-level count such as "yes (2 patients)" is used when given.
    """
    read = [_challenge(row, patients_of(patients, cell(row, "report_id")))
            for _, row in included_reports(reports, drug).iterrows()]
    per_report = tuple(r for r, _ in read)
    return Dechallenge(per_report, _totals(per_report), tuple(u for _, found in read for u in found))


def _challenge(row: pd.Series, own: pd.DataFrame) -> tuple[ReportChallenge, list[Unrecognised]]:
    rid, report_flare = cell(row, "report_id"), cell(row, "withdrawal_flare")
    status, on, known = classify_flare(report_flare)
    unrecognised = [] if known else [Unrecognised(rid, "withdrawal_flare", report_flare)]
    named_flare, named_back, series_only, both = [], [], False, 0
    for _, p in own.iterrows():
        pid, text = cell(p, "patient_id"), cell(p, "relapse_on_stop")
        p_status, p_on, p_known = classify_flare(text)
        if not p_known:
            unrecognised.append(Unrecognised(rid, "relapse_on_stop", text, pid))
        if p_status == "positive":
            if flare_for_series_only(text):
                series_only = True
            else:
                named_flare.append(pid)
            if status != "positive":
                status, on = "positive", p_on
        elif p_status.startswith("no flare on treatment") and status == "not tried or not reported":
            status = p_status
        back, _ = classify_rechallenge([cell(p, "outcome_as_reported")])
        if back == "positive":
            named_back.append(pid)
            both += pid in named_flare
    texts = [cell(p, "outcome_as_reported") for _, p in own.iterrows()]
    rechallenge, clause = classify_rechallenge(texts + [cell(row, c) for c in ("evidence", "response_wording",
                                                                               "followup_note")])
    if named_back:
        rechallenge = "positive"
    flare_patients, counted_from = _flare_patients(status, named_flare, flare_count(report_flare), series_only)
    back_patients = len(named_back) or (1 if rechallenge == "positive" else 0)
    paired = status == "positive" and rechallenge == "positive"
    wording = "; ".join(dict.fromkeys(
        ([f"withdrawal_flare: {report_flare}"] if report_flare else [])
        + [f"{cell(p, 'patient_id')} relapse_on_stop: {cell(p, 'relapse_on_stop')}" for _, p in own.iterrows()
           if cell(p, "relapse_on_stop")]
        + ([f"rechallenge: {clause}"] if clause else [])))
    return ReportChallenge(rid, status, on, rechallenge, flare_patients, back_patients,
                           (both or min(flare_patients, back_patients)) if paired else 0, counted_from,
                           wording), unrecognised


def _flare_patients(status: str, named: list[str], stated: int | None, series_only: bool) -> tuple[int, str]:
    """Patients with a positive dechallenge and how they were counted."""
    if status != "positive":
        return 0, ""
    if named:
        return len(named), "patients"
    if stated:
        return stated, "report count"
    return 1, "series statement" if series_only else "report statement"


def _totals(per_report: tuple[ReportChallenge, ...]) -> ChallengeTotals:
    positive = [r for r in per_report if r.dechallenge == "positive"]
    paired = [r for r in positive if r.rechallenge == "positive"]
    return ChallengeTotals(
        reports=len(per_report),
        reports_positive_dechallenge=len(positive),
        patients_positive_dechallenge=sum(r.patients for r in positive),
        reports_on_dose_reduction=sum(r.on == "dose reduction" for r in positive),
        reports_positive_dechallenge_rechallenge=len(paired),
        patients_positive_dechallenge_rechallenge=sum(r.dechallenge_rechallenge_patients for r in paired),
        reports_slower_rechallenge=sum(r.rechallenge == "slower" for r in positive),
        reports_no_flare_on_treatment=sum(r.dechallenge.startswith("no flare on treatment") for r in per_report),
        reports_negative_dechallenge=sum(r.dechallenge == "negative" for r in per_report),
    )


# --- follow-up -----------------------------------------------------------------------------------------


def followup(reports: pd.DataFrame, patients: pd.DataFrame | None, drug: str) -> Followup:
    """The follow-up documented on the drug, per patient: from the per-patient `followup` cell where
    there is one, else from the report's `followup_note` (`read_followup` says what each part documents).

    A cell that is the same for every patient of a report is a statement about the series: when it
    counts patients ("3 months for two patients, 6 weeks for one") the patients it does not name become
    groups of that size. A report without per-patient rows is one entry for all its patients."""
    rows = included_reports(reports, drug)
    entries = tuple(e for _, row in rows.iterrows()
                    for e in _report_followup(row, patients_of(patients, cell(row, "report_id"))))
    on_drug = [e for e in entries if e.days is not None]
    short, long = SHORT_FOLLOWUP_MONTHS * MONTH_DAYS, LONG_FOLLOWUP_MONTHS * MONTH_DAYS
    shortest = min((e.days for e in on_drug), default=None)
    longest = max((e.days for e in on_drug), default=None)
    under = tuple(dict.fromkeys(e.report_id for e in on_drug if e.days < short))
    lasting = [e for e in on_drug if e.days >= long]
    return Followup(
        entries=entries,
        reports_included=len(rows),
        patients_included=sum(_treated(row) for _, row in rows.iterrows()),
        reports_documented=len({e.report_id for e in on_drug}),
        patients_documented=sum(e.patients for e in on_drug),
        shortest_days=shortest,
        shortest_at=tuple(e.label for e in on_drug if e.days == shortest),
        longest_days=longest,
        longest_at=tuple(e.label for e in on_drug if e.days == longest),
        short_months=SHORT_FOLLOWUP_MONTHS,
        reports_under_short=len(under),
        reports_under_short_ids=under,
        long_months=LONG_FOLLOWUP_MONTHS,
        patients_long=sum(e.patients for e in lasting),
        patients_long_at=tuple(e.label for e in lasting),
        study_windows=_longest_by_report(entries, "study window"),
        off_drug=_longest_by_report(entries, "off drug"),
        response_time_only_reports=tuple(
            rid for rid in dict.fromkeys(e.report_id for e in on_drug)
            if all(e.kind == "time to response only" for e in on_drug if e.report_id == rid)),
        not_stated_patients=sum(e.patients for e in entries if e.days is None),
        month_days=MONTH_DAYS,
    )


def _report_followup(row: pd.Series, own: pd.DataFrame) -> list[PatientFollowup]:
    rid, note, n = cell(row, "report_id"), cell(row, "followup_note"), _treated(row)
    if own.empty:
        return _assign(rid, "reports.followup_note", note, None, n)
    ids = [cell(p, "patient_id") for _, p in own.iterrows()]
    given = {pid: cell(p, "followup") for pid, (_, p) in zip(ids, own.iterrows()) if cell(p, "followup")}
    if len(given) == len(ids) and len(set(given.values())) == 1:
        return _assign(rid, "patients.followup", next(iter(given.values())), ids, len(ids))
    own_entries = {pid: _patient(rid, pid, 1, "patients.followup", text,
                                 [c for c in read_followup(text) if c.patient_id in (None, pid)])
                   for pid, text in given.items()}
    rest = [pid for pid in ids if pid not in given]
    from_note = _assign(rid, "reports.followup_note", note, rest, len(rest), exclude=set(given)) if rest else []
    named = {e.patient_id: e for e in from_note if e.patient_id}
    return ([own_entries.get(pid) or named[pid] for pid in ids if pid in own_entries or pid in named]
            + [e for e in from_note if not e.patient_id])


def _assign(rid: str, source: str, wording: str, ids: list[str] | None, n: int,
            exclude: Collection[str] = ()) -> list[PatientFollowup]:
    """The entries one wording gives `n` patients (`ids` when known): a part naming a patient is that
    patient's, a part counting patients is a group of them, every other part is everyone's."""
    pieces = [c for c in read_followup(wording) if c.patient_id not in exclude]
    general = [c for c in pieces if c.patient_id is None and c.patients is None]
    labelled = list(dict.fromkeys(c.patient_id for c in pieces if c.patient_id
                                  and (ids is None or c.patient_id in ids)))
    entries = [_patient(rid, pid, 1, source, wording, [c for c in pieces if c.patient_id == pid] + general)
               for pid in labelled]
    left = n - len(labelled)
    for part in dict.fromkeys(c.part for c in pieces if c.patient_id is None and c.patients is not None):
        group = [c for c in pieces if c.part == part]
        size = min(group[0].patients, left)
        if size > 0:
            entries.append(_patient(rid, None, size, source, wording, group + general))
            left -= size
    counted = len(entries) > len(labelled)
    if left > 0 and (counted or ids is None):
        entries.append(_patient(rid, None, left, source, wording, general))
    elif left > 0:
        entries += [_patient(rid, pid, 1, source, wording, general) for pid in ids if pid not in labelled]
    return entries


def _patient(rid: str, pid: str | None, patients: int, source: str, wording: str,
             pieces: list[FollowupClause]) -> PatientFollowup:
    kind, days = documented(pieces)
    return PatientFollowup(rid, pid, patients, source, wording, kind, days, tuple(pieces))


def _longest_by_report(entries: tuple[PatientFollowup, ...], kind: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for e in entries:
        for c in e.clauses:
            if c.kind == kind and c.days is not None:
                found[e.report_id] = max(found.get(e.report_id, 0), c.days)
    return found


# --- everything together -------------------------------------------------------------------------------


def durability(reports: pd.DataFrame, patients: pd.DataFrame | None, drug: str) -> Durability:
    """The parts above for one drug, with the denominators the sentences need."""
    rows = included_reports(reports, drug)
    times = time_to_response(reports, patients, drug)
    return Durability(
        drug=drug,
        reports_included=len(rows),
        patients_included=sum(_treated(row) for _, row in rows.iterrows()),
        per_patient_table=patients is not None,
        time_to_response=times,
        time_to_first_improvement=time_to_first_improvement(times),
        loss_on_treatment=loss_on_treatment(reports, drug),
        dechallenge=dechallenge(reports, patients, drug),
        followup=followup(reports, patients, drug),
        month_days=MONTH_DAYS,
        week_days=WEEK_DAYS,
    )
