"""The per-patient table (one row per patient of a report): checked against the evidence table, and the
starting doses it gives, for the low-dose selection."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import InputError
from analysis.inputs.tables import MISSING_TOKENS, one_line, read_table, require_columns, row_label

PATIENT_OUTCOMES = ("any_response", "marked", "complete")
"""Per-patient outcome columns: 1 (yes), 0 (no) or blank/NA (not graded)."""

_FIRST_DOSE = re.compile(r"(\d+(?:[.,]\d+)?)\s*(?:-\s*\d+(?:[.,]\d+)?\s*)?mg", re.IGNORECASE)


def starting_dose(text: str) -> float | None:
    """The first dose in mg named in a patient's dose cell ("12.5 mg nightly; restarted at 4.5 mg" → 12.5,
    "1.5-3.0 mg/day (started 1.5 ...)" → 1.5, "4,5 mg" → 4.5): these cells describe the course in order."""
    found = _FIRST_DOSE.search(text or "")
    return float(found.group(1).replace(",", ".")) if found else None


def read_patients(path: str | Path, report_ids: set[str], evidence_path: Path) -> pd.DataFrame:
    """The per-patient table, checked against the evidence table's `report_ids`: every row names a report
    of it and a patient once, and a per-patient outcome is 0, 1 or blank. Its other columns are free text
    that `analysis.steps.clinical` reads where present."""
    path = Path(path)
    frame = read_table(path)
    require_columns(path, frame, ("report_id", "patient_id"))
    seen, problems = {}, []
    if len(frame) and not report_ids & set(frame["report_id"]):
        raise InputError(f"{path}: no row names a report of {evidence_path}: this per-patient table belongs to "
                         'other data (give yours, or set data.patients_path = "" for none)')
    for i, (rid, pid) in enumerate(zip(frame["report_id"], frame["patient_id"])):
        where = f"{row_label(path, i, rid)}, column"
        if not rid:
            problems.append(f"{where} report_id: report_id is blank")
        elif rid not in report_ids:
            problems.append(f"{where} report_id: '{one_line(rid)}' is not a report of {evidence_path.name}")
        if not pid:
            problems.append(f"{where} patient_id: patient_id is blank")
        elif (rid, pid) in seen:
            problems.append(f"{where} patient_id: duplicate of row {seen[rid, pid] + 1}")
        else:
            seen[rid, pid] = i
        for column in (c for c in PATIENT_OUTCOMES if c in frame.columns):
            value = frame[column].iloc[i]
            if value not in ("0", "1", "") and value.lower() not in MISSING_TOKENS:
                problems.append(f"{where} {column}: '{one_line(value)}' is not 1 (yes), 0 (no) or blank (not graded)")
    if problems:
        raise InputError(problems)
    return frame


def starting_dose_counts(frame: pd.DataFrame, outcome: str, limit: float, patients: pd.DataFrame | None):
    """Per report, the treated and responding patients who started at a daily dose of at most `limit`.

    Where `patients` lists every patient of a report and gives at least one a starting dose, the counts
    are rebuilt from the patients whose starting dose is known and at most `limit` (a patient whose dose
    was not read is left out, not assumed low). Otherwise the report-level `dose_mg_min` (the lowest dose
    given, the starting dose of a titration) decides for the whole report. Reports with no dose: NA."""
    start = frame["dose_mg_min"].astype(float)
    n = frame["n_treated"].astype("Float64").where(start.notna())
    y = frame[f"n_{outcome}"].astype("Float64").where(start.notna())
    n[start > limit], y[start > limit] = 0, 0
    for i, rid in enumerate(frame["report_id"]):
        counted = _patients_below(patients, rid, outcome, limit, int(frame["n_treated"].iloc[i]))
        if counted is not None:
            n.iloc[i], y.iloc[i] = counted
    return n, y


def _patients_below(patients: pd.DataFrame | None, report_id: str, outcome: str, limit: float, n_treated: int):
    """(patients, responders) of a report among those with a known starting dose ≤ `limit`, or None when
    the patient table does not list the report's patients with doses and outcomes."""
    if patients is None or outcome not in PATIENT_OUTCOMES or outcome not in patients:
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
