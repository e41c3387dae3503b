"""The methodological quality of each report (Murad et al. 2018): `data/appraisal.csv`, read and validated.

The vocabulary is the one `data/appraisal.md` defines: eight items in four domains (selection,
ascertainment, causality, reporting), each answered `yes`, `partly`, `no`, `unclear` or
`not_applicable`; an overall concern of `low`, `moderate` or `high` by the rule of appraisal.md (core
items Q2, Q3, Q4 and Q8: high if any is `no` or two or more are `unclear`; low only if all four are
`yes`; moderate otherwise).

Every problem of an appraisal file becomes one line "FILE: row R (report_id X), column C: ...", all of
them collected into one `InputError`, as for the evidence table (`analysis.inputs.evidence`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.errors import InputError
from analysis.inputs.tables import id_problem, one_line, parse_csv, read_bytes, require_columns, row_label


@dataclass(frozen=True)
class AppraisalItem:
    """One item of the Murad et al. (2018) tool: its CSV column, number, short label, domain, question."""

    key: str
    number: int
    label: str
    domain: str
    question: str

    @property
    def note_column(self) -> str:
        return f"q{self.number}_note"


ITEMS: tuple[AppraisalItem, ...] = (
    AppraisalItem("q1_selection", 1, "Selection", "selection",
                  "Do the patients represent the whole experience of the investigator or centre?"),
    AppraisalItem("q2_exposure", 2, "Exposure", "ascertainment",
                  "Was the exposure (drug, dose, duration) adequately ascertained?"),
    AppraisalItem("q3_outcome", 3, "Outcome", "ascertainment", "Was the outcome adequately ascertained?"),
    AppraisalItem("q4_alternative_causes", 4, "Alternative causes", "causality",
                  "Were other alternative causes that may explain the observation ruled out?"),
    AppraisalItem("q5_rechallenge", 5, "Rechallenge", "causality",
                  "Was there a challenge / rechallenge phenomenon?"),
    AppraisalItem("q6_dose_response", 6, "Dose-response", "causality", "Was there a dose-response effect?"),
    AppraisalItem("q7_followup", 7, "Follow-up", "causality",
                  "Was follow-up long enough for outcomes to occur?"),
    AppraisalItem("q8_reporting", 8, "Reporting", "reporting",
                  "Is the case described in enough detail to replicate it or to make inferences for practice?"),
)
ITEM_KEYS = tuple(item.key for item in ITEMS)
DOMAINS = ("selection", "ascertainment", "causality", "reporting")
ANSWERS = ("yes", "partly", "no", "unclear", "not_applicable")
CONCERNS = ("low", "moderate", "high")
CORE_ITEMS = ("q2_exposure", "q3_outcome", "q4_alternative_causes", "q8_reporting")
"""The items the overall rule of appraisal.md reads; Q1, Q5, Q6 and Q7 inform the notes only."""
REQUIRED_COLUMNS = ("report_id",) + ITEM_KEYS + ("overall",)
NOTE_COLUMNS = tuple(item.note_column for item in ITEMS) + ("overall_note",)


def overall_by_rule(answers: dict[str, str]) -> str:
    """The overall concern the rule of appraisal.md gives for one report's answers (keyed by item)."""
    core = [answers[key] for key in CORE_ITEMS]
    if "no" in core or core.count("unclear") >= 2:
        return "high"
    if all(answer == "yes" for answer in core):
        return "low"
    return "moderate"


@dataclass(frozen=True)
class ReportAppraisal:
    """One report's appraisal: each item's answer and justification note, the overall concern and its note."""

    report_id: str
    overall: str
    answers: dict[str, str]
    notes: dict[str, str] = field(default_factory=dict)
    overall_note: str = ""


@dataclass(frozen=True)
class Appraisal:
    """A validated appraisal file: one `ReportAppraisal` per report (in file order) and the item metadata."""

    path: Path
    reports: dict[str, ReportAppraisal]
    sha256: str
    items: tuple[AppraisalItem, ...] = ITEMS

    def __len__(self) -> int:
        return len(self.reports)

    def __contains__(self, report_id: object) -> bool:
        return report_id in self.reports

    def __iter__(self) -> Iterator[ReportAppraisal]:
        return iter(self.reports.values())

    @property
    def report_ids(self) -> tuple[str, ...]:
        return tuple(self.reports)

    def item(self, key: str) -> AppraisalItem:
        return next(item for item in self.items if item.key == key)

    def concern(self, report_id: str) -> str:
        """The overall concern (`low`, `moderate`, `high`); KeyError for a report without an appraisal row."""
        return self._report(report_id).overall

    def answer(self, report_id: str, item: str) -> str:
        return self._report(report_id).answers[item]

    def note(self, report_id: str, item: str) -> str:
        """The justification of one answer (`overall` for the overall note); blank when the file has none."""
        report = self._report(report_id)
        return report.overall_note if item == "overall" else report.notes.get(item, "")

    def as_summary(self) -> dict[str, dict[str, str]]:
        """{report_id: {"overall": concern, "q1_selection": answer, ..., "q8_reporting": answer}}."""
        return {r.report_id: {"overall": r.overall, **{key: r.answers[key] for key in ITEM_KEYS}} for r in self}

    def item_counts(self) -> dict[str, dict[str, int]]:
        """{item: {answer: number of reports}}, every answer of the vocabulary present (0 when unused)."""
        return {key: {answer: sum(r.answers[key] == answer for r in self) for answer in ANSWERS}
                for key in ITEM_KEYS}

    def overall_counts(self) -> dict[str, int]:
        """{concern: number of reports}, every level present (0 when unused)."""
        return {level: sum(r.overall == level for r in self) for level in CONCERNS}

    def reports_with_concern_at_most(self, level: str) -> tuple[str, ...]:
        """The appraised reports whose overall concern is at most `level` (file order): for an evidence
        filter `max_concern = "moderate"`, which leaves out the reports of high concern.

        A report without an appraisal row is not returned, so such a filter leaves it out: an unknown
        concern cannot be shown to meet the bar. (With the default `load_appraisal`, every report of the
        evidence table has a row, so this arises only when the caller chose `required_ids`.)
        """
        if level not in CONCERNS:
            raise InputError(f"max_concern: unknown level '{one_line(str(level))}' (allowed: {', '.join(CONCERNS)})")
        bar = CONCERNS.index(level)
        return tuple(r.report_id for r in self if CONCERNS.index(r.overall) <= bar)

    def _report(self, report_id: str) -> ReportAppraisal:
        try:
            return self.reports[report_id]
        except KeyError:
            raise KeyError(f"{self.path}: no appraisal of report '{report_id}'") from None


def load_appraisal(
    path: str | Path,
    report_ids: Iterable[str],
    required_ids: Iterable[str] | None = None,
) -> Appraisal:
    """Read and validate an appraisal CSV against the evidence table's report ids.

    Required columns: `report_id`, the eight item columns `q1_selection` ... `q8_reporting` and `overall`;
    the note columns (`q1_note` ... `q8_note`, `overall_note`) are optional and other columns are
    ignored. Answers are read case-insensitively, with a space or hyphen taken as `_`
    (`Not applicable` = `not_applicable`).

    Problems, one line each, all in one `InputError`: a missing required column (reported alone, before
    the rows); a blank or repeated report id; a report id that is not in `report_ids`; a blank or unknown
    answer or concern; an `overall` that disagrees with the rule of appraisal.md; and a report of
    `required_ids` (default: every id of `report_ids`) without a row.

    The appraisal is optional for the project as a whole: a user's own evidence table may come without
    any appraisal file, and then the caller does not call this function and nothing fails (the report's
    sections that need the appraisal say there is none; a `max_concern` filter without an appraisal is
    the caller's error to raise). But a file that is given must cover the reports it is used
    with: a missing report is an error, not a silent gap.
    """
    path = Path(path)
    report_ids = tuple(report_ids)
    required = report_ids if required_ids is None else tuple(required_ids)
    raw = read_bytes(path)
    frame = parse_csv(path, raw)
    require_columns(path, frame, REQUIRED_COLUMNS)
    known = set(report_ids)
    problems: list[str] = []

    def where(i: int, column: str) -> str:
        return f"{row_label(path, i, frame['report_id'].iloc[i])}, column {column}"

    reports: dict[str, ReportAppraisal] = {}
    first_seen: dict[str, int] = {}
    for i, row in enumerate(frame.to_dict("records")):
        rid = row["report_id"]
        answers: dict[str, str] = {}
        valid = True
        for key in ITEM_KEYS:
            answer = _normalise(row[key])
            if answer not in ANSWERS:
                problems.append(f"{where(i, key)}: {_shown(row[key])} is not an answer "
                                f"(allowed: {', '.join(ANSWERS)}; see appraisal.md)")
                valid = False
            answers[key] = answer
        overall = _normalise(row["overall"])
        if overall not in CONCERNS:
            problems.append(f"{where(i, 'overall')}: {_shown(row['overall'])} is not a concern level "
                            f"(allowed: {', '.join(CONCERNS)}; see appraisal.md)")
            valid = False
        elif valid and overall != (by_rule := overall_by_rule(answers)):
            core = ", ".join(f"{key} {answers[key]}" for key in CORE_ITEMS)
            problems.append(f"{where(i, 'overall')}: '{overall}' but the overall rule of appraisal.md gives "
                            f"'{by_rule}' for the core items ({core})")
        if problem := id_problem(rid, i, first_seen, "report_id"):
            problems.append(f"{where(i, 'report_id')}: {problem}")
            continue
        if rid not in known:
            problems.append(f"{where(i, 'report_id')}: '{one_line(rid)}' is not a report of the evidence table")
        notes = {item.key: row[item.note_column] for item in ITEMS if item.note_column in row}
        reports[rid] = ReportAppraisal(rid, overall, answers, notes, row.get("overall_note", ""))
    for rid in dict.fromkeys(required):
        if rid not in reports:
            problems.append(f"{path}: no row (report_id {one_line(rid)}), column report_id: this report of the "
                            "evidence table has no appraisal (add its row; see appraisal.md)")
    if problems:
        raise InputError(problems)
    return Appraisal(path=path, reports=reports, sha256=hashlib.sha256(raw).hexdigest())


def _normalise(cell: str) -> str:
    return re.sub(r"[\s\-]+", "_", cell.strip().lower())


def _shown(cell: str) -> str:
    return f"'{one_line(cell)}'" if cell else "blank"
