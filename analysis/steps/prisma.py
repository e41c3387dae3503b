"""The counts of the PRISMA 2020 flow, from the evidence table and the records excluded on reading."""

from __future__ import annotations

import pandas as pd


def prisma_counts(
    reports_frame: pd.DataFrame,
    excluded_frame: pd.DataFrame | None,
    drug: str,
    target_drug: str | None = None,
) -> dict:
    """The counts of the PRISMA 2020 flow, computed from the rows of the evidence table and of the
    records excluded on reading.

    `reports_frame` is `load_evidence(...).frame` (its `included` column is used) or reports.csv read with
    string cells (then `default_set == "include"`; no `default_set` column: every row included).
    `excluded_frame` may be None (a user's own data without that file): "assessed" and
    "excluded_on_reading" are then None (not recorded) and "excluded_reasons" is empty.

    Returns {"assessed": int | None, "excluded_on_reading": int | None, "excluded_reasons": {reason: n},
    "in_table": int, "outside_default": int, "outside_reasons": {default_set value: n},
    "included_reports": {drug: n}, "included_patients": {drug: n}}. The by-drug dicts list `drug`, then
    `target_drug`, then any other drug with included reports; reasons are in order of first appearance.
    """
    frame = reports_frame
    if "included" in frame.columns:
        included = frame["included"].astype(bool)
    elif "default_set" in frame.columns:
        included = frame["default_set"].astype(str).str.strip() == "include"
    else:
        included = pd.Series(True, index=frame.index)
    reasons = frame["default_set"] if "default_set" in frame.columns else pd.Series("include", index=frame.index)
    drugs = frame["drug"].astype(str).str.strip().str.lower()
    patients = pd.to_numeric(frame["n_treated"], errors="coerce").fillna(0).astype(int)
    order = [d for d in dict.fromkeys([drug, target_drug]) if d]
    order += sorted(set(drugs[included]) - set(order))
    in_table = len(frame)
    excluded = None if excluded_frame is None else len(excluded_frame)
    return {
        "assessed": None if excluded is None else in_table + excluded,
        "excluded_on_reading": excluded,
        "excluded_reasons": {} if excluded_frame is None else _tally(excluded_frame["reason"]),
        "in_table": in_table,
        "outside_default": int((~included).sum()),
        "outside_reasons": _tally(reasons[~included]),
        "included_reports": {d: int((included & (drugs == d)).sum()) for d in order},
        "included_patients": {d: int(patients[included & (drugs == d)].sum()) for d in order},
    }


def _tally(values: pd.Series) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values.astype(str).str.strip():
        counts[value] = counts.get(value, 0) + 1
    return counts
