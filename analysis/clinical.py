"""What a clinician asks beyond "how many respond": is it safe, how soon does it work, does it last, and
what happens on stopping. Read from the wording of the evidence table, never from a model.

Every function takes the report frame (one row per report: `load_evidence(...).frame`, or the raw CSV read
as strings) and the drug, keeps the included reports of that drug (the `included` column when the loader
made it, else `default_set == include`, else every row), and returns plain numbers, the wording each
number came from, and sentences generated from those numbers. The per-patient frame is optional: a user's
own data may have none, and then the report-level columns are read instead (or the answer says "not
available" when the column is absent too).

Wording is classified by small explicit vocabularies (the tuples of regular expressions below), in the
order listed, first match wins. Wording that no rule recognises is never guessed at: it counts as "not
reported" and is listed under "unrecognised" (or "unparsed") so the reader sees what was not read.
"""

from __future__ import annotations

import math
import re

import pandas as pd
from scipy import stats

from analysis.intervals import CI_PROB, clopper_pearson, rounded

JEFFREYS = (0.5, 0.5)
MONTH_DAYS = 30
"""Days per month. The reports' months are rounded visit intervals ("at 1 month", "within 2 months"),
not calendar spans; 30 keeps "1 month" = 30 and "2 months" = 60 days, and differs from 30.44 (365.25/12)
by less than half a day per month, far below the precision of the wording."""
WEEK_DAYS = 7
LONG_FOLLOWUP_MONTHS = 6
"""A follow-up longer than this is "long" in the follow-up sentence: half a year, the horizon at which a
chronic relapsing disease's flares would usually have shown."""

# --- selection and cells ------------------------------------------------------------------------------


def included_reports(reports: pd.DataFrame, drug: str) -> pd.DataFrame:
    """The included reports of `drug`, in table order: `included` if the loader set it, else
    `default_set == include`, else all rows (a user's table without either column)."""
    frame = reports
    if "included" in frame.columns:
        keep = frame["included"].astype(bool)
    elif "default_set" in frame.columns:
        keep = frame["default_set"].fillna("").astype(str).str.strip() == "include"
    else:
        keep = pd.Series(True, index=frame.index)
    keep &= frame["drug"].fillna("").astype(str).str.strip().str.lower() == drug.lower()
    return frame[keep].reset_index(drop=True)


def cell(row: pd.Series, column: str) -> str:
    """A cell as clean text: "" for a missing column, NaN or None (blank is "not stated", never "none")."""
    if column not in row.index:
        return ""
    value = row[column]
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return str(value).strip()


def count(row: pd.Series, column: str) -> int | None:
    """A count cell as an int, None when blank or absent (blank is missing, not zero)."""
    value = pd.to_numeric(pd.Series([cell(row, column)]), errors="coerce").iloc[0]
    return None if pd.isna(value) else int(value)


def _normal(text: str) -> str:
    """Lower case, one space between words, no trailing full stop: the form every rule matches."""
    return re.sub(r"\s+", " ", text.strip().lower()).rstrip(".").strip()


def _plural(k: int, word: str, plural: str | None = None) -> str:
    return f"{k} {word if k == 1 else (plural or word + 's')}"


def _percent(p: float) -> str:
    """31%, 8.4%, 0.6%: two significant figures at most, whole percent from 10% up."""
    value = 100 * p
    if value >= 10 or value == 0:
        return f"{value:.0f}%"
    return f"{value:.1f}%" if value >= 1 else f"{value:.2g}%"


def _patients_of(patients: pd.DataFrame | None, report_id: str) -> pd.DataFrame:
    if patients is None or "report_id" not in patients.columns:
        return pd.DataFrame()
    return patients[patients["report_id"].astype(str).str.strip() == report_id]


# --- safety -------------------------------------------------------------------------------------------

NOT_REPORTED = (
    r"",
    r"not (reported|stated|read|assessed|recorded|described|available|applicable)",
    r"unknown|unclear|n/?a|na|-",
)
"""Cells that state no assessment at all: the extraction's "not reported", "not stated", "not read"."""

NONE_RECORDED = (
    r"0",
    r"0 \(none( (recorded|reported|observed|significant|seen))?\)",
    r"none( (recorded|reported|observed|significant|seen))?",
    r"no( significant)? (adverse (events?|effects?|reactions?)|side[- ]effects?)( (recorded|reported|observed|seen))?",
    r"0 (adverse (events?|effects?|reactions?)|side[- ]effects?)",
)
"""Cells that state an assessment that found no (or no significant) adverse event: the extraction's
`0 (none recorded)`, `0 (none)`, `none reported`, `none significant`, and their plain variants."""

EVENT_WITH_COUNT = (
    r"(?P<count>[1-9]\d*) \((?P<event>[^()]+)\)",  # 1 (nausea), the extraction's "0 (none)" form
    r"(?P<event>[^()]+?) \((?P<count>\d+)( of \d+)? patients?\)",  # nausea (1 patient), (1 of 3 patients)
    r"(?P<event>.+?) in (?P<count>\d+)( of \d+)? patients?",  # nausea in 1 patient
    r"(?P<count>\d+) patients? (with|had|reported) (?P<event>.+)",  # 1 patient with nausea
)
"""One named event and how many patients had it."""

EVENT_TERMS = (
    "nausea", "vomiting", "headache", "insomnia", "sleep disturbance", "vivid dreams", "nightmares", "fatigue",
    "dizziness", "diarrhoea", "diarrhea", "abdominal pain", "constipation", "anxiety", "irritability",
    "palpitations", "rash", "pruritus", "liver enzymes", "transaminases", "hepatotoxicity",
)
"""Events recognised by name when the cell gives no count (the effects most often reported for low-dose
naltrexone); any other named event needs a count or an "adverse event: ..." prefix to be read."""
EVENT_WITHOUT_COUNT = (
    r"(adverse (events?|effects?|reactions?)|side[- ]effects?): (?P<event>.+)",
    r"(?P<event>.*\b(" + "|".join(EVENT_TERMS) + r")\b.*)",
)


def classify_adverse_events(wording: str) -> dict:
    """Read one adverse_events cell with the vocabularies above.

    Returns {"status", "events", "event_names", "unrecognised"}: status is "assessed, none",
    "assessed, event" or "not reported"; events is the number of patients with an event (None when the
    cell names an event without a count); unrecognised lists the parts no rule read (such a cell, with no
    event recognised in it, is "not reported"). Parts separated by ";" are read one by one, so
    "nausea (1 patient); headache (1 patient)" is two events.
    """
    text = _normal(wording)
    if any(re.fullmatch(p, text) for p in NOT_REPORTED):
        return {"status": "not reported", "events": None, "event_names": [], "unrecognised": []}
    events: list[int | None] = []
    names: list[str] = []
    nones: list[str] = []
    unread: list[str] = []
    for part in (p.strip() for p in text.split(";") if p.strip()):
        if any(re.fullmatch(p, part) for p in NONE_RECORDED):
            nones.append(part)
            continue
        match = next((m for p in EVENT_WITH_COUNT if (m := re.fullmatch(p, part))), None)
        if match and int(match["count"]) > 0:
            events.append(int(match["count"]))
            names.append(match["event"].strip())
            continue
        negated = re.match(r"(no|not|nil|without|denied)\b", part)  # "no nausea" is not an event
        match = None if negated else next((m for p in EVENT_WITHOUT_COUNT if (m := re.fullmatch(p, part))), None)
        if match:
            events.append(None)
            names.append(match["event"].strip())
            continue
        unread.append(part)
    if names:
        known = None if None in events else sum(events)
        return {"status": "assessed, event", "events": known, "event_names": names, "unrecognised": unread}
    if nones and not unread:
        return {"status": "assessed, none", "events": 0, "event_names": [], "unrecognised": []}
    return {"status": "not reported", "events": None, "event_names": [], "unrecognised": unread or [text]}


def beta_summary(a: float, b: float) -> dict:
    """Mean, median, equal-tailed 95% interval and one-sided 95% upper bound of Beta(a, b)."""
    dist = stats.beta(a, b)
    return {
        "prior": None,
        "mean": rounded(dist.mean()),
        "median": rounded(dist.median()),
        "ci95": [rounded(dist.ppf((1 - CI_PROB) / 2)), rounded(dist.ppf((1 + CI_PROB) / 2))],
        "upper95_one_sided": rounded(dist.ppf(CI_PROB)),
    }


def safety(reports: pd.DataFrame, drug: str, prior: tuple[float, float] = JEFFREYS) -> dict:
    """How many patients' reports state an adverse-event assessment, how many had an event, and what risk
    that is compatible with.

    Only a stated assessment enters the denominator: "not reported" is not "none", so the patients of a
    report silent on harms are counted apart (`not_reported_patients`), never as event-free. A report that
    names an event without saying in how many patients is "assessed, event" but its patients are left out
    of the interval and the posterior (their number of events is unknown), and a note says so; its
    patients are `event_count_unknown_patients`.

    The interval is exact (Clopper-Pearson): with 0 events the two-sided 95% upper bound is the
    1 − 0.025^(1/n) of the "rule of three" family (0.3085 for 0 of 10). The posterior is Beta(a + events,
    b + assessed − events) under the stated prior; the default is Jeffreys Beta(0.5, 0.5) because it is
    the reference prior for a binomial risk (invariant to reparametrisation), carries half a patient of
    information instead of the uniform's two, and its intervals have close to nominal frequentist
    coverage even at 0 events (Brown, Cai & DasGupta 2001), which is where a safety question usually sits.
    """
    a, b = prior
    rows = included_reports(reports, drug)
    notes: list[str] = []
    if "adverse_events" not in reports.columns:
        notes.append("the data have no adverse_events column: safety is not available")
    per_report, unrecognised = [], []
    assessed = events = not_reported = unknown = reports_assessed = 0
    names: list[str] = []
    for _, row in rows.iterrows():
        rid, n, wording = cell(row, "report_id"), count(row, "n_treated") or 0, cell(row, "adverse_events")
        reading = classify_adverse_events(wording)
        if reading["unrecognised"]:
            unrecognised.append({"report_id": rid, "wording": wording, "unread": reading["unrecognised"]})
        k = reading["events"]
        if reading["status"] == "not reported":
            not_reported += n
        else:
            reports_assessed += 1
            assessed += n
            if k is None:
                unknown += n
                notes.append(f"{rid} names an event ({'; '.join(reading['event_names'])}) but not how many of its "
                             f"{_plural(n, 'patient')} had it: they are left out of the interval and the posterior")
            else:
                if k > n:
                    notes.append(f"{rid}: {k} events in {n} patients; counted as {n} patients with an event "
                                 "(events in the same patient are not separable)")
                    k = n
                elif len(reading["event_names"]) > 1:
                    notes.append(f"{rid}: {len(reading['event_names'])} named events counted as {k} patients "
                                 "(assumes they were in different patients)")
                events += k
            names += reading["event_names"]
        per_report.append({"report_id": rid, "patients": n, "status": reading["status"], "wording": wording,
                           "events": k})
    for item in unrecognised:
        notes.append(f"{item['report_id']}: adverse_events wording not recognised ('{item['wording']}'): "
                     "counted as not reported")
    known = assessed - unknown
    if known == 0:
        ci95 = None
        posterior = beta_summary(a, b)
        notes.append("no patient with a stated assessment and a known number of events: no interval; "
                     "the posterior is the prior")
    else:
        ci95 = [rounded(x) for x in clopper_pearson(events, known)]
        posterior = beta_summary(a + events, b + known - events)
    posterior["prior"] = f"Beta({a:g}, {b:g})"
    result = {
        "drug": drug,
        "assessed_patients": assessed,
        "patients_with_events": events,
        "event_count_unknown_patients": unknown,
        "not_reported_patients": not_reported,
        "ci95": ci95,
        "posterior": posterior,
        "reports": per_report,
        "unrecognised": unrecognised,
        "notes": notes,
    }
    result["sentence"] = _safety_sentence(result, len(rows), reports_assessed, names)
    return result


def _safety_sentence(s: dict, n_reports: int, reports_assessed: int, names: list[str]) -> str:
    total = s["assessed_patients"] + s["not_reported_patients"]
    if s["assessed_patients"] == 0:
        return (f"None of the {_plural(n_reports, 'report')} ({_plural(total, 'patient')}) on {s['drug']} states "
                "whether adverse events were looked for: these data say nothing about its harms.")
    head = (f"Adverse events were assessed in {s['assessed_patients']} of {_plural(total, 'patient')} "
            f"({reports_assessed} of {_plural(n_reports, 'report')})")
    known = s["assessed_patients"] - s["event_count_unknown_patients"]
    k = s["patients_with_events"]
    if not names:
        head += "; none was recorded."
    else:
        shown = ", ".join(dict.fromkeys(names))
        unknown = s["event_count_unknown_patients"]
        if not unknown:
            head += f"; {k} had an event ({shown})."
        else:
            head += (f"; events were named ({shown}): {k} of the patients with a count given had one, and an "
                     f"unknown number of {_plural(unknown, 'patient')} in reports that name an event without a "
                     "count (left out of the risk below).")
    if s["ci95"] is None:
        return head + " No risk can be estimated."
    lo, hi = s["ci95"]
    if k == 0:
        bound = f" 0 of {known} is compatible with a risk of up to {_percent(hi)} (exact 95% upper bound)"
    else:
        bound = (f" {k} of {known} is compatible with a risk between {_percent(lo)} and {_percent(hi)} "
                 "(exact 95% interval)")
    if hi >= 0.10:
        tail = ": these data cannot rule out common side effects (1 patient in 10 or more)."
    else:
        tail = (f": side effects in more than {_percent(hi)} of patients are unlikely, but rarer ones cannot be "
                "ruled out.")
    return head + bound + tail


# --- time to response ---------------------------------------------------------------------------------

_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_NUM = r"(\d+(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + r")"
_UNIT = r"(days?|weeks?|wks?|months?|mos?)\b"
DURATION = rf"(?<![\w.]){_NUM}(?:\s*(?:-|–|to)\s*{_NUM})?\s*{_UNIT}"
"""A number or a range of numbers and a unit: "26 days", "1-2 weeks", "two weeks", "1 to 2 months"."""

FOLLOWUP_WORDING = (r"\b(assessed|evaluated|reviewed|seen|measured) (at|after)\b|follow[- ]?up|\bvisits?\b"
                    r"|drug[- ]free|\bsustained\b|\bmaintained\b|\bmaintenance\b|\bongoing\b|\bevery\b")
RESPONSE_WORDING = r"\b(heal|improv|respon|clear|resol|remi[st]|better|benefit|settl|subsid)"

TIME_RULES = (
    ("follow-up time, not time to response", FOLLOWUP_WORDING),
    ("upper bound (within)", rf"\b(within|by|before|under|less than|up to|in under)\s+{DURATION}"),
    ("upper bound (by day)", r"\b(by|before)\s+(day|week|month)\s+" + _NUM + r"\b"),
    ("day, week or month N", r"\b(day|week|month)\s+" + _NUM + r"\b"),
    ("duration", DURATION),
)
"""How a time to response is read, per clause (split on ";"), first matching rule wins:

1. wording of a follow-up visit ("assessed at 18 months", "visits every 2-3 months", "sustained over 4
   months", "drug-free") is a follow-up time, not a time to response: not parsed, listed;
2. "within / by / before / under / less than / up to" a duration is an upper bound only: [0, hi]
   ("within 2 months" → [0, 60]);
3. "by day 8" is an upper bound too: [0, 8];
4. "day 8", "week 6", "month 1" is a point: [8, 8], [42, 42], [30, 30];
5. any other duration is a point or a range: "26 days" → [26, 26], "healing began 1-2 weeks" → [7, 14],
   "healing began after 14 days" → [14, 14] ("after" marks when it was seen, not a bound).

Weeks are 7 days and months `MONTH_DAYS` (30) days. In a per-patient `time_to_response` cell a bare
duration is a time to response (the column says so); in a report's `followup_note`, which mixes response
and follow-up times, rules 2-5 apply only to a clause with a response word (heal, improv, respon, clear,
resol, remit/remiss, ...), so "7 months" there is not read as a time to response.
"""


def _number(text: str) -> float:
    return float(_NUMBER_WORDS[text]) if text in _NUMBER_WORDS else float(text)


def _unit_days(unit: str) -> int:
    return {"d": 1, "w": WEEK_DAYS, "m": MONTH_DAYS}[unit[0]]


def parse_time_to_response(wording: str, bare_duration: bool = True) -> dict:
    """The interval in days [lo, hi] a time-to-response wording states, by the rules of `TIME_RULES`.

    Returns {"days": [lo, hi] or None, "kind": "point" / "range" / "upper bound" / None, "rule", "status"}:
    status is "parsed", "not stated" (blank, "not stated", or wording no rule reads) or "follow-up time"
    (rule 1). `bare_duration=False` (report-level follow-up notes) requires a response word in the clause.
    """
    text = _normal(wording)
    if not text or re.fullmatch(r"not (stated|reported|read|available)|unknown|n/?a", text):
        return {"days": None, "kind": None, "rule": None, "status": "not stated"}
    followup = False
    for clause in (c.strip() for c in text.split(";") if c.strip()):
        if re.search(TIME_RULES[0][1], clause):
            followup = True
            continue
        if not bare_duration and not re.search(RESPONSE_WORDING, clause):
            continue
        for name, pattern in TIME_RULES[1:]:
            match = re.search(pattern, clause)
            if not match:
                continue
            groups = [g for g in match.groups() if g is not None]
            if name == "upper bound (within)":
                _, first, *rest = groups
                unit = rest[-1]
                hi = _number(rest[0] if len(rest) == 2 else first) * _unit_days(unit)
                return _interval(0, hi, "upper bound", name)
            if name in ("upper bound (by day)", "day, week or month N"):
                unit, value = groups[-2], groups[-1]
                days = _number(value) * _unit_days(unit)
                return _interval(0 if name.startswith("upper") else days, days,
                                 "upper bound" if name.startswith("upper") else "point", name)
            first, *rest = groups
            unit = rest[-1]
            lo = _number(first) * _unit_days(unit)
            hi = _number(rest[0]) * _unit_days(unit) if len(rest) == 2 else lo
            return _interval(lo, hi, "point" if lo == hi else "range", name)
    if followup:
        return {"days": None, "kind": None, "rule": TIME_RULES[0][0], "status": "follow-up time"}
    return {"days": None, "kind": None, "rule": None, "status": "not stated"}


def _interval(lo: float, hi: float, kind: str, rule: str) -> dict:
    as_number = lambda x: int(x) if float(x).is_integer() else rounded(x, 1)  # noqa: E731
    return {"days": [as_number(lo), as_number(hi)], "kind": kind, "rule": rule, "status": "parsed"}


def time_to_response(reports: pd.DataFrame, patients: pd.DataFrame | None, drug: str) -> list[dict]:
    """One entry per patient where the per-patient table gives a time to response for any patient of the
    report (patients of that report without one are "not stated"), else one entry per report read from
    its `followup_note` (a response word required). Each entry keeps its source wording beside the days."""
    entries = []
    for _, row in included_reports(reports, drug).iterrows():
        rid, n = cell(row, "report_id"), count(row, "n_treated") or 0
        own = _patients_of(patients, rid)
        if not own.empty and "time_to_response" in own.columns and (own["time_to_response"].fillna("")
                                                                       .astype(str).str.strip() != "").any():
            for _, p in own.iterrows():
                wording = cell(p, "time_to_response")
                entries.append({"report_id": rid, "patient_id": cell(p, "patient_id") or None, "patients": 1,
                                "source": "patients.time_to_response", "wording": wording,
                                **parse_time_to_response(wording, bare_duration=True)})
        else:
            wording = cell(row, "followup_note")
            entries.append({"report_id": rid, "patient_id": None, "patients": n, "source": "reports.followup_note",
                            "wording": wording, **parse_time_to_response(wording, bare_duration=False)})
    return entries


# --- loss of response on treatment --------------------------------------------------------------------


def loss_on_treatment(reports: pd.DataFrame, drug: str) -> dict:
    """Responders who no longer had the response at the last on-treatment follow-up: n_any_response −
    n_sustained, in the reports that grade both (a blank sustained count is not "all sustained").

    That the difference was lost *on* treatment follows from the definition of n_sustained ("still present
    at the last on-treatment follow-up"); where that rests on a reading of the source (Series14_Menta2024,
    known from a review) the report's `response_wording` is kept beside the number for the reader to judge.
    """
    graded = []
    for _, row in included_reports(reports, drug).iterrows():
        y, s = count(row, "n_any_response"), count(row, "n_sustained")
        if y is None or s is None:
            continue
        graded.append({"report_id": cell(row, "report_id"), "n_treated": count(row, "n_treated"),
                       "n_any_response": y, "n_sustained": s, "lost": y - s,
                       "response_wording": cell(row, "response_wording")})
    return {
        "reports_graded": len(graded),
        "responders_graded": sum(g["n_any_response"] for g in graded),
        "lost": sum(g["lost"] for g in graded),
        "reports_with_loss": [g["report_id"] for g in graded if g["lost"] > 0],
        "reports": graded,
    }


# --- dechallenge and rechallenge ----------------------------------------------------------------------

FLARE_UNKNOWN = (r"", r"not (reported|stated|read|applicable|tried|available)", r"unknown|unclear|n/?a")
FLARE_ON_TREATMENT = r"no (flares?|relapses?)\b.*\b(over|during|for|while|on treatment|in the)\b.*"
FLARE_NEGATIVE = r"no|no (flares?|relapses?) (on|after) (stopping|discontinuation|withdrawal|cessation)"
FLARE_ON_REDUCTION = (r"(yes\b.*\bdose\b.*|dose[- ]dependent flares?"
                      r"|(flares?|relapsed?)\b.*\bdose (was )?(lowered|reduced|reduction|decreased))")
FLARE_ON_STOPPING = (r"(yes\b.*|.*\b(flares?|flared|relapsed?|worsen\w*)\b.*"
                     r"\b(stop\w*|discontinu\w*|withdraw\w*|cessation|off)\b.*)")
FLARE_SERIES_ONLY = r"for the series|per-patient detail not|not per patient"
"""How a withdrawal_flare (report) or relapse_on_stop (patient) cell is read, in this order:
unknown ("not reported", "not read", "not stated", blank) → "not tried or not reported";
"no flares over 4 months" (no flare *while on the drug*) → "no flare on treatment (not a dechallenge)";
"no" / "no flare on stopping" → "negative"; "yes (on dose reduction)", "dose-dependent flares" →
"positive" on dose reduction; "yes", "yes - flare 3 weeks after self-discontinuation", "flare on
discontinuation" → "positive" on stopping. Anything else → "not tried or not reported", listed.
A patient cell saying the flare was reported "for the series (per-patient detail not ...)" is positive for
the report but names no patient (see `dechallenge`)."""

RESTART = r"(restart\w*|rechalleng\w*|resum\w*|reintroduc\w*|re-?start\w*|re-?challeng\w*)"
RECHALLENGE_SLOWER = (rf"{RESTART}.*\b(more slowly|slower|less well|partial\w*)\b",
                      rf"\b(more slowly|slower)\b.*{RESTART}")
RECHALLENGE_NEGATIVE = (rf"\bno (response|improvement|benefit)\b.*\b{RESTART}",
                        rf"{RESTART}.*\b(no|without) (response|improvement|benefit)\b")
RECHALLENGE_POSITIVE = (
    rf"\b(cleared|clear\w*|remitted|remission|improved|improving|responded|healed|resolved|again)\b.*\b{RESTART}",
    rf"{RESTART}.*\b(cleared|remitted|improved|responded|healed|resolved|again)\b",
)
"""Whether the drug was restarted and the response returned, read clause by clause (split on ";" and
"."): "slower" (restart with a slower or partial return, e.g. "after restart ... improving more slowly")
is checked first, then "negative", then "positive" ("improved again on restart", "remitted again on
restarting", "cleared within days of rechallenge")."""


def classify_flare(wording: str) -> tuple[str, str | None, bool]:
    """(dechallenge status, "stopping" / "dose reduction" / None, recognised) for one flare cell."""
    text = _normal(wording)
    if any(re.fullmatch(p, text) for p in FLARE_UNKNOWN):
        return "not tried or not reported", None, True
    if re.fullmatch(FLARE_ON_TREATMENT, text):
        return "no flare on treatment (not a dechallenge)", None, True
    if re.fullmatch(FLARE_NEGATIVE, text):
        return "negative", "stopping", True
    if re.fullmatch(FLARE_ON_REDUCTION, text):
        return "positive", "dose reduction", True
    if re.fullmatch(FLARE_ON_STOPPING, text):
        return "positive", "stopping", True
    return "not tried or not reported", None, False


def classify_rechallenge(texts: list[str]) -> tuple[str, str]:
    """("positive" / "slower" / "negative" / "not reported", the clause that said so) from several cells."""
    clauses = [c.strip() for t in texts for c in re.split(r";|\.(?!\d)", _normal(t)) if c.strip()]
    for status, patterns in (("slower", RECHALLENGE_SLOWER), ("negative", RECHALLENGE_NEGATIVE),
                             ("positive", RECHALLENGE_POSITIVE)):
        for clause in clauses:
            if any(re.search(p, clause) for p in patterns):
                return status, clause
    return "not reported", ""


def dechallenge(reports: pd.DataFrame, patients: pd.DataFrame | None, drug: str) -> dict:
    """Per report: was stopping (or lowering) the drug followed by a flare, and restarting by the response
    coming back; how many patients that was seen in.

    Patients are counted from the per-patient `relapse_on_stop` and `outcome_as_reported` cells where they
    name the patient. Where the flare is stated only for the report (a report-level `withdrawal_flare`
    with no per-patient cell, or a per-patient cell saying it was "reported for the series (per-patient
    detail not ...)") the report counts as 1 patient, the least the wording guarantees, with a note: a
    series-level statement does not say it happened in every patient. (Albers2017 is such a report; the
    extraction's coding rule — one man stopped and restarted several times, per a 2019 commentary — gives
    the same 1.) A report-level count such as "yes (2 patients)" is used when given.
    """
    per_report, unrecognised, notes = [], [], []
    for _, row in included_reports(reports, drug).iterrows():
        rid = cell(row, "report_id")
        report_flare = cell(row, "withdrawal_flare")
        status, on, known = classify_flare(report_flare)
        if not known:
            unrecognised.append({"report_id": rid, "column": "withdrawal_flare", "wording": report_flare})
        own = _patients_of(patients, rid)
        named_flare, named_back, named_slower, series_only, both = [], [], [], False, 0
        for _, p in own.iterrows():
            p_status, p_on, p_known = classify_flare(cell(p, "relapse_on_stop"))
            if not p_known:
                unrecognised.append({"report_id": rid, "patient_id": cell(p, "patient_id"),
                                     "column": "relapse_on_stop", "wording": cell(p, "relapse_on_stop")})
            if p_status == "positive":
                if re.search(FLARE_SERIES_ONLY, _normal(cell(p, "relapse_on_stop"))):
                    series_only = True
                else:
                    named_flare.append(cell(p, "patient_id"))
                if status != "positive":
                    status, on = "positive", p_on
            elif p_status.startswith("no flare on treatment") and status == "not tried or not reported":
                status = p_status
            back, _ = classify_rechallenge([cell(p, "outcome_as_reported")])
            if back == "positive":
                named_back.append(cell(p, "patient_id"))
            elif back == "slower":
                named_slower.append(cell(p, "patient_id"))
            if p_status == "positive" and back == "positive" and cell(p, "patient_id") in named_flare:
                both += 1
        report_texts = [cell(row, c) for c in ("evidence", "response_wording", "followup_note")]
        rechallenge, clause = classify_rechallenge([cell(p, "outcome_as_reported") for _, p in own.iterrows()]
                                                   + report_texts)
        if named_back:
            rechallenge = "positive"
        stated = re.search(r"\((\d+) patients?\)", _normal(report_flare))
        if status != "positive":
            flare_patients = 0
        elif named_flare:
            flare_patients = len(named_flare)
        elif stated:
            flare_patients = int(stated[1])
        else:
            flare_patients = 1
            why = ("its per-patient rows state the flare only for the series" if series_only
                   else "the flare is stated for the report, not per patient")
            notes.append(f"{rid}: {why}; counted as 1 patient with a positive dechallenge, the least the "
                         "wording guarantees")
        back_patients = len(named_back) or (1 if rechallenge == "positive" else 0)
        if status == "positive" and rechallenge == "positive":
            pair_patients = both or min(flare_patients, back_patients)
        else:
            pair_patients = 0
        wording = "; ".join(dict.fromkeys(w for w in (
            [f"withdrawal_flare: {report_flare}"] if report_flare else [])
            + [f"{cell(p, 'patient_id')} relapse_on_stop: {cell(p, 'relapse_on_stop')}" for _, p in own.iterrows()
               if cell(p, "relapse_on_stop")]
            + ([f"rechallenge: {clause}"] if clause else [])))
        per_report.append({"report_id": rid, "dechallenge": status, "on": on, "rechallenge": rechallenge,
                           "patients": flare_patients, "rechallenge_patients": back_patients,
                           "dechallenge_rechallenge_patients": pair_patients, "wording": wording})
    for item in unrecognised:
        notes.append(f"{item['report_id']}: {item['column']} wording not recognised ('{item['wording']}'): "
                     "read as not tried or not reported")
    positive = [r for r in per_report if r["dechallenge"] == "positive"]
    paired = [r for r in positive if r["rechallenge"] == "positive"]
    return {
        "reports": per_report,
        "totals": {
            "reports": len(per_report),
            "reports_positive_dechallenge": len(positive),
            "patients_positive_dechallenge": sum(r["patients"] for r in positive),
            "reports_on_dose_reduction": sum(r["on"] == "dose reduction" for r in positive),
            "reports_positive_dechallenge_rechallenge": len(paired),
            "patients_positive_dechallenge_rechallenge": sum(r["dechallenge_rechallenge_patients"] for r in paired),
            "reports_slower_rechallenge": sum(r["rechallenge"] == "slower" for r in positive),
            "reports_no_flare_on_treatment": sum(r["dechallenge"].startswith("no flare on treatment")
                                                 for r in per_report),
            "reports_negative_dechallenge": sum(r["dechallenge"] == "negative" for r in per_report),
        },
        "unrecognised": unrecognised,
        "notes": notes,
    }


# --- follow-up ----------------------------------------------------------------------------------------

_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
DATE_SPAN = r"\b(" + "|".join(_MONTHS) + r")\w* (\d{4}) ?(?:-|–|to) ?(" + "|".join(_MONTHS) + r")\w* (\d{4})\b"


def followup_length(wording: str) -> float | None:
    """The longest follow-up, in days, a followup_note states; None when it states none.

    A clause read as a time to response (`parse_time_to_response` with a response word) is not a
    follow-up ("clearing at 6 weeks", "resolution within 2 months"); in any other clause the longest
    duration is ("3 months (2 patients) and 6 weeks (1 patient)" → 90; "P1 18 months" → 540), except a
    visit interval ("every 2-3 months"); a span of dates ("Jan 2016 - Jan 2017") counts as its length.
    """
    best = None
    for clause in (c.strip() for c in _normal(wording).split(";") if c.strip()):
        if parse_time_to_response(clause, bare_duration=False)["status"] == "parsed":
            continue
        clause = re.sub(rf"\bevery\s+{DURATION}", " ", clause)
        days = [(_number(m[2] or m[1])) * _unit_days(m[3]) for m in re.finditer(DURATION, clause)]
        for m in re.finditer(DATE_SPAN, clause):
            months = (int(m[4]) - int(m[2])) * 12 + _MONTHS.index(m[3][:3]) - _MONTHS.index(m[1][:3])
            days.append(months * MONTH_DAYS)
        if days:
            best = max(days + ([best] if best is not None else []))
    return None if best is None else (int(best) if float(best).is_integer() else rounded(best, 1))


def followup(reports: pd.DataFrame, drug: str) -> dict:
    """Per report: the followup_note wording and the follow-up length it states (days and months)."""
    per_report = []
    for _, row in included_reports(reports, drug).iterrows():
        wording = cell(row, "followup_note")
        days = followup_length(wording)
        per_report.append({"report_id": cell(row, "report_id"), "wording": wording, "stated": days is not None,
                           "days": days, "months": None if days is None else rounded(days / MONTH_DAYS, 1)})
    stated = [r for r in per_report if r["stated"]]
    if not per_report:
        sentence = "No report."
    elif not stated:
        sentence = (f"{'The report does' if len(per_report) == 1 else f'None of the {len(per_report)} reports'}"
                    f"{'' if len(per_report) == 1 else ' does'} not state how long patients were followed.")
    else:
        months = sorted(r["months"] for r in stated)
        longest = max(stated, key=lambda r: r["months"])
        beyond = sum(m > LONG_FOLLOWUP_MONTHS for m in months)
        span = _span(months[0], months[-1])
        goes = "none goes" if not beyond else f"{beyond} of the {len(stated)} go{'es' if beyond == 1 else ''}"
        sentence = (f"Follow-up is stated in {len(stated)} of {_plural(len(per_report), 'report')}, {span} "
                    f"({longest['report_id']} the longest), and {goes} beyond {LONG_FOLLOWUP_MONTHS} months.")
    return {"reports": per_report, "reports_stated": len(stated), "sentence": sentence}


def _span(shortest: float, longest: float) -> str:
    """"3 months", "from 3 to 18 months", "from 6 weeks to 3 months"."""
    if shortest == longest:
        return _months(shortest)
    if shortest >= 1:
        return f"from {shortest:g} to {_months(longest)}"
    return f"from {_months(shortest)} to {_months(longest)}"


def _months(m: float) -> str:
    if m < 1:
        return _plural(round(m * MONTH_DAYS / WEEK_DAYS), "week")
    return _plural(int(m) if float(m).is_integer() else m, "month")


# --- durability: everything together ------------------------------------------------------------------


def durability(reports: pd.DataFrame, patients: pd.DataFrame | None, drug: str) -> dict:
    """How soon the response comes, whether it lasts on the drug, what stopping does, and how long anyone
    looked: the parts above, and 4 sentences a clinician reads, every number generated from the data."""
    times = time_to_response(reports, patients, drug)
    loss = loss_on_treatment(reports, drug)
    challenge = dechallenge(reports, patients, drug)
    follow = followup(reports, drug)
    n_reports = len(included_reports(reports, drug))
    n_patients = sum(count(r, "n_treated") or 0 for _, r in included_reports(reports, drug).iterrows())
    notes = [f"months are converted at {MONTH_DAYS} days, weeks at {WEEK_DAYS} days"]
    if patients is None:
        notes.append("no per-patient table: times, flares and rechallenge read from report-level columns")
    unparsed = [t for t in times if t["status"] != "parsed" and t["wording"]]
    return {
        "drug": drug,
        "time_to_response": times,
        "time_to_response_unparsed": unparsed,
        "loss_on_treatment": loss,
        "dechallenge": challenge,
        "followup": follow,
        "month_days": MONTH_DAYS,
        "notes": notes + challenge["notes"],
        "sentences": [
            _how_soon(times, n_patients, n_reports),
            _how_lasting(loss),
            _on_stopping(challenge),
            "What is not known: " + follow["sentence"][0].lower() + follow["sentence"][1:]
            + " How long the response lasts beyond that, on or off the drug, is not known.",
        ],
    }


def _how_soon(times: list[dict], n_patients: int, n_reports: int) -> str:
    parsed = [t for t in times if t["status"] == "parsed"]
    if not parsed:
        return (f"How soon: no time to response is stated for any of the {_plural(n_patients, 'patient')} "
                f"({_plural(n_reports, 'report')}).")
    patients = sum(t["patients"] for t in parsed)
    reports = len({t["report_id"] for t in parsed})
    seen = [t for t in parsed if t["kind"] != "upper bound"]
    bounds = [t for t in parsed if t["kind"] == "upper bound"]
    text = (f"How soon: a time to response is stated for {patients} of {_plural(n_patients, 'patient')} "
            f"({reports} of {_plural(n_reports, 'report')})")
    if seen:
        lo = min(t["days"][0] for t in seen)
        hi = max(t["days"][1] for t in seen)
        text += (f"; improvement was first seen {lo} days after starting" if lo == hi
                 else f"; improvement was first seen between {lo} and {hi} days after starting")
    if bounds:
        k = sum(t["patients"] for t in bounds)
        limits = sorted({t["days"][1] for t in bounds})
        within = " or ".join(f"{d}" for d in limits)
        text += (f"{', and' if seen else ';'} {_plural(k, 'patient')} {'is' if k == 1 else 'are'} described only "
                 f"as responding within {within} days")
    return text + "."


def _how_lasting(loss: dict) -> str:
    if loss["reports_graded"] == 0:
        return "How lasting: no report grades whether the response was still present at the last follow-up on the drug."
    text = (f"How lasting: in the {_plural(loss['reports_graded'], 'report')} that grade it, {loss['lost']} of "
            f"{_plural(loss['responders_graded'], 'responder')} lost the response while still on the drug")
    if not loss["reports_with_loss"]:
        return text.replace(f"{loss['lost']} of", "none of") + "."
    losing = [r for r in loss["reports"] if r["lost"] > 0]
    shown = "; ".join(f"{r['lost']} in {r['report_id']} (its wording: '{r['response_wording']}')" for r in losing)
    return f"{text}: {'all ' if len(losing) == 1 and loss['lost'] > 1 else ''}{shown}."


def _on_stopping(challenge: dict) -> str:
    t = challenge["totals"]
    if t["reports"] == 0:
        return "On stopping: no report."
    unknown = t["reports"] - t["reports_positive_dechallenge"] - t["reports_no_flare_on_treatment"] \
        - t["reports_negative_dechallenge"]
    if t["reports_positive_dechallenge"] == 0:
        which = "the report describes" if t["reports"] == 1 else f"none of the {t['reports']} reports describes"
        text = f"On stopping: {which} a flare after stopping or lowering the drug"
    else:
        lowered = f", {t['reports_on_dose_reduction']} on a lower dose" if t["reports_on_dose_reduction"] else ""
        text = (f"On stopping: a flare after stopping or lowering the drug is reported in "
                f"{t['reports_positive_dechallenge']} of {_plural(t['reports'], 'report')} "
                f"({_plural(t['patients_positive_dechallenge'], 'patient')}{lowered}); the response returned on "
                f"restarting in {t['reports_positive_dechallenge_rechallenge']} of them "
                f"({_plural(t['patients_positive_dechallenge_rechallenge'], 'patient')})")
        if t["reports_slower_rechallenge"]:
            text += f" and more slowly in {t['reports_slower_rechallenge']}"
    if t["reports_positive_dechallenge"] == 0 and t["reports"] == 1:
        if t["reports_negative_dechallenge"]:
            return "On stopping: the drug was stopped in the one report, without a flare."
        if t["reports_no_flare_on_treatment"]:
            return "On stopping: not tried or not reported; the report only says there was no flare on the drug."
        return "On stopping: the report does not say whether stopping the drug was tried."
    parts = []
    if t["reports_negative_dechallenge"]:
        k = t["reports_negative_dechallenge"]
        parts.append(f"{k} {'reports' if k == 1 else 'report'} stopping without a flare")
    if t["reports_no_flare_on_treatment"]:
        k = t["reports_no_flare_on_treatment"]
        parts.append(f"{k} {'reports' if k == 1 else 'report'} only that there was no flare while on the drug")
    if unknown:
        parts.append(f"{unknown} {'does' if unknown == 1 else 'do'} not say whether stopping was tried")
    if not parts:
        return text + "."
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{text}; of the others, {joined}." if t["reports_positive_dechallenge"] else f"{text}: {joined}."
