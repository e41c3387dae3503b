"""The vocabularies that read the reports' free-text cells, and the parsers built on them.

Wording is classified by small explicit vocabularies (the tuples and patterns below), in the order listed,
first match wins. Wording that no rule recognises is never guessed at: the parsers say so ("not
reported", "not stated", or the unread parts) and the callers list it, so the reader sees what was not
read. Every parser takes strings and returns a result of `analysis.results.clinical`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import pandas as pd

from analysis.results import rounded
from analysis.results.clinical import AdverseEventReading, FollowupClause, TimeReading

MONTH_DAYS = 30
"""Days per month. The reports' months are rounded visit intervals ("at 1 month", "within 2 months"),
not calendar spans; 30 keeps "1 month" = 30 and "2 months" = 60 days, and differs from 30.44 (365.25/12)
by less than half a day per month, far below the precision of the wording."""
WEEK_DAYS = 7

# --- cells ---------------------------------------------------------------------------------------------


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
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def count(row: pd.Series, column: str) -> int | None:
    """A count cell as an int, None when blank or absent (blank is missing, not zero)."""
    value = pd.to_numeric(pd.Series([cell(row, column)]), errors="coerce").iloc[0]
    return None if pd.isna(value) else int(value)


def patients_of(patients: pd.DataFrame | None, report_id: str) -> pd.DataFrame:
    """The per-patient rows of one report (none without a per-patient table)."""
    if patients is None or "report_id" not in patients.columns:
        return pd.DataFrame()
    return patients[patients["report_id"].astype(str).str.strip() == report_id]


def normal(text: str) -> str:
    """Lower case, one space between words, no trailing full stop: the form every rule matches."""
    return re.sub(r"\s+", " ", text.strip().lower()).rstrip(".").strip()


def clauses(text: str, separators: str = r";") -> list[str]:
    """The non-empty clauses of normalised text split on `separators` (a regular expression)."""
    return [c.strip() for c in re.split(separators, normal(text)) if c.strip()]


def as_days(x: float) -> float:
    """Whole days as an int, else one decimal."""
    return int(x) if float(x).is_integer() else rounded(x, 1)


# --- adverse events ------------------------------------------------------------------------------------

NOT_REPORTED = (
    r"",
    r"not (reported|stated|assessed|recorded|described|available|applicable)",
    r"unknown|unclear|n/?a|na|-",
)
"""Cells that state no assessment at all: the extraction's "not reported", "not stated"."""

NOT_READ = (r"not read( in full)?", r"full[- ]text not (read|seen|available)")
"""Cells saying the extractor did not read the text that would tell: not the report's silence."""

_EVENTS = r"(adverse (events?|effects?|reactions?)|side[- ]effects?)"
_SEEN = r"( (recorded|reported|observed|seen))?"

NONE_RECORDED = (
    r"0",
    rf"0 \(none{_SEEN}\)",
    rf"none{_SEEN}",
    rf"no {_EVENTS}{_SEEN}",
    rf"0 {_EVENTS}",
)
"""Cells that state an assessment that found no adverse event at all: the extraction's
`0 (none recorded)`, `0 (none)`, `none reported`, and their plain variants."""

NONE_SIGNIFICANT = (
    r"none (significant|serious)",
    r"0 \(none (significant|serious)\)",
    rf"no (significant|serious) {_EVENTS}{_SEEN}",
)
"""Cells that state only that no *significant* event occurred ("none significant"): events that were not
significant may have occurred, so these patients are not event-free."""

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
    rf"{_EVENTS}: (?P<event>.+)",
    r"(?P<event>.*\b(" + "|".join(EVENT_TERMS) + r")\b.*)",
)
NEGATED = r"(no|not|nil|without|denied)\b"
"""A part that starts by negating ("no nausea") names no event."""


def _matches(text: str, patterns: Iterable[str]) -> bool:
    return any(re.fullmatch(p, text) for p in patterns)


def _event(part: str) -> tuple[str, int | None] | None:
    """(name, patients or None) of the event one part names, None when it names none."""
    match = next((m for p in EVENT_WITH_COUNT if (m := re.fullmatch(p, part))), None)
    if match and int(match["count"]) > 0:
        return match["event"].strip(), int(match["count"])
    if re.match(NEGATED, part):
        return None
    match = next((m for p in EVENT_WITHOUT_COUNT if (m := re.fullmatch(p, part))), None)
    return (match["event"].strip(), None) if match else None


def classify_adverse_events(wording: str) -> AdverseEventReading:
    """Read one adverse_events cell with the vocabularies above, part by part (split on ";"), so that
    "nausea (1 patient); headache (1 patient)" is two events.

    A cell naming an event is "assessed, event" (`events` None when a named event has no count); a cell
    of "none" parts only is "assessed, none", or "none significant" when a part says only that no
    significant event occurred; "not read" and "not reported" cells state no assessment. A cell with
    parts no rule reads and no event is "not reported", and lists those parts in `unrecognised`.
    """
    text = normal(wording)
    if _matches(text, NOT_REPORTED):
        return AdverseEventReading("not reported", None, (), ())
    if _matches(text, NOT_READ):
        return AdverseEventReading("not read", None, (), ())
    events: list[tuple[str, int | None]] = []
    nones, significant, unread = [], [], []
    for part in clauses(text):
        if _matches(part, NONE_RECORDED):
            nones.append(part)
        elif _matches(part, NONE_SIGNIFICANT):
            significant.append(part)
        elif found := _event(part):
            events.append(found)
        else:
            unread.append(part)
    if events:
        counts = [k for _, k in events]
        known = None if None in counts else sum(counts)
        return AdverseEventReading("assessed, event", known, tuple(n for n, _ in events), tuple(unread))
    if (nones or significant) and not unread:
        return AdverseEventReading("none significant" if significant else "assessed, none", 0, (), ())
    return AdverseEventReading("not reported", None, (), tuple(unread or [text]))


# --- times and durations -------------------------------------------------------------------------------

_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_NUM = r"(\d+(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + r")"
_UNIT = r"(days?|weeks?|wks?|months?|mos?)\b"
DURATION = rf"(?<![\w.]){_NUM}(?:\s*(?:-|–|to)\s*{_NUM})?[\s-]*{_UNIT}"
"""A number or a range of numbers and a unit: "26 days", "1-2 weeks", "two weeks", "3-month"."""
DAY_N = rf"\b(day|week|month)\s+{_NUM}\b"
"""A numbered day, week or month: "day 8", "week 6", "month 1"."""
EVERY = rf"\bevery\s+{DURATION}"
"""A visit interval ("every 2-3 months"): never a time of response or a follow-up length."""


def _number(text: str) -> float:
    return float(_NUMBER_WORDS[text]) if text in _NUMBER_WORDS else float(text)


def _unit_days(unit: str) -> int:
    return {"d": 1, "w": WEEK_DAYS, "m": MONTH_DAYS}[unit[0]]


def times_in(text: str) -> list[tuple[float, float]]:
    """Every time a clause states, in the order written, as (lo, hi) days: "1-2 weeks" → (7, 14),
    "day 8" → (8, 8); visit intervals ("every 2-3 months") left out."""
    text = re.sub(EVERY, " ", text)
    found = []
    for m in re.finditer(DURATION, text):
        unit = _unit_days(m[3])
        lo = _number(m[1]) * unit
        found.append((m.start(), (as_days(lo), as_days(_number(m[2]) * unit if m[2] else lo))))
    for m in re.finditer(DAY_N, text):
        days = as_days(_number(m[2]) * _unit_days(m[1]))
        found.append((m.start(), (days, days)))
    return [t for _, t in sorted(found)]


# --- time to first improvement -------------------------------------------------------------------------

UNSTATED = r"not (stated|reported|read|available)|unknown|n/?a"
OFF_DRUG = (r"\b(?!(?:lesion|symptom|disease|erosion|pain|itch|relapse|flare|recurrence)s?[- ]free)\w+[- ]free\b"
            r"|\boff (the )?(drug|treatment|therapy|medication)\b"
            r"|\bafter (the drug was |it was )?(stopp\w+|discontinu\w*|withdraw\w*|cessation)")
"""Time off the drug: "drug-free", "naltrexone-free", "off treatment", "after stopping"."""
FOLLOWUP_WORDING = (r"follow[- ]?up|\bfollowed\b|\bsustained\b|\bmaintained\b|\bmaintenance\b|\bongoing\b"
                    rf"|\bevery\b|{OFF_DRUG}")
"""Wording of a follow-up (how long the patient was seen, on or off the drug), not of a response."""
RESPONSE_WORDING = r"\b(heal|improv|respon|clear|resol|remi[st]|better|benefit|settl|subsid)"

WITHIN = rf"\b(within|by|before|under|less than|up to|in under)\s+(the\s+)?({DURATION}|{DAY_N})"
ONSET = (r"\b(improv\w*|heal\w*|respon\w*|clearing|benefit\w*)\s+((was|were)\s+)?"
         r"(began|begun|begins|started|starts|first)\b"
         r"|\bbegan to\b|\bonset\b"
         r"|\b(first|initial|earliest|early)\s+(signs?\s+of\s+)?(improv\w*|heal\w*|respon\w*|benefit|effect)")
CLEARING = r"\b(clear(ing|ed|ance|s)|complete(ly)?|resol\w*|remission|remitted|healed|cured?|disappear\w*)\b"
ASSESSMENT = (r"\b(assessed|evaluated|reviewed|measured|examined|seen|scored|re-?assessed)\b"
              rf"|\bat\s+(the\s+)?({DURATION}|\b(week|month)\s+{_NUM}\b)")
DOCUMENTED = r"\b(documented|visits?|consultation)\b"
DAY_OF_IMPROVEMENT = rf"\b(improv\w*|heal\w*|respon\w*|better)\b.*{DAY_N}"

MARKERS = (
    ("upper bound", "within", WITHIN),
    ("first improvement", "onset stated", ONSET),
    ("upper bound", "clearing time", CLEARING),
    ("upper bound", "assessment time", ASSESSMENT),
    ("upper bound", "first documented visit", DOCUMENTED),
    ("first improvement", "day of improvement stated", DAY_OF_IMPROVEMENT),
)
"""What a stated time marks, per clause (split on ";"), first match wins:

1. "within / by / before / under / less than / up to" a time: an upper bound ("within 2 months");
2. wording of when improvement began ("healing began 1-2 weeks", "healing began after 14 days",
   "first improvement at 10 days", "onset"): the time of first improvement;
3. clearing or a complete response ("clearing at 6 weeks", "complete remission", "resolution"): the
   patient had improved by then, an upper bound;
4. an assessment ("assessed at 18 months", "reduction ... at 1 month", "response at week 4"): an upper
   bound;
5. a documented visit ("26 days to documented improvement"): an upper bound;
6. improvement on a numbered day ("clear improvement day 8"): a day-by-day observation, the time of
   first improvement.

A time that no rule marks (a bare "26 days" in a per-patient `time_to_response` cell) is read from the
other wording of the same patient and report: the first clause there that states the same time and that
a rule marks decides ("1 month" with the outcome ">70% reduction at 1 month" is an assessment time). When
nothing marks it, it is the time improvement was documented, whether or not it began earlier: an upper
bound ("first documented visit").

A clause with follow-up wording ("visits every 2-3 months", "sustained over 4 months", "drug-free",
"maintenance") is a follow-up time, not a time of response. Weeks are 7 days and months `MONTH_DAYS` (30)
days. In a per-patient `time_to_response` cell a bare time is a time of response (the column says so);
in a report's `followup_note`, which mixes response and follow-up times, only a clause with a response
word (heal, improv, respon, clear, resol, remit/remiss, ...) or an assessment is read.
"""


def _marker(clause: str) -> tuple[str, str] | None:
    return next(((kind, reason) for kind, reason, pattern in MARKERS if re.search(pattern, clause)), None)


def _context_marker(stated: tuple[float, float], context: Sequence[str]) -> tuple[str, str, str] | None:
    """(kind, reason, clause) from the first clause of `context` that states the same time and is marked."""
    for text in context:
        for clause in clauses(text):
            if stated in times_in(clause) and (found := _marker(clause)):
                return (*found, clause)
    return None


def parse_time_to_response(wording: str, context: Sequence[str] = (), bare_duration: bool = True) -> TimeReading:
    """The time to first improvement a wording states, by the rules of `MARKERS`: its kind ("first
    improvement" or "upper bound" with the reason), the days that hold the time of first improvement and
    the time stated. `context`: the other wording of the same patient and report, read for a time that
    the wording itself does not mark. `bare_duration=False` (report-level notes) reads only a clause with
    a response word or an assessment."""
    text = normal(wording)
    if not text or re.fullmatch(UNSTATED, text):
        return TimeReading("not stated")
    followup = False
    for clause in clauses(text):
        if re.search(FOLLOWUP_WORDING, clause):
            followup = True
            continue
        if not bare_duration and not re.search(f"{RESPONSE_WORDING}|{ASSESSMENT}", clause):
            continue
        times = times_in(clause)
        if not times:
            continue
        found = _marker(clause)
        marked = (*found, clause) if found else _context_marker(times[0], context)
        kind, reason, by = marked or ("upper bound", "first documented visit", "")
        return _reading(kind, reason, times[0], by)
    return TimeReading("follow-up time" if followup else "not stated")


def _reading(kind: str, reason: str, stated: tuple[float, float], marked_by: str) -> TimeReading:
    lo, hi = stated
    days = stated if kind == "first improvement" else (0, hi)
    return TimeReading("parsed", kind, reason, days, stated, "point" if lo == hi else "range", marked_by)


# --- dechallenge and rechallenge -----------------------------------------------------------------------

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
the report but names no patient."""

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
    text = normal(wording)
    if _matches(text, FLARE_UNKNOWN):
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


FLARE_COUNT = r"\((\d+) patients?\)"
"""A report-level flare cell that counts its patients: "yes (2 patients)"."""


def flare_count(wording: str) -> int | None:
    """The patients a flare cell counts, None when it counts none."""
    match = re.search(FLARE_COUNT, normal(wording))
    return int(match[1]) if match else None


def flare_for_series_only(wording: str) -> bool:
    """Whether a patient's flare cell states the flare for the series, not for this patient."""
    return bool(re.search(FLARE_SERIES_ONLY, normal(wording)))


def classify_rechallenge(texts: Sequence[str]) -> tuple[str, str]:
    """("positive" / "slower" / "negative" / "not reported", the clause that said so) from several cells."""
    found = [c for t in texts for c in clauses(t, r";|\.(?!\d)")]
    for status, patterns in (("slower", RECHALLENGE_SLOWER), ("negative", RECHALLENGE_NEGATIVE),
                             ("positive", RECHALLENGE_POSITIVE)):
        for clause in found:
            if any(re.search(p, clause) for p in patterns):
                return status, clause
    return "not reported", ""


# --- follow-up -----------------------------------------------------------------------------------------

_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_MONTH = r"(" + "|".join(_MONTHS) + r")\w*"
DATE_SPAN = rf"\b{_MONTH} (\d{{4}}) ?(?:-|–|to|and) ?{_MONTH} (\d{{4}})\b"
YEAR_SPAN = r"\b((?:19|20)\d{2}) ?(?:-|–|to|and) ?((?:19|20)\d{2})\b"
STUDY_WINDOW = r"\bstudy (period|window)\b"
PATIENT_LABEL = r"\bp(\d+)\b"
PATIENT_COUNT = (rf"\(\s*{_NUM}\s+patients?\s*\)", rf"\bfor\s+{_NUM}\b(?![\s-]*{_UNIT})(\s+patients?)?",
                 rf"\bin\s+{_NUM}\s+patients?\b")
ON_DRUG_KINDS = ("on treatment", "time to response only")
"""How a follow-up wording (`followup` of a patient, `followup_note` of a report) is read. It is split
into parts on ";", "," and "and" (a calendar span keeps its "and"), and a part into pieces on "plus" and
"+" (pieces of one part add up: "2 months plus 1 month after restart" is 3 months on the drug). A part
is about one patient when it names one ("P2 ...", "6 weeks (P1)"), about a number of patients when it
counts them ("3 months (2 patients)", "6 weeks for one"), else about every patient it is given for.
Each piece, first match wins:

1. a span of dates ("Jan 2016 - Jan 2017", "2016-2017") or a "study period": the study window, not a
   patient's time on the drug;
2. no time: "not stated" ("maintenance ongoing at report", "total follow-up not stated");
3. time off the drug ("4 months drug-free", "naltrexone-free", "after stopping"): "off drug";
4. a time of response (`parse_time_to_response` with a response word): an assessment ("assessed at 3
   months") is time on the drug, "on treatment"; any other stated time ("clearing at 6 weeks", "26 days
   to documented improvement") is the last documented time on the drug, "time to response only"; a
   "within" bound documents no time;
5. any other time ("18 months", "3-month overlap", "sustained over 4 months"): "on treatment", the
   longest stated.
"""


def read_followup(wording: str) -> tuple[FollowupClause, ...]:
    """The pieces of one follow-up wording with what each documents, by the rules above."""
    found = []
    for number, part in enumerate(_parts(wording)):
        label = re.search(PATIENT_LABEL, part)
        patients = _patient_count(part)
        for piece in (p.strip() for p in re.split(r"\+|\bplus\b", part) if p.strip()):
            kind, days = _piece(piece)
            found.append(FollowupClause(piece, kind, days, number, f"P{label[1]}" if label else None, patients))
    return tuple(found)


def _parts(wording: str) -> list[str]:
    parts = []
    for part in clauses(wording, r"[;,]"):
        parts += [part] if re.search(DATE_SPAN, part) or re.search(YEAR_SPAN, part) else clauses(part, r"\band\b")
    return parts


def _patient_count(part: str) -> int | None:
    match = next((m for p in PATIENT_COUNT if (m := re.search(p, part))), None)
    return int(_number(match[1])) if match else None


def _piece(piece: str) -> tuple[str, float | None]:
    if window := _window_days(piece):
        return "study window", window
    times = times_in(piece)
    if not times:
        return "not stated", None
    longest = max(hi for _, hi in times)
    if re.search(OFF_DRUG, piece):
        return "off drug", longest
    reading = parse_time_to_response(piece, bare_duration=False)
    if reading.status == "parsed":
        if reading.reason == "assessment time":
            return "on treatment", reading.stated_days[1]
        return "time to response only", None if reading.reason == "within" else reading.stated_days[1]
    return "on treatment", longest


def _window_days(piece: str) -> float | None:
    if m := re.search(DATE_SPAN, piece):
        months = (int(m[4]) - int(m[2])) * 12 + _MONTHS.index(m[3][:3]) - _MONTHS.index(m[1][:3])
        return months * MONTH_DAYS
    if m := re.search(YEAR_SPAN, piece):
        return (int(m[2]) - int(m[1])) * 12 * MONTH_DAYS
    if re.search(STUDY_WINDOW, piece) and (times := times_in(piece)):
        return max(hi for _, hi in times)
    return None


def documented(pieces: Sequence[FollowupClause]) -> tuple[str, float | None]:
    """(kind, days) that a patient's pieces document: the longest time on the drug (pieces of one part
    added up; "on treatment" before "time to response only" at equal length), else the first kind of
    "study window", "off drug", "time to response only", "not stated" present, with no days."""
    by_part: dict[int, list[FollowupClause]] = {}
    for piece in pieces:
        if piece.kind in ON_DRUG_KINDS and piece.days is not None:
            by_part.setdefault(piece.part, []).append(piece)
    sums = [(sum(p.days for p in part), any(p.kind == "on treatment" for p in part)) for part in by_part.values()]
    if sums:
        days, on = max(sums)
        return ("on treatment" if on else "time to response only"), as_days(days)
    kinds = {p.kind for p in pieces}
    return next(k for k in ("study window", "off drug", "time to response only", "not stated")
                if k in kinds or k == "not stated"), None


def followup_length(wording: str) -> float | None:
    """The longest time on the drug, in days, a follow-up wording documents; None when it documents none
    ("clearing at 6 weeks" → 42, "3 months (2 patients) and 6 weeks (1 patient)" → 90, "P1 18 months"
    → 540, "4 months drug-free" and "Jan 2016 - Jan 2017" → None)."""
    return documented(read_followup(wording))[1]
