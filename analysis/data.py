"""Load and validate an evidence table (one row per report) before any model sees it.

Every problem becomes one line naming the file, the row (with its report id) and the column, collected
into a single `InputError`. A blank outcome count is missing, not zero: that report drops out of that
outcome's analysis. Rows whose `default_set` is not `include` are kept in the table (the report lists
them) but never pooled.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import InputError

OUTCOMES = ("any_response", "marked", "complete", "sustained")
COUNT_COLUMNS = tuple(f"n_{o}" for o in OUTCOMES) + ("n_no_response",)
REQUIRED_COLUMNS = ("report_id", "drug", "n_treated")
DEFAULT_KNOWN_DRUGS = ("naltrexone", "naloxone")

# Nested outcome levels: a count on the left can never exceed the count on the right.
NESTED_COUNTS = (
    ("n_marked", "n_any_response", "a marked response is also a response"),
    ("n_complete", "n_marked", "a complete response is also a marked response"),
    ("n_complete", "n_any_response", "a complete response is also a response"),
    ("n_sustained", "n_any_response", "a sustained response is also a response"),
)

_WHOLE_NUMBER = re.compile(r"^\+?\d+(\.0*)?$")
MISSING_TOKENS = frozenset({"na", "nan", "n/a"})
"""How R (`write.csv`), pandas and spreadsheets write a missing value; in an outcome count column they
mean what a blank means (not graded). In n_treated and the id columns they stay an error."""
_MAX_COUNT = np.iinfo(np.int64).max
_LINE_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"})


@dataclass(frozen=True)
class EvidenceTable:
    """A validated evidence table: all rows as read, with counts as nullable integers."""

    path: Path
    frame: pd.DataFrame
    sha256: str


@dataclass(frozen=True)
class BinomialData:
    """The counts one analysis pools: responders `y` out of `n` treated, per report."""

    report_ids: tuple[str, ...]
    n: np.ndarray
    y: np.ndarray
    outcome: str
    drug: str
    rows: pd.DataFrame | None = field(default=None, compare=False, repr=False)
    """The evidence table's rows of these reports, in the same order (report-level columns: covariates,
    descriptions); None for counts made without a table."""

    def __len__(self) -> int:
        return len(self.report_ids)

    def subset(self, keep) -> "BinomialData":
        """The reports where the boolean mask `keep` is true."""
        keep = np.asarray(keep, dtype=bool)
        rows = None if self.rows is None else self.rows[keep]
        return BinomialData(tuple(np.asarray(self.report_ids, dtype=object)[keep]), self.n[keep], self.y[keep],
                            self.outcome, self.drug, rows)

    def describe(self) -> dict:
        """Facts about these counts that sentences of the report are made of, computed here so that they
        follow the data: sizes, all-responder and no-responder reports, the crude rate."""
        single = self.n == 1
        all_responded = self.y == self.n
        informative = ~all_responded & (self.n > 1)
        return {
            "reports": len(self),
            "patients": int(self.n.sum()),
            "responders": int(self.y.sum()),
            "single_patient_reports": int(single.sum()),
            "series": int((~single).sum()),
            "series_sizes": [int(self.n[~single].min()), int(self.n[~single].max())] if (~single).any() else [],
            "all_responder_reports": int(all_responded.sum()),
            "all_responder_series": int((all_responded & ~single).sum()),
            "no_responder_reports": int((self.y == 0).sum()),
            "heterogeneity_reports": [rid for rid, keep in zip(self.report_ids, informative) if keep],
            "largest_report": self.report_ids[int(np.argmax(self.n))] if len(self) else None,
            "all_responder_max_n": int(self.n[all_responded].max()) if all_responded.any() else None,
            "all_responder_patients": int(self.n[all_responded].sum()),
            "reports_with_nonresponder": [{"report_id": rid, "y": int(y), "n": int(n)}
                                          for rid, y, n, full in zip(self.report_ids, self.y, self.n, all_responded)
                                          if not full],
            "nonresponder_report_patients": int(self.n[~all_responded].sum()),
            "nonresponder_report_responders": int(self.y[~all_responded].sum()),
            **self._row_counts(),
        }

    def _row_counts(self) -> dict:
        """How many pooled reports have each source level and design (empty when the table gives none)."""
        return {f"{column}s": {} if self.rows is None or column not in self.rows else
                {str(k): int(v) for k, v in self.rows[column].value_counts().items()}
                for column in ("source_level", "design")}

    def what_cannot_be_learnt(self) -> list[str]:
        """Warnings for counts that leave part of the hierarchical model to its prior.

        Between-report heterogeneity is learnt only from reports of two or more patients (a single
        patient's report has likelihood μ^y (1 − μ)^(1−y) whatever the spread of θ), and counts at a
        boundary (every patient responded, or none did) bound the pooled mean from one side only.
        """
        warnings = []
        several = int(np.sum(self.n > 1))
        if len(self) == 1:
            warnings.append("only one report: how much reports differ (heterogeneity) cannot be learnt from the "
                            "data; its posterior, and the width of the new-report interval, come from the prior")
        elif several == 0:
            warnings.append("every report has a single patient: such reports say nothing about how much reports "
                            "differ, so heterogeneity and the new-report interval come from the prior")
        elif several == 1:
            warnings.append("only one report has more than one patient: the heterogeneity estimate rests on that "
                            "report alone")
        if np.all(self.y == self.n):
            warnings.append("every patient responded: the data give no upper bound on the response probability "
                            "below 1, so how close to 1 it is comes from the prior")
        elif np.all(self.y == 0):
            warnings.append("no patient responded: the data give no lower bound on the response probability above "
                            "0, so how close to 0 it is comes from the prior")
        return warnings


@dataclass(frozen=True)
class Selection:
    """Which rows of the pooled drug enter an analysis beyond the default set (sensitivity analyses)."""

    exclude_reports: tuple[str, ...] = ()
    exclude_source_levels: tuple[str, ...] = ()
    min_n: int = 1
    max_n: int | None = None
    max_start_dose_mg: float | None = None
    """Keep patients whose starting daily dose is at most this (see `starting_dose_counts`); reports with
    no dose stated drop out. The starting dose, not the highest: non-responders are the patients whose
    dose was raised, so a filter on the highest dose would select on the outcome."""
    concern_excluded: tuple[str, ...] = ()
    """Reports left out for their risk-of-bias concern (filled in from the appraisal by the config)."""
    include_reasons: tuple[str, ...] = ()
    """`default_set` reasons (e.g. `exclude_unverified`) whose rows are added back."""
    blank_as_nonresponse: tuple[str, ...] = ()
    """`default_set` reasons whose rows count a blank outcome as 0 responders (worst case)."""


def outcome_column(outcome: str) -> str:
    return f"n_{outcome}"


def load_evidence(
    path: str | Path,
    outcomes: tuple[str, ...] = ("any_response",),
    known_drugs: tuple[str, ...] = DEFAULT_KNOWN_DRUGS,
) -> EvidenceTable:
    """Read and validate a CSV of reports; `outcomes` name the count columns that must be present."""
    path = Path(path)
    raw = _read_bytes(path)
    frame = _parse_csv(path, raw)
    _require_columns(path, frame, REQUIRED_COLUMNS + tuple(outcome_column(o) for o in outcomes))
    frame = _validate_rows(path, frame, tuple(known_drugs))
    return EvidenceTable(path=path, frame=frame, sha256=hashlib.sha256(raw).hexdigest())


def select_counts(table: EvidenceTable, outcome: str, drug: str, selection: Selection = Selection(),
                  patients: pd.DataFrame | None = None) -> BinomialData:
    """The included reports of `drug` that grade `outcome` (blank counts drop out), filtered by `selection`
    (`patients`, the per-patient table, refines the starting-dose filter where it covers a report)."""
    column = outcome_column(outcome)
    frame = table.frame
    if column not in frame.columns:
        raise InputError(f"{table.path}: missing required column '{column}' for outcome '{outcome}'")
    counts = frame[column].copy()
    counts[counts.isna() & _reason(frame).isin(selection.blank_as_nonresponse)] = 0
    keep = selected_reports(table, drug, selection) & counts.notna()
    n, y = frame["n_treated"].copy(), counts
    if selection.max_start_dose_mg is not None:
        n, y = starting_dose_counts(table, outcome, selection.max_start_dose_mg, patients)
        keep &= n.notna() & (n > 0) & y.notna()
    rows = frame[keep]
    return BinomialData(
        report_ids=tuple(rows["report_id"]),
        n=n[keep].to_numpy(dtype=np.int64),
        y=y[keep].to_numpy(dtype=np.int64),
        outcome=outcome,
        drug=drug,
        rows=rows.reset_index(drop=True),
    )


def selected_reports(table: EvidenceTable, drug: str, selection: Selection = Selection()) -> pd.Series:
    """Which rows of the table are reports of `drug` in the analysis set: included (or added back by
    `include_reasons`) and not left out by the report-level filters. Outcome-independent."""
    frame = table.frame
    keep = (frame["drug"] == drug) & (frame["included"] | _reason(frame).isin(selection.include_reasons))
    keep &= ~frame["report_id"].isin(selection.exclude_reports)
    keep &= frame["n_treated"] >= selection.min_n
    if selection.max_n is not None:
        keep &= frame["n_treated"] <= selection.max_n
    if selection.exclude_source_levels:
        keep &= ~_column(table, "source_level").isin(selection.exclude_source_levels)
    return keep & ~frame["report_id"].isin(selection.concern_excluded)


def _reason(frame: pd.DataFrame) -> pd.Series:
    return frame["default_set"] if "default_set" in frame.columns else pd.Series("include", index=frame.index)


_FIRST_DOSE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:-\s*\d+(?:\.\d+)?\s*)?mg", re.IGNORECASE)


def starting_dose(text: str) -> float | None:
    """The first dose in mg named in a patient's dose cell ("12.5 mg nightly; restarted at 4.5 mg" → 12.5,
    "1.5-3.0 mg/day (started 1.5 ...)" → 1.5): these cells describe the course in order."""
    found = _FIRST_DOSE.search(text or "")
    return float(found.group(1)) if found else None


def starting_dose_counts(table: EvidenceTable, outcome: str, limit: float, patients: pd.DataFrame | None):
    """Per report, the treated and responding patients who started at a daily dose of at most `limit`.

    Where `patients` lists every patient of a report and gives at least one a starting dose, the counts
    are rebuilt from the patients whose starting dose is known and at most `limit` (a patient whose dose
    was not read is left out, not assumed low). Otherwise the report-level `dose_mg_min` (the lowest dose
    given, the starting dose of a titration) decides for the whole report. Reports with no dose: NA."""
    frame = table.frame
    start = pd.to_numeric(_column(table, "dose_mg_min"), errors="coerce")
    n = frame["n_treated"].astype("Float64").where(start.notna())
    y = frame[outcome_column(outcome)].astype("Float64").where(start.notna())
    n[start > limit], y[start > limit] = 0, 0
    for i, rid in enumerate(frame["report_id"]):
        counted = _patients_below(patients, rid, outcome, limit, int(frame["n_treated"].iloc[i]))
        if counted is not None:
            n.iloc[i], y.iloc[i] = counted
    return n, y


def _patients_below(patients: pd.DataFrame | None, report_id: str, outcome: str, limit: float, n_treated: int):
    """(patients, responders) of a report among those with a known starting dose ≤ `limit`, or None when
    the patient table does not list the report's patients with doses and outcomes."""
    if patients is None or outcome not in ("any_response", "marked", "complete") or outcome not in patients:
        return None
    rows = patients[patients["report_id"] == report_id]
    doses = np.array([starting_dose(d) for d in rows.get("dose", pd.Series(dtype=str))], dtype=float)
    if len(rows) != n_treated or np.all(np.isnan(doses)):
        return None
    low = doses <= limit
    outcomes = pd.to_numeric(rows[outcome], errors="coerce").to_numpy()
    if np.isnan(outcomes[low]).any():
        return None
    return int(low.sum()), int(outcomes[low].sum())


PATIENT_OUTCOMES = ("any_response", "marked", "complete")
"""Per-patient outcome columns: 1 (yes), 0 (no) or blank/NA (not graded)."""


def read_patients(path: str | Path, table: EvidenceTable) -> pd.DataFrame:
    """The per-patient table (one row per patient of a report), checked against the evidence table: every
    row names a report of it and a patient once, and a per-patient outcome is 0, 1 or blank. Its other
    columns are free text that `analysis.clinical` reads where present."""
    path = Path(path)
    frame = read_table(path)
    _require_columns(path, frame, ("report_id", "patient_id"))
    known, seen, problems = set(table.frame["report_id"]), {}, []
    if len(frame) and not known & set(frame["report_id"]):
        raise InputError(f"{path}: no row names a report of {table.path}: this per-patient table belongs to other "
                         'data (give yours, or set data.patients_path = "" for none)')
    for i, (rid, pid) in enumerate(zip(frame["report_id"], frame["patient_id"])):
        where = f"{_row(path, i, rid)}, column"
        if not rid:
            problems.append(f"{where} report_id: report_id is blank")
        elif rid not in known:
            problems.append(f"{where} report_id: '{_one_line(rid)}' is not a report of {table.path.name}")
        if not pid:
            problems.append(f"{where} patient_id: patient_id is blank")
        elif (rid, pid) in seen:
            problems.append(f"{where} patient_id: duplicate of row {seen[rid, pid] + 1}")
        else:
            seen[rid, pid] = i
        for column in (c for c in PATIENT_OUTCOMES if c in frame.columns):
            value = frame[column].iloc[i]
            if value not in ("0", "1", "") and value.lower() not in MISSING_TOKENS:
                problems.append(f"{where} {column}: '{_one_line(value)}' is not 1 (yes), 0 (no) or blank (not graded)")
    if problems:
        raise InputError(problems)
    return frame


def read_table(path: str | Path) -> pd.DataFrame:
    """Any CSV companion table (per-patient detail, appraisal, exclusions) read like the evidence: the
    same dialects, every cell a stripped string, a clear error line for an unreadable file."""
    path = Path(path)
    return _parse_csv(path, _read_bytes(path))


def _column(table: EvidenceTable, name: str) -> pd.Series:
    if name not in table.frame.columns:
        raise InputError(f"{table.path}: missing column '{name}', which this analysis's data selection uses")
    return table.frame[name]


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a CSV file")
    try:
        return path.read_bytes()
    except OSError as err:  # e.g. no permission, or the file is locked by the spreadsheet that has it open
        raise InputError(f"{path}: cannot read the file ({err.strerror or err})") from None


def _parse_csv(path: Path, raw: bytes) -> pd.DataFrame:
    """Decode (UTF-8, with or without a byte-order mark) and parse comma-, semicolon- or tab-separated text.

    The csv module reads the cells, not pandas: pandas silently renames a repeated column (`n_treated.1`)
    and, when the first row has one cell too many, makes the first column an index and shifts every value.
    Short rows are padded with blanks (spreadsheets drop trailing blank cells); long rows are refused.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a text CSV file (cannot decode as UTF-8)") from None
    if "\x00" in text:
        raise InputError(f"{path}: not a text CSV file (contains binary data)")
    header = next(iter(text.lstrip().splitlines()), "")
    try:
        delimiter = csv.Sniffer().sniff(header, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        records = [r for r in reader if len(r) > 1 or "".join(r).strip()]  # skip blank lines
    except csv.Error as err:
        raise InputError(f"{path}: not a readable CSV file (line {reader.line_num}: {err})") from None
    if not records:
        raise InputError(f"{path}: the file is empty")
    columns = [c.strip() or f"Unnamed: {i}" for i, c in enumerate(records[0])]
    repeated = [c for c in dict.fromkeys(columns) if columns.count(c) > 1]
    if repeated:
        raise InputError([f"{path}: column '{_one_line(c)}' appears more than once in the header" for c in repeated])
    rows = [[cell.strip() for cell in r] for r in records[1:]]
    if not rows:
        raise InputError(f"{path}: no data rows under the header")
    id_at = columns.index("report_id") if "report_id" in columns else None
    too_long = [
        f"{_row(path, i, r[id_at] if id_at is not None else '')}: {len(r)} cells but the header has "
        f"{len(columns)} columns (a {delimiter!r} inside an unquoted cell?)"
        for i, r in enumerate(rows)
        if len(r) > len(columns)
    ]
    if too_long:
        raise InputError(too_long)
    return pd.DataFrame([r + [""] * (len(columns) - len(r)) for r in rows], columns=columns, dtype=str)


def _require_columns(path: Path, frame: pd.DataFrame, required: tuple[str, ...]) -> None:
    missing = [c for c in dict.fromkeys(required) if c not in frame.columns]
    if missing:
        raise InputError([f"{path}: missing required column '{c}'" for c in missing])


def id_problem(rid: str, i: int, first_seen: dict[str, int], column: str) -> str | None:
    """Why row `i`'s id cannot name it (blank, or the id of an earlier row), else None; records the id."""
    if not rid:
        return f"{column} is blank"
    if rid in first_seen:
        return f"duplicate of row {first_seen[rid] + 1}"
    first_seen[rid] = i
    return None


def _validate_rows(path: Path, frame: pd.DataFrame, known_drugs: tuple[str, ...]) -> pd.DataFrame:
    problems: list[str] = []
    report_ids = frame["report_id"]

    def where(i: int, column: str) -> str:
        return f"{_row(path, i, report_ids.iloc[i])}, column {column}"

    first_seen: dict[str, int] = {}
    for i, rid in enumerate(report_ids):
        if problem := id_problem(rid, i, first_seen, "report_id"):
            problems.append(f"{where(i, 'report_id')}: {problem}")

    drugs = frame["drug"].str.lower()
    for i, drug in enumerate(drugs):
        if drug not in known_drugs:
            shown = f"'{_one_line(frame['drug'].iloc[i])}'" if drug else "blank"
            problems.append(f"{where(i, 'drug')}: unknown drug {shown} (known: {', '.join(sorted(known_drugs))})")

    counts: dict[str, list[int | None]] = {}
    for column in ("n_treated",) + tuple(c for c in COUNT_COLUMNS if c in frame.columns):
        values: list[int | None] = []
        for i, raw in enumerate(frame[column]):
            value = None if column != "n_treated" and raw.lower() in MISSING_TOKENS else _parse_count(raw)
            if value == "invalid":
                problems.append(f"{where(i, column)}: '{_one_line(raw)}' is not a whole number of 0 or more")
                value = None
            elif value == "too large":
                problems.append(f"{where(i, column)}: '{raw}' is too large to be a count")
                value = None
            elif column == "n_treated" and (value is None or value < 1):
                shown = "blank" if value is None else str(value)
                problems.append(f"{where(i, column)}: must be a whole number of at least 1, got {shown}")
                value = None
            values.append(value)
        counts[column] = values

    for column in (c for c in COUNT_COLUMNS if c in counts):
        for i, (value, n) in enumerate(zip(counts[column], counts["n_treated"])):
            if value is not None and n is not None and value > n:
                problems.append(f"{where(i, column)}: {value} is larger than n_treated ({n})")
    for small, large, reason in NESTED_COUNTS:
        if small in counts and large in counts:
            for i, (a, b) in enumerate(zip(counts[small], counts[large])):
                if a is not None and b is not None and a > b:
                    problems.append(f"{where(i, small)}: {a} is larger than {large} ({b}); {reason}")
    if "n_any_response" in counts and "n_no_response" in counts:
        for i, (a, b, n) in enumerate(zip(counts["n_any_response"], counts["n_no_response"], counts["n_treated"])):
            if None not in (a, b, n) and a + b > n:
                problems.append(
                    f"{where(i, 'n_no_response')}: n_any_response ({a}) + n_no_response ({b}) exceeds n_treated ({n})"
                )

    included = pd.Series(True, index=frame.index)
    if "default_set" in frame.columns:
        for i, value in enumerate(frame["default_set"]):
            if value != "include" and not value.startswith("exclude"):
                shown = _one_line(value)
                problems.append(f"{where(i, 'default_set')}: '{shown}' is neither 'include' nor 'exclude_<reason>'")
        included = frame["default_set"] == "include"

    if problems:
        raise InputError(problems)

    frame = frame.copy()
    frame["drug"] = drugs
    for column, values in counts.items():
        frame[column] = pd.array(values, dtype="Int64")
    frame["included"] = included.to_numpy()
    return frame


def _parse_count(raw: str) -> int | None | str:
    """A whole number (``3`` or ``3.0``), None for blank, or why not: ``"invalid"`` or ``"too large"``."""
    if raw == "":
        return None
    if not _WHOLE_NUMBER.match(raw):
        return "invalid"
    value = int(raw.split(".")[0])  # not int(float(raw)): floats round above 2**53 and overflow past 1e308
    return value if value <= _MAX_COUNT else "too large"


def _row(path: Path, i: int, report_id: str) -> str:
    """How a message names data row `i` (0-based): its number and its report id."""
    return f"{path}: row {i + 1} (report_id {_one_line(report_id) or '<blank>'})"


def _one_line(cell: str) -> str:
    """A cell as quoted in a message, line breaks escaped: every problem must stay one line."""
    return cell.translate(_LINE_BREAKS)
