"""The sentences a clinician reads about harms, how soon, how lasting, on stopping and how long anyone
looked, each generated from the typed results of `analysis.results.clinical` and nothing else, so that
every number in them follows the data. Every branch (no report, one report, no events, no time stated,
everything missing) gives a whole sentence."""

from __future__ import annotations

from collections.abc import Sequence

from analysis.results.clinical import (ChallengeTotals, Dechallenge, Durability, Followup, LossOnTreatment,
                                       ReportingBias, Safety, TimeToFirstImprovement, TimeToResponse)

COMMON_RISK = 0.10
"""A risk of 1 patient in 10 or more is "common" (the CIOMS frequency bands)."""
DIRECTIONS = {"toward_safe": "toward “safe”"}
REASONS = {
    "assessment time": "at an assessment",
    "clearing time": "at clearing",
    "first documented visit": "at a first documented visit",
    "within": "“within” a time",
}
"""How each reason of an upper bound is named: "11 at an assessment"."""

# --- words ---------------------------------------------------------------------------------------------


def plural(k: int, word: str, many: str | None = None) -> str:
    """"1 report", "2 reports", "3 patients"."""
    return f"{k} {word if k == 1 else (many or word + 's')}"


def verb(k: int, one: str, many: str) -> str:
    return one if k == 1 else many


def listed(items: Sequence[str]) -> str:
    """"A", "A and B", "A, B and C"."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def percent(p: float) -> str:
    """31%, 8.4%, 0.6%: two significant figures at most, whole percent from 10% up."""
    value = 100 * p
    if value >= 10 or value == 0:
        return f"{value:.0f}%"
    return f"{value:.1f}%" if value >= 1 else f"{value:.2g}%"


def duration(days: float, month_days: int = 30, adjective: bool = False) -> str:
    """"26 days", "6 weeks", "3 months", "18 months" ("12-month" as an adjective): months from 2 months or
    a whole month up, whole weeks from 2 weeks up, else days."""
    if days >= 2 * month_days or (days >= month_days and days % month_days == 0):
        number, unit = round(days / month_days, 1), "month"
    elif days >= 14 and days % 7 == 0:
        number, unit = days / 7, "week"
    else:
        number, unit = days, "day"
    number = int(number) if float(number).is_integer() else number
    return f"{number}-{unit}" if adjective else plural(number, unit)


def _span(lo: float, hi: float, month_days: int) -> str:
    return duration(lo, month_days) if lo == hi else f"from {duration(lo, month_days)} to {duration(hi, month_days)}"


# --- safety --------------------------------------------------------------------------------------------


def safety_sentence(s: Safety) -> str:
    """What the reports say about harms: the any-event assessment and its exact bound, the patients
    assessed only for significant events, those whose reports were not read or are silent, and the
    direction of reporting bias."""
    if s.reports_included == 0:
        return f"No included report of {s.drug}: these data say nothing about its harms."
    parts = [_any_event(s)] + [p for p in (_none_significant(s), _not_assessed(s)) if p]
    if s.assessed_patients or s.none_significant_patients:
        parts.append(reporting_bias_sentence(s.reporting_bias))
    return " ".join(parts)


def _any_event(s: Safety) -> str:
    total, reports = plural(s.patients_included, "patient"), plural(s.reports_included, "report")
    if s.assessed_patients == 0:
        which = ("The report ({total}) on {drug} does not state" if s.reports_included == 1
                 else "None of the {reports} ({total}) on {drug} states")
        return (which.format(reports=reports, total=total, drug=s.drug) + " whether any adverse event occurred: "
                "these data say nothing about the risk of adverse events.")
    head = (f"Adverse events were assessed in {s.assessed_patients} of {total} "
            f"({s.reports_assessed} of {reports}){_events(s)}")
    if s.ci95 is None:
        return head + " No risk can be estimated."
    known = s.assessed_patients - s.event_count_unknown_patients
    lo, hi = s.ci95
    if s.patients_with_events == 0:
        bound = f" 0 of {known} is compatible with a risk of up to {percent(hi)} (exact 95% upper bound)"
    else:
        bound = (f" {s.patients_with_events} of {known} is compatible with a risk between {percent(lo)} and "
                 f"{percent(hi)} (exact 95% interval)")
    if hi >= COMMON_RISK:
        return head + bound + ": these data cannot rule out common side effects (1 patient in 10 or more)."
    return (head + bound + f": side effects in more than {percent(hi)} of patients are unlikely, but rarer ones "
            "cannot be ruled out.")


def _events(s: Safety) -> str:
    if not s.event_names:
        return "; none was recorded."
    shown = ", ".join(s.event_names)
    if not s.event_count_unknown_patients:
        return f"; {s.patients_with_events} had an event ({shown})."
    return (f"; events were named ({shown}): {s.patients_with_events} of the patients with a count given had "
            f"one, and an unknown number of {plural(s.event_count_unknown_patients, 'patient')} in reports that "
            "name an event without a count (left out of the risk below).")


def _none_significant(s: Safety) -> str:
    ids = s.reports_with("none significant")
    if not ids:
        return ""
    k = s.none_significant_patients
    return (f"{listed(ids)} ({plural(k, 'patient')}) {verb(len(ids), 'states', 'state')} only that no "
            f"significant adverse event occurred: counted for significant events (none in "
            f"{plural(s.significant_assessed_patients, 'patient')}), not as free of any event.")


def _not_assessed(s: Safety) -> str:
    parts = []
    if s.not_read_patients:
        ids = s.reports_with("not read")
        parts.append(f"the full text of {listed(ids)} ({plural(s.not_read_patients, 'patient')}) was not read "
                     "for harms")
    if s.not_reported_patients:
        k = len(s.reports_with("not reported"))
        parts.append(f"{plural(k, 'report')} ({plural(s.not_reported_patients, 'patient')}) "
                     f"{verb(k, 'does', 'do')} not report on harms")
    if not parts:
        return ""
    text = listed(parts)
    return text[0].upper() + text[1:] + "."


def reporting_bias_sentence(bias: ReportingBias) -> str:
    """"Adverse events are under-reported in case reports, which biases these counts toward “safe”."."""
    direction = DIRECTIONS.get(bias.direction, bias.direction.replace("_", " "))
    return f"{bias.mechanism[0].upper()}{bias.mechanism[1:]}, which biases these counts {direction}."


def safety_notes(s: Safety) -> tuple[str, ...]:
    """How the wording was counted where a reader might read it otherwise."""
    notes = [] if s.column_present else ["the data have no adverse_events column: safety is not available"]
    for r in s.reports:
        if r.status == "assessed, event" and r.events is None:
            notes.append(f"{r.report_id} names an event ({'; '.join(r.event_names)}) but not how many of its "
                         f"{plural(r.patients, 'patient')} had it: they are left out of the interval and the posterior")
        elif r.events is not None and r.events_stated > r.patients:
            notes.append(f"{r.report_id}: {r.events_stated} events in {plural(r.patients, 'patient')}; counted as "
                         f"{r.patients} with an event (events in the same patient are not separable)")
        elif r.events and len(r.event_names) > 1:
            notes.append(f"{r.report_id}: {len(r.event_names)} named events counted as "
                         f"{plural(r.events, 'patient')} (assumes they were in different patients)")
    notes += [f"{u.report_id}: adverse_events wording not recognised ('{u.wording}'): counted as not reported"
              for u in s.unrecognised]
    if s.ci95 is None:
        notes.append("no patient with a stated assessment and a known number of events: no interval; the "
                     "posterior is the prior")
    return tuple(notes)


# --- how soon ------------------------------------------------------------------------------------------


def how_soon(d: Durability) -> str:
    """When improvement began where a report says so, and apart from it the times that only bound it
    from above (an assessment, clearing, a first documented visit, "within"): never one range."""
    t = d.time_to_first_improvement
    if d.reports_included == 0:
        return "How soon: no report."
    if t.responders == 0:
        return "How soon: no responder is reported, so there is no time to first improvement."
    if not (t.first_improvement_patients or t.upper_bound_patients):
        whom = "the one responder" if t.responders == 1 else f"any of the {t.responders} responders"
        return (f"How soon: no time to first improvement is stated for {whom} "
                f"({plural(d.reports_included, 'report')}).")
    parts = [_first_seen(t) if t.first_improvement_patients else "no report states when improvement began"]
    if t.upper_bound_patients:
        parts.append(_bounded(t, d.month_days))
    if t.not_stated_patients:
        parts.append(f"no time is stated for {t.not_stated_patients} of the {plural(t.responders, 'responder')}")
    return "How soon: " + "; ".join(parts) + "."


def _first_seen(t: TimeToFirstImprovement) -> str:
    lo, hi = t.first_improvement_days
    when = f"{plural(lo, 'day')}" if lo == hi else f"between {lo} and {hi} days"
    return (f"improvement was first seen {when} after starting in {plural(t.first_improvement_patients, 'patient')} "
            f"({plural(len(t.first_improvement_reports), 'report')})")


def _bounded(t: TimeToFirstImprovement, month_days: int) -> str:
    k, lo, hi = t.upper_bound_patients, *t.upper_bound_days
    ranked = sorted(t.upper_bound_reasons.items(), key=lambda item: -item[1])
    reasons = ", ".join(f"{n} {REASONS.get(r, r)}" for r, n in ranked)
    by = duration(lo, month_days) if lo == hi else f"a time {_span(lo, hi, month_days)}"
    return (f"{plural(k, 'patient')} ({plural(len(t.upper_bound_reports), 'report')}) {verb(k, 'is', 'are')} "
            f"described only as improved by {by} after starting ({reasons}), which bounds when improvement "
            "began from above")


def time_note(t: TimeToResponse) -> str:
    """How one time was read, where its own wording does not say what it marks."""
    label = f"{t.report_id} {t.patient_id}" if t.patient_id else t.report_id
    if t.status == "follow-up time":
        return f"{label}: '{t.wording}' is a follow-up time, not a time to response"
    if t.status != "parsed" or t.marked_by == t.wording.strip().lower().rstrip("."):
        return ""
    if not t.marked_by:
        return (f"{label}: '{t.wording}' does not say what the time marks: read as the time improvement was "
                "documented (an upper bound)")
    return f"{label}: '{t.wording}' read as {t.kind} ({t.reason}) from '{t.marked_by}'"


# --- how lasting ---------------------------------------------------------------------------------------


def how_lasting(loss: LossOnTreatment) -> str:
    k, responders = loss.reports_graded, loss.responders_graded
    if k == 0:
        return "How lasting: no report grades whether the response was still present at the last follow-up on the drug."
    head = f"How lasting: in the {plural(k, 'report')} that {verb(k, 'grades', 'grade')} it"
    if responders == 0:
        return f"{head}, no patient responded."
    if loss.lost == 0:
        if responders == 1:
            return f"{head}, the one responder still had the response at the last follow-up on the drug."
        return f"{head}, none of the {responders} responders lost the response while still on the drug."
    losing = [r for r in loss.reports if r.lost > 0]
    shown = "; ".join(f"{r.lost} in {r.report_id}" + (f" (its wording: '{r.response_wording}')" if r.response_wording else "")
                      for r in losing)
    return (f"{head}, {loss.lost} of {plural(responders, 'responder')} lost the response while still on the drug: "
            f"{'all ' if len(losing) == 1 and loss.lost > 1 else ''}{shown}.")


# --- on stopping ---------------------------------------------------------------------------------------


def on_stopping(challenge: Dechallenge) -> str:
    t = challenge.totals
    if t.reports == 0:
        return "On stopping: no report."
    if t.reports_positive_dechallenge == 0 and t.reports == 1:
        if t.reports_negative_dechallenge:
            return "On stopping: the drug was stopped in the one report, without a flare."
        if t.reports_no_flare_on_treatment:
            return "On stopping: not tried or not reported; the report only says there was no flare on the drug."
        return "On stopping: the report does not say whether stopping the drug was tried."
    others = _other_reports(t)
    if t.reports_positive_dechallenge == 0:
        return (f"On stopping: none of the {t.reports} reports describes a flare after stopping or lowering the "
                f"drug: {others}.")
    text = f"On stopping: {_flares(t)}"
    return f"{text}; of the others, {others}." if others else text + "."


def _flares(t: ChallengeTotals) -> str:
    lowered = (f"; {t.reports_on_dose_reduction} of the reports on a lower dose" if t.reports_on_dose_reduction
               else "")
    text = (f"a flare after stopping or lowering the drug is reported in {t.reports_positive_dechallenge} of "
            f"{plural(t.reports, 'report')} ({plural(t.patients_positive_dechallenge, 'patient')}{lowered})")
    if t.reports_positive_dechallenge_rechallenge:
        text += (f"; the response returned on restarting in {t.reports_positive_dechallenge_rechallenge} of them "
                 f"({plural(t.patients_positive_dechallenge_rechallenge, 'patient')})")
    else:
        text += "; none describes the response returning on restarting"
    if t.reports_slower_rechallenge:
        text += f" and more slowly in {t.reports_slower_rechallenge}"
    return text


def _other_reports(t: ChallengeTotals) -> str:
    unknown = (t.reports - t.reports_positive_dechallenge - t.reports_no_flare_on_treatment
               - t.reports_negative_dechallenge)
    parts = []
    if k := t.reports_negative_dechallenge:
        parts.append(f"{k} {verb(k, 'describes', 'describe')} stopping without a flare")
    if k := t.reports_no_flare_on_treatment:
        parts.append(f"{k} {verb(k, 'says', 'say')} only that there was no flare while on the drug")
    if unknown:
        parts.append(f"{unknown} {verb(unknown, 'does', 'do')} not say whether stopping was tried")
    return listed(parts) if parts else ""


# --- follow-up -----------------------------------------------------------------------------------------


def followup_sentence(f: Followup) -> str:
    """How long patients were followed on the drug, per patient: the range documented, the reports with
    a patient followed only briefly, the patients followed long; study windows, off-drug times and
    response times said for what they are."""
    if f.reports_included == 0:
        return "No report."
    if f.patients_documented == 0:
        which = ("The report does not document" if f.reports_included == 1
                 else f"None of the {f.reports_included} reports documents")
        parts = [f"{which} how long any patient was followed on the drug."]
    else:
        parts = [_documented(f), _short(f), _long(f)]
    parts += [p for p in (_response_only(f), _off_drug(f)) if p]
    if f.patients_documented == 0 and f.study_windows:
        parts.append(f"{_windows(f)[0].upper()}{_windows(f)[1:]} {verb(len(f.study_windows), 'gives', 'give')} "
                     "only the study's dates, not each patient's time on the drug.")
    return " ".join(parts)


def _documented(f: Followup) -> str:
    head = (f"Follow-up on the drug is documented for {f.patients_documented} of "
            f"{plural(f.patients_included, 'patient')} ({f.reports_documented} of "
            f"{plural(f.reports_included, 'report')})")
    if f.shortest_days == f.longest_days:
        each = " for each" if f.patients_documented > 1 else ""
        return f"{head}: {duration(f.longest_days, f.month_days)}{each}."
    return f"{head} and ranges {_span(f.shortest_days, f.longest_days, f.month_days)}."


def _short(f: Followup) -> str:
    if not f.reports_under_short:
        return f"No patient is documented as followed for under {f.short_months} months."
    return (f"At least one patient was followed for under {f.short_months} months in {f.reports_under_short} of "
            f"{plural(f.reports_included, 'report')} ({listed(f.reports_under_short_ids)}).")


def _long(f: Followup) -> str:
    who = (f"{plural(f.patients_long, 'patient')} ({listed(f.patients_long_at)})" if f.patients_long
           else "no patient")
    windows = f", plus {_windows(f)} (not each patient's time on the drug)" if f.study_windows else ""
    return f"Follow-up of {f.long_months} months or more on the drug is documented for {who}{windows}."


def _windows(f: Followup) -> str:
    shown = [f"{rid}'s {duration(days, f.month_days, adjective=True)} study window"
             for rid, days in f.study_windows.items()]
    return listed(shown)


def _response_only(f: Followup) -> str:
    ids = f.response_time_only_reports
    if not ids:
        return ""
    return f"For {listed(ids)} the only documented time on the drug is a time to response, counted as follow-up."


def _off_drug(f: Followup) -> str:
    if not f.off_drug:
        return ""
    shown = "; ".join(f"{rid}: {duration(days, f.month_days)}" for rid, days in f.off_drug.items())
    return f"Time off the drug is not counted ({shown})."


# --- durability together -------------------------------------------------------------------------------


def durability_sentences(d: Durability) -> tuple[str, ...]:
    """How soon, how lasting, on stopping, how long: the four sentences of the durability section."""
    follow = followup_sentence(d.followup)
    beyond = " beyond that" if d.followup.patients_documented else ""
    return (
        how_soon(d),
        how_lasting(d.loss_on_treatment),
        on_stopping(d.dechallenge),
        f"How long: {follow[0].lower()}{follow[1:]} How long the response lasts{beyond}, on or off the drug, is "
        "not known.",
    )


def durability_notes(d: Durability) -> tuple[str, ...]:
    """How the wording was read where a reader might read it otherwise."""
    notes = [f"months are converted at {d.month_days} days, weeks at {d.week_days} days"]
    if not d.per_patient_table:
        notes.append("no per-patient table: times, flares and rechallenge read from report-level columns")
    notes += [n for n in map(time_note, d.time_to_response) if n]
    why = {"series statement": "its per-patient rows state the flare only for the series",
           "report statement": "the flare is stated for the report, not per patient"}
    notes += [f"{r.report_id}: {why[r.counted_from]}; counted as 1 patient with a positive dechallenge, the least "
              "the wording guarantees" for r in d.dechallenge.reports if r.counted_from in why]
    notes += [f"{u.report_id}: {u.column} wording not recognised ('{u.wording}'): read as not tried or not reported"
              for u in d.dechallenge.unrecognised]
    return tuple(notes)
