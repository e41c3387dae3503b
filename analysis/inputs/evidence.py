"""Load and validate an evidence table (one row per report) before any model sees it.

Every problem becomes one line naming the file, the row (with its report id) and the column, collected
into a single `InputError`. A blank outcome count is missing, not zero: that report drops out of that
outcome's analysis. Rows whose `default_set` is not `include` are kept in the table (the report lists
them) but never pooled.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import InputError
from analysis.inputs.config import DEFAULT_KNOWN_DRUGS, OUTCOMES
from analysis.inputs.patients import starting_dose_counts
from analysis.inputs.tables import (MISSING_TOKENS, decimal_comma, id_problem, numbers, one_line, parse_csv,
                                    read_bytes, require_columns, row_label)

COUNT_COLUMNS = tuple(f"n_{o}" for o in OUTCOMES) + ("n_no_response",)
REQUIRED_COLUMNS = ("report_id", "drug", "n_treated")

# Nested outcome levels: a count on the left can never exceed the count on the right.
NESTED_COUNTS = (
    ("n_marked", "n_any_response", "a marked response is also a response"),
    ("n_complete", "n_marked", "a complete response is also a marked response"),
    ("n_complete", "n_any_response", "a complete response is also a response"),
    ("n_sustained", "n_any_response", "a sustained response is also a response"),
)

_WHOLE_NUMBER = re.compile(r"^\+?\d+(\.0*)?$")
_WHOLE_NUMBER_COMMA = re.compile(r"^\+?\d+(,0*)?$")
MAX_COUNT = 100_000_000
"""The largest count per report the tool supports (the likelihoods are exact and stable well beyond it;
this bounds what has been tested: counts of 10⁶ are benchmarked, 10⁸ unit-tested)."""
NUMBER_COLUMNS = ("dose_mg_min", "dose_mg_max", "year")
"""Report-level numbers (read as floats; a cell that is not a number is an error, never missing)."""


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
        # P(y = n | μ, κ) depends on κ for every n ≥ 2: every series informs the spread, a single patient
        # (P(y = 1) = μ) does not; the spread shows most in series with a non-responder.
        contrast = ~all_responded & (self.n > 1)
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
            "heterogeneity_reports": [rid for rid, keep in zip(self.report_ids, ~single) if keep],
            "contrast_reports": [rid for rid, keep in zip(self.report_ids, contrast) if keep],
            "largest_report": self.report_ids[int(np.argmax(self.n))] if len(self) else None,
            "all_responder_max_n": int(self.n[all_responded].max()) if all_responded.any() else None,
            "all_responder_patients": int(self.n[all_responded].sum()),
            "reports_with_nonresponder": [{"report_id": rid, "y": int(y), "n": int(n)}
                                          for rid, y, n, full in zip(self.report_ids, self.y, self.n, all_responded)
                                          if not full],
            "nonresponder_report_patients": int(self.n[~all_responded].sum()),
            "nonresponder_report_responders": int(self.y[~all_responded].sum()),
            **self._row_counts(),
            "doses_mg": self._doses(),
        }

    def _doses(self) -> dict | None:
        """The range of starting daily doses and the highest daily dose over the pooled reports (None when
        no dose is stated)."""
        if self.rows is None or "dose_mg_min" not in self.rows:
            return None
        low = self.rows["dose_mg_min"].astype(float)
        high = self.rows["dose_mg_max"].astype(float) if "dose_mg_max" in self.rows else low
        if low.isna().all():
            return None
        return {"start": [float(low.min()), float(low.max())],
                "highest": float(max(high.max(), low.max()) if high.notna().any() else low.max())}

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
    raw = read_bytes(path)
    frame = parse_csv(path, raw)
    require_columns(path, frame, REQUIRED_COLUMNS + tuple(outcome_column(o) for o in outcomes))
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
        if "dose_mg_min" not in frame.columns:
            raise InputError(f"{table.path}: missing column 'dose_mg_min', which data.max_start_dose_mg uses")
        n, y = starting_dose_counts(frame, outcome, selection.max_start_dose_mg, patients)
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


def _column(table: EvidenceTable, name: str) -> pd.Series:
    if name not in table.frame.columns:
        raise InputError(f"{table.path}: missing column '{name}', which this analysis's data selection uses")
    return table.frame[name]


def _validate_rows(path: Path, frame: pd.DataFrame, known_drugs: tuple[str, ...]) -> pd.DataFrame:
    problems: list[str] = []
    report_ids = frame["report_id"]

    def where(i: int, column: str) -> str:
        return f"{row_label(path, i, report_ids.iloc[i])}, column {column}"

    first_seen: dict[str, int] = {}
    for i, rid in enumerate(report_ids):
        if problem := id_problem(rid, i, first_seen, "report_id"):
            problems.append(f"{where(i, 'report_id')}: {problem}")

    drugs = frame["drug"].str.lower()
    for i, drug in enumerate(drugs):
        if drug not in known_drugs:
            shown = f"'{one_line(frame['drug'].iloc[i])}'" if drug else "blank"
            problems.append(f"{where(i, 'drug')}: unknown drug {shown} (known: {', '.join(sorted(known_drugs))})")

    comma = decimal_comma(frame)
    counts: dict[str, list[int | None]] = {}
    for column in ("n_treated",) + tuple(c for c in COUNT_COLUMNS if c in frame.columns):
        values: list[int | None] = []
        for i, raw in enumerate(frame[column]):
            value = None if column != "n_treated" and raw.lower() in MISSING_TOKENS else _parse_count(raw, comma)
            if value == "invalid":
                problems.append(f"{where(i, column)}: '{one_line(raw)}' is not a whole number of 0 or more")
                value = None
            elif value == "too large":
                problems.append(f"{where(i, column)}: {raw} is larger than {MAX_COUNT:,}, the largest count per "
                                "report this tool supports")
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
                shown = one_line(value)
                problems.append(f"{where(i, 'default_set')}: '{shown}' is neither 'include' nor 'exclude_<reason>'")
        included = frame["default_set"] == "include"

    parsed = {column: numbers(path, frame, column, problems) for column in NUMBER_COLUMNS if column in frame}

    if problems:
        raise InputError(problems)

    frame = frame.copy()
    for column, values in parsed.items():
        frame[column] = values.astype("Float64")
    frame["drug"] = drugs
    for column, values in counts.items():
        frame[column] = pd.array(values, dtype="Int64")
    frame["included"] = included.to_numpy()
    return frame


def _parse_count(raw: str, comma: bool = False) -> int | None | str:
    """A whole number (``3``, ``3.0``, or ``3,0`` in a semicolon-separated file), None for blank, or why
    not: ``"invalid"`` or ``"too large"``."""
    if raw == "":
        return None
    if not (_WHOLE_NUMBER.match(raw) or (comma and _WHOLE_NUMBER_COMMA.match(raw))):
        return "invalid"
    value = int(re.split(r"[.,]", raw)[0])  # not int(float(raw)): floats round above 2**53
    return value if value <= MAX_COUNT else "too large"


def stage_counts(frame: pd.DataFrame) -> np.ndarray:
    """(reports, 4) int64 counts in the graded model's stage order (any, marked, complete, sustained), −1
    where a report did not grade the stage (`models.sequential.MISSING`)."""
    from models.sequential import COUNT_COLUMNS, MISSING

    columns = [pd.array(frame[c], dtype="Int64") for c in COUNT_COLUMNS]
    return np.column_stack([c.fillna(MISSING).to_numpy(dtype=np.int64) for c in columns]).reshape(-1, 4)
